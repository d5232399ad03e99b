"""The batched base step every lab shares: heavy ball, ``w ← w − lr·d``, diverged runs frozen.

    w_new, buf_new = base_step(w, d, lr, buf, beta)       # buf None: plain GD
    ok = ...                                              # the caller's divergence test on w_new
    w, buf = freeze(alive & ok, w_new, w, buf_new)        # rows not kept stay where they were

``w``, ``d`` and ``buf`` are lists of tensors whose leading dimensions are the batch of runs (one tensor
(N, D) of points, two (R, d, d) autoencoder factors, the D coordinate columns (N,) of the compiled sweep
step, or a network's parameters with no batch dimension). ``lr`` and ``beta`` are Python numbers or
tensors that broadcast against them (an lr column (N, 1) gives every row its own step size).

Both functions are plain tensor arithmetic (no ``.item()``, no Python branch on a tensor), so
``torch.compile`` traces them inside the fused sweep step (``sam_core.simulate``). The order of operations
is fixed here once: ``buf ← β·buf + d``, then ``w − lr·buf`` (a multiply, then a subtract; not a fused
multiply-add), so every lab takes bit-for-bit the same step from the same direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["base_step", "freeze"]

Tensors = Sequence[torch.Tensor]


def base_step(
    w: Tensors, d: Tensors, lr: Any, buf: Tensors | None = None, beta: Any = 0.0
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """One step from direction ``d``: ``buf ← β·buf + d`` and ``w ← w − lr·buf`` when ``buf`` is given
    (heavy-ball momentum), ``w ← w − lr·d`` when it is None. Returns ``(w_new, buf_new)`` (buf_new None
    without momentum); nothing is frozen here, see :func:`freeze`."""
    if buf is not None:
        buf = [beta * b + di for b, di in zip(buf, d)]
        d = buf
    return [wi - lr * di for wi, di in zip(w, d)], buf


def freeze(
    keep: torch.Tensor, new: Tensors, old: Tensors, buf: Tensors | None = None
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """Rows where ``keep`` (bool, one per run: the shape of the tensors' leading dimensions) is false keep
    ``old`` and restart their momentum buffer at zero; the others take ``new``. Returns ``(w, buf)``."""
    w = [torch.where(_rows(keep, n), n, o) for n, o in zip(new, old)]
    if buf is not None:
        buf = [torch.where(_rows(keep, b), b, torch.zeros_like(b)) for b in buf]
    return w, buf


def _rows(keep: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``keep`` with trailing singleton dimensions, to broadcast over one run's entries of ``like``."""
    extra = like.dim() - keep.dim()
    return keep[(..., *([None] * extra))] if extra > 0 else keep
