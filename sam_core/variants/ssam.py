"""Stable SAM (Tan et al., 2024): USAM's ascent (or SAM's with `normalized`) with γ_t = ‖g‖/‖g_adv‖ on."""

from ..registry import HParam, VariantSpec, rho_param
from . import sam, usam
from .stable import STABLE_ON


def ascent(s):
    return sam.ascent(s) if s.hp["normalized"] else usam.ascent(s)


def effective_rho(hp: dict, grad_norm: float, step: int) -> float:
    return float(hp["rho"]) if hp.get("normalized", False) else usam.effective_rho(hp, grad_norm, step)


SPEC = VariantSpec(
    name="ssam", label="Stable SAM (SSAM)", passes=2,
    summary="Renormalise the descent gradient to the ascent gradient's norm: γ_t = ‖g‖/‖g_adv‖.",
    formula=r"e = \rho\, g,\quad \gamma_t = \frac{\|g\|}{\|\nabla L(w+e)\| + \epsilon},\quad d = \gamma_t\,\nabla L(w + e)",
    reference="Tan, Zhang, Liu, et al. Stabilizing Sharpness-Aware Minimization Through A Simple Renormalization Strategy. JMLR 2025",
    url="https://arxiv.org/abs/2401.07250",
    hparams={
        "rho": rho_param(0.05),
        "normalized": HParam("normalized", False, kind="bool",
                             help="Use SAM's normalised ascent ρ g/‖g‖ instead of the paper's default USAM ascent ρ g."),
        "stable": STABLE_ON,
        "clip_gamma": HParam("clip_gamma", False, kind="bool",
                             help="Use min(1, γ_t): never lengthen the step (off in the paper; commented out in the authors' code)."),
    },
    note="The paper's plain SAM/SSAM rows use the unnormalised ascent, hence the default.",
    ascent=ascent, effective_rho=effective_rho, theory_lam=0.0,
)
