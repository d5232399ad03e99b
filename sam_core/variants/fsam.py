"""Friendly SAM (Li et al., CVPR 2024): ascend along the gradient minus its running mean (the batch's own
"noise" part), which is what generalises; the full-gradient part is removed.

    m_0 = g_0,  g̃_t = g_t − σ m_{t−1},  m_t = λ m_{t−1} + (1 − λ) g_t,  e = ρ g̃/(‖g̃‖ + ε),  d = ∇L(w + e)

(the first step ascends along g itself, as pytorch-optimizer's `FriendlySAM`). Stateful (m), so the
compiled sweep step cannot carry it; the eager loop runs it.
"""

import torch

from sam_core.registry import HParam, VariantSpec, rho_param
from sam_core.rules import EPS, _b, global_norm, scale
from sam_core.variants.stable import STABLE


def ascent(s):
    g, bd, hp = s.g, s.bd, s.hp
    m = s.state.get("m")
    if m is None:
        s.state["m"] = [x.clone() for x in g]
        gt, gt_norm = g, s.g_norm
    else:
        gt = [x - _b(hp["sigma"], x, bd) * mi for x, mi in zip(g, m)]
        s.state["m"] = [torch.lerp(mi, x, _b(1.0 - hp["lmbda"], x, bd)) for mi, x in zip(m, g)]
        gt_norm = global_norm(gt, bd)
    return [scale(gt, hp["rho"] / (gt_norm + EPS), bd)]


SPEC = VariantSpec(
    name="fsam",
    label="Friendly SAM (FSAM)",
    passes=2,
    summary="Ascend along the gradient minus its running mean (the stochastic part), then step as SAM.",
    formula=(
        r"\tilde g = g - \sigma m_{t-1},\ m_t = \lambda m_{t-1} + (1-\lambda) g,\ "
        r"e = \rho\frac{\tilde g}{\|\tilde g\|+\epsilon},\ d = \nabla L(w+e)"
    ),
    reference="Li, Zhou, Zhao, et al. Friendly Sharpness-Aware Minimization. CVPR 2024",
    url="https://arxiv.org/abs/2403.12350",
    hparams={
        "rho": rho_param(0.05),
        "sigma": HParam(
            "sigma",
            1.0,
            low=0.0,
            high=10.0,
            symbol=r"\sigma",
            help="how much of the running-mean gradient is removed from the ascent",
        ),
        "lmbda": HParam(
            "lmbda", 0.9, low=0.0, high=0.999, symbol=r"\lambda", help="EMA factor of the running-mean gradient m"
        ),
        "stable": STABLE,
    },
    note="Peer: pytorch_optimizer.FriendlySAM. Stateful: not in the compiled sweep step (runs eagerly).",
    ascent=ascent,
    stateful=True,
)
