"""The training lab's back end: datasets, networks, the run store, the training loop and its workers.

    from sam_core.training import RunConfig, RunStore, launch
    store = RunStore("runs")
    run_id = launch(store, RunConfig(dataset="cifar10", model="lenet5", optimizer="ssam", hparams={"rho": 0.05}))

Everything here trains through `sam_core.make_optimizer`; nothing re-implements an update rule.
Heavy modules (the loop, torch models) are imported on first use by the worker.
"""

from sam_core.training.config import ConfigError, RunConfig
from sam_core.training.store import RunInfo, RunStore
from sam_core.training.worker import launch, launch_variants, resume

__all__ = ["ConfigError", "RunConfig", "RunInfo", "RunStore", "launch", "launch_variants", "resume"]
