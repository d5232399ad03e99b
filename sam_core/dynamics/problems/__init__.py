"""Test problems for the Dynamics lab (pure maths, batched over runs; no optimizer code here).

- :mod:`.autoencoder`: the linear autoencoder saddle ``½‖(W2 W1 − I) x‖²`` (Stable SAM, Fig. 1).
- :mod:`.finite_sum`: ``½ wᵀAw``, ridge and logistic regression with unequal per-example smoothness.
- :mod:`.sampling`: the Unified SAM paper's arbitrary sampling and theoretical step sizes / radius.
- :mod:`.mlp`: a small MLP on a fixed small data set for the edge of stability.

The experiments that run the SAM rules on them live in :mod:`sam_core.dynamics`.
"""

from sam_core.dynamics.problems.autoencoder import (
    AutoencoderData,
    ae_loss,
    ae_loss_grad,
    batch_second_moment,
    init_autoencoder,
    make_autoencoder_data,
)
from sam_core.dynamics.problems.finite_sum import PROBLEM_KINDS, Logistic, Quadratic, Ridge, make_problem
from sam_core.dynamics.problems.mlp import (
    EOS_DATASETS,
    init_mlp,
    make_eos_data,
    mlp_forward,
    mlp_loss,
    mlp_loss_grad,
)
from sam_core.dynamics.problems.sampling import SAMPLING_KINDS, Sampling, theory_stepsizes

__all__ = [
    "EOS_DATASETS",
    "PROBLEM_KINDS",
    "SAMPLING_KINDS",
    "AutoencoderData",
    "Logistic",
    "Quadratic",
    "Ridge",
    "Sampling",
    "ae_loss",
    "ae_loss_grad",
    "batch_second_moment",
    "init_autoencoder",
    "init_mlp",
    "make_autoencoder_data",
    "make_eos_data",
    "make_problem",
    "mlp_forward",
    "mlp_loss",
    "mlp_loss_grad",
    "theory_stepsizes",
]
