"""Edge of stability (Long & Bartlett): full-batch GD vs SAM (and the others) on a small MLP.

Every ``eig_every`` steps the top Hessian eigenvalue of the training loss is estimated by Lanczos
(:func:`sam_core.hessian.top_eigenvalues`) warm-started from the previous eigenvector, and compared
with ``2/η`` (:func:`sam_core.gd_edge`) and the SAM edge from the current clean gradient norm
(:func:`sam_core.sam_edge`); the alignment ``|⟨g, v⟩|/‖g‖`` of the gradient with the top eigenvector is
logged too. The SAM edge was derived for SAM with plain GD steps: for the other variants (and with
momentum) it is a heuristic reference line.

    for progress, res in run_eos(["sgd", "sam"], EoSConfig(lr=0.4, rho=0.05)):
        ...
    res.to_frame()   # variant, step, loss, grad_norm, top_eig, gd_edge, sam_edge, alignment

The time spent training and the time spent tracking the eigenvalue are measured separately
(``train_s``, ``track_s``), which is what ``benchmarks/bench_eos_tracking.py`` reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch

from sam_core import hessian, rules
from sam_core.checks import need
from sam_core.dynamics.problems.mlp import (
    ACTIVATIONS,
    flatten,
    init_mlp,
    make_eos_data,
    mlp_loss,
    mlp_loss_grad,
    unflatten,
)
from sam_core.registry import get_spec, resolve_hparams
from sam_core.step import base_step
from sam_core.theory import effective_rho, gd_edge, sam_edge
from sam_core.threads import limited_threads

__all__ = ["CSV_COLUMNS", "EoSConfig", "EoSResult", "run_eos", "sam_edge_curve", "track_top_eigenvalue"]

CSV_COLUMNS = ["variant", "step", "loss", "grad_norm", "top_eig", "gd_edge", "sam_edge"]


@dataclass(frozen=True)
class EoSConfig:
    """The live panel's settings (defaults: a CPU-sized version of Long & Bartlett's MLP experiment)."""

    dataset: str = "synthetic"
    n: int = 1000
    in_dim: int = 20
    classes: int = 4
    width: int = 64
    depth: int = 3  # hidden layers
    activation: str = "tanh"
    lr: float = 0.4
    rho: float = 0.05
    momentum: float = 0.0
    steps: int = 1500
    eig_every: int = 50
    eig_method: str = "lanczos"
    eig_tol: float = 1e-3
    eig_max_iter: int = 30
    warm_start: bool = True  # start Lanczos from the previous top eigenvector
    seed: int = 0
    data_dir: str | None = None

    def validate(self) -> EoSConfig:
        need(1 <= self.width <= 4096, "width", "[1, 4096]", self.width)
        need(1 <= self.depth <= 16, "depth", "[1, 16]", self.depth)
        need(self.activation in ACTIVATIONS, "activation", list(ACTIVATIONS), self.activation)
        need(math.isfinite(self.lr) and 0 < self.lr <= 100, "lr", "(0, 100]", self.lr)
        need(0 <= self.rho <= 10, "rho", "[0, 10]", self.rho)
        need(0 <= self.momentum < 1, "momentum", "[0, 1)", self.momentum)
        need(1 <= self.steps <= 1_000_000, "steps", "[1, 1000000]", self.steps)
        need(1 <= self.eig_every <= 1_000_000, "eig_every", "[1, 1000000]", self.eig_every)
        need(self.eig_method in ("lanczos", "power"), "eig_method", "['lanczos', 'power']", self.eig_method)
        need(0 < self.eig_tol < 1, "eig_tol", "(0, 1)", self.eig_tol)
        need(2 <= self.eig_max_iter <= 1000, "eig_max_iter", "[2, 1000]", self.eig_max_iter)
        return self


@dataclass
class EoSResult:
    config: EoSConfig
    variants: list[str]
    steps: dict[str, list[int]] = field(default_factory=dict)  # every step
    loss: dict[str, list[float]] = field(default_factory=dict)
    grad_norm: dict[str, list[float]] = field(default_factory=dict)
    sam_edge: dict[str, list[float]] = field(default_factory=dict)  # from the current ‖g‖
    eig_steps: dict[str, list[int]] = field(default_factory=dict)  # every eig_every steps
    top_eig: dict[str, list[float]] = field(default_factory=dict)
    alignment: dict[str, list[float]] = field(default_factory=dict)
    n_hvp: dict[str, list[int]] = field(default_factory=dict)
    diverged_step: dict[str, int] = field(default_factory=dict)
    train_s: float = 0.0
    track_s: float = 0.0
    steps_done: int = 0

    @property
    def gd_edge(self) -> float:
        return float(gd_edge(self.config.lr, self.config.momentum))

    @property
    def tracking_share(self) -> float:
        """Tracking time as a fraction of training time."""
        return self.track_s / self.train_s if self.train_s > 0 else float("nan")

    def snapshot(self) -> EoSResult:
        cp = lambda d: {k: list(v) for k, v in d.items()}  # noqa: E731
        return replace(
            self,
            steps=cp(self.steps),
            loss=cp(self.loss),
            grad_norm=cp(self.grad_norm),
            sam_edge=cp(self.sam_edge),
            eig_steps=cp(self.eig_steps),
            top_eig=cp(self.top_eig),
            alignment=cp(self.alignment),
            n_hvp=cp(self.n_hvp),
            diverged_step=dict(self.diverged_step),
        )

    def to_frame(self) -> pd.DataFrame:
        """One row per variant and step: ``variant, step, loss, grad_norm, top_eig, gd_edge, sam_edge,
        alignment`` (top_eig / alignment empty on steps without an estimate)."""
        frames = []
        for v in self.variants:
            df = pd.DataFrame(
                {
                    "variant": v,
                    "step": self.steps[v],
                    "loss": self.loss[v],
                    "grad_norm": self.grad_norm[v],
                    "gd_edge": self.gd_edge,
                    "sam_edge": self.sam_edge[v],
                }
            )
            eig = pd.DataFrame({"step": self.eig_steps[v], "top_eig": self.top_eig[v], "alignment": self.alignment[v]})
            frames.append(df.merge(eig, on="step", how="left"))
        if not frames:
            return pd.DataFrame(columns=[*CSV_COLUMNS, "alignment"])
        out = pd.concat(frames, ignore_index=True)
        return out[[*CSV_COLUMNS, "alignment"]]


def track_top_eigenvalue(
    loss_of_flat,
    w_flat: torch.Tensor,
    v0: torch.Tensor | None,
    method: str = "lanczos",
    tol: float = 1e-3,
    max_iter: int = 30,
    seed: int = 0,
):
    """Top Hessian eigenvalue of ``loss_of_flat`` at ``w_flat``, warm-started from ``v0``.

    Returns ``(eigenvalue, eigenvector, alignment |⟨g, v⟩|/‖g‖, grad, n_hvp)``.
    """
    op = hessian.FunctionOperator(loss_of_flat, w_flat)
    res = hessian.top_eigenvalues(
        op, k=1, method=method, v0=v0, tol=tol, max_iter=max_iter, seed=seed, which="algebraic"
    )
    v = res.vectors[0]
    g = op.grad
    align = float((g @ v).abs() / (g.norm() + 1e-30))
    return float(res.values[0]), v.detach(), align, g, res.n_hvp


def run_eos(
    variants: Sequence[str],
    config: EoSConfig | None = None,
    hparams: dict[str, dict] | None = None,
    device: str | torch.device = "cpu",
    yield_every_s: float = 0.3,
    threads: int | None = 1,
) -> Iterator[tuple[float, EoSResult]]:
    """Train every variant from the same initialisation, full batch; yields ``(progress, EoSResult)``.

    ρ comes from ``config.rho`` for every variant that has one; ``hparams`` adds other hyperparameters
    per variant (e.g. ``{"unified_sam": {"lam": 0.5}}``).
    """
    cfg = (config or EoSConfig()).validate()
    with limited_threads(threads):
        yield from _run_eos(list(dict.fromkeys(variants)), cfg, hparams or {}, torch.device(device), yield_every_s)


def _run_eos(variants, cfg, hparams, dev, yield_every_s):
    if not variants:
        raise ValueError("variants: choose at least one variant")
    X, Y = make_eos_data(cfg.dataset, cfg.n, cfg.in_dim, cfg.classes, cfg.seed, cfg.data_dir, device=dev)
    sizes = [X.shape[1]] + [cfg.width] * cfg.depth + [Y.shape[1]]
    act = cfg.activation

    def grad_fn(ps):
        return mlp_loss_grad(ps, X, Y, act)

    runs = {}
    for v in variants:
        spec = get_spec(v)
        extra = {k: val for k, val in hparams.get(v, {}).items() if k != "rho"}
        hp = resolve_hparams(v, rho=cfg.rho, **extra) if "rho" in spec.hparams else resolve_hparams(v, **extra)
        params = init_mlp(sizes, seed=cfg.seed, device=dev)
        runs[v] = dict(
            hp=hp,
            params=params,
            state=rules.init_state(v),
            v0=None,
            alive=True,
            buf=[torch.zeros_like(p) for p in params] if cfg.momentum else None,
        )
    res = EoSResult(config=cfg, variants=variants)
    for d in (res.steps, res.loss, res.grad_norm, res.sam_edge, res.eig_steps, res.top_eig, res.alignment, res.n_hvp):
        d.update({v: [] for v in variants})

    def track(v, step):
        r = runs[v]
        like = r["params"]

        def f(w):
            return mlp_loss(unflatten(w, like), X, Y, act)

        t0 = time.perf_counter()
        try:
            lam, vec, align, _, n_hvp = track_top_eigenvalue(
                f, flatten(like).detach(), r["v0"], cfg.eig_method, cfg.eig_tol, cfg.eig_max_iter, seed=cfg.seed
            )
        except (RuntimeError, ValueError):  # e.g. eigh failing on non-finite curvature near a blow-up
            lam, vec, align, n_hvp = float("nan"), None, float("nan"), 0
        res.track_s += time.perf_counter() - t0
        if vec is not None and bool(torch.isfinite(vec).all()) and cfg.warm_start:
            r["v0"] = vec
        res.eig_steps[v].append(step)
        res.top_eig[v].append(lam)
        res.alignment[v].append(align)
        res.n_hvp[v].append(n_hvp)

    lr, beta = float(cfg.lr), float(cfg.momentum)
    last_yield = time.perf_counter()
    yield 0.0, res.snapshot()
    for step in range(cfg.steps + 1):  # step t: the state after t updates; the update at t uses w_t
        for v in variants:
            r = runs[v]
            if not r["alive"]:
                continue
            if step % cfg.eig_every == 0:
                track(v, step)
            if step == cfg.steps:  # final state: loss / ‖g‖ only
                t0 = time.perf_counter()
                loss, g = grad_fn(r["params"])
                res.train_s += time.perf_counter() - t0
                gn = float(rules.global_norm(g))
                _log(res, v, step, float(loss), gn, cfg, r)
                continue
            t0 = time.perf_counter()
            d, stats, _ = rules.sam_direction(v, r["params"], grad_fn, r["hp"], r["state"], step + 1, lr=lr)
            with torch.no_grad():
                r["params"], r["buf"] = base_step(r["params"], d, lr, r["buf"], beta)
            res.train_s += time.perf_counter() - t0
            loss, gn = float(stats["loss"]), float(stats["grad_norm"])
            _log(res, v, step, loss, gn, cfg, r)
            if not (math.isfinite(loss) and math.isfinite(gn)) or not all(
                bool(torch.isfinite(p).all()) for p in r["params"]
            ):
                r["alive"] = False
                res.diverged_step[v] = step
        res.steps_done = step
        now = time.perf_counter()
        if step == cfg.steps or now - last_yield >= yield_every_s:
            last_yield = now
            yield step / cfg.steps, res.snapshot()


def _log(res: EoSResult, v: str, step: int, loss: float, gn: float, cfg: EoSConfig, r: dict) -> None:
    res.steps[v].append(step)
    res.loss[v].append(loss)
    res.grad_norm[v].append(gn)
    rho_eff = effective_rho(v, r["hp"], gn, step + 1)  # ρ‖g‖ for the unnormalised ascents (USAM, SSAM)
    if rho_eff is not None and rho_eff > 0 and gn > 0 and math.isfinite(gn):
        res.sam_edge[v].append(float(sam_edge(gn, cfg.lr, rho_eff, cfg.momentum)))
    else:
        res.sam_edge[v].append(float("nan"))


def sam_edge_curve(alpha: np.ndarray) -> np.ndarray:
    """λ_SAM/(2/η) against α = η‖g‖/(2ρ), computed through :func:`sam_core.sam_edge` itself."""
    alpha = np.asarray(alpha, dtype=float)
    lr, rho = 1.0, 1.0
    return sam_edge(2.0 * rho * alpha / lr, lr, rho) / (2.0 / lr)
