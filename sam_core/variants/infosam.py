"""infoSAM (reconstruction): preconditioned SAM whose metric follows the estimated gradient noise.

Stateful: the gradient moments and a Python step count live in the rule's state, which a compiled
sweep step cannot carry (`stateful=True`)."""

from typing import Any

import torch

from sam_core.registry import HParam, VariantSpec, rho_param
from sam_core.rules import Tensors, _b, _sum_per_traj, numel_per_traj
from sam_core.variants.presam import precond_ascent
from sam_core.variants.stable import STABLE


def infosam_D(g: Tensors, state: dict, hp: dict, bd: int) -> list[Any]:
    """infoSAM's noise-aware diagonal D (a reconstruction: docs/ALGORITHMS.md, "infoSAM"). Updates `state`."""
    beta, delta, d0 = hp["beta"], hp["delta"], hp["d0"]
    m_prev = state.get("m") or [torch.zeros_like(x) for x in g]
    s_prev = state.get("s") or [torch.zeros_like(x) for x in g]
    count = state.get("count", 0) + 1
    m = [beta * mp + (1 - beta) * x for mp, x in zip(m_prev, g)]
    s = [beta * sp + (1 - beta) * (x - mp) ** 2 for sp, x, mp in zip(s_prev, g, m_prev)]
    state.update(m=m, s=s, count=count)
    warm = count >= 1.0 / (1.0 - beta)
    if not warm:  # plain SAM while the estimate warms up (count is a Python int, not a tensor value)
        return [1.0] * len(g)
    raw = [x + delta for x in s]
    mean = _sum_per_traj(raw, bd) / numel_per_traj(raw, bd)
    return [(r / _b(mean, r, bd)).clamp(1.0 / d0, d0) for r in raw]


def ascent(s):
    return [precond_ascent(s.g, infosam_D(s.g, s.state, s.hp, s.bd), s.hp["rho"], s.bd)]


SPEC = VariantSpec(
    name="infosam",
    label="infoSAM (reconstruction)",
    passes=2,
    summary="Preconditioned SAM whose metric follows the estimated gradient noise (a reconstruction).",
    formula=(
        r"m_t = \beta m + (1-\beta) g,\ s_t = \beta s + (1-\beta)(g - m_{t-1})^2,\ "
        r"D = \mathrm{clamp}\big(\tfrac{s_t+\delta}{\mathrm{mean}(s_t+\delta)}, D_0^{-1}, D_0\big),\ "
        r"e = \rho\,\frac{D^{-1} g}{\sqrt{g^\top D^{-1} g} + \epsilon}"
    ),
    reference=(
        "Zhang, Li, Giannakis (ICASSP 2025): infoSAM. Reconstruction by SAM Lab, not the paper's verified formula."
    ),
    hparams={
        "rho": rho_param(0.05),
        "beta": HParam("beta", 0.9, low=0.0, high=0.999, symbol=r"\beta", help="EMA factor of the noise estimate."),
        "delta": HParam(
            "delta", 1e-8, low=0.0, high=1.0, log=True, symbol=r"\delta", help="Floor added to the variance."
        ),
        "d0": HParam("d0", 10.0, low=1.0, high=1e4, log=True, symbol=r"D_0", help="Clamp of D to [1/D₀, D₀]."),
        "stable": STABLE,
    },
    note="Reconstruction: the paper's exact estimator could not be read; this is constraint-preconditioning with a "
    "noise-aware diagonal D, plain SAM during the first 1/(1-β) steps.",
    ascent=ascent,
    stateful=True,
)
