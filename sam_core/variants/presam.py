"""Preconditioned SAM (Zhang, Li, Giannakis): the ρ-ball in a diagonal metric D, e = ρ D⁻¹g/(√(gᵀD⁻¹g) + ε)."""

from collections.abc import Sequence
from typing import Any

import torch

from sam_core.registry import HParam, VariantSpec, rho_param
from sam_core.rules import EPS, Tensors, dot, scale
from sam_core.variants.stable import STABLE


def precond_ascent(g: Tensors, D: Sequence[Any], rho: Any, bd: int) -> Tensors:
    """Constraint-preconditioned ascent e = ρ D⁻¹g / (√(gᵀD⁻¹g) + ε); D = I gives SAM exactly.

    ε outside the root (docs/ALGORITHMS.md, "Preconditioned SAM"): e = 0 at g = 0 either way, and it makes
    D = I reproduce SAM bit for bit.
    """
    Dinv_g = [x / d if isinstance(d, torch.Tensor) else x for x, d in zip(g, D)]
    q = dot(g, Dinv_g, bd)
    return scale(Dinv_g, rho / (q.sqrt() + EPS), bd)


def ascent(s):
    D = s.hp.get("precond") or [1.0] * len(s.g)
    return [precond_ascent(s.g, D, s.hp["rho"], s.bd)]


SPEC = VariantSpec(
    name="presam",
    label="Preconditioned SAM",
    passes=2,
    summary="Constraint-preconditioned ascent: the ρ-ball measured in a diagonal metric D.",
    formula=r"e = \rho\,\frac{D^{-1} g}{\sqrt{g^\top D^{-1} g} + \epsilon},\quad d = \nabla L(w + e)",
    reference="Zhang, Li, Giannakis. Preconditioned Sharpness-Aware Minimization. ICASSP 2025, arXiv:2501.06603",
    hparams={
        "rho": rho_param(0.05),
        "precond": HParam(
            "precond",
            None,
            kind="tensor",
            ui=False,
            help="Diagonal of D: a list of tensors like the parameters (None = identity: SAM).",
        ),
        "stable": STABLE,
    },
    ascent=ascent,
)
