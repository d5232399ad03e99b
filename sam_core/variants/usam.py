"""USAM (Andriushchenko & Flammarion, ICML 2022): the unnormalised ascent e = ρ g."""

from sam_core.registry import VariantSpec, rho_param
from sam_core.rules import scale
from sam_core.variants.stable import STABLE


def ascent(s):
    return [scale(s.g, s.hp["rho"], s.bd)]


def effective_rho(hp: dict, grad_norm: float, step: int) -> float:
    """e = ρ g is a normalised ascent of radius ρ‖g‖ at this step (on a quadratic: ηλ(1 + ρλ) < 2)."""
    return float(hp["rho"]) * grad_norm


SPEC = VariantSpec(
    name="usam",
    label="USAM",
    passes=2,
    summary="Unnormalised SAM: ascend along ρ·g, so the step shrinks with the gradient.",
    formula=r"e = \rho\, g,\quad d = \nabla L(w + e)",
    reference="Andriushchenko & Flammarion. Towards Understanding Sharpness-Aware Minimization. ICML 2022",
    url="https://arxiv.org/abs/2206.06232",
    hparams={"rho": rho_param(0.05), "stable": STABLE},
    ascent=ascent,
    effective_rho=effective_rho,
    theory_lam=0.0,
)
