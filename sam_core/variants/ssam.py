"""Stable SAM (Tan et al., 2024): USAM's ascent (or SAM's with `normalized`) with γ_t = ‖g‖/‖g_adv‖ on."""

from sam_core.registry import HParam, VariantSpec, rho_param
from sam_core.rules import EPS, global_norm, norm_ratio, scale
from sam_core.variants import sam, usam
from sam_core.variants.stable import STABLE_ON


def ascent(s):
    if s.hp.get("adaptive", False):  # the ASAM metric T = |w| on the (un)normalised ascent
        Tg = [wi.abs() * x for wi, x in zip(s.w, s.g)]
        T2g = [wi.abs() * x for wi, x in zip(s.w, Tg)]
        c = s.hp["rho"] / (global_norm(Tg, s.bd) + EPS) if s.hp["normalized"] else s.hp["rho"]
        return [scale(T2g, c, s.bd)]
    return sam.ascent(s) if s.hp["normalized"] else usam.ascent(s)


def stable_gamma(c):
    """γ_t: ‖g‖/‖g_adv‖, or with `adaptive` the weighted norms ‖|w| ⊙ g‖ / ‖|w + e| ⊙ g_adv‖ (the Stable SAM
    code's ASAM reading, docs/ALGORITHMS.md, "SSAM with ASAM")."""
    if not c.hp.get("adaptive", False):
        return c.stats["gamma"]
    w_adv = [wi + ei for wi, ei in zip(c.w, c.es[0])]
    return norm_ratio(
        [wi.abs() * x for wi, x in zip(c.w, c.g)], [wi.abs() * x for wi, x in zip(w_adv, c.g_advs[0])], c.bd
    )


def effective_rho(hp: dict, grad_norm: float, step: int) -> float:
    return float(hp["rho"]) if hp.get("normalized", False) else usam.effective_rho(hp, grad_norm, step)


SPEC = VariantSpec(
    name="ssam",
    label="Stable SAM (SSAM)",
    passes=2,
    summary="Renormalise the descent gradient to the ascent gradient's norm: γ_t = ‖g‖/‖g_adv‖.",
    formula=r"e = \rho\, g,\quad \gamma_t = \frac{\|g\|}{\|\nabla L(w+e)\|},\quad d = \gamma_t\,\nabla L(w + e)",
    reference=(
        "Tan, Zhang, Liu, et al. "
        "Stabilizing Sharpness-Aware Minimization Through A Simple Renormalization Strategy. JMLR 2025"
    ),
    url="https://arxiv.org/abs/2401.07250",
    hparams={
        "rho": rho_param(0.05),
        "normalized": HParam(
            "normalized",
            False,
            kind="bool",
            help="Use SAM's normalised ascent ρ g/‖g‖ instead of the paper's default USAM ascent ρ g.",
        ),
        "stable": STABLE_ON,
        "adaptive": HParam(
            "adaptive",
            False,
            kind="bool",
            help="The Stable SAM code's adaptive=True: ASAM's metric T = |w| (every parameter, η = 0) on "
            "the ascent, e = ρ T²g (÷ ‖Tg‖ with normalized), and γ_t from the weighted norms.",
        ),
        "clip_gamma": HParam(
            "clip_gamma",
            False,
            kind="bool",
            help="Use min(1, γ_t): never lengthen the step (off in the paper; commented out in the authors' code).",
        ),
    },
    note="The paper's plain SAM/SSAM rows use the unnormalised ascent, hence the default.",
    ascent=ascent,
    effective_rho=effective_rho,
    theory_lam=0.0,
    stable_gamma=stable_gamma,
)
