"""The Ray executor of sweeps: each trial is a Ray Tune trial writing to the same run store.

    python -m sam_core.cli.sweep --config sweep.json --executor ray                      # a local Ray instance
    python -m sam_core.cli.sweep --config sweep.json --executor ray --address auto       # a running cluster
        [--cpus-per-trial 2] [--gpus-per-trial 0.5] [--asha --asha-metric test_acc --asha-grace 1]

Ray is optional (`pip install -r requirements-ray.txt`) and imported only here.

* The trials are the sweep's own (grid or random, already expanded and validated); Tune runs them
  as `grid_search` over trial indices, with `cpus_per_trial`/`gpus_per_trial` each (fractional GPUs
  share a device) and, optionally, ASHA early stopping on a metric reported after every epoch
  (`asha_metric`, default test_acc; one Tune iteration = one epoch).
* The run store stays on the driver's machine: a Ray actor pinned to the driver's node owns it, and
  every trial — on any node — writes its run, metrics and artifacts through that actor, so the
  dashboard shows the trials live and SQLite is only ever opened on one machine. Checkpoints are
  written under the runs folder's path on the node that trains (the same files when the folder is
  shared, else kept on that node).
* A trial that raises is marked failed in the store (with its traceback) and reported to Tune as an
  error; the other trials go on. A trial stopped by ASHA is marked 'stopped' with the epoch it reached.
  Every node needs the same Python environment (this repository and its requirements).
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from sam_core.training.store import ACTIVE, RunStore, process_start_time

NOT_INSTALLED = (
    "the Ray executor needs Ray Tune, an optional extra: pip install -r requirements-ray.txt "
    "(or use the default local executor)"
)


def import_ray():
    try:
        import ray
        from ray import tune
    except ImportError as exc:
        raise RuntimeError(f"{NOT_INSTALLED} ({exc})") from None
    return ray, tune


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


class RemoteStore:
    """The run store seen from a Ray trial: every call goes to the store actor on the driver's node."""

    def __init__(self, actor):
        self._actor = actor

    def __getattr__(self, name: str):
        import ray

        method = getattr(self._actor, name)

        def call(*a, **k):
            return ray.get(method.remote(*a, **k))

        return call


def _trial(
    config: dict,
    store_actor=None,
    sweep_id: str = "",
    sweep_name: str = "",
    asha_metric: str = "",
    asha_mode: str = "max",
) -> None:
    """One Tune trial (runs in a Ray worker process): create the trial's run, train it, report epochs."""
    from ray import tune

    from sam_core.training import worker
    from sam_core.training.config import RunConfig
    from sam_core.training.sweeps.runner import start_trial_run

    store = RemoteStore(store_actor)
    index = int(config["trial"])
    if store.get_sweep(sweep_id).stop_requested:
        store.cancel_pending_trials(sweep_id)
        return
    trial = store.sweep_trials(sweep_id)[index]
    if trial.state != "pending":
        return
    run_id = start_trial_run(store, sweep_id, trial, sweep_name)
    if run_id is None:
        return
    now, pid = time.time(), os.getpid()
    store.update(run_id, status="running", started=now, heartbeat=now, message="")
    store.register_worker(run_id, pid, socket.gethostname(), process_start_time(pid))
    worst = -math.inf if asha_mode == "max" else math.inf
    stopped_at: list[int] = []

    def on_epoch(epoch: int, step: int, ep: dict) -> bool:
        metrics = {k: float(v) for k, v in ep.items() if isinstance(v, (int, float)) and math.isfinite(v)}
        metrics.setdefault(asha_metric, worst)  # a diverged epoch is the worst result, not a missing one
        try:
            tune.report(dict(metrics, epoch=epoch + 1, step=step, run_id=run_id))
        except SystemExit:  # Tune ends a trial it stops (ASHA) this way: checkpoint and stop here instead
            stopped_at.append(epoch + 1)
            return True
        return False

    cfg = RunConfig.from_dict(dict(trial.config, group=sweep_id))
    status = worker.execute_claimed(store, run_id, cfg, echo=None, on_epoch=on_epoch)
    if status == "stopped" and stopped_at:
        store.update(run_id, message=f"stopped early by ASHA after epoch {stopped_at[0]}; resume continues here")
    if status == "failed":
        info = store.get(run_id)
        raise RuntimeError(f"trial {index} (run {run_id}) failed: {info.message}")


