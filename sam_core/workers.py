"""Lab computations in worker processes: the dashboard's server never computes, and runs at most N at once.

A lab job (a sweep, the saddle escape, the edge of stability, the quadratics lab) is a generator
function that yields ``(progress, result)`` pairs. :class:`WorkerPool` runs it in a long-lived worker
process (``python -m sam_core.workers``, the same interpreter and imports as the CLIs), so the job
has the machine as the CLI would: no GIL shared with the web server, no polling reruns on its cores.

- **A server-wide cap.** At most ``size`` jobs compute at once (``SAMLAB_MAX_JOBS``, default: one per
  two cores, at least 1); the others wait in one FIFO queue and know their place in it
  (:meth:`JobHandle.queue_position`), so six visitors cannot stall the server and each other.
- **Warm workers.** Workers start when the pool is first used and stay alive between jobs, so a
  job does not pay interpreter and torch start-up, and compiled sweep steps stay compiled; an idle
  new worker imports torch.compile's modules, so the first compiled sweep does not wait for them.
- **Streaming.** The worker sends the latest ``(progress, result)`` at most every ``interval`` s (every
  0.25 s in a job's first 3 s, so the first curves show at once; the first and the last item always, and
  a held-back item once its gap has passed, even while the job computes a long step), pickled; the server
  keeps the newest.
- **Stop.** A stop request reaches the generator at its next yield (and, for jobs that accept it, as
  a ``stop_event`` they poll); a worker that does not answer within ``kill_after`` s is killed and
  replaced. What was computed stays.

Frames on the pipes are ``4-byte length + pickle``; the worker's stdout and stderr stay the server's.
"""

from __future__ import annotations

import importlib
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FAST_START_S, FAST_INTERVAL = 3.0, 0.25  # the first seconds of a job stream at up to 4 updates/s
# imported while idle: torch.compile's modules, and scikit-learn's datasets (the digits presets and dataset, ~1 s)
PREIMPORT = ("torch._dynamo", "torch._inductor.compile_fx", "torch._inductor.codecache", "sklearn.datasets")

__all__ = [
    "JobHandle",
    "WorkerPool",
    "default_pool_size",
    "describe_error",
    "get_pool",
    "iter_worker_stats",
    "split_item",
]


def default_pool_size() -> int:
    raw = os.environ.get("SAMLAB_MAX_JOBS", "").strip()
    if raw:
        try:
            n = int(raw)
        except ValueError:
            raise ValueError(f"SAMLAB_MAX_JOBS: must be an integer in [1, 64], got {raw!r}") from None
        if not 1 <= n <= 64:
            raise ValueError(f"SAMLAB_MAX_JOBS: must be an integer in [1, 64], got {n}")
        return n
    return max(1, (os.cpu_count() or 2) // 2)


# ----------------------------------------------------------------------------------------- framing
def _write(fh, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    fh.write(struct.pack(">I", len(data)) + data)
    fh.flush()


def _read_exact(fh, n: int) -> bytes:
    """n bytes from a pipe (a raw read may return fewer); EOFError if it closes first."""
    parts, got = [], 0
    while got < n:
        b = fh.read(n - got)
        if not b:
            raise EOFError(f"pipe closed after {got} of {n} bytes")
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def _read(fh) -> Any:
    (n,) = struct.unpack(">I", _read_exact(fh, 4))
    return pickle.loads(_read_exact(fh, n))


def describe_error(exc: BaseException) -> str:
    """What a page shows for a failed job: a ValueError's own message (it names the field), else the type too."""
    return str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"


def split_item(item: Any) -> tuple[float | None, Any]:
    """A job's yielded item as ``(progress, result)``: ``(p, r)`` pairs as they are, anything else as a result."""
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], (int, float)):
        return float(item[0]), item[1]
    return None, item


# ----------------------------------------------------------------------------------------- handle
@dataclass
class _Task:
    fn: Callable
    args: tuple
    kwargs: dict
    pass_stop: str | None
    interval: float
    env: dict  # the server's SAMLAB_* settings when the job was submitted (the worker applies them)


