"""Background jobs for Streamlit pages: run a computation off the script thread and stream its partial results.

A page never computes in the script thread. It starts a job — a generator run by the server-wide pool of
worker processes (:class:`ProcessJob`, ``sam_core.workers``), or a daemon thread (:class:`Job`) — and draws
the job's latest partial result in a fragment that polls it (``st.fragment(run_every=...)``) while
it runs; a Stop button sets the job's stop event and keeps what was computed.

Two ways to write the computation (neither imports streamlit):

- a **generator** that yields ``(progress, result)`` pairs (``progress`` in [0, 1]) or bare results::

      job = Job.from_generator(run_saddle, variants, rhos, seeds)   # stop = the generator is closed

- a **callback-style** function that receives a :class:`JobContext`::

      def work(ctx):
          for i in range(n):
              if ctx.stop_requested: return
              ctx.report(result=partial, progress=(i + 1) / n, message=f"step {i}")
      job = Job(work)

In a page::

      if st.button("Run"):
          start_job("saddle", Job.from_generator(run_saddle, ...))
      job_panel("saddle", render=lambda result, state: st.plotly_chart(fig(result)))

State lives in ``st.session_state`` under ``job:<key>``, so a rerun (any widget change) keeps the job
and its result; starting a new job under the same key stops the old one first.

A reload (or the same link in another tab) is a new session: the job is also registered server-wide
under a random token written into the URL (``job.<key>=<token>``), so the page finds it again, running
or finished, and draws it. A running job whose every session has gone (the tab was closed) and that no
page reattaches within ``GRACE_S`` seconds is stopped, keeping what it computed; finished jobs stay
findable for ``RETAIN_S`` seconds (at most ``MAX_KEPT`` of them).
"""

from __future__ import annotations

import secrets
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sam_core.workers import describe_error, split_item

__all__ = [
    "Job",
    "JobContext",
    "JobState",
    "ProcessJob",
    "await_first_result",
    "eta_text",
    "get_job",
    "job_panel",
    "link_autorun",
    "owns_job",
    "start_job",
    "stop_job",
]

STATUSES = ("pending", "running", "done", "stopped", "error")


@dataclass(frozen=True)
class JobState:
    """A consistent snapshot of a job, safe to read from the script thread."""

    status: str
    progress: float
    result: Any
    message: str
    error: str
    elapsed_s: float
    updates: int
    ahead: int = 0  # jobs ahead of this one in the server-wide queue (process jobs)

    @property
    def running(self) -> bool:
        return self.status in ("pending", "running")

    @property
    def finished(self) -> bool:
        return not self.running


class JobContext:
    """What a callback-style computation sees: the stop flag and a way to report partial results."""

    def __init__(self, job: Job):
        self._job = job

    @property
    def stop_requested(self) -> bool:
        return self._job._stop.is_set()

    @property
    def stop_event(self) -> threading.Event:
        return self._job._stop

    def report(self, result: Any = None, progress: float | None = None, message: str | None = None) -> None:
        self._job._update(result=result, progress=progress, message=message)


_UNSET = object()


class _Readable:
    """``running`` and ``result`` from ``state()``, for both kinds of job."""

    def state(self) -> JobState:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def running(self) -> bool:
        return self.state().running

    @property
    def result(self) -> Any:
        return self.state().result