def run_ray(
    store: RunStore,
    sweep_id: str,
    options: dict[str, Any],
    echo: Callable[[str], None] | None = None,
    init_kwargs: dict | None = None,
) -> None:
    """Run the sweep's pending trials as Ray Tune trials (blocks until Tune is done)."""
    echo = echo or (lambda s: None)
    ray, tune = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from sam_core.training.worker import REPO_ROOT

    info = store.get_sweep(sweep_id)
    store.register_sweep_driver(sweep_id)
    store.update_sweep(sweep_id, status="running", started=time.time())
    trials = [t for t in store.sweep_trials(sweep_id) if t.state == "pending"]
    started_here = not ray.is_initialized()
    if started_here:
        kw = dict(include_dashboard=False, log_to_driver=False)
        kw.update(init_kwargs or {})
        env = {
            "PYTHONPATH": str(REPO_ROOT)
            + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else "")
        }
        kw.setdefault("runtime_env", {"env_vars": env})
        ray.init(address=options.get("address"), **kw)
    try:
        node = ray.get_runtime_context().get_node_id()
        actor = (
            ray.remote(RunStore)
            .options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node, soft=False))
            .remote(str(store.dir))
        )
        fn = tune.with_parameters(
            _trial,
            store_actor=actor,
            sweep_id=sweep_id,
            sweep_name=info.name,
            asha_metric=options["asha_metric"],
            asha_mode=options["asha_mode"],
        )
        fn = tune.with_resources(fn, {"cpu": float(options["cpus_per_trial"]), "gpu": float(options["gpus_per_trial"])})
        scheduler = None
        if options["asha"]:
            from ray.tune.schedulers import ASHAScheduler

            max_t = max(int(t.config.get("epochs", 1)) for t in trials) if trials else 1
            scheduler = ASHAScheduler(
                time_attr="training_iteration",
                metric=options["asha_metric"],
                mode=options["asha_mode"],
                max_t=max_t,
                grace_period=int(options["asha_grace"]),
                reduction_factor=float(options["asha_reduction"]),
                stop_last_trials=False,
            )  # a trial that reaches max_t ends by itself
        echo(
            f"sweep {sweep_id}: {len(trials)} trial(s) on Ray ({options['cpus_per_trial']} CPU, "
            f"{options['gpus_per_trial']} GPU each{', ASHA on ' + options['asha_metric'] if scheduler else ''})"
        )
        storage = store.dir / "sweeps" / sweep_id
        storage.mkdir(parents=True, exist_ok=True)
        tuner = tune.Tuner(
            fn,
            param_space={"trial": tune.grid_search([t.trial for t in trials])},
            tune_config=tune.TuneConfig(scheduler=scheduler, max_concurrent_trials=info.spec.get("parallel")),
            run_config=tune.RunConfig(
                name="ray", storage_path=str(storage), verbose=0, callbacks=[_store_callback(store, sweep_id, echo)]
            ),
        )
        tuner.fit()
        store.reconcile()
        for t in store.sweep_trials(sweep_id):  # a trial Tune never started (e.g. after a stop)
            if t.state == "started" and t.run_status in ACTIVE:
                store.finish(t.run_id, "failed", message="the Ray trial ended without reporting")
        store.cancel_pending_trials(sweep_id)
    finally:
        if started_here:
            ray.shutdown()


def _store_callback(store: RunStore, sweep_id: str, echo):
    """The driver-side Tune callback (its class is built here: Ray is imported only when used)."""
    from ray.tune import Callback

    class StoreCallback(Callback):
        """Settle the run of a trial that Tune ended (ASHA stop, crashed process)."""

        def _run_of(self, trial) -> str | None:
            try:
                return store.sweep_trials(sweep_id)[int(trial.config["trial"])].run_id
            except (KeyError, IndexError, ValueError, TypeError):
                return None

        def _settle(self, trial, status: str, message: str) -> None:
            run_id = self._run_of(trial)
            if run_id is None:
                return
            if store.get(run_id).status in ACTIVE:
                store.finish(run_id, status, message=message)
            echo(f"trial {trial.config.get('trial')} ({run_id}): {store.get(run_id).status}")

        def on_trial_complete(self, iteration, trials, trial, **info):
            epoch = (trial.last_result or {}).get("epoch")
            self._settle(trial, "stopped", f"stopped early by ASHA after epoch {epoch}")

        def on_trial_error(self, iteration, trials, trial, **info):
            self._settle(trial, "failed", "the Ray trial ended with an error (see the sweep driver's log)")

    return StoreCallback()
