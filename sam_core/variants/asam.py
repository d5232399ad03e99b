"""ASAM (Kwon et al., ICML 2021): a scale-invariant ball, T = diag(|w| + η), e = ρ T²g/(‖Tg‖ + ε)."""

from collections.abc import Sequence
from typing import Any

import torch

from sam_core.registry import HParam, VariantSpec, rho_param
from sam_core.rules import EPS, global_norm, norm_ratio, scale
from sam_core.variants.stable import STABLE


def asam_T(w: Sequence[torch.Tensor], hp: dict, weight_mask: Sequence[bool] | None) -> list[Any]:
    """ASAM's T = |w| + η on the parameters it applies to (1 elsewhere)."""
    official = hp["flavour"] == "official"
    out: list[Any] = []
    for i, wi in enumerate(w):
        applies = (not official) or weight_mask is None or weight_mask[i]
        out.append(wi.abs() + hp["eta"] if applies else 1.0)
    return out


def ascent(s):
    T = asam_T(s.w, s.hp, s.weight_mask)
    Tg = [t * x for t, x in zip(T, s.g)]
    T2g = [t * x for t, x in zip(T, Tg)]
    return [scale(T2g, s.hp["rho"] / (global_norm(Tg, s.bd) + EPS), s.bd)]


def stable_gamma(c):
    """Weighted norms ‖T(w) g‖ and ‖T(w+e) g_adv‖ (docs/ALGORITHMS.md, "SSAM with ASAM"). Our reading: T is
    ASAM's own metric (|w| + η on the parameters it scales), the same T as the ascent; the document
    writes ‖|w| ⊙ g‖, which is this T with η = 0 on every parameter."""
    w_adv = [wi + ei for wi, ei in zip(c.w, c.es[0])]
    return norm_ratio(
        [t * x for t, x in zip(asam_T(c.w, c.hp, c.weight_mask), c.g)],
        [t * x for t, x in zip(asam_T(w_adv, c.hp, c.weight_mask), c.g_advs[0])],
        c.bd,
    )


def adjust(values: dict) -> dict:
    """davda54's flavour defaults to η = 0."""
    return {"eta": 0.0} if values.get("flavour") == "davda54" and "eta" not in values else {}


def translate(kwargs: dict) -> str:
    if "adaptive" in kwargs:
        kwargs.setdefault("flavour", "davda54" if kwargs.pop("adaptive") else "official")
    return "asam"


def unnamed_warning(hp: dict) -> str | None:
    if hp.get("flavour") == "official":
        return (
            "ASAM's official flavour scales only '*weight*' parameters, but no parameter names "
            "were given: T is applied to every parameter. Pass model.named_parameters()."
        )
    return None


SPEC = VariantSpec(
    name="asam",
    label="ASAM",
    passes=2,
    summary="Adaptive SAM: a scale-invariant ball, T = diag(|w| + η).",
    formula=r"T = \mathrm{diag}(|w| + \eta),\quad e = \rho\,\frac{T^2 g}{\|T g\| + \epsilon},\quad d = \nabla L(w + e)",
    reference="Kwon, Kim, Park, Choi. ASAM: Adaptive Sharpness-Aware Minimization. ICML 2021",
    url="https://arxiv.org/abs/2102.11600",
    hparams={
        "rho": rho_param(0.5),
        "eta": HParam(
            "eta",
            0.01,
            low=0.0,
            high=1.0,
            symbol=r"\eta",
            help="η_A added to |w| (official default 0.01; davda54 flavour uses 0).",
        ),
        "flavour": HParam(
            "flavour",
            "official",
            kind="choice",
            choices=("official", "davda54"),
            help="official: T only on parameters named '*weight*'; davda54: T on all parameters.",
        ),
        "stable": STABLE,
    },
    note="Default: the official flavour (weights only, η=0.01, ρ=0.5 as for CIFAR-10). "
    "davda54's adaptive=True is flavour='davda54' with η=0 and ρ≈2.",
    ascent=ascent,
    stable_gamma=stable_gamma,
    adjust=adjust,
    translate=translate,
    unnamed_warning=unnamed_warning,
)
