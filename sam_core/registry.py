"""The variant registry: every SAM variant's hyperparameters, formula and paper, described once.

The UI renders controls from these specs, so a new variant needs no page edits. `resolve_hparams`
fills defaults and validates user values, raising `ValueError` that names the field and its range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

LAM_SCHEDULES = ("1/t", "1-1/t")


@dataclass(frozen=True)
class HParam:
    """One hyperparameter of a variant, as the UI should render it."""

    name: str
    default: Any
    kind: str = "float"  # "float" | "bool" | "choice" | "schedule" (float or one of `choices`)
    low: float | None = None
    high: float | None = None
    log: bool = False
    help: str = ""
    symbol: str = ""  # LaTeX symbol, e.g. r"\rho"
    choices: tuple = ()
    ui: bool = True  # False: settable from code, not shown as a widget (e.g. a preconditioner tensor)

    def validate(self, value: Any, variant: str) -> Any:
        where = f"{variant}: hyperparameter '{self.name}'"
        if self.kind == "bool":
            if not isinstance(value, (bool, int)):
                raise ValueError(f"{where} must be true or false, got {value!r}")
            return bool(value)
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{where} must be one of {list(self.choices)}, got {value!r}")
            return value
        if self.kind == "tensor":
            return value
        if self.kind == "schedule" and isinstance(value, str):
            if value not in self.choices:
                raise ValueError(
                    f"{where} must be a number in [{self.low}, {self.high}] or one of {list(self.choices)}, got {value!r}"
                )
            return value
        if isinstance(value, torch.Tensor):  # per-trajectory values (sweeps): check every entry
            bad = ~torch.isfinite(value)
            if self.low is not None:
                bad |= value < self.low
            if self.high is not None:
                bad |= value > self.high
            if bool(bad.any()):
                raise ValueError(f"{where} must lie in [{self.low}, {self.high}] (every entry)")
            return value
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} must be a number in [{self.low}, {self.high}], got {value!r}") from None
        if not math.isfinite(v) or (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise ValueError(f"{where} must be in [{self.low}, {self.high}], got {value!r}")
        return v


@dataclass(frozen=True)
class VariantSpec:
    """What a variant is: its name, cost, hyperparameters and the formula it implements."""

    name: str
    label: str
    passes: int
    summary: str
    formula: str
    reference: str
    url: str = ""
    hparams: dict[str, HParam] = field(default_factory=dict)
    note: str = ""

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: h.default for k, h in self.hparams.items()}


def _rho(default: float, high: float = 10.0, help: str = "perturbation radius ρ") -> HParam:
    return HParam("rho", default, low=0.0, high=high, log=True, help=help, symbol=r"\rho")


_STABLE = HParam(
    "stable", False, kind="bool", symbol=r"\gamma_t",
    help="Stable SAM renormalisation: follow γ_t·g_adv with γ_t = ‖g‖/‖g_adv‖, so ‖d‖ = ‖g‖.",
)
_STABLE_ON = HParam(_STABLE.name, True, kind="bool", symbol=_STABLE.symbol, help=_STABLE.help)

_SPECS = [
    VariantSpec(
        name="sgd", label="SGD", passes=1,
        summary="The baseline: follow the clean gradient.",
        formula=r"d = g = \nabla L(w)",
        reference="Robbins & Monro (1951)",
    ),
    VariantSpec(
        name="sam", label="SAM", passes=2,
        summary="Step with the gradient at the worst point of a ρ-ball (normalised ascent).",
        formula=r"e = \rho\,\frac{g}{\|g\| + \epsilon},\quad d = \nabla L(w + e)",
        reference="Foret, Kleiner, Mobahi, Neyshabur. Sharpness-Aware Minimization for Efficiently Improving Generalization. ICLR 2021",
        url="https://arxiv.org/abs/2010.01412",
        hparams={"rho": _rho(0.05), "stable": _STABLE},
    ),
    VariantSpec(
        name="usam", label="USAM", passes=2,
        summary="Unnormalised SAM: ascend along ρ·g, so the step shrinks with the gradient.",
        formula=r"e = \rho\, g,\quad d = \nabla L(w + e)",
        reference="Andriushchenko & Flammarion. Towards Understanding Sharpness-Aware Minimization. ICML 2022",
        url="https://arxiv.org/abs/2206.06232",
        hparams={"rho": _rho(0.05), "stable": _STABLE},
    ),
    VariantSpec(
        name="unified_sam", label="Unified SAM", passes=2,
        summary="Interpolates USAM (λ=0) and SAM (λ=1); λ may follow 1/t or 1−1/t.",
        formula=r"e = \rho\Big(1 - \lambda + \frac{\lambda}{\|g\| + \epsilon}\Big) g,\quad d = \nabla L(w + e)",
        reference="Oikonomou & Loizou. Sharpness-Aware Minimization: General Analysis and Improved Rates. ICLR 2025",
        url="https://arxiv.org/abs/2503.02225",
        hparams={
            "rho": _rho(0.05),
            "lam": HParam("lam", 0.5, kind="schedule", low=0.0, high=1.0, choices=LAM_SCHEDULES, symbol=r"\lambda",
                          help="λ ∈ [0, 1] (0 = USAM, 1 = SAM), or a schedule of the step t: '1/t' or '1-1/t'."),
            "stable": _STABLE,
        },
    ),
    VariantSpec(
        name="asam", label="ASAM", passes=2,
        summary="Adaptive SAM: a scale-invariant ball, T = diag(|w| + η).",
        formula=r"T = \mathrm{diag}(|w| + \eta),\quad e = \rho\,\frac{T^2 g}{\|T g\| + \epsilon},\quad d = \nabla L(w + e)",
        reference="Kwon, Kim, Park, Choi. ASAM: Adaptive Sharpness-Aware Minimization. ICML 2021",
        url="https://arxiv.org/abs/2102.11600",
        hparams={
            "rho": _rho(0.5),
            "eta": HParam("eta", 0.01, low=0.0, high=1.0, symbol=r"\eta",
                          help="η_A added to |w| (official default 0.01; davda54 flavour uses 0)."),
            "flavour": HParam("flavour", "official", kind="choice", choices=("official", "davda54"),
                              help="official: T only on parameters named '*weight*'; davda54: T on all parameters."),
            "stable": _STABLE,
        },
        note="Default: the official flavour (weights only, η=0.01, ρ=0.5 as for CIFAR-10). "
        "davda54's adaptive=True is flavour='davda54' with η=0 and ρ≈2.",
    ),
    VariantSpec(
        name="ssam", label="Stable SAM (SSAM)", passes=2,
        summary="Renormalise the descent gradient to the ascent gradient's norm: γ_t = ‖g‖/‖g_adv‖.",
        formula=r"e = \rho\, g,\quad \gamma_t = \frac{\|g\|}{\|\nabla L(w+e)\| + \epsilon},\quad d = \gamma_t\,\nabla L(w + e)",
        reference="Tan, Zhang, Liu, Wang, Hao. Stabilizing Sharpness-Aware Minimization Through A Simple Renormalization Strategy. JMLR 2025",
        url="https://arxiv.org/abs/2401.07250",
        hparams={
            "rho": _rho(0.05),
            "normalized": HParam("normalized", False, kind="bool",
                                 help="Use SAM's normalised ascent ρ g/‖g‖ instead of the paper's default USAM ascent ρ g."),
            "stable": _STABLE_ON,
            "clip_gamma": HParam("clip_gamma", False, kind="bool",
                                 help="Use min(1, γ_t): never lengthen the step (off in the paper; commented out in the authors' code)."),
        },
        note="The paper's plain SAM/SSAM rows use the unnormalised ascent, hence the default.",
    ),
    VariantSpec(
        name="bsam", label="Bilateral SAM (BSAM)", passes=3,
        summary="Look both up (ρ_max) and down (ρ_min) the gradient and combine the two.",
        formula=(r"e_\pm = \pm\rho_{\pm}\frac{g}{\|g\|+\epsilon},\quad \varsigma = \frac{\|g_{max}\|}{\|g_{min}\| + \epsilon},"
                 r"\quad d = g_{max} + g - \varsigma\, g_{min}"),
        reference="Deng, Pang, Zhang, Huang. Bilateral Sharpness-Aware Minimization for Flatter Minima. arXiv 2024",
        url="https://arxiv.org/abs/2409.13173",
        hparams={
            "rho": _rho(0.05, help="ρ_max, the radius of the ascent"),
            "rho_min": HParam("rho_min", 0.05, low=0.0, high=10.0, log=True, symbol=r"\rho_{min}",
                              help="ρ_min of the descent look (the value at the largest learning rate when tied to the LR)."),
            "rho_min_lo": HParam("rho_min_lo", 0.0, low=0.0, high=10.0, symbol=r"\rho_{min,lo}",
                                 help="ρ_min at LR 0 when tied to the LR (docs/ALGORITHMS.md, 'Bilateral SAM')."),
            "rho_min_schedule": HParam("rho_min_schedule", "lr", kind="choice", choices=("lr", "constant"),
                                       help="'lr': ρ_min proportional to the current learning rate (ρ_min at the initial LR, 0 at LR 0); 'constant'."),
        },
    ),
    VariantSpec(
        name="presam", label="Preconditioned SAM", passes=2,
        summary="Constraint-preconditioned ascent: the ρ-ball measured in a diagonal metric D.",
        formula=r"e = \rho\,\frac{D^{-1} g}{\sqrt{g^\top D^{-1} g} + \epsilon},\quad d = \nabla L(w + e)",
        reference="Zhang, Li, Giannakis. Preconditioned Sharpness-Aware Minimization. ICASSP 2025, arXiv:2501.06603",
        hparams={
            "rho": _rho(0.05),
            "precond": HParam("precond", None, kind="tensor", ui=False,
                              help="Diagonal of D: a list of tensors like the parameters (None = identity: SAM)."),
            "stable": _STABLE,
        },
    ),
    VariantSpec(
        name="infosam", label="infoSAM (reconstruction)", passes=2,
        summary="Preconditioned SAM whose metric follows the estimated gradient noise (a reconstruction).",
        formula=(r"m_t = \beta m + (1-\beta) g,\ s_t = \beta s + (1-\beta)(g - m_{t-1})^2,\ "
                 r"D = \mathrm{clamp}\big(\tfrac{s_t+\delta}{\mathrm{mean}(s_t+\delta)}, D_0^{-1}, D_0\big),\ "
                 r"e = \rho\,\frac{D^{-1} g}{\sqrt{g^\top D^{-1} g} + \epsilon}"),
        reference="Zhang, Li, Giannakis (ICASSP 2025): infoSAM. Reconstruction by SAM Lab, not the paper's verified formula.",
        hparams={
            "rho": _rho(0.05),
            "beta": HParam("beta", 0.9, low=0.0, high=0.999, symbol=r"\beta", help="EMA factor of the noise estimate."),
            "delta": HParam("delta", 1e-8, low=0.0, high=1.0, log=True, symbol=r"\delta", help="Floor added to the variance."),
            "d0": HParam("d0", 10.0, low=1.0, high=1e4, log=True, symbol=r"D_0", help="Clamp of D to [1/D₀, D₀]."),
            "stable": _STABLE,
        },
        note="Reconstruction: the paper's exact estimator could not be read; this is constraint-preconditioning with a "
        "noise-aware diagonal D, plain SAM during the first 1/(1-β) steps.",
    ),
]

VARIANTS: dict[str, VariantSpec] = {s.name: s for s in _SPECS}


def get_spec(variant: str) -> VariantSpec:
    try:
        return VARIANTS[variant]
    except KeyError:
        raise ValueError(f"unknown variant {variant!r}: choose one of {list(VARIANTS)}") from None


def resolve_hparams(variant: str, **values: Any) -> dict[str, Any]:
    """Defaults of `variant` overridden by `values`, each validated; unknown names are errors."""
    spec = get_spec(variant)
    unknown = set(values) - set(spec.hparams)
    if unknown:
        raise ValueError(
            f"{variant}: unknown hyperparameter(s) {sorted(unknown)}; allowed: {sorted(spec.hparams) or 'none'}"
        )
    out = spec.defaults
    if variant == "asam" and values.get("flavour") == "davda54" and "eta" not in values:
        out["eta"] = 0.0
    for k, v in values.items():
        out[k] = spec.hparams[k].validate(v, variant)
    return out


def validate_lr(lr: Any, name: str = "lr") -> Any:
    """Learning rates must be finite and non-negative (a tensor is checked entrywise)."""
    if isinstance(lr, torch.Tensor):
        if not bool((torch.isfinite(lr) & (lr >= 0)).all()):
            raise ValueError(f"'{name}' must be a finite number ≥ 0 (every entry)")
        return lr
    try:
        v = float(lr)
    except (TypeError, ValueError):
        raise ValueError(f"'{name}' must be a finite number ≥ 0, got {lr!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"'{name}' must be a finite number ≥ 0, got {lr!r}")
    return v
