"""Stability edges: where gradient descent and SAM stop being stable on a quadratic.

GD with heavy-ball momentum β is unstable along a Hessian eigenvalue above (2 + 2β)/η.
SAM with GD steps (Long & Bartlett, "Sharpness-Aware Minimization and the Edge of Stability",
JMLR 2024) is unstable above the positive root of η λ (1 + ρ λ / ‖g‖) = 2:

    λ_SAM = (‖g‖ / 2ρ) (√(1 + 8ρ/(η‖g‖)) − 1) = 4 / (η (1 + √(1 + 8ρ/(η‖g‖))))

(the second form is the same number without cancellation, and equals 2/η at ρ = 0).
With α = η‖g‖/(2ρ):  λ_SAM / (2/η) = (√(α² + 4α) − α) / 2 < 1.
For SSAM or momentum the SAM formula is a heuristic (it was derived for plain SAM with GD steps).
Accepts floats, numpy arrays or tensors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch


def _sqrt(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return torch.sqrt(x)
    if isinstance(x, np.ndarray):
        return np.sqrt(x)
    return math.sqrt(x)


def gd_edge(lr: Any, momentum: float = 0.0) -> Any:
    """(2 + 2β)/η: the largest stable curvature for GD with heavy-ball momentum β."""
    return (2.0 + 2.0 * momentum) / lr


def sam_edge(grad_norm: Any, lr: Any, rho: Any, momentum: float = 0.0) -> Any:
    """Long & Bartlett's SAM edge of stability; `momentum` scales it like GD's edge (a heuristic)."""
    if isinstance(rho, (int, float)) and rho == 0:
        return gd_edge(lr, momentum)
    with np.errstate(divide="ignore"):
        x = 8.0 * rho / (lr * grad_norm) if not _is_zero(grad_norm) else math.inf
    return (1.0 + momentum) * 4.0 / (lr * (1.0 + _sqrt(1.0 + x)))


def _is_zero(x: Any) -> bool:
    return isinstance(x, (int, float)) and x == 0


def effective_rho(variant: str, hp: dict, grad_norm: float, step: int = 1) -> float | None:
    """The radius ‖e‖ of a step's ascent, to place the SAM edge (None for SGD or without ρ).

    Long & Bartlett's edge is for SAM's normalised ascent of radius ρ. An unnormalised ascent e = ρ g
    (USAM, SSAM by default) is a normalised one of radius ρ‖g‖ at this step — on a quadratic this gives
    exactly USAM's stability condition ηλ(1 + ρλ) < 2; Unified SAM mixes the two with λ_t. Other
    variants use ρ itself. Each variant's module says which (`VariantSpec.effective_rho`). Outside plain
    SAM the edge is a heuristic (docs/ALGORITHMS.md, "Stability edges").
    """
    from sam_core.registry import get_spec

    return get_spec(variant).rho_of(hp, grad_norm, step)


def sam_edge_ratio(alpha: Any) -> Any:
    """λ_SAM / (2/η) as a function of α = η‖g‖/(2ρ) (Long & Bartlett, Fig. 1)."""
    return (_sqrt(alpha * alpha + 4.0 * alpha) - alpha) / 2.0
