"""A small real problem for the Home presets that need training: an MLP on scikit-learn's digits.

``sklearn.datasets.load_digits`` ships 1 797 real 8×8 handwritten digits inside the wheel, so this runs
on a fresh offline machine. Every run uses ``sam_core.make_optimizer`` (the same optimizer the Training
lab uses) on a tanh MLP 64 → width → width → 10, full batch by default:

    for progress, res in run_digits(DigitsConfig(runs=(("SGD", "sgd", ()), ("SAM", "sam", (("rho", 0.05),))))):
        ...
    res.final("test_acc")    # {label: (n_seeds,) array}

Per run it records, every ``record_every`` steps: training loss, clean test accuracy, γ_t (the
optimizer's ``stats["gamma"]``, averaged over the window), and with ``twin=True`` the distance
‖w − w'‖ to a twin network trained in lockstep (same initialisation, same batches) on the training
set with one example replaced (the uniform-stability experiment of the Stable SAM paper). With
``top_k > 0`` the top Hessian eigenvalues of the training loss at the end come from
``sam_core.hessian`` (Lanczos). Symmetric label noise (``label_noise``) flips a fraction of the
training labels to a uniformly drawn class; test labels stay clean.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from sam_core import hessian
from sam_core.checks import need
from sam_core.optim import make_optimizer
from sam_core.registry import get_spec
from sam_core.threads import limited_threads

__all__ = ["DigitsConfig", "DigitsResult", "load_digits_split", "run_digits"]


@dataclass(frozen=True)
class DigitsConfig:
    """``runs``: ``(label, variant, ((hp name, value), ...))``, each trained once per seed."""

    runs: tuple = (("SGD", "sgd", ()),)
    steps: int = 300
    lr: float = 0.5
    batch_size: int | None = None  # None: full batch
    width: int = 64
    n_train: int = 1200
    label_noise: float = 0.0
    seeds: tuple = (0,)
    twin: bool = False
    top_k: int = 0
    record_every: int = 10
    data_seed: int = 0

    def validate(self) -> DigitsConfig:
        need(len(self.runs) >= 1, "runs", "a non-empty list", self.runs)
        for label, variant, hp in self.runs:
            get_spec(variant)
            need(isinstance(hp, tuple), f"runs[{label}].hp", "a tuple of (name, value) pairs", hp)
        need(1 <= int(self.steps) <= 1_000_000, "steps", "[1, 1000000]", self.steps)
        need(math.isfinite(self.lr) and 0 < self.lr <= 100, "lr", "(0, 100]", self.lr)
        need(1 <= self.width <= 4096, "width", "[1, 4096]", self.width)
        need(10 <= self.n_train <= 1697, "n_train", "[10, 1697]", self.n_train)
        if self.batch_size is not None:
            need(1 <= self.batch_size <= self.n_train, "batch_size", f"[1, n_train={self.n_train}]", self.batch_size)
        need(0 <= self.label_noise <= 1, "label_noise", "[0, 1]", self.label_noise)
        need(len(self.seeds) >= 1, "seeds", "a non-empty list", self.seeds)
        need(0 <= self.top_k <= 50, "top_k", "[0, 50]", self.top_k)
        need(1 <= self.record_every <= self.steps, "record_every", f"[1, steps={self.steps}]", self.record_every)
        return self


@dataclass
class DigitsResult:
    config: DigitsConfig
    labels: list[str]
    variants: dict[str, str]
    steps: list[int] = field(default_factory=list)  # recorded steps (shared by every run)
    curves: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # label -> metric -> (n_seeds, K)
    top_eigs: dict[str, np.ndarray] = field(default_factory=dict)  # label -> (n_seeds, top_k)
    runs_done: int = 0
    elapsed_s: float = 0.0

    METRICS = ("loss", "test_acc", "gamma", "twin_distance")

    def final(self, metric: str) -> dict[str, np.ndarray]:
        """Per label, the metric's last recorded value per seed (NaN where not run)."""
        return {lab: c[metric][:, -1] for lab, c in self.curves.items()}

    def mean_over(self, metric: str, last_frac: float = 0.5) -> dict[str, float]:
        """Per label, the mean of ``metric`` over the last ``last_frac`` of the recorded steps and the seeds."""
        out = {}
        for lab, c in self.curves.items():
            a = c[metric]
            k = max(1, int(round(a.shape[1] * last_frac)))
            with np.errstate(all="ignore"):
                vals = a[:, -k:]
                out[lab] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        return out

    def to_frame(self) -> pd.DataFrame:
        """Long table: label, variant, seed, step, loss, test_acc, gamma, twin_distance."""
        rows = []
        for lab, c in self.curves.items():
            for j, s in enumerate(self.config.seeds):
                rows.append(
                    pd.DataFrame(
                        {
                            "label": lab,
                            "variant": self.variants[lab],
                            "seed": s,
                            "step": self.steps,
                            **{m: c[m][j] for m in self.METRICS},
                        }
                    )
                )
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()

    def snapshot(self) -> DigitsResult:
        return replace(
            self,
            steps=list(self.steps),
            curves={k: {m: a.copy() for m, a in v.items()} for k, v in self.curves.items()},
            top_eigs={k: v.copy() for k, v in self.top_eigs.items()},
        )