class Job(_Readable):
    """A computation running in a background thread, with a stop event and thread-safe partial results."""

    def __init__(self, target: Callable[[JobContext], Any], name: str = "job"):
        self.name = name
        self._target = target
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._status = "pending"
        self._progress = 0.0
        self._result: Any = None
        self._message = ""
        self._error = ""
        self.traceback = ""
        self._t0: float | None = None
        self._t1: float | None = None
        self._updates = 0

    # ----------------------------------------------------------------------------- construction
    @classmethod
    def from_generator(
        cls, gen_fn: Callable[..., Iterable], *args: Any, name: str = "job", pass_stop: str | None = None, **kwargs: Any
    ) -> ProcessJob:
        """A job that runs ``gen_fn(*args, **kwargs)`` in a worker process (``sam_core.workers``): the
        server-wide pool runs at most ``SAMLAB_MAX_JOBS`` at once, the rest queue. Each yielded
        ``(progress, result)`` is published (throttled). ``gen_fn`` and its arguments must pickle.

        The generator is closed at the first yield after a stop request. A generator whose items take
        long can also watch the stop event itself: ``pass_stop="stop_event"`` passes the job's stop
        event as that keyword argument.
        """
        return ProcessJob(gen_fn, args, kwargs, name=name, pass_stop=pass_stop)

    @classmethod
    def thread_from_generator(
        cls, gen_fn: Callable[..., Iterable], *args: Any, name: str = "job", pass_stop: str | None = None, **kwargs: Any
    ) -> Job:
        """The same in a thread of the server (for work that cannot be pickled; it shares the GIL)."""

        def target(ctx: JobContext):
            kw = dict(kwargs)
            if pass_stop:
                kw[pass_stop] = ctx.stop_event
            gen = gen_fn(*args, **kw)
            try:
                for item in gen:
                    progress, result = split_item(item)
                    ctx.report(result=result, progress=progress)
                    if ctx.stop_requested:
                        break
            finally:
                close = getattr(gen, "close", None)
                if close is not None:
                    close()

        return cls(target, name=name)

    # ----------------------------------------------------------------------------- control
    def start(self) -> Job:
        if self._thread is not None:
            raise RuntimeError(f"job {self.name!r} was already started")
        self._t0 = time.perf_counter()
        self._status = "running"
        self._thread = threading.Thread(target=self._run, name=f"samlab-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, wait: float | None = None) -> None:
        """Ask the computation to stop (it keeps what it computed); optionally wait up to ``wait`` s."""
        self._stop.set()
        if wait:
            self.join(wait)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; True if it has finished."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _run(self) -> None:
        ctx = JobContext(self)
        try:
            self._target(ctx)
            status = "stopped" if self._stop.is_set() else "done"
            with self._lock:
                self._status = status
                if status == "done":
                    self._progress = 1.0
        except Exception as exc:  # the page shows the message; the traceback is kept for logs
            with self._lock:
                self._status = "error"
                self._error = describe_error(exc)
                self.traceback = traceback.format_exc()
        finally:
            self._t1 = time.perf_counter()

    def _update(self, result: Any = _UNSET, progress: float | None = None, message: str | None = None) -> None:
        with self._lock:
            if result is not None and result is not _UNSET:
                self._result = result
            if progress is not None:
                self._progress = min(1.0, max(0.0, float(progress)))
            if message is not None:
                self._message = str(message)
            self._updates += 1

    # ----------------------------------------------------------------------------- reading
    def state(self) -> JobState:
        with self._lock:
            end = self._t1 if self._t1 is not None else time.perf_counter()
            return JobState(
                self._status,
                self._progress,
                self._result,
                self._message,
                self._error,
                0.0 if self._t0 is None else end - self._t0,
                self._updates,
            )


class ProcessJob(_Readable):
    """A generator job run by the server-wide worker pool; the same interface as :class:`Job`."""

    def __init__(
        self,
        gen_fn: Callable[..., Iterable],
        args: tuple,
        kwargs: dict,
        name: str = "job",
        pass_stop: str | None = None,
        interval: float = 1.0,
    ):
        self.name = name
        self._spec = (gen_fn, args, kwargs, pass_stop, interval)
        self._handle = None
        self._started = False
        self._start_error = ""

    def start(self) -> ProcessJob:
        from sam_core.workers import get_pool

        if self._started:
            raise RuntimeError(f"job {self.name!r} was already started")
        gen_fn, args, kwargs, pass_stop, interval = self._spec
        self._started = True
        try:
            self._handle = get_pool().submit(gen_fn, *args, pass_stop=pass_stop, interval=interval, **kwargs)
        except (ValueError, RuntimeError) as exc:  # a bad SAMLAB_MAX_JOBS, a closed pool: shown, not raised
            self._start_error = str(exc)
        return self

    def stop(self, wait: float | None = None) -> None:
        if self._handle is not None:
            self._handle.stop()
            if wait:
                self.join(wait)

    def join(self, timeout: float | None = None) -> bool:
        return True if self._handle is None else self._handle.join(timeout)

    @property
    def traceback(self) -> str:
        return "" if self._handle is None else self._handle.traceback

    def state(self) -> JobState:
        h = self._handle
        if h is None:
            if self._start_error:
                return JobState("error", 0.0, None, "", f"could not start: {self._start_error}", 0.0, 0)
            return JobState("pending", 0.0, None, "", "", 0.0, 0)
        status, progress, result, error, updates = h.snapshot()
        ahead = h.queue_position() if status == "pending" else 0
        return JobState(status, progress, result, "", error, h.elapsed(), updates, ahead)


def eta_text(state: JobState) -> str:
    """' · about 12 s left' from the elapsed time and the progress (empty until there is enough to say)."""
    p = state.progress
    if not state.running or p < 0.02 or p >= 1 or state.elapsed_s < 0.5:
        return ""
    eta = state.elapsed_s * (1 - p) / p
    return f" · about {eta:.0f} s left" if eta >= 1 else " · less than a second left"


# --------------------------------------------------------------------------------- Streamlit glue
def _skey(key: str) -> str:
    return f"job:{key}"


GRACE_S = 60.0  # a running job nobody watches is stopped after this long (a reload reattaches well within it)
RETAIN_S = 1800.0  # a finished job stays findable by its link this long
MAX_KEPT = 64
# the script run that starts a job waits up to this long for its first partial result, so that the first
# picture goes out with the page instead of with the first poll (~0.5 s later plus a round trip)
FIRST_RESULT_WAIT_S = 0.8


@dataclass
class _Entry:
    job: Any
    key: str
    sessions: set = field(default_factory=set)
    detached_since: float | None = None
    finished_at: float | None = None
    owner: str | None = None  # the session that may stop it: its starter, or the page that reloaded it


_REGISTRY: dict[str, _Entry] = {}
_REG_LOCK = threading.Lock()
_REAPER: list[threading.Thread] = []


def _session_id() -> str | None:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        return None if ctx is None else ctx.session_id
    except Exception:  # pragma: no cover - a Streamlit without this internal
        return None


def _session_alive(session_id: str) -> bool | None:
    """Whether a browser session is still connected; None when the runtime cannot tell (AppTest, bare mode)."""
    try:
        from streamlit import runtime

        if not runtime.exists():
            return None
        return runtime.get_instance().is_active_session(session_id)
    except Exception:  # pragma: no cover
        return None


def reap(now: float | None = None, alive: Callable[[str], bool | None] = _session_alive) -> list[str]:
    """One pass over the registry: stop running jobs left without a session for ``GRACE_S``, forget
    finished ones after ``RETAIN_S`` (or beyond ``MAX_KEPT``). Returns the tokens of the jobs stopped."""
    now = time.monotonic() if now is None else now
    stopped = []
    with _REG_LOCK:
        for tok, e in list(_REGISTRY.items()):
            views = [alive(sid) for sid in e.sessions]
            if not views or any(v is None or v for v in views):  # watched, or nobody can tell
                e.detached_since = None
            elif e.detached_since is None:
                e.detached_since = now
            running = e.job.running
            if running and e.detached_since is not None and now - e.detached_since >= GRACE_S:
                e.job.stop()
                stopped.append(tok)
            elif not running:
                e.finished_at = e.finished_at or now
                if now - e.finished_at >= RETAIN_S:
                    del _REGISTRY[tok]
        done = sorted((e.finished_at, t) for t, e in _REGISTRY.items() if e.finished_at is not None)
        for _, tok in done[: max(0, len(_REGISTRY) - MAX_KEPT)]:
            del _REGISTRY[tok]
    return stopped


def _reaper_loop() -> None:  # pragma: no cover - timing loop; reap() itself is tested
    while True:
        time.sleep(5.0)
        try:
            reap()
        except Exception:
            pass


def register(key: str, job: Any, session_id: str | None) -> str:
    """Keep ``job`` findable server-wide; returns its token (what the URL carries)."""
    tok = secrets.token_urlsafe(9)
    with _REG_LOCK:
        _REGISTRY[tok] = _Entry(job, key, {session_id} if session_id else set(), owner=session_id)
        if not _REAPER:
            t = threading.Thread(target=_reaper_loop, name="samlab-job-reaper", daemon=True)
            _REAPER.append(t)
            t.start()
    return tok


def find(
    key: str, token: str | None, session_id: str | None, alive: Callable[[str], bool | None] = _session_alive
) -> Any:
    """The job registered under ``token`` for ``key`` (attaching ``session_id`` to it), or None.

    ``session_id`` becomes its owner (may stop it) when the owner's session is gone — a reload of the page
    that started it; while the owner is connected, another session (a shared link) only watches."""
    with _REG_LOCK:
        e = _REGISTRY.get(token or "")
        if e is None or e.key != key:
            return None
        if session_id:
            e.sessions.add(session_id)
            if e.owner is None or (e.owner != session_id and alive(e.owner) is False):
                e.owner = session_id
        e.detached_since = None
        return e.job


def owner(token: str | None) -> str | None:
    """The session that may stop the job under ``token`` (None if unknown)."""
    with _REG_LOCK:
        e = _REGISTRY.get(token or "")
        return None if e is None else e.owner


def _qkey(key: str) -> str:
    return f"job.{key}"


def link_autorun(key: str, flag: str = "run") -> bool:
    """Whether the page should start its job ``key`` because its link says so (``?run=1``, a Home card).

    Once per distinct link in a session: a card pressed after another card of the same page starts its own
    job (the page's earlier job must not stand in for it), the same link again does not restart. A link that
    carries the job's token (a reload, a shared link of a run) finds that job instead of starting one."""
    import streamlit as st

    if st.query_params.get(flag) != "1" or _qkey(key) in st.query_params:
        return False
    link = "&".join(f"{k}={v}" for k, v in sorted(st.query_params.to_dict().items()) if not k.startswith("job."))
    done = st.session_state.setdefault("_samlab_autorun", {})
    if done.get(key) == link:
        return False
    done[key] = link
    return True


def get_job(key: str) -> Job | ProcessJob | None:
    """The page's job under ``key``: this session's, or the one the URL's token names (after a reload)."""
    import streamlit as st

    job = st.session_state.get(_skey(key))
    if job is None:
        token, me = st.query_params.get(_qkey(key)), _session_id()
        job = find(key, token, me)
        if job is not None and (me is None or owner(token) == me):  # adopted after a reload: this page's own
            st.session_state[_skey(key)] = job
    return job


def owns_job(key: str) -> bool:
    """Whether this session may stop the job it shows under ``key`` (it started or adopted it); a job seen
    through another visitor's shared link is only watched: no Stop, and Run starts this session's own."""
    import streamlit as st

    return st.session_state.get(_skey(key)) is not None


def start_job(key: str, job: Job | ProcessJob, stop_wait: float = 2.0) -> Job | ProcessJob:
    """Stop the job already under ``key`` (if any), then start ``job``, keep it in session state and
    register it under a token in the URL, so a reload finds it."""
    import streamlit as st

    old = st.session_state.get(_skey(key))
    if old is not None and old.running:
        old.stop(wait=stop_wait)
    st.session_state[_skey(key)] = job
    st.session_state[_fresh(key)] = True
    st.query_params[_qkey(key)] = register(key, job, _session_id())
    return job.start()


def _fresh(key: str) -> str:
    return f"_job_fresh:{key}"


def await_first_result(job: Job | ProcessJob, budget_s: float = FIRST_RESULT_WAIT_S) -> None:
    """Wait (at most ``budget_s``) until a just-started job has something to show: a result with progress
    (the first item of many jobs is their empty result at progress 0), an end, or a place behind other jobs
    in the queue (then nothing will come soon). The waiting thread only sleeps; the job computes elsewhere."""
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        s = job.state()
        if (s.result is not None and s.progress > 0) or s.finished or (s.status == "pending" and s.ahead > 0):
            return
        time.sleep(0.02)


def stop_job(key: str, wait: float = 2.0) -> None:
    """Stop this session's own job under ``key`` (never one it only watches)."""
    job = get_job(key)
    if job is not None and owns_job(key):
        job.stop(wait=wait)


def job_panel(
    key: str,
    render: Callable[[Any, JobState], None],
    interval: float = 0.5,
    label: str = "Computing",
    stop_label: str = "Stop",
    idle_text: str | None = None,
    live: Callable[[Any, JobState], None] | None = None,
) -> JobState | None:
    """Draw the job under ``key``: progress bar, Stop button and ``render(result, state)``.

    Polls every ``interval`` seconds while the job runs (a fragment rerun, not a full page rerun) and
    switches polling off once it has finished. While it runs, ``live(result, state)`` draws instead of
    ``render`` when given: the one figure worth watching, not every tab — each poll rebuilds what it
    draws on the server and the browser redraws it, on the cores the computation needs
    (benchmarks/bench_browser.py measures that tax). ``render`` errors are shown, never raised.
    """
    import streamlit as st

    job = get_job(key)
    if job is not None and st.session_state.pop(_fresh(key), False):  # started by this very script run
        await_first_result(job)
    polling = job is not None and job.running

    @st.fragment(run_every=interval if polling else None)
    def _panel():
        job = get_job(key)
        if job is None:
            if idle_text:
                st.info(idle_text)
            return
        state = job.state()
        if state.running:
            cols = st.columns([5, 1])
            if state.status == "pending":
                text = "Waiting for a free worker (the server runs a few lab jobs at once, in turn): " + (
                    f"{state.ahead} queued ahead of you" if state.ahead else "you are next"
                )
            else:
                text = (
                    f"{label}… {100 * state.progress:.0f} %"
                    + (f" · {state.message}" if state.message else "")
                    + f" · {state.elapsed_s:.1f} s"
                    + eta_text(state)
                )
            cols[0].progress(state.progress, text=text)
            if not owns_job(key):  # another visitor's job, seen through their shared link
                cols[1].caption("shared link: watching")
            elif cols[1].button(stop_label, key=f"{key}__stop", type="secondary"):
                job.stop(wait=5.0)
                st.rerun()
        elif state.status == "stopped":
            st.warning(
                f"Stopped after {state.elapsed_s:.1f} s at {100 * state.progress:.0f} %: showing what was computed."
            )
        elif state.status == "error":
            st.error(f"The computation failed: {state.error}")
        else:
            st.caption(f"Finished in {state.elapsed_s:.1f} s.")
        if state.result is not None:
            try:
                (live if live is not None and state.running else render)(state.result, state)
            except Exception as exc:  # never a traceback on screen (hosted: not even the message)
                from ui.common import show_error

                show_error(exc, "Could not draw the result")
        if polling and state.finished:
            st.rerun()  # one full rerun turns polling off and redraws the rest of the page

    _panel()
    job = get_job(key)
    return None if job is None else job.state()