class JobHandle:
    """The server's view of one submitted job: status, newest result, queue position, stop."""

    def __init__(self, pool: WorkerPool, task: _Task):
        self._pool = pool
        self.task = task
        self._lock = threading.Lock()
        self.status = "pending"  # pending (queued) → running → done | stopped | error
        self.progress = 0.0
        self.result: Any = None
        self.error = ""
        self.traceback = ""
        self.updates = 0
        self.t_start: float | None = None
        self.t_end: float | None = None
        self.stop_requested = threading.Event()
        self.finished = threading.Event()

    def _publish(self, progress: float | None, result: Any) -> None:
        with self._lock:
            if progress is not None:
                self.progress = min(1.0, max(0.0, float(progress)))
            if result is not None:
                self.result = result
            self.updates += 1

    def _finish(self, status: str, error: str = "", tb: str = "") -> None:
        with self._lock:
            self.status = status
            self.error, self.traceback = error, tb
            if status == "done":
                self.progress = 1.0
            self.t_end = time.perf_counter()
        self.finished.set()

    def snapshot(self) -> tuple:
        with self._lock:
            return self.status, self.progress, self.result, self.error, self.updates

    def elapsed(self) -> float:
        """Seconds computing (0 while queued)."""
        if self.t_start is None:
            return 0.0
        return (self.t_end or time.perf_counter()) - self.t_start

    def queue_position(self) -> int:
        """Jobs queued ahead of this one (0: it starts when a worker frees up, or it runs already)."""
        return self._pool.position(self)

    def stop(self) -> None:
        self.stop_requested.set()
        self._pool.cancel(self)

    def join(self, timeout: float | None = None) -> bool:
        return self.finished.wait(timeout)


# ----------------------------------------------------------------------------------------- worker (server side)
class _Worker:
    """One worker process and the thread that drives the jobs it is given."""

    def __init__(self, pool: WorkerPool):
        self.pool = pool
        r_res, w_res = os.pipe()
        paths = [p for p in sys.path if p and os.path.isdir(p)]  # it imports what the server can import
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join(paths))
        try:  # its own session: the server's Ctrl-C does not hit a job mid-way, and a kill reaches its children
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sam_core.workers", str(w_res)],
                stdin=subprocess.PIPE,
                pass_fds=(w_res,),
                env=env,
                cwd=os.getcwd(),
                start_new_session=True,
            )
        except Exception:
            os.close(r_res)
            raise
        finally:
            os.close(w_res)
        self.results = os.fdopen(r_res, "rb")
        self.lock = threading.Lock()

    def send(self, obj: Any) -> None:
        with self.lock:
            _write(self.proc.stdin, obj)

    def kill(self) -> None:
        """Kill the worker and its children (its process group), then close the pipes (the reader sees EOF)."""
        try:
            os.killpg(self.proc.pid, 9)
        except Exception:  # noqa: BLE001 - already gone
            pass
        try:
            self.proc.kill()
            self.proc.wait(5)
        except Exception:  # noqa: BLE001 - already gone
            pass
        for fh in (self.proc.stdin, self.results):
            try:
                fh.close()
            except Exception:  # noqa: BLE001
                pass

    def ready(self, timeout: float) -> bool:
        """Wait for the worker's 'ready' frame (it has imported torch and sam_core)."""
        box: list = []
        t = threading.Thread(target=lambda: box.append(self._safe_read()), daemon=True)
        t.start()
        t.join(timeout)
        return bool(box) and box[0] == ("ready",)

    def _safe_read(self):
        try:
            return _read(self.results)
        except Exception:  # noqa: BLE001
            return None

    def run(self, job: JobHandle) -> bool:
        """Run ``job`` to its end; False if the worker process had to be given up."""
        t = job.task
        job.t_start = time.perf_counter()
        with job._lock:
            job.status = "running"
        try:
            self.send(("task", t.fn, t.args, t.kwargs, t.pass_stop, t.interval, t.env))
        except Exception as exc:  # noqa: BLE001 - e.g. an argument that cannot be pickled
            job._finish("error", f"could not start the job: {describe_error(exc)}", traceback.format_exc())
            return self.proc.poll() is None
        box: dict = {}
        reader_done = threading.Event()

        def read_loop():
            try:
                while True:
                    msg = _read(self.results)
                    if msg[0] == "update":
                        job._publish(msg[1], msg[2])
                    elif msg[0] == "end":
                        box["end"] = msg
                        return
            except Exception as exc:  # noqa: BLE001 - the worker died or sent garbage
                box["broken"] = exc
            finally:
                reader_done.set()

        threading.Thread(target=read_loop, name="samlab-worker-reader", daemon=True).start()
        stop_sent_at = None
        while not reader_done.wait(0.05):
            if job.stop_requested.is_set() and stop_sent_at is None:
                stop_sent_at = time.perf_counter()
                try:
                    self.send(("stop",))
                except Exception:  # noqa: BLE001
                    pass
            if stop_sent_at is not None and time.perf_counter() - stop_sent_at > self.pool.kill_after:
                self.kill()  # the computation did not answer: give the process up, keep what arrived
                reader_done.wait(5)
                job._finish("stopped")
                return False
        if "end" in box:
            _, status, err, tb = box["end"]
            if status == "done" and job.stop_requested.is_set():
                status = "stopped"
            job._finish(status, err, tb)
            return True
        code = self.proc.poll()
        why = box.get("broken")
        job._finish(
            "stopped" if job.stop_requested.is_set() else "error",
            ""
            if job.stop_requested.is_set()
            else f"the worker process ended unexpectedly (exit code {code}; {type(why).__name__}: {why})",
        )
        self.kill()
        return False