def load_digits_split(n_train: int = 1200, seed: int = 0):
    """``(x_train, y_train, x_test, y_test)``: scikit-learn's digits scaled to [0, 1], a seeded random split."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(int(seed)))
    tr, te = perm[:n_train], perm[n_train:]
    return X[tr], y[tr], X[te], y[te]


def _noisy(y: torch.Tensor, rate: float, seed: int) -> torch.Tensor:
    if rate <= 0:
        return y
    g = torch.Generator().manual_seed(10_000 + int(seed))
    y = y.clone()
    flip = torch.rand(len(y), generator=g) < rate
    y[flip] = torch.randint(0, 10, (int(flip.sum()),), generator=g)
    return y


def _mlp(width: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(int(seed))
    return torch.nn.Sequential(
        torch.nn.Linear(64, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, 10),
    )


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _top_eigs(model: torch.nn.Module, X: torch.Tensor, y: torch.Tensor, k: int, seed: int) -> np.ndarray:
    shapes = [p.shape for p in model.parameters()]
    w0 = _flat(model)

    def loss_of(w):
        ps, i = [], 0
        for s in shapes:
            n = int(np.prod(s))
            ps.append(w[i : i + n].reshape(s))
            i += n
        h = torch.tanh(X @ ps[0].T + ps[1])
        h = torch.tanh(h @ ps[2].T + ps[3])
        return torch.nn.functional.cross_entropy(h @ ps[4].T + ps[5], y)

    op = hessian.FunctionOperator(loss_of, w0)
    res = hessian.top_eigenvalues(op, k=k, method="lanczos", max_iter=max(40, 3 * k), seed=seed)
    return np.sort(res.values.double().cpu().numpy())[::-1]


def run_digits(
    config: DigitsConfig, threads: int | None = 1, stop_event=None, yield_every_s: float = 0.3
) -> Iterator[tuple[float, DigitsResult]]:
    """Train every run of ``config`` (one after the other); yields ``(progress, DigitsResult snapshot)``."""
    cfg = config.validate()
    with limited_threads(threads):
        yield from _run(cfg, stop_event, yield_every_s)


def _run(cfg: DigitsConfig, stop_event, yield_every_s):
    Xtr, ytr_clean, Xte, yte = load_digits_split(cfg.n_train, cfg.data_seed)
    labels = [r[0] for r in cfg.runs]
    rec_steps = list(range(cfg.record_every, cfg.steps + 1, cfg.record_every))
    if rec_steps[-1] != cfg.steps:
        rec_steps.append(cfg.steps)
    S, K = len(cfg.seeds), len(rec_steps)
    res = DigitsResult(
        config=cfg,
        labels=labels,
        variants={r[0]: r[1] for r in cfg.runs},
        steps=rec_steps,
        curves={lab: {m: np.full((S, K), np.nan) for m in DigitsResult.METRICS} for lab in labels},
        top_eigs={lab: np.full((S, cfg.top_k), np.nan) for lab in labels} if cfg.top_k else {},
    )
    lossf = torch.nn.CrossEntropyLoss()
    t0 = last = time.perf_counter()
    total = len(cfg.runs) * S * cfg.steps
    done = 0
    yield 0.0, res.snapshot()
    for label, variant, hp in cfg.runs:
        for j, seed in enumerate(cfg.seeds):
            ytr = _noisy(ytr_clean, cfg.label_noise, seed)
            data = [(Xtr, ytr)]
            if cfg.twin:  # the same training set with example `seed % n` replaced by a test example
                Xt, yt = Xtr.clone(), ytr.clone()
                i = int(seed) % cfg.n_train
                Xt[i], yt[i] = Xte[i % len(yte)], yte[i % len(yte)]
                data.append((Xt, yt))
            models = [_mlp(cfg.width, seed) for _ in data]
            opts = [make_optimizer(variant, m.parameters(), lr=cfg.lr, **dict(hp)) for m in models]
            gen = torch.Generator().manual_seed(20_000 + int(seed))
            gsum, gcount, k = 0.0, 0, 0
            for t in range(1, cfg.steps + 1):
                idx = (
                    None if cfg.batch_size is None else torch.randint(0, cfg.n_train, (cfg.batch_size,), generator=gen)
                )
                for m, opt, (xx, yy) in zip(models, opts, data):
                    xb, yb = (xx, yy) if idx is None else (xx[idx], yy[idx])

                    def closure(m=m, opt=opt, xb=xb, yb=yb):
                        opt.zero_grad()
                        loss = lossf(m(xb), yb)
                        loss.backward()
                        return loss

                    opt.step(closure)
                g = opts[0].stats.get("gamma")
                if g is not None:
                    gsum += float(g)
                    gcount += 1
                done += 1
                if t == rec_steps[k]:
                    c = res.curves[label]
                    with torch.no_grad():
                        m0 = models[0]
                        c["loss"][j, k] = float(lossf(m0(Xtr), ytr))
                        c["test_acc"][j, k] = float((m0(Xte).argmax(1) == yte).float().mean())
                        if gcount:
                            c["gamma"][j, k] = gsum / gcount
                        if cfg.twin:
                            c["twin_distance"][j, k] = float((_flat(models[0]) - _flat(models[1])).norm())
                    gsum, gcount = 0.0, 0
                    k += 1
                    now = time.perf_counter()
                    if now - last >= yield_every_s or (done == rec_steps[0] and j == 0):  # first points at once
                        last = now
                        res.elapsed_s = now - t0
                        yield done / total, res.snapshot()
                if stop_event is not None and stop_event.is_set():
                    res.elapsed_s = time.perf_counter() - t0
                    yield done / total, res.snapshot()
                    return
            if cfg.top_k:
                try:
                    res.top_eigs[label][j] = _top_eigs(models[0], Xtr, ytr, cfg.top_k, int(seed))
                except (RuntimeError, ValueError):  # a diverged network: no eigenvalues, a NaN row
                    pass
            res.runs_done += 1
    res.elapsed_s = time.perf_counter() - t0
    yield 1.0, res.snapshot()
