"""LookSAM (Liu et al., CVPR 2022): SAM's ascent every k steps; in between, reuse the sharpness direction.

On a full step (t − 1 ≡ 0 mod k) it is SAM, and keeps g_v, the part of g_adv orthogonal to g (per
parameter tensor, as the paper and pytorch-optimizer do; 0 where g = 0 leaves g_v = g_adv, as there). On the
other steps the perturbation is 0 and

    d = g + α (‖g‖ / (‖g_v‖ + 10⁻⁸)) g_v      (per parameter tensor).

Like pytorch-optimizer's `LookSAM`, the shell still evaluates the second pass on the reuse steps (at
w + 0, i.e. the clean gradient again); what LookSAM saves is the ascent, not that pass here. Stateful
(g_v and the step phase), so the compiled sweep step cannot carry it.
"""

import torch

from sam_core.registry import HParam, VariantSpec, rho_param
from sam_core.rules import EPS, _b, scale
from sam_core.variants.stable import STABLE


def _full(step, k) -> bool:
    return (int(step) - 1) % max(int(round(float(k))), 1) == 0


def _tnorm(t: torch.Tensor, bd: int) -> torch.Tensor:
    """‖·‖₂ of one tensor per trajectory, shaped to broadcast against it."""
    if bd == 0:
        return t.norm(p=2)
    return torch.linalg.vector_norm(t, dim=tuple(range(bd, t.dim())), keepdim=True)


def _tsum(t: torch.Tensor, bd: int) -> torch.Tensor:
    return t.sum() if bd == 0 else t.sum(dim=tuple(range(bd, t.dim())), keepdim=True)


def ascent(s):
    full = _full(s.step, s.hp["k"])
    s.state["full"] = full
    if full:
        return [scale(s.g, s.hp["rho"] / (s.g_norm + EPS), s.bd)]
    return [[torch.zeros_like(x) for x in s.g]]


def combine(c):
    bd, ga = c.bd, c.g_advs[0]
    if c.state.get("full", True):
        gv = []
        for x, gs in zip(c.g, ga):
            # ‖g_s‖ cos(g, g_s) g/‖g‖ = (⟨g, g_s⟩/‖g‖²) g: written so, g_v is exactly 0 when g_s = g (ρ = 0)
            # instead of a rounding-level vector that the reuse steps would blow up to length α‖g‖
            den = _tsum(x * x, bd)
            pos = den > 0
            coef = torch.where(
                pos, _tsum(x * gs, bd) / torch.where(pos, den, torch.ones_like(den)), torch.zeros_like(den)
            )
            gv.append(gs - coef * x)
        c.state["gv"] = c.reduce(gv) if c.reduce is not None else gv  # from the local g: average over workers
        return list(ga)
    gv = c.state.get("gv")
    if gv is None:
        return list(ga)
    alpha = c.hp["alpha"]
    return [gs + _b(alpha, gs, bd) * (_tnorm(gs, bd) / (_tnorm(v, bd) + 1e-8) * v) for gs, v in zip(ga, gv)]


SPEC = VariantSpec(
    name="looksam",
    label="LookSAM",
    passes=2,
    summary="SAM's ascent only every k steps; in between, add back the stored sharpness direction g_v.",
    formula=(
        r"t \equiv 1 \ (\mathrm{mod}\ k):\ d = g_{adv},\quad "
        r"g_v = g_{adv} - \|g_{adv}\| \cos\theta\, \frac{g}{\|g\|},\quad "
        r"\text{else}:\ d = g + \alpha \frac{\|g\|}{\|g_v\|}\, g_v,\quad \theta = \angle(g, g_{adv})"
    ),
    reference="Liu, Mai, Chen, Hsieh, You. Towards Efficient and Scalable Sharpness-Aware Minimization. CVPR 2022",
    url="https://arxiv.org/abs/2203.02714",
    hparams={
        "rho": rho_param(0.1),
        "k": HParam("k", 10.0, low=1.0, high=1000.0, symbol="k", help="a full SAM step every k steps (an integer)"),
        "alpha": HParam("alpha", 0.7, low=0.0, high=1.0, symbol=r"\alpha", help="weight of the reused direction g_v"),
        "stable": STABLE,
    },
    note="Peer: pytorch_optimizer.LookSAM. Stateful: not in the compiled sweep step (runs eagerly).",
    ascent=ascent,
    combine=combine,
    stateful=True,
)
