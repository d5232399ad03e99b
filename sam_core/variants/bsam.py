"""Bilateral SAM (Deng et al., 2024): look up (ρ_max) and down (ρ_min) the gradient, d = g_max + g − ς g_min.

Not pytorch-optimizer's `BSAM`, which is *Bayesian* SAM (Möllenhoff & Khan, ICLR 2023)."""

from sam_core.registry import HParam, VariantSpec, rho_param
from sam_core.rules import EPS, _b, bsam_rho_min, global_norm, norm_ratio, scale


def ascent(s):
    unit = scale(s.g, 1.0 / (s.g_norm + EPS), s.bd)
    rho_min = bsam_rho_min(s.hp, s.lr, s.lr_max)
    return [scale(unit, s.hp["rho"], s.bd), scale(unit, -rho_min, s.bd)]


def combine(c):
    bd, g_adv, g_min = c.bd, c.g_advs[0], c.g_advs[1]
    if "perturbed_grad_norm" not in c.stats:
        c.stats.update(perturbed_grad_norm=global_norm(g_adv, bd), gamma=norm_ratio(c.g, g_adv, bd))
    sigma = c.stats["perturbed_grad_norm"] / (global_norm(g_min, bd) + EPS)
    g_desc = c.reduce(list(c.g)) if c.reduce is not None else c.g
    c.stats["sigma"] = sigma
    return [gm + x - _b(sigma, gn, bd) * gn for gm, x, gn in zip(g_adv, g_desc, g_min)]


SPEC = VariantSpec(
    name="bsam",
    label="Bilateral SAM (BSAM)",
    passes=3,
    summary="Look both up (ρ_max) and down (ρ_min) the gradient and combine the two.",
    formula=(
        r"e_\pm = \pm\rho_{\pm}\frac{g}{\|g\|+\epsilon},\quad \varsigma = \frac{\|g_{max}\|}{\|g_{min}\| + \epsilon},"
        r"\quad d = g_{max} + g - \varsigma\, g_{min}"
    ),
    reference="Deng, Pang, Zhang, Huang. Bilateral Sharpness-Aware Minimization for Flatter Minima. arXiv 2024",
    url="https://arxiv.org/abs/2409.13173",
    hparams={
        "rho": rho_param(0.05, help="ρ_max, the radius of the ascent"),
        "rho_min": HParam(
            "rho_min",
            0.05,
            low=0.0,
            high=10.0,
            log=True,
            symbol=r"\rho_{min}",
            help="ρ_min of the descent look (the value at the largest learning rate when tied to the LR).",
        ),
        "rho_min_lo": HParam(
            "rho_min_lo",
            0.0,
            low=0.0,
            high=10.0,
            symbol=r"\rho_{min,lo}",
            help="ρ_min at learning rate 0 when tied to the LR (docs/ALGORITHMS.md, 'Bilateral SAM').",
        ),
        "rho_min_schedule": HParam(
            "rho_min_schedule",
            "lr",
            kind="choice",
            choices=("lr", "constant"),
            help="'lr': ρ_min proportional to the current learning rate (ρ_min at the initial LR, 0 at LR 0); "
            "'constant'.",
        ),
    },
    note="Not pytorch-optimizer's BSAM, which is Bayesian SAM (Möllenhoff & Khan, ICLR 2023).",
    ascent=ascent,
    combine=combine,
)
