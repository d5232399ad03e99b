"""Hyperparameter sweeps of training runs: grid or random search over variants, lr, ρ, λ, … of one config.

    from sam_core.training.sweeps import SweepSpec, create, execute, sweep_frame
    spec = SweepSpec(base={"dataset": "cifar10", "model": "lenet5", "epochs": 2},
                     params={"optimizer": ["sam", "ssam"], "rho": [0.02, 0.05]})
    sweep_id = create(store, spec)      # validated and recorded in the run store
    execute(store, sweep_id)            # local run queue (default) or Ray Tune (spec.executor = "ray")
    df = sweep_frame(store, sweep_id)   # a row per trial: swept values, final accuracy, top eigenvalue, γ_t stats

Ray is optional (requirements-ray.txt) and imported only by the Ray executor.
"""

from sam_core.training.sweeps.results import RESULT_METRICS, run_results, sweep_frame
from sam_core.training.sweeps.runner import create, execute, run_local, spawn_driver, summary
from sam_core.training.sweeps.spec import MAX_TRIALS, SweepError, SweepSpec, Trial, parse_values

__all__ = [
    "MAX_TRIALS",
    "RESULT_METRICS",
    "SweepError",
    "SweepSpec",
    "Trial",
    "create",
    "execute",
    "parse_values",
    "run_local",
    "run_results",
    "spawn_driver",
    "summary",
    "sweep_frame",
]
