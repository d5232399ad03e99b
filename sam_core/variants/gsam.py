"""GSAM, surrogate-gap guided SAM (Zhuang et al., ICLR 2022).

SAM's ascent e = ρ g/(‖g‖ + ε); the descent removes α times the part of the clean gradient g that is
orthogonal to g_adv = ∇L(w + e), which (to first order) decreases the surrogate gap L(w + e) − L(w)
without changing the perturbed loss:

    g_⊥ = g − (⟨g, g_adv⟩ / ‖g_adv‖²) g_adv,   d = g_adv − α g_⊥.

Written as pytorch-optimizer's `GSAM.gradient_decompose` does (cosine with ε in its denominator); ρ is
constant here (pytorch-optimizer's `rho_scheduler` supplies ρ_t; the paper ties ρ_t to the learning rate).
"""

from sam_core.registry import HParam, VariantSpec, rho_param
from sam_core.rules import EPS, _b, dot, global_norm
from sam_core.variants import sam
from sam_core.variants.stable import STABLE


def combine(c):
    g, ga, bd = c.g, c.g_advs[0], c.bd
    new_norm = c.stats["perturbed_grad_norm"] if "perturbed_grad_norm" in c.stats else global_norm(ga, bd)
    old_norm = c.g_norm
    cosine = dot(g, ga, bd) / (new_norm * old_norm + EPS)
    s = cosine * old_norm / (new_norm + EPS)
    alpha = c.hp["alpha"]
    d = [x - _b(alpha, x, bd) * (o - _b(s, x, bd) * x) for x, o in zip(ga, g)]
    return c.reduce(d) if c.reduce is not None else d  # the local g enters d: average it over workers


SPEC = VariantSpec(
    name="gsam",
    label="GSAM (surrogate gap)",
    passes=2,
    summary="SAM, then remove α × the clean gradient's component orthogonal to the perturbed one (surrogate gap).",
    formula=(
        r"e = \rho\frac{g}{\|g\|+\epsilon},\ g_{adv} = \nabla L(w+e),\ "
        r"g_\perp = g - \frac{\langle g, g_{adv}\rangle}{\|g_{adv}\|^2} g_{adv},\ d = g_{adv} - \alpha\, g_\perp"
    ),
    reference="Zhuang, Gong, Yuan, et al. Surrogate Gap Guided Sharpness-Aware Minimization. ICLR 2022",
    url="https://arxiv.org/abs/2203.08065",
    hparams={
        "rho": rho_param(0.05),
        "alpha": HParam(
            "alpha",
            0.4,
            low=0.0,
            high=1.0,
            symbol=r"\alpha",
            help="weight of the surrogate-gap (orthogonal) component removed from the descent",
        ),
        "stable": STABLE,
    },
    note="Peer: pytorch_optimizer.GSAM (constant ρ here; its rho_scheduler's ρ_t is not modelled).",
    ascent=sam.ascent,
    combine=combine,
)
