"""Worker processes and the queue: launch a run in its own process, at most N running at once.

A launch writes the run (status `queued`) and starts `python -m sam_core.cli.train --run-id ID` in a new
session (it outlives the page that started it). That worker waits its turn in the store — first come,
first served, at most `max_concurrent` (SAMLAB_MAX_RUNS) runs `running` — then trains. There is no
scheduler daemon to keep alive: every queued run's own process takes the next free slot, and a dead
worker frees its slot because the store marks its run failed (pid check).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from sam_core.training.config import RunConfig, label
from sam_core.training.store import RunStore, RunVanished

REPO_ROOT = Path(__file__).resolve().parents[2]  # the folder that contains sam_core/
QUEUE_POLL_SECONDS = 1.0


def _max_concurrent() -> int:
    from sam_core.settings import get_settings

    return get_settings().max_concurrent_runs


def create(store: RunStore, cfg: RunConfig, name: str = "", group: str = "") -> str:
    """Validate `cfg` and add it to the store as a queued run (nothing runs yet)."""
    cfg.validate()
    total = cfg.steps_per_epoch() * cfg.epochs
    return store.create_run(
        cfg.to_dict(),
        name=name or cfg.name or label(cfg),
        group=group or cfg.group,
        total_steps=total,
        steps_per_epoch=cfg.steps_per_epoch(),
    )


def spawn_worker(store: RunStore, run_id: str) -> subprocess.Popen:
    """Start the worker process of a queued run, detached from the caller's session; output to worker.log."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    log_path = store.log_path(run_id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sam_core.cli.train", "--run-id", run_id, "--runs-dir", str(store.dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=str(REPO_ROOT),
            env=env,
            start_new_session=True,
        )
    store.register_worker(run_id, proc.pid)
    # reap the child when it ends, so a killed worker does not linger as a zombie of the page process
    threading.Thread(target=proc.wait, daemon=True, name=f"reap-{run_id}").start()
    return proc


def launch(store: RunStore, cfg: RunConfig, name: str = "", group: str = "") -> str:
    """Queue `cfg` and start its worker process. Returns the run id."""
    run_id = create(store, cfg, name, group)
    spawn_worker(store, run_id)
    return run_id


def launch_variants(store: RunStore, cfg: RunConfig, variants: dict[str, dict]) -> list[str]:
    """'Compare variants': the same config (seed, data order, init) for each variant with its own
    hyperparameters, as one group. All configs are validated before anything is launched."""
    from sam_core.training.store import new_run_id

    group = "cmp-" + new_run_id()
    cfgs = []
    for v, hp in variants.items():
        d = cfg.to_dict()
        d.update(optimizer=v, hparams=dict(hp), group=group, name="")
        cfgs.append(RunConfig.from_dict(d).validate())
    return [launch(store, c, group=group) for c in cfgs]


def resume(store: RunStore, run_id: str) -> subprocess.Popen:
    """Queue a stopped or failed run again and start its worker (it continues from the checkpoint)."""
    store.prepare_resume(run_id)
    return spawn_worker(store, run_id)


def execute(
    store: RunStore, run_id: str, max_concurrent: int | None = None, echo: Callable[[str], None] | None = None
) -> str:
    """The worker's body: wait for a slot, train, record the outcome. Returns the final status."""
    echo = echo or (lambda s: None)
    max_concurrent = _max_concurrent() if max_concurrent is None else max_concurrent
    try:
        store.register_worker(run_id)
        waited = False
        while True:
            status = store.claim_slot(run_id, max_concurrent)
            if status == "running":
                break
            if status != "queued":
                echo(f"run {run_id} is {status}; nothing to do")
                return status
            if not waited:
                echo(f"run {run_id} waits for a free slot (at most {max_concurrent} running)")
                waited = True
            time.sleep(QUEUE_POLL_SECONDS)
    except KeyError:  # deleted while it waited (claim_slot: no such run): nothing to train
        if store.exists(run_id):
            raise
        echo(f"run {run_id} was deleted while queued; the worker exits")
        return "deleted"
    return execute_claimed(store, run_id, None, echo)


def execute_claimed(
    store: RunStore | None,
    run_id: str,
    cfg: RunConfig | None = None,
    echo: Callable[[str], None] | None = None,
    dist=None,
    **trainer_kw,
) -> str:
    """Train a run already marked running; a crash marks it failed with its traceback. Returns the status.

    `dist`: this rank of a torchrun job (ranks other than 0 pass store=None and write nothing).
    `trainer_kw`: passed to `loop.Trainer` (e.g. on_epoch).
    """
    echo = echo or (lambda s: None)
    main = dist is None or dist.is_main
    try:
        from sam_core.training import loop

        if cfg is None:
            cfg = RunConfig.from_dict(store.get(run_id).config)
        return loop.Trainer(cfg, store, run_id, echo, dist=dist, **trainer_kw).run()
    except RunVanished:  # deleted while training: write nothing more (no status, no metrics, no checkpoint)
        echo(f"run {run_id} was deleted; the worker stops without writing anything more")
        return "deleted"
    except BaseException as exc:  # noqa: B036 — a crash of any kind marks the run failed, with its traceback
        tb = traceback.format_exc()
        if main:
            try:
                store.finish(run_id, "failed", message=f"{type(exc).__name__}: {exc}", traceback=tb)
            except RunVanished:
                pass
        from sam_core.training.config import ConfigError
        from sam_core.training.data import DatasetFormatError, DatasetMissingError

        # the user's own mistake (missing data, a bad file, an invalid setting): one line, not a traceback
        # (the traceback stays in the store); anything else shows the traceback
        user_error = isinstance(exc, (ConfigError, DatasetMissingError, DatasetFormatError))
        echo(f"error: {exc}" if user_error else tb)
        if not main:
            print(tb, file=sys.stderr, flush=True)
        if isinstance(exc, KeyboardInterrupt):
            raise
        return "failed"
