"""Vectorised trajectories: N points (N, D) optimised at once by any variant, on any gradient field.

The rule comes from `rules.sam_direction` with `batch_dims=1`, so every norm is per trajectory.
Learning rate and hyperparameters may be tensors of shape (N,), which is how sweeps put a whole
lr × ρ grid in one batch. A trajectory whose iterate or loss becomes inf/NaN is frozen at its last
finite point and reported in `diverged_step` (a divergence is a result, not an exception).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from . import rules
from .registry import get_spec, resolve_hparams, validate_lr

GradFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class SimResult:
    w: torch.Tensor  # (steps+1, N, D) when recorded, else the final (N, D)
    loss: torch.Tensor | None  # (steps, N) loss at w_t, before step t+1 (record only)
    grad_norm: torch.Tensor | None  # (steps, N)
    gamma: torch.Tensor | None  # (steps, N) γ_t = ‖g‖/‖g_adv‖ (1 for SGD)
    ascent: torch.Tensor | None  # (steps, N, D) the first ascent point w + e (record only)
    diverged_step: torch.Tensor  # (N,) long: step at which it blew up, -1 if it stayed finite
    tail_mean: torch.Tensor | None  # (N, D) mean of the last `tail` iterates
    n_evals: int  # gradient evaluations used per trajectory

    @property
    def final(self) -> torch.Tensor:
        return self.w[-1] if self.w.dim() == 3 else self.w


def simulate(
    variant: str,
    grad_fn: GradFn,
    w0: torch.Tensor,
    steps: int,
    lr: Any,
    hp: dict | None = None,
    momentum: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
    record: bool = True,
    tail: int = 0,
    should_stop: Callable[[], bool] | None = None,
) -> SimResult:
    """Run `steps` steps of `variant` from each row of `w0`.

    grad_fn(w (N, D)) -> (loss (N,), grad (N, D)). `noise` adds N(0, noise²) to every gradient
    evaluation; all passes of one step share the same draw, like one mini-batch.
    """
    get_spec(variant)
    if w0.dim() != 2:
        raise ValueError(f"w0 must have shape (N, D), got {tuple(w0.shape)}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer ≥ 0, got {steps!r}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if not noise >= 0.0:
        raise ValueError(f"noise must be ≥ 0, got {noise}")
    lr = validate_lr(lr)
    hpv = resolve_hparams(variant, **(hp or {}))
    N, D = w0.shape
    lr_b = lr.reshape(N, 1).to(w0) if isinstance(lr, torch.Tensor) else lr
    w = w0.detach().clone()
    buf = torch.zeros_like(w)
    state = rules.init_state(variant)
    gen = torch.Generator(device=w.device).manual_seed(seed) if noise > 0 else None
    alive = torch.ones(N, dtype=torch.bool, device=w.device)
    all_alive = True
    diverged = torch.full((N,), -1, dtype=torch.long, device=w.device)
    ws, losses, gnorms, gammas, ascents = ([w] if record else None), [], [], [], []
    tail_sum = torch.zeros_like(w) if tail > 0 else None
    n_evals = 0
    for t in range(1, steps + 1):
        if should_stop is not None and should_stop():
            break
        if gen is not None:
            xi = noise * torch.randn(w.shape, generator=gen, device=w.device, dtype=w.dtype)

            def gf(ps, xi=xi):
                loss, g = grad_fn(ps[0])
                return loss, [g + xi]
        else:

            def gf(ps):
                loss, g = grad_fn(ps[0])
                return loss, [g]

        d, st, n = rules.sam_direction(variant, [w], gf, hpv, state, t, batch_dims=1, keep_e=record,
                                       diagnostics=record)
        n_evals += n
        if momentum:
            buf = momentum * buf + d[0]
            step_dir = buf
        else:
            step_dir = d[0]
        w_new = w - lr_b * step_dir
        ok = torch.isfinite(st["loss"] + rules._last_dim_sum(w_new))  # inf/NaN anywhere propagates
        if all_alive and bool(ok.all()):  # the common case: no bookkeeping needed
            w = w_new
        else:
            diverged = torch.where(alive & ~ok, t, diverged)
            alive = alive & ok
            all_alive = bool(alive.all())
            w = torch.where(alive[:, None], w_new, w)
            if momentum:
                buf = torch.where(alive[:, None], buf, torch.zeros_like(buf))
        if tail_sum is not None and t > steps - tail:
            tail_sum = tail_sum + w
        if record:
            ws.append(w)
            losses.append(st["loss"])
            gnorms.append(st["grad_norm"])
            gammas.append(st["gamma"])
            es = st["e"]
            ascents.append(ws[-2] + es[0][0] if es else ws[-2])
    if record:
        return SimResult(torch.stack(ws), torch.stack(losses) if losses else torch.empty(0, N),
                         torch.stack(gnorms) if gnorms else torch.empty(0, N),
                         torch.stack(gammas) if gammas else torch.empty(0, N),
                         torch.stack(ascents) if ascents else torch.empty(0, N, D), diverged,
                         tail_sum / min(tail, steps) if tail_sum is not None and steps else None, n_evals)
    return SimResult(w, None, None, None, None, diverged,
                     tail_sum / min(tail, steps) if tail_sum is not None and steps else None, n_evals)
