"""Unified SAM (Oikonomou & Loizou, ICLR 2025): e = ρ(1 − λ + λ/(‖g‖ + ε)) g, USAM at λ = 0, SAM at λ = 1."""

from sam_core.registry import LAM_SCHEDULES, HParam, VariantSpec, rho_param
from sam_core.rules import EPS, scale, unified_lam
from sam_core.variants.stable import STABLE


def ascent(s):
    lam = unified_lam(s.hp["lam"], s.step)
    return [scale(s.g, s.hp["rho"] * (1 - lam + lam / (s.g_norm + EPS)), s.bd)]


def effective_rho(hp: dict, grad_norm: float, step: int) -> float:
    lam = float(unified_lam(hp["lam"], max(step, 1)))
    return float(hp["rho"]) * ((1.0 - lam) * grad_norm + lam)


SPEC = VariantSpec(
    name="unified_sam",
    label="Unified SAM",
    passes=2,
    summary="Interpolates USAM (λ=0) and SAM (λ=1); λ may follow 1/t or 1−1/t.",
    formula=r"e = \rho\Big(1 - \lambda + \frac{\lambda}{\|g\| + \epsilon}\Big) g,\quad d = \nabla L(w + e)",
    reference="Oikonomou & Loizou. Sharpness-Aware Minimization: General Analysis and Improved Rates. ICLR 2025",
    url="https://arxiv.org/abs/2503.02225",
    hparams={
        "rho": rho_param(0.05),
        "lam": HParam(
            "lam",
            0.5,
            kind="schedule",
            low=0.0,
            high=1.0,
            choices=LAM_SCHEDULES,
            symbol=r"\lambda",
            help="λ ∈ [0, 1] (0 = USAM, 1 = SAM), or a schedule of the step t: '1/t' or '1-1/t'.",
        ),
        "stable": STABLE,
    },
    ascent=ascent,
    effective_rho=effective_rho,
    map_params=("rho", "lam"),
)
