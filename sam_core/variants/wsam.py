"""WSAM, weighted SAM (Yue et al., KDD 2023): sharpness as a weighted regulariser,

    L_WSAM(w) = L(w) + γ/(1 − γ) · (L(w + e) − L(w)),   e = ρ g/(‖g‖ + ε),
    d = g + α (g_adv − g),   α = γ/(1 − γ).

This is pytorch-optimizer's `WSAM` with `decouple=False` (the direction handed to the base optimizer).
Its default `decouple=True` steps the base optimizer on g and adds −lr·α(g_adv − g) afterwards, outside
momentum and weight decay: the same step for plain SGD, not with momentum; not modelled here.
"""

from sam_core.registry import HParam, VariantSpec, rho_param
from sam_core.rules import _b
from sam_core.variants import sam
from sam_core.variants.stable import STABLE


def combine(c):
    g, ga, bd = c.g, c.g_advs[0], c.bd
    gamma = c.hp["gamma"]
    w = 1.0 - gamma / (1.0 - gamma)  # torch.lerp(g_adv, g, 1 − α), as pytorch-optimizer writes it
    d = [a + _b(w, a, bd) * (x - a) for a, x in zip(ga, g)]
    return c.reduce(d) if c.reduce is not None else d  # the local g enters d: average it over workers


SPEC = VariantSpec(
    name="wsam",
    label="WSAM (weighted)",
    passes=2,
    summary="Sharpness as a weighted regulariser: d = g + γ/(1−γ)·(∇L(w+e) − g).",
    formula=r"e = \rho\frac{g}{\|g\|+\epsilon},\quad d = g + \frac{\gamma}{1-\gamma}\big(\nabla L(w+e) - g\big)",
    reference=(
        "Yue, Jiang, Ye, et al. "
        "Sharpness-Aware Minimization Revisited: Weighted Sharpness as a Regularization Term. KDD 2023"
    ),
    url="https://arxiv.org/abs/2305.15817",
    hparams={
        "rho": rho_param(0.05),
        "gamma": HParam(
            "gamma",
            0.9,
            low=0.0,
            high=0.99,
            symbol=r"\gamma",
            help="sharpness weight γ ∈ [0, 1): α = γ/(1−γ) (γ = 0.5 is SAM, 0 is SGD)",
        ),
        "stable": STABLE,
    },
    note="Peer: pytorch_optimizer.WSAM with decouple=False (its default decouple=True is not modelled).",
    ascent=sam.ascent,
    combine=combine,
)