# ----------------------------------------------------------------------------------------- pool
class WorkerPool:
    """At most ``size`` jobs at once in warm worker processes; the rest wait in one FIFO queue."""

    def __init__(self, size: int | None = None, kill_after: float = 10.0, start_timeout: float = 120.0):
        self.size = size or default_pool_size()
        self.kill_after = kill_after
        self.start_timeout = start_timeout
        self._cond = threading.Condition()
        self._queue: list[JobHandle] = []
        self._idle: list[_Worker] = []
        self._starting = 0
        self._start_failures = 0  # consecutive failed worker starts
        self._closed = False
        self._running: set[JobHandle] = set()  # the jobs a worker is computing

    # ---- public
    def submit(
        self, fn: Callable, *args: Any, pass_stop: str | None = None, interval: float = 0.3, **kwargs: Any
    ) -> JobHandle:
        """Queue ``fn(*args, **kwargs)`` (a generator function importable by module and name)."""
        if (
            getattr(fn, "__qualname__", "").count("<locals>")
            or getattr(fn, "__name__", "") == "<lambda>"
            or getattr(fn, "__module__", "") == "__main__"
        ):
            raise ValueError(f"worker jobs need a module-level function of an importable module, got {fn!r}")
        env = {k: v for k, v in os.environ.items() if k.startswith("SAMLAB_")}
        job = JobHandle(self, _Task(fn, args, kwargs, pass_stop, float(interval), env))
        with self._cond:
            if self._closed:
                raise RuntimeError("the worker pool is closed")
            self._queue.append(job)
            self._ensure_workers()
            self._cond.notify_all()
        threading.Thread(target=self._drive, args=(job,), name="samlab-job", daemon=True).start()
        return job

    def warm(self) -> None:
        """Start the workers now (in the background), so the first job does not wait for them."""
        with self._cond:
            self._ensure_workers()

    def position(self, job: JobHandle) -> int:
        with self._cond:
            try:
                return self._queue.index(job)
            except ValueError:
                return 0

    def cancel(self, job: JobHandle) -> None:
        """A queued job leaves the queue as 'stopped'; a running one is told to stop (Job.stop)."""
        with self._cond:
            if job in self._queue:
                self._queue.remove(job)
                job._finish("stopped")
                self._cond.notify_all()

    def stop_all(self, wait: float = 15.0) -> int:
        """Stop every queued and running job (an operator's reset; the tests' after a failure, so one failed
        test does not leave its job holding the worker for the next); how many there were."""
        with self._cond:
            jobs = list(self._queue) + list(self._running)
        for job in jobs:
            job.stop()
        deadline = time.perf_counter() + wait
        for job in jobs:
            job.join(max(0.0, deadline - time.perf_counter()))
        return len(jobs)

    def stats(self) -> dict:
        with self._cond:
            return {
                "size": self.size,
                "running": len(self._running),
                "queued": len(self._queue),
                "idle": len(self._idle),
            }

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers, self._idle = self._idle, []
            queued, self._queue = self._queue, []
            self._cond.notify_all()
        for job in queued:
            job._finish("stopped")
        for w in workers:
            w.kill()

    # ---- internals
    def _ensure_workers(self) -> None:  # holds self._cond
        if self._closed:
            return
        have = len(self._idle) + len(self._running) + self._starting
        for _ in range(max(0, self.size - have)):
            self._starting += 1
            threading.Thread(target=self._spawn, name="samlab-worker-start", daemon=True).start()

    def _spawn(self) -> None:
        w = None
        try:
            w = _Worker(self)
            ok = w.ready(self.start_timeout)
        except Exception:  # noqa: BLE001
            ok = False
        if not ok and w is not None:
            w.kill()
        with self._cond:
            self._starting -= 1
            if ok and not self._closed:
                self._idle.append(w)
                self._start_failures = 0
            elif not ok and not self._closed:
                self._start_failures += 1
                if self._queue and self._start_failures < 3:
                    self._ensure_workers()  # jobs are waiting: try again
            self._cond.notify_all()
        if ok and self._closed:
            w.kill()

    def _drive(self, job: JobHandle) -> None:
        with self._cond:
            while True:
                if job.finished.is_set():  # cancelled while queued
                    return
                while self._idle and self._idle[-1].proc.poll() is not None:  # died while idle (e.g. out of memory)
                    dead = self._idle.pop()
                    threading.Thread(target=dead.kill, daemon=True).start()
                    self._ensure_workers()
                if self._queue and self._queue[0] is job and self._idle:
                    self._queue.pop(0)
                    worker = self._idle.pop()
                    self._running.add(job)
                    break
                if self._start_failures >= 3 and not self._idle and not self._starting and not self._running:
                    self._queue.remove(job)
                    job._finish("error", "no worker process could be started (see the server log)")
                    self._cond.notify_all()
                    return
                self._cond.wait(0.5)
        keep = False
        try:
            keep = worker.run(job)
        finally:
            keep = keep and worker.proc.poll() is None and not self._closed
            if not keep:
                worker.kill()  # outside the lock: it may wait for the process
            with self._cond:
                self._running.discard(job)
                if keep:
                    self._idle.append(worker)
                else:
                    self._ensure_workers()
                self._cond.notify_all()


