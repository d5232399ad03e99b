"""Running a sweep: record it in the run store, then drive its trials with the local queue or Ray Tune.

    sweep_id = create(store, spec)            # validate, expand, record (nothing runs yet)
    execute(store, sweep_id)                  # the driver: blocks until every trial has ended
    spawn_driver(store, sweep_id)             # … or in a background process (the page does this)

The local driver is the only process a sweep adds: it keeps at most `parallel` of its trials in the
run queue, each as an ordinary run (`worker.create` + `worker.spawn_worker`, group = the sweep id)
that takes a slot like any run launched from the page (SAMLAB_MAX_RUNS). Trials not started yet are
rows of `sweep_trials`, not queued runs, so a long sweep does not hold the queue's place in front of
other users' runs. A failed trial is one failed run; the others go on. A stop request (page or
`python -m sam_core.cli.sweep --stop ID`) cancels the trials not started and asks the running ones to
stop (they checkpoint and can be resumed like any run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from sam_core.training.config import RunConfig
from sam_core.training.store import ACTIVE, RunStore, check_sweep_id
from sam_core.training.sweeps.spec import SweepSpec

POLL_SECONDS = 0.5


def create(store: RunStore, spec: SweepSpec) -> str:
    """Validate and expand `spec`, record the sweep and its pending trials. Returns the sweep id."""
    trials = spec.trials()
    return store.create_sweep(spec.name, spec.to_dict(), spec.executor, [(t.params, t.config) for t in trials])


def trial_name(sweep_name: str, index: int, params: dict) -> str:
    from sam_core.training.sweeps.spec import Trial

    label = Trial(index, params, {}).label()
    return f"{sweep_name or 'sweep'} #{index} {label}".strip()


def start_trial_run(store, sweep_id: str, trial, sweep_name: str) -> str | None:
    """Create the run of a pending trial (queued) and attach it; None if the trial was cancelled meanwhile."""
    from sam_core.training import worker

    cfg = RunConfig.from_dict(dict(trial.config, group=sweep_id))
    run_id = worker.create(store, cfg, name=trial_name(sweep_name, trial.trial, trial.params), group=sweep_id)
    if not store.start_trial(sweep_id, trial.trial, run_id):
        store.delete(run_id, force=True)
        return None
    return run_id


def summary(store: RunStore, sweep_id: str) -> dict[str, int]:
    """How many trials are in each state (pending, queued, running, finished, failed, stopped, cancelled)."""
    out: dict[str, int] = {}
    for t in store.sweep_trials(sweep_id):
        out[t.status] = out.get(t.status, 0) + 1
    return out


def _summary_text(counts: dict[str, int]) -> str:
    n = sum(counts.values())
    return f"{n} trial(s): " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))


def run_local(
    store: RunStore, sweep_id: str, parallel: int | None = None, echo: Callable[[str], None] | None = None
) -> str:
    """Drive a sweep with the local run queue until every trial has ended. Returns the sweep status."""
    from sam_core.settings import get_settings
    from sam_core.training import worker

    echo = echo or (lambda s: None)
    info = store.get_sweep(sweep_id)
    parallel = parallel or info.spec.get("parallel") or get_settings().max_concurrent_runs
    store.register_sweep_driver(sweep_id)
    store.update_sweep(sweep_id, status="running", started=time.time())
    echo(f"sweep {sweep_id}: {info.n_trials} trial(s), at most {parallel} at once (local run queue)")
    seen: dict[str, str] = {}
    while True:
        store.reconcile()  # a worker that died frees its slot (its run is marked failed)
        info = store.get_sweep(sweep_id)
        if info.stop_requested:
            store.cancel_pending_trials(sweep_id)
        trials = store.sweep_trials(sweep_id)
        for t in trials:
            if t.run_id and t.run_status and seen.get(t.run_id) != t.run_status:
                seen[t.run_id] = t.run_status
                if t.run_status not in ACTIVE:
                    echo(f"trial {t.trial} ({t.run_id}): {t.run_status}")
        active = [t for t in trials if t.state == "started" and t.run_status in ACTIVE]
        if info.stop_requested:
            for t in active:
                store.request_stop(t.run_id)
        pending = [t for t in trials if t.state == "pending"]
        for t in pending[: max(0, parallel - len(active))]:
            run_id = start_trial_run(store, sweep_id, t, info.name)
            if run_id is None:
                continue
            store.register_worker(run_id)  # the driver owns it until its worker registers
            worker.spawn_worker(store, run_id)
            echo(f"trial {t.trial} ({run_id}) started: {t.params}")
            active.append(t)
        if not pending and not active:
            break
        store.update_sweep(sweep_id, heartbeat=time.time())
        time.sleep(POLL_SECONDS)
    return _close(store, sweep_id, echo)


def _close(store: RunStore, sweep_id: str, echo: Callable[[str], None]) -> str:
    info = store.get_sweep(sweep_id)
    counts = summary(store, sweep_id)
    status = "stopped" if info.stop_requested else "finished"
    msg = _summary_text(counts)
    store.update_sweep(sweep_id, status=status, finished=time.time(), message=msg, stop_requested=0)
    echo(f"sweep {sweep_id} {status}: {msg}")
    return status


def execute(
    store: RunStore, sweep_id: str, echo: Callable[[str], None] | None = None, init_kwargs: dict | None = None
) -> str:
    """Run a recorded sweep with its executor (blocks). A crash of the driver marks the sweep failed."""
    echo = echo or (lambda s: None)
    info = store.get_sweep(check_sweep_id(sweep_id))
    if info.status not in ("queued",):
        echo(f"sweep {sweep_id} is {info.status}; nothing to do")
        return info.status
    try:
        if info.executor == "ray":
            from sam_core.training.sweeps.ray_executor import run_ray

            spec = SweepSpec.from_dict(info.spec)
            run_ray(store, sweep_id, spec.ray_options(), echo=echo, init_kwargs=init_kwargs)
            return _close(store, sweep_id, echo)
        return run_local(store, sweep_id, echo=echo)
    except BaseException as exc:  # noqa: B036 — whatever ended the driver, the sweep says so
        store.cancel_pending_trials(sweep_id)
        store.update_sweep(
            sweep_id,
            status="failed",
            finished=time.time(),
            message=f"the sweep driver failed: {type(exc).__name__}: {exc}",
        )
        if isinstance(exc, KeyboardInterrupt):
            raise
        echo(f"sweep {sweep_id} failed: {type(exc).__name__}: {exc}")
        return "failed"


def spawn_driver(store: RunStore, sweep_id: str) -> subprocess.Popen:
    """Start the sweep's driver (`python -m sam_core.cli.sweep --sweep-id ID`) detached; output to its log."""
    from sam_core.training.worker import REPO_ROOT

    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    log_path = sweep_log_path(store, sweep_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sam_core.cli.sweep", "--sweep-id", sweep_id, "--runs-dir", str(store.dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(REPO_ROOT),
            env=env,
            start_new_session=True,
        )
    store.register_sweep_driver(sweep_id, proc.pid)
    threading.Thread(target=proc.wait, daemon=True, name=f"reap-{sweep_id}").start()
    return proc


def sweep_log_path(store: RunStore, sweep_id: str):
    return store.dir / "sweeps" / check_sweep_id(sweep_id) / "driver.log"
