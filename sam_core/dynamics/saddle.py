"""Saddle escape on the linear autoencoder (Stable SAM paper, Fig. 1), all runs of a variant at once.

    for progress, res in run_saddle(["sgd", "usam", "ssam"], rhos=[0.1, 0.5], seeds=[0, 1, 2]):
        ...                                    # res: a SaddleResult snapshot, safe to keep
    res.escape_epochs(0.5)                     # first epoch with L < 0.5 L(0), NaN if never

Each variant is one batched computation over its ρ × seeds runs (``R = len(rhos) * len(seeds)``,
run ``r = i_rho * n_seeds + i_seed``; SGD has no ρ and runs once per seed). The update direction
comes from :func:`sam_core.rules.sam_direction` with per-run ρ tensors; the base step is plain
GD (optionally heavy-ball momentum) ``w ← w − lr d``, :func:`sam_core.step.base_step`. Runs with the
same seed share the initialisation and the mini-batch order (common random numbers), whatever the
variant or ρ.

An *epoch* is one pass over the ``n_samples`` synthetic inputs in mini-batches of ``batch_size``
(the last batch may be smaller), one full-batch step, or one step on the population loss
``½‖W2 W1 − I‖²_F``. The recorded loss (epoch 0 = initialisation) is the loss on the whole data set
(or the population loss) at the end of each epoch; ``γ_t`` is averaged over the epoch's steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from sam_core import rules
from sam_core.checks import need
from sam_core.dynamics.problems.autoencoder import (
    ae_loss,
    ae_loss_grad,
    batch_second_moment,
    init_autoencoder,
    make_autoencoder_data,
)
from sam_core.registry import get_spec, resolve_hparams
from sam_core.step import base_step
from sam_core.threads import limited_threads

__all__ = ["SaddleConfig", "SaddleResult", "escape_epochs", "run_saddle"]


@dataclass(frozen=True)
class SaddleConfig:
    """Settings of the saddle experiment (defaults: the paper's d = 20, σ² = 1e-4, lr 1e-3, 500 epochs)."""

    d: int = 20
    init_var: float = 1e-4
    lr: float = 1e-3
    epochs: int = 500
    n_samples: int = 1000
    batch_size: int | None = 50  # None: full batch
    population: bool = False  # exact population loss ½‖W2W1 − I‖²_F, one step per epoch
    momentum: float = 0.0
    data_seed: int = 0

    def validate(self) -> SaddleConfig:
        need(1 <= int(self.d) <= 512, "d", "[1, 512]", self.d)
        need(0 < float(self.init_var) <= 10, "init_var", "(0, 10]", self.init_var)
        need(math.isfinite(self.lr) and 0 < float(self.lr) <= 10, "lr", "(0, 10]", self.lr)
        need(1 <= int(self.epochs) <= 100_000, "epochs", "[1, 100000]", self.epochs)
        need(1 <= int(self.n_samples) <= 1_000_000, "n_samples", "[1, 1000000]", self.n_samples)
        if self.batch_size is not None:
            need(
                1 <= int(self.batch_size) <= int(self.n_samples),
                "batch_size",
                f"[1, n_samples={self.n_samples}] (or full batch)",
                self.batch_size,
            )
        need(0 <= float(self.momentum) < 1, "momentum", "[0, 1)", self.momentum)
        return self

    @property
    def steps_per_epoch(self) -> int:
        if self.population or self.batch_size is None:
            return 1
        return math.ceil(self.n_samples / self.batch_size)


def escape_epochs(loss: np.ndarray, frac: float = 0.5) -> np.ndarray:
    """First epoch ``e ≥ 1`` with ``loss[..., e] < frac · loss[..., 0]``; NaN where it never happens."""
    if not 0 < frac < 1:
        raise ValueError(f"escape fraction must be in (0, 1), got {frac}")
    loss = np.asarray(loss, dtype=float)
    with np.errstate(invalid="ignore"):
        below = loss[..., 1:] < frac * loss[..., :1]
    first = np.argmax(below, axis=-1).astype(float) + 1.0
    first[~below.any(axis=-1)] = np.nan
    return first


@dataclass
class SaddleResult:
    """Recorded curves of one comparison; arrays are ``(n_rho, n_seeds, epochs + 1)``, NaN = not yet run."""

    config: SaddleConfig
    variants: list[str]
    rhos: dict[str, list[float]]  # per variant ([0.0] for sgd)
    seeds: list[int]
    loss: dict[str, np.ndarray]
    w_norm: dict[str, np.ndarray]  # ‖(W1, W2)‖ global norm
    gamma: dict[str, np.ndarray]  # γ_t = ‖g‖/‖g_adv‖ averaged over the epoch (epoch 0: NaN)
    epochs_done: int = 0
    elapsed_s: float = 0.0
    diverged: dict[str, np.ndarray] = field(default_factory=dict)  # (n_rho, n_seeds) bool

    @property
    def epochs(self) -> np.ndarray:
        return np.arange(self.config.epochs + 1)

    def escape_epochs(self, frac: float = 0.5) -> dict[str, np.ndarray]:
        """Per variant ``(n_rho, n_seeds)`` escape epochs (NaN: not escaped within the epochs run)."""
        return {v: escape_epochs(self.loss[v][..., : self.epochs_done + 1], frac) for v in self.variants}

    def escape_table(self, frac: float = 0.5) -> pd.DataFrame:
        """One row per (variant, ρ): mean and std of the escape epoch over the seeds that escaped."""
        rows = []
        for v, esc in self.escape_epochs(frac).items():
            for i, rho in enumerate(self.rhos[v]):
                e = esc[i]
                ok = e[np.isfinite(e)]
                rows.append(
                    {
                        "variant": v,
                        "rho": rho,
                        "escaped": f"{ok.size}/{e.size}",
                        "escape_epoch_mean": float(ok.mean()) if ok.size else np.nan,
                        "escape_epoch_std": float(ok.std()) if ok.size > 1 else np.nan,
                    }
                )
        return pd.DataFrame(rows)

    def to_frame(self) -> pd.DataFrame:
        """Long table ``variant, rho, seed, epoch, loss, w_norm, gamma`` of the epochs run so far."""
        frames = []
        ep = np.arange(self.epochs_done + 1)
        for v in self.variants:
            for i, rho in enumerate(self.rhos[v]):
                for j, s in enumerate(self.seeds):
                    frames.append(
                        pd.DataFrame(
                            {
                                "variant": v,
                                "rho": rho,
                                "seed": s,
                                "epoch": ep,
                                "loss": self.loss[v][i, j, : ep.size],
                                "w_norm": self.w_norm[v][i, j, : ep.size],
                                "gamma": self.gamma[v][i, j, : ep.size],
                            }
                        )
                    )
        return (
            pd.concat(frames, ignore_index=True)
            if frames
            else pd.DataFrame(columns=["variant", "rho", "seed", "epoch", "loss", "w_norm", "gamma"])
        )

    def snapshot(self) -> SaddleResult:
        return replace(
            self,
            loss={k: v.copy() for k, v in self.loss.items()},
            w_norm={k: v.copy() for k, v in self.w_norm.items()},
            gamma={k: v.copy() for k, v in self.gamma.items()},
            diverged={k: v.copy() for k, v in self.diverged.items()},
        )


def run_saddle(
    variants: Sequence[str],
    rhos: Sequence[float],
    seeds: Sequence[int],
    config: SaddleConfig | None = None,
    hparams: dict[str, dict] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    yield_every_s: float = 0.25,
    threads: int | None = 1,
) -> Iterator[tuple[float, SaddleResult]]:
    """Run the comparison; yields ``(progress in [0, 1], SaddleResult snapshot)`` as it goes.

    ``hparams``: extra hyperparameters per variant (e.g. ``{"unified_sam": {"lam": 0.5}}``); ρ comes
    from ``rhos``. The last item yielded has progress 1. Closing the generator stops the run.
    ``threads``: torch threads of the running thread (1 is fastest for these tiny matrices).
    """
    with limited_threads(threads):
        yield from _run_saddle(variants, rhos, seeds, config, hparams, device, dtype, yield_every_s)


def _run_saddle(variants, rhos, seeds, config, hparams, device, dtype, yield_every_s):
    cfg = (config or SaddleConfig()).validate()
    variants = list(dict.fromkeys(variants))
    if not variants:
        raise ValueError("variants: choose at least one variant")
    for v in variants:
        get_spec(v)
    rhos = [float(r) for r in rhos]
    if not rhos:
        raise ValueError("rho: give at least one value")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds: give at least one seed")
    hparams = hparams or {}
    dev = torch.device(device)
    n_s = len(seeds)

    # per-variant batched setup
    runs = {}
    for v in variants:
        v_rhos = rhos if "rho" in get_spec(v).hparams else [0.0]
        R = len(v_rhos) * n_s
        extra = {k: val for k, val in hparams.get(v, {}).items() if k != "rho"}
        if "rho" in get_spec(v).hparams:
            rho_t = torch.tensor(v_rhos, dtype=dtype, device=dev).repeat_interleave(n_s)  # (R,)
            hp = resolve_hparams(v, rho=rho_t, **extra)
        else:
            hp = resolve_hparams(v, **extra)
        W = init_autoencoder(seeds, cfg.d, cfg.init_var, device=dev, dtype=dtype)
        params = [w.repeat(len(v_rhos), 1, 1) for w in W]  # (R, d, d): same init for every ρ
        runs[v] = dict(
            rhos=v_rhos,
            R=R,
            hp=hp,
            params=params,
            state=rules.init_state(v),
            buf=[torch.zeros_like(p) for p in params] if cfg.momentum else None,
            seed_of_run=torch.arange(R, device=dev) % n_s,
        )

    E = int(cfg.epochs)
    shape = lambda v: (len(runs[v]["rhos"]), n_s, E + 1)  # noqa: E731
    res = SaddleResult(
        config=cfg,
        variants=variants,
        rhos={v: runs[v]["rhos"] for v in variants},
        seeds=seeds,
        loss={v: np.full(shape(v), np.nan) for v in variants},
        w_norm={v: np.full(shape(v), np.nan) for v in variants},
        gamma={v: np.full(shape(v), np.nan) for v in variants},
        diverged={v: np.zeros(shape(v)[:2], dtype=bool) for v in variants},
    )

    data = None if cfg.population else make_autoencoder_data(cfg.n_samples, cfg.d, cfg.data_seed, dev, dtype)
    S_full = None if data is None else data.S_full
    full_batch = cfg.population or cfg.batch_size is None
    b = cfg.n_samples if full_batch else int(cfg.batch_size)
    perm_gens = [torch.Generator().manual_seed(10_000 + s) for s in seeds]

    def record(e):
        for v in variants:
            r = runs[v]
            with torch.no_grad():
                loss = ae_loss(r["params"], S_full)
                wn = rules.global_norm(r["params"], 1)
            shp = shape(v)[:2]
            res.loss[v][:, :, e] = loss.double().cpu().numpy().reshape(shp)
            res.w_norm[v][:, :, e] = wn.double().cpu().numpy().reshape(shp)
            res.diverged[v] |= ~np.isfinite(res.loss[v][:, :, e])

    t0 = time.perf_counter()
    record(0)
    last_yield = time.perf_counter()
    yield 0.0, res.snapshot()
    step = 0
    lr, beta = float(cfg.lr), float(cfg.momentum)
    with torch.no_grad():
        for epoch in range(1, E + 1):
            if full_batch:
                batches = [None]
            else:
                perms = torch.stack([torch.randperm(cfg.n_samples, generator=g) for g in perm_gens]).to(dev)
                batches = [perms[:, k : k + b] for k in range(0, cfg.n_samples, b)]  # (n_s, b_k)
            gsum = {v: 0.0 for v in variants}
            for idx in batches:
                step += 1
                S_seed = S_full if idx is None else batch_second_moment(data.X, idx)  # (n_s, d, d)
                S_by_R: dict = {}  # runs of every variant with the same R share the run -> seed map
                for v in variants:
                    r = runs[v]
                    if S_seed is None or S_seed.dim() == 2:
                        S = S_seed
                    else:
                        S = S_by_R.get(r["R"])
                        if S is None:
                            S = S_by_R[r["R"]] = S_seed[r["seed_of_run"]]  # (R, d, d)

                    def grad_fn(ps, S=S):  # the batch loss is not needed: the full loss is logged per epoch
                        return ae_loss_grad(ps, S, with_loss=False)

                    d, stats, _ = rules.sam_direction(
                        v, r["params"], grad_fn, r["hp"], r["state"], step, batch_dims=1, lr=lr
                    )
                    r["params"], r["buf"] = base_step(r["params"], d, lr, r["buf"], beta)  # w ← w − lr d
                    gsum[v] = gsum[v] + stats["gamma"]
            record(epoch)
            for v in variants:
                g = (gsum[v] / len(batches)).double().cpu().numpy().reshape(shape(v)[:2])
                res.gamma[v][:, :, epoch] = g
            res.epochs_done = epoch
            now = time.perf_counter()
            if epoch == E or now - last_yield >= yield_every_s:
                res.elapsed_s = now - t0
                last_yield = now
                yield epoch / E, res.snapshot()
