"""The landscape race: a few variants from one start point, every step recorded, via ``simulate``.

    tracks = race(make_landscape("rosenbrock"), ["sam", "ssam"], lr=1e-3, steps=2000, start=(-1.5, 2))
    tracks[0].w          # (K+1, 2) iterates up to the last finite one
    tracks[0].label      # "SAM" or "SAM · diverged at step 312"
    tracks_frame(tracks) # one CSV-ready DataFrame

A run that blows up (inf/NaN) stops at its last finite iterate; ``diverged_step`` says when.
With ``equal_evals`` every variant gets the same number of gradient evaluations: ``steps`` is the
budget, a variant with p passes per step runs ``steps // p`` steps (SAM 2, BSAM 3).
Hyperparameters are resolved once, in ``run_tracks``; the resolved dict goes to ``simulate_resolved``,
which does not validate it again.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from sam_core.landscape.functions import Landscape
from sam_core.registry import get_spec, resolve_hparams
from sam_core.simulate import simulate_resolved


@dataclass
class Track:
    """One variant's run. Arrays are float64 numpy; K = number of completed steps."""

    variant: str
    hp: dict
    lr: float
    w: np.ndarray  # (K+1, 2)
    ascent: np.ndarray  # (K, 2) the (first) ascent point w_t + e_t; w_t itself for SGD
    loss: np.ndarray  # (K+1,) f(w_t)
    grad_norm: np.ndarray  # (K,) ‖g‖ at w_t (noise included)
    gamma: np.ndarray  # (K,) γ_t = ‖g‖/‖g_adv‖ (1 for SGD)
    dist: np.ndarray  # (K+1,) distance to the nearest minimum (nan when there is none)
    passes: int
    diverged_step: int | None = None
    meta: dict = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.w) - 1

    @property
    def evals(self) -> np.ndarray:
        """Gradient evaluations spent to reach each iterate (K+1,)."""
        return np.arange(len(self.w)) * self.passes

    @property
    def name(self) -> str:
        return get_spec(self.variant).label

    @property
    def label(self) -> str:
        if self.diverged_step is None:
            return self.name
        return f"{self.name} · diverged at step {self.diverged_step}"

    @property
    def perturbation(self) -> np.ndarray:
        """‖e_t‖ = ‖ascent − w_t‖ (K,): the radius of the ρ-ball drawn around w_t."""
        return np.linalg.norm(self.ascent - self.w[:-1], axis=1)


