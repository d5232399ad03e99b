"""The variant registry: every SAM variant's hyperparameters, formula, paper and rule, described once.

Each variant is one module of `sam_core/variants/` (or a plug-in, `sam_core.load_plugins`) holding a
`VariantSpec`: the UI renders controls from it, the rules dispatch through it and the labs ask it what
they need, so a new variant needs no page or core edits (docs/VARIANTS.md). `resolve_hparams` fills
defaults and validates user values, raising `ValueError` that names the field and its range.

Note: pytorch-optimizer's `BSAM` is *Bayesian* SAM (Möllenhoff & Khan, ICLR 2023), not the Bilateral
SAM that `bsam` here implements.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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

    def __post_init__(self):
        if self.kind in ("float", "schedule"):  # the UI's number inputs need one numeric type: bounds as floats
            for f in ("low", "high"):
                v = getattr(self, f)
                if isinstance(v, int) and not isinstance(v, bool):
                    object.__setattr__(self, f, float(v))

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
                    f"{where} must be a number in [{self.low}, {self.high}] or one of {list(self.choices)}, "
                    f"got {value!r}"
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
    # ---- the rule (docs/VARIANTS.md has the contract); None = the default behaviour named
    ascent: Callable[[Any], list] | None = None  # (AscentStep) -> [e, …] (passes − 1 of them); None: SGD
    combine: Callable[[Any], list] | None = None  # (CombineStep) -> d; None: d = ∇L(w + e)
    stable_gamma: Callable[[Any], Any] | None = None  # (CombineStep) -> γ_t of `stable`; None: ‖g‖/‖d‖
    init_state: Callable[[], dict] | None = None  # () -> a fresh state (built lazily from the first step); None: {}
    stateful: bool = False  # keeps state across steps (a compiled sweep step cannot carry it)
    # one-pass rules that perturb *before* the only gradient (Momentum-SAM): e from the state, not from g
    lookahead: Callable[[Any], list] | None = None  # (AscentStep with g=None) -> e; with passes=1, ascent=None
    after_step: Callable[..., None] | None = None  # (state, d, hp, bd, buffers) -> None: update the state with d
    # ---- what the labs need from it
    effective_rho: Callable[[dict, float, int], float | None] | None = None  # ‖e‖ for the SAM edge; None: ρ
    edge_exact: bool = False  # Long & Bartlett's SAM edge is exact for it (with GD steps), not a heuristic
    map_params: tuple[str, ...] = ("rho",)  # hyperparameters the landscape lab's lr × … map may sweep
    theory_lam: float = 1.0  # the Unified SAM λ whose theory the quadratics lab uses for it (0 = unnormalised ascent)
    adjust: Callable[[dict], dict] | None = None  # (user values) -> defaults that follow from them
    translate: Callable[[dict], str] | None = None  # make_optimizer aliases: may edit kwargs, returns the variant
    unnamed_warning: Callable[[dict], str | None] | None = None  # message when parameter names are needed
    source: str = "built-in"  # where it was defined (a plug-in's file)

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: h.default for k, h in self.hparams.items()}

    @property
    def has_rho(self) -> bool:
        return "rho" in self.hparams

    def rho_of(self, hp: dict, grad_norm: float, step: int = 1) -> float | None:
        """The radius ‖e‖ of a step's ascent (see `theory.effective_rho`); None without an ascent radius."""
        if (self.ascent is None and self.lookahead is None) or "rho" not in hp:
            return None
        if self.effective_rho is not None:
            return self.effective_rho(hp, grad_norm, step)
        return float(hp["rho"])


def rho_param(default: float, high: float = 10.0, help: str = "perturbation radius ρ") -> HParam:
    return HParam("rho", default, low=0.0, high=high, log=True, help=help, symbol=r"\rho")


_rho = rho_param

VARIANTS: dict[str, VariantSpec] = {}


def get_spec(variant: str | VariantSpec) -> VariantSpec:
    if isinstance(variant, VariantSpec):
        return variant
    try:
        return VARIANTS[variant]
    except (KeyError, TypeError):
        raise ValueError(f"unknown variant {variant!r}: choose one of {list(VARIANTS)}") from None


def register(spec: VariantSpec, replace: bool = False) -> VariantSpec:
    """Add a variant to the registry (the built-ins at import, plug-ins through `load_plugins`).

    A name already taken is refused (`replace=True` re-registers a plug-in of the same source)."""
    if not isinstance(spec, VariantSpec):
        raise TypeError(f"register() takes a VariantSpec, got {type(spec).__name__}")
    old = VARIANTS.get(spec.name)
    if old is not None and not (replace and old.source == spec.source):
        where = "a built-in variant" if old.source == "built-in" else f"the variant from {old.source}"
        raise ValueError(f"variant name {spec.name!r} is already taken by {where}")
    VARIANTS[spec.name] = spec
    return spec


def resolve_hparams(variant: str, **values: Any) -> dict[str, Any]:
    """Defaults of `variant` overridden by `values`, each validated; unknown names are errors."""
    spec = get_spec(variant)
    unknown = set(values) - set(spec.hparams)
    if unknown:
        raise ValueError(
            f"{variant}: unknown hyperparameter(s) {sorted(unknown)}; allowed: {sorted(spec.hparams) or 'none'}"
        )
    out = spec.defaults
    if spec.adjust is not None:
        out.update(spec.adjust(values))
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


# the built-in variants, one module each (imported last: they use the classes above)
from sam_core import variants as _variants  # noqa: E402

_variants.register_builtins()