_POOL: WorkerPool | None = None
_POOL_LOCK = threading.Lock()


def get_pool() -> WorkerPool:
    """The process-wide pool (created on first use; its size from ``SAMLAB_MAX_JOBS``)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = WorkerPool()
        return _POOL


class _Throttle:
    """Sends one job's ``(progress, result)`` items to the server: the newest at most every ``interval`` s
    (every ``FAST_INTERVAL`` s in the job's first ``FAST_START_S`` s), the first item and the first with
    progress at once, and the last always (:meth:`close`).

    An item held back because it came too soon after the last one goes out once its gap has passed even if
    the job does not yield again before then (a thread sends it): a job that yields its new phase and then
    computes for a minute shows that phase after a quarter of a second, not after the minute. Jobs yield
    snapshots (``res.snapshot()``, a fresh DataFrame), which nobody changes after the yield, so it is safe
    to pickle one in that thread while the job computes on. An item that cannot be sent (it cannot be
    pickled) ends the job with an error, whichever thread found it: :meth:`offer` raises it at the job's
    next yield, :meth:`close` returns it.
    """

    def __init__(self, out, interval: float):
        self.out, self.interval = out, interval
        self.cond = threading.Condition()
        self.pending: tuple | None = None
        self.t0, self.last_sent, self.progressed, self.closed = time.perf_counter(), 0.0, False, False
        self.error: BaseException | None = None  # the flushing thread's failure to send an item
        self.thread = threading.Thread(target=self._flush_late, name="samlab-worker-throttle", daemon=True)
        self.thread.start()

    def _gap(self, now: float) -> float:
        return self.interval if now - self.t0 > FAST_START_S else min(self.interval, FAST_INTERVAL)

    def _send(self, item: tuple, now: float) -> None:  # holds self.cond
        self.pending = None
        _write(self.out, ("update", *item))  # raises if the item cannot be pickled: nothing was written
        self.last_sent = now
        self.progressed = self.progressed or (item[0] or 0) > 0

    def offer(self, progress: float | None, result: Any) -> None:
        item = (progress, result)
        with self.cond:
            if self.error is not None:
                raise self.error
            now = time.perf_counter()
            # the first item with progress goes at once too: a job's first item is often its empty result,
            # and its first curves should not wait a gap behind it
            first_progress = (progress or 0) > 0 and not self.progressed
            if self.last_sent == 0.0 or first_progress or now - self.last_sent >= self._gap(now):
                self._send(item, now)
            else:
                self.pending = item
                self.cond.notify()

    def _flush_late(self) -> None:
        with self.cond:
            while not self.closed:
                if self.pending is None:
                    self.cond.wait()
                    continue
                now = time.perf_counter()
                due = self.last_sent + self._gap(now)
                if now < due:
                    self.cond.wait(due - now)
                    continue
                try:
                    self._send(self.pending, now)
                except Exception as exc:  # noqa: BLE001 - e.g. it cannot be pickled: the job ends with this error
                    self.error = exc
                    return

    def close(self) -> BaseException | None:
        """Stop the thread and send the held-back item, if any (the job's last); the error that kept an item
        from being sent, if one did."""
        with self.cond:
            self.closed = True
            self.cond.notify()
            item, self.pending = self.pending, None
            if item is not None and self.error is None:
                try:
                    self._send(item, time.perf_counter())
                except Exception as exc:  # noqa: BLE001 - it cannot be pickled
                    self.error = exc
        self.thread.join(5)
        return self.error


# ----------------------------------------------------------------------------------------- worker (process side)
def _serve(out_fd: int) -> None:
    import queue

    out = os.fdopen(out_fd, "wb")  # buffered: a write is whole, flushed per frame
    tasks: queue.Queue = queue.Queue()
    stop = threading.Event()

    def control():
        try:
            while True:
                (n,) = struct.unpack(">I", _read_exact(sys.stdin.buffer, 4))
                raw = _read_exact(sys.stdin.buffer, n)
                try:
                    msg = pickle.loads(raw)
                except Exception as exc:  # noqa: BLE001 - e.g. a function this process cannot import
                    tasks.put(("bad", f"the worker could not load the job: {describe_error(exc)}"))
                    continue
                if msg[0] == "stop":
                    stop.set()
                else:  # one task at a time per worker, in pipe order: a stop before it was for the job before
                    stop.clear()
                    tasks.put(msg)
        except Exception:  # noqa: BLE001 - the server went away: nobody can receive results any more
            pass
        os._exit(0)

    importlib.import_module("sam_core")  # torch and the core, before saying ready
    threading.Thread(target=control, name="samlab-worker-control", daemon=True).start()
    _write(out, ("ready",))
    for mod in PREIMPORT:  # torch.compile's own modules (~1.4 s here): paid while idle, not by the first big sweep
        try:
            importlib.import_module(mod)
        except Exception:  # noqa: BLE001 - an optimisation only
            pass
    while True:
        msg = tasks.get()
        if msg is None:
            return
        if msg[0] == "bad":
            _write(out, ("end", "error", msg[1], ""))
            continue
        _, fn, args, kwargs, pass_stop, interval, env = msg
        for k in [k for k in os.environ if k.startswith("SAMLAB_") and k not in env]:
            del os.environ[k]
        os.environ.update(env)  # the settings the server had when the job was submitted
        if env.get("SAMLAB_PLUGINS"):  # plug-in variants the server loaded after this worker started
            from sam_core.variants.plugins import load_plugins

            load_plugins()
        status, err, tb = "done", "", ""
        throttle = _Throttle(out, interval)
        try:
            kw = dict(kwargs)
            if pass_stop:
                kw[pass_stop] = stop
            gen = fn(*args, **kw)
            try:
                for item in gen:
                    throttle.offer(*split_item(item))
                    if stop.is_set():
                        break
            finally:
                close = getattr(gen, "close", None)
                if close is not None:
                    close()
            if stop.is_set():
                status = "stopped"
        except Exception as exc:  # noqa: BLE001 - the page shows the message; the traceback goes to the log
            status, err, tb = "error", describe_error(exc), traceback.format_exc()
            print(tb, file=sys.stderr, flush=True)
        unsent = throttle.close()  # what was computed stays, on an error too
        if unsent is not None and status != "error":
            status, err, tb = "error", f"a result could not be sent: {describe_error(unsent)}", ""
        try:
            _write(out, ("end", status, err, tb))
        except Exception:  # noqa: BLE001 - the result cannot be pickled or the server left
            return


def iter_worker_stats():
    """A job that reports on the worker running it: its pid and how many graphs torch.compile has built there
    (tests and diagnostics: which process compiled what)."""
    from torch._dynamo.utils import counters

    yield 1.0, {"pid": os.getpid(), "unique_graphs": int(counters["stats"]["unique_graphs"])}


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