def _check_start(start) -> tuple[float, float]:
    try:
        x, y = (float(v) for v in start)
    except (TypeError, ValueError):
        raise ValueError(f"start: need two numbers (x, y), got {start!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"start: both coordinates must be finite, got ({x}, {y})")
    return x, y


def run_track(
    landscape: Landscape,
    variant: str,
    hp: dict | None,
    start,
    lr: float,
    steps: int,
    momentum: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
) -> Track:
    """One variant from one start, all steps recorded (float64)."""
    return run_tracks(landscape, variant, hp, start, [lr], steps, momentum, noise, seed)[0]


def run_tracks(
    landscape: Landscape,
    variant: str,
    hp: dict | None,
    start,
    lrs: Sequence[float],
    steps: int,
    momentum: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
) -> list[Track]:
    """The same race at every lr of ``lrs`` in one batched ``simulate`` (one row per lr, the same noise
    draws for all): each track equals ``run_track`` at its lr. A single trajectory is dispatch-bound, so 60
    learning rates cost about what one does, and an lr slider over ``lrs`` then never waits."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or not 1 <= steps <= 100_000:
        raise ValueError(f"steps: must be an integer in [1, 100000], got {steps!r}")
    if not len(lrs):
        return []
    hpv = resolve_hparams(variant, **(hp or {}))
    x, y = _check_start(start)
    n = len(lrs)
    w0 = torch.tensor([[x, y]], dtype=torch.float64).repeat(n, 1)
    lr = float(lrs[0]) if n == 1 else torch.tensor([float(v) for v in lrs], dtype=torch.float64)
    # A closed-form gradient needs no autograd: inference mode drops its bookkeeping (dispatch key, version
    # counters) from each of the ~35 small ops of a step, ~15 % of a race here (docs/PERFORMANCE.md). An
    # expression's gradient comes from autograd and runs as before.
    mode = torch.inference_mode() if landscape.fg is not None else contextlib.nullcontext()
    with mode:
        res = simulate_resolved(
            variant,
            landscape.grad_fn,
            w0,
            int(steps),
            lr,
            hpv,
            momentum=momentum,
            noise=noise,
            seed=seed,
            record=True,
            shared_noise=True,
            grad_only=landscape.grad_only,
        )
    passes = get_spec(variant).passes
    # the distance to the nearest minimum is plain numpy arithmetic per point (the same numbers whatever the
    # array's layout): computed for every row's iterates at once, a block of points at a time (it builds one
    # entry per point and minimum: rastrigin has 121). f stays one call per track: torch's pow of a typed
    # expression gives results that depend on where a value sits in memory, and each track must equal run_track.
    W = res.w.numpy()
    dist_all = _nearest_dist(landscape, W)
    out = []
    for i, lr_i in enumerate(lrs):
        div = int(res.diverged_step[i])
        K = int(steps) if div < 0 else div - 1  # steps completed with a finite result
        out.append(
            Track(
                variant=variant,
                hp=hpv,
                lr=float(lr_i),
                w=W[: K + 1, i].copy(),
                ascent=res.ascent[:K, i].numpy().copy(),
                loss=landscape.value(W[: K + 1, i]),
                grad_norm=res.grad_norm[:K, i].numpy().copy(),
                gamma=res.gamma[:K, i].numpy().copy(),
                dist=dist_all[: K + 1, i].copy(),
                passes=passes,
                diverged_step=None if div < 0 else div,
                meta={"momentum": momentum, "noise": noise, "seed": seed, "start": (x, y)},
            )
        )
    return out


NEAREST_BLOCK = 1 << 13  # points per call of Landscape.nearest in run_tracks (× minima × 2 floats)


def _nearest_dist(landscape: Landscape, W: np.ndarray) -> np.ndarray:
    """Distance to the nearest minimum of every point of ``W (..., 2)`` (nan without minima), in blocks."""
    if not len(landscape.minima):
        return np.full(W.shape[:-1], np.nan)
    flat = W.reshape(-1, 2)
    out = np.empty(len(flat))
    for a in range(0, len(flat), NEAREST_BLOCK):
        out[a : a + NEAREST_BLOCK] = landscape.nearest(flat[a : a + NEAREST_BLOCK])[1]
    return out.reshape(W.shape[:-1])


def race_steps(variant: str, steps: int, equal_evals: bool) -> int:
    """Steps a variant runs: ``steps``, or ``steps // passes`` with equal gradient evaluations."""
    return max(1, int(steps) // get_spec(variant).passes) if equal_evals else int(steps)


def race(
    landscape: Landscape,
    variants: Sequence[str],
    lr: float,
    steps: int,
    start=None,
    hp: dict[str, dict] | None = None,
    momentum: float = 0.0,
    noise: float = 0.0,
    seed: int = 0,
    equal_evals: bool = False,
) -> list[Track]:
    """Run every variant from the same start with the same lr and the same noise draws."""
    start = landscape.start if start is None else start
    hp = hp or {}
    return [
        run_track(landscape, v, hp.get(v), start, lr, race_steps(v, steps, equal_evals), momentum, noise, seed)
        for v in variants
    ]


def tracks_frame(tracks: Sequence[Track]) -> pd.DataFrame:
    """All tracks as one long table (for CSV export): one row per (variant, step)."""
    parts = []
    for t in tracks:
        K = t.steps
        pad = np.full(1, np.nan)
        parts.append(
            pd.DataFrame(
                {
                    "variant": t.variant,
                    "step": np.arange(K + 1),
                    "grad_evals": t.evals,
                    "x": t.w[:, 0],
                    "y": t.w[:, 1],
                    "ascent_x": np.concatenate((t.ascent[:, 0], pad)),
                    "ascent_y": np.concatenate((t.ascent[:, 1], pad)),
                    "loss": t.loss,
                    "grad_norm": np.concatenate((t.grad_norm, pad)),
                    "gamma": np.concatenate((t.gamma, pad)),
                    "distance_to_min": t.dist,
                    "lr": t.lr,
                    "diverged_step": -1 if t.diverged_step is None else t.diverged_step,
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
