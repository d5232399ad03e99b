"""Unified SAM on quadratics, ridge and logistic regression, with the paper's arbitrary sampling.

Building blocks:

- :func:`run_finite_sum`: one variant, many runs at once (per-run lr / ρ / λ tensors of shape (R,)),
  each run drawing its own mini-batches from a :class:`~sam_core.dynamics.problems.sampling.Sampling`; records
  ``(f(w_t) − f*)/(f(w_0) − f*)``. The direction comes from :func:`sam_core.rules.sam_direction`; the base
  step is ``w ← w − lr d`` (heavy ball optional). A run whose relative error becomes non-finite or exceeds
  ``DIVERGED`` is frozen and reported in ``diverged_step`` (a divergence is a result); the step and the
  freezing are :func:`sam_core.step.base_step` and :func:`sam_core.step.freeze`, shared with the other labs.
- :func:`theory_for`: the Unified SAM paper's step size γ and radius ρ for a problem and a sampling.
- :func:`run_quadratic_lab`: the page's three experiments (curves per variant / λ, a λ × lr heatmap of the
  final relative error, sampling strategies at equal numbers of per-example gradient evaluations), as a
  generator of ``(progress, QuadraticLabResult)``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from sam_core import rules
from sam_core.dynamics.problems.finite_sum import make_problem
from sam_core.dynamics.problems.sampling import Sampling, theory_stepsizes
from sam_core.registry import get_spec, resolve_hparams
from sam_core.step import base_step, freeze
from sam_core.threads import limited_threads

__all__ = [
    "DIVERGED",
    "CurveSet",
    "QuadraticLabConfig",
    "QuadraticLabResult",
    "run_finite_sum",
    "run_finite_sum_batched",
    "run_quadratic_lab",
    "theory_for",
]

DIVERGED = 1e10  # relative error above which a run counts as diverged
REPORT_EVERY_S = 0.5  # the lab reports a long curve's progress this often


@dataclass
class CurveSet:
    """Relative-error curves of ``R`` runs of one variant (one label in the plots)."""

    label: str
    variant: str
    steps: np.ndarray  # (K,) recorded steps, 0 = start
    grad_evals: np.ndarray  # (K,) per-example gradient evaluations used up to each recorded step
    rel_error: np.ndarray  # (K, R); NaN after a run diverged
    diverged_step: np.ndarray  # (R,) -1 = stayed finite
    lr: np.ndarray  # (R,)
    rho: np.ndarray  # (R,) (NaN for SGD)
    extra: dict = field(default_factory=dict)  # e.g. {"lam": (R,) values}, sampling label

    @property
    def final(self) -> np.ndarray:
        """Final relative error per run (NaN if diverged)."""
        return self.rel_error[-1]


def _as_runs(x: Any, R: int, dtype, device) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=dtype, device=device)
    return t.expand(R).clone() if t.dim() == 0 else t


def run_finite_sum(
    problem,
    variant: str,
    *,
    lr: Any,
    steps: int,
    hp: dict | None = None,
    sampling: Sampling | None = None,
    n_runs: int | None = None,
    seed: int = 0,
    noise: float = 0.0,
    momentum: float = 0.0,
    n_records: int = 300,
    label: str = "",
    should_stop=None,
    threads: int | None = 1,
) -> CurveSet:
    """Run ``variant`` on ``problem`` for ``steps`` steps, batched over runs (see the module docstring).

    ``lr`` and the values of ``hp`` (e.g. ``rho``, ``lam``) may be tensors of shape ``(R,)``; ``n_runs``
    gives R when they are all scalars (independent seeds: every run samples its own batches).
    ``noise``: std of Gaussian noise added to every gradient evaluation (same draw for all passes of a step).
    """
    run = _Batch(steps, n_runs, seed, noise, momentum, n_records, should_stop)
    with limited_threads(threads):
        return _run_groups(problem, variant, [_Group(lr, hp, sampling, label)], run)[0]


def run_finite_sum_batched(
    problem,
    variant: str,
    configs: list[dict],
    *,
    steps: int,
    n_runs: int = 1,
    seed: int = 0,
    noise: float = 0.0,
    momentum: float = 0.0,
    n_records: int = 300,
    should_stop=None,
    threads: int | None = 1,
) -> list[CurveSet]:
    """Several configurations of one variant in one batched run: the same as calling :func:`run_finite_sum`
    once per configuration with the same ``seed`` and ``n_runs``, in one computation of ``len(configs) × n_runs``
    runs.

    ``configs``: dicts with ``lr`` (scalar), ``hp`` (scalars; a schedule string must be the same in every
    config), ``sampling`` (default full batch; configurations may differ only in importance sampling's
    reweighting, since they share the drawn indices) and ``label``. Every configuration sees the mini-batches
    (and gradient noise) that its own call would have drawn (common random numbers across configurations).
    """
    groups = [_Group(c["lr"], c.get("hp"), c.get("sampling"), c.get("label", "")) for c in configs]
    with limited_threads(threads):
        return _run_groups(
            problem, variant, groups, _Batch(steps, n_runs, seed, noise, momentum, n_records, should_stop)
        )


@dataclass(frozen=True, eq=False)
class _Group:
    """One configuration of a batched run: its lr, hyperparameters, sampling and curve label."""

    lr: Any
    hp: dict | None = None
    sampling: Sampling | None = None
    label: str = ""


@dataclass(frozen=True, eq=False)
class _Batch:
    """What every configuration of one batched run shares."""

    steps: int
    n_runs: int | None = None
    seed: int = 0
    noise: float = 0.0
    momentum: float = 0.0
    n_records: int = 300
    should_stop: Callable[[], bool] | None = None


def _merge_hp(hps: list[dict], S: int, dtype, device) -> dict:
    """Per-configuration hyperparameters -> one dict of (G·S,) tensors (schedules must agree)."""
    keys = set().union(*hps)
    out: dict = {}
    for k in keys:
        vals = [h.get(k) for h in hps]
        if any(v is None for v in vals):
            raise ValueError(f"{k}: give it in every configuration of a batched run")
        if all(isinstance(v, str) for v in vals) and len(set(vals)) == 1:
            out[k] = vals[0]
        elif any(isinstance(v, str) for v in vals):
            raise ValueError(f"{k}: a schedule cannot be batched with other values ({vals})")
        else:
            out[k] = torch.tensor([float(v) for v in vals], dtype=dtype, device=device).repeat_interleave(S)
    return out


def _run_groups(problem, variant: str, groups: list[_Group], run: _Batch) -> list[CurveSet]:
    """The loop behind :func:`run_finite_sum` (one group) and :func:`run_finite_sum_batched` (G groups of S runs,
    run ``g·S + s``): every group draws the same indices / noise, coefficients are per group."""
    return list(_iter_groups(problem, variant, groups, run))[-1][1]  # without reports: the finished curves only


def _iter_groups(
    problem, variant: str, groups: list[_Group], run: _Batch, report_every_s: float | None = None
) -> Iterator[tuple[float, list[CurveSet]]]:
    """:func:`_run_groups` as a generator of ``(fraction of the steps done, curves so far)``: with
    ``report_every_s``, the curves recorded so far at most that often (a long curve grows on the page and its
    progress bar moves; each is a prefix of the finished curve), and always the finished curves last."""
    steps, n_runs, seed, noise, momentum = run.steps, run.n_runs, run.seed, run.noise, run.momentum
    n_records, should_stop = run.n_records, run.should_stop
    spec = get_spec(variant)
    samplings = []
    for grp in groups:
        smp = grp.sampling or Sampling("full")
        smp.check(problem.n)
        if problem.n == 1 and smp.kind != "full":
            smp = Sampling("full")
        samplings.append(smp)
    if len({(x.kind == "full", x.examples_per_eval(problem.n)) for x in samplings}) > 1:
        raise ValueError(
            "a batched run needs the same number of examples per gradient evaluation (batch size, or "
            "full batch) in every configuration"
        )
    if not 1 <= int(steps) <= 10_000_000:
        raise ValueError(f"steps must be in [1, 10000000], got {steps}")
    if not (noise >= 0 and math.isfinite(noise)):
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    G = len(groups)
    dtype, device = problem.w0.dtype, problem.w0.device
    if G == 1:
        lr, hp = groups[0].lr, dict(groups[0].hp or {})
        sizes = [v.numel() for v in [*hp.values(), lr] if isinstance(v, torch.Tensor) and v.dim() > 0]
        R = int(n_runs or (max(sizes) if sizes else 1))
        S = R
        lr_t = _as_runs(lr, R, dtype, device)
        hp = {
            k: (_as_runs(v, R, dtype, device) if isinstance(v, (torch.Tensor, np.ndarray)) else v)
            for k, v in hp.items()
        }
    else:
        S = int(n_runs or 1)
        R = G * S
        lr_t = torch.tensor([float(g.lr) for g in groups], dtype=dtype, device=device).repeat_interleave(S)
        hp = _merge_hp([dict(g.hp or {}) for g in groups], S, dtype, device)
    if not bool((torch.isfinite(lr_t) & (lr_t > 0)).all()):
        raise ValueError("lr must be finite and > 0 (every run)")
    hp = resolve_hparams(variant, **hp)
    rho_rec = hp.get("rho", float("nan"))
    rho_arr = _as_runs(rho_rec, R, dtype, device).cpu().numpy()

    w = problem.init(R)
    buf = [torch.zeros_like(w)] if momentum else None
    state = rules.init_state(variant)
    f0 = float(problem.loss(problem.w0[None])[0])
    gap0 = f0 - problem.f_star
    alive = torch.ones(R, dtype=torch.bool, device=device)
    div_step = torch.full((R,), -1, dtype=torch.long)
    every = max(1, int(steps) // max(1, int(n_records)))
    rec_steps, rec_err = [0], [torch.ones(R, dtype=torch.float64)]
    per_eval = samplings[0].examples_per_eval(problem.n)
    lr_col = lr_t[:, None]
    # one generator per distinct sampling, seeded like its own run_finite_sum call: every configuration draws
    # exactly the indices (and noise) it would alone; configurations with the same sampling share the draw
    keys = [(x.kind, x.batch_size, x.reweight) for x in samplings]
    uniq = list(dict.fromkeys(keys))
    gens = [torch.Generator().manual_seed(int(seed)) for _ in uniq]
    draws = [samplings[keys.index(u)].sampler(problem.L_i) for u in uniq]
    which = [uniq.index(k) for k in keys]
    passes = spec.passes
    lam_all = None
    if "lam" in hp and not isinstance(hp["lam"], str):
        lam_all = _as_runs(hp["lam"], R, dtype, device).cpu().numpy()

    def curves() -> list[CurveSet]:
        """The curves recorded so far (fresh arrays: a report is not changed by the steps after it)."""
        steps_arr = np.asarray(rec_steps)
        rel = torch.stack(rec_err, 0).numpy()
        out = []
        for k, label in enumerate(g.label for g in groups):
            sl = slice(k * S, (k + 1) * S)
            extra: dict = {}
            if lam_all is not None:
                extra["lam"] = lam_all[sl]
            if isinstance(hp.get("lam"), str):
                extra["lam_schedule"] = hp["lam"]
            extra["sampling"] = samplings[k].label
            out.append(
                CurveSet(
                    label=label or spec.label,
                    variant=variant,
                    steps=steps_arr,
                    grad_evals=steps_arr * passes * per_eval,
                    rel_error=rel[:, sl],
                    diverged_step=div_step.numpy()[sl].copy(),
                    lr=lr_t.cpu().numpy()[sl],
                    rho=rho_arr[sl],
                    extra=extra,
                )
            )
        return out

    reported = time.perf_counter()
    for t in range(1, int(steps) + 1):
        outs, xis = [], []
        for dr, g in zip(draws, gens):
            outs.append(dr(S, g))
            xis.append(
                noise * torch.randn((S, w.shape[1]), generator=g, dtype=torch.float64).to(device, dtype)
                if noise
                else None
            )
        if G == 1:
            batch, xi = outs[0], xis[0]
        else:
            batch = (
                None
                if outs[0] is None
                else (torch.cat([outs[u][0] for u in which], 0), torch.cat([outs[u][1] for u in which], 0))
            )
            xi = torch.cat([xis[u] for u in which], 0) if noise else None

        def grad_fn(ps, batch=batch, xi=xi):
            loss, g = problem.loss_grad(ps[0], batch)
            return loss, [g if xi is None else g + xi]

        d, _, n_ev = rules.sam_direction(variant, [w], grad_fn, hp, state, t, batch_dims=1, lr=lr_t)
        (w_new,), buf_new = base_step([w], d, lr_col, buf, momentum)
        last = t == int(steps) or (should_stop is not None and should_stop())
        if t % every == 0 or last:
            err = ((problem.loss(w_new) - problem.f_star) / gap0).to(torch.float64)
            bad = (~torch.isfinite(err) | (err > DIVERGED) | ~torch.isfinite(w_new).all(-1)).cpu() & alive.cpu()
        else:
            bad = (~torch.isfinite(w_new).all(-1)).cpu() & alive.cpu()
            err = None
        if bool(bad.any()):
            div_step[bad] = t
            alive &= ~bad.to(device)
        (w,), buf = freeze(alive, [w_new], [w], buf_new)
        if err is not None:
            rec_steps.append(t)
            rec_err.append(torch.where(alive.cpu(), err.cpu(), torch.full_like(err.cpu(), float("nan"))))
            if report_every_s is not None and not last and time.perf_counter() - reported >= report_every_s:
                reported = time.perf_counter()
                yield t / int(steps), curves()
        if last:
            break
    yield 1.0, curves()


def theory_for(problem, sampling: Sampling, lam: Any = 1.0) -> dict:
    """The Unified SAM paper's γ and ρ for ``problem`` under ``sampling`` (see sampling.theory_stepsizes)."""
    A, B = sampling.abc(problem.L_i) if problem.n > 1 else (0.0, 1.0)
    return theory_stepsizes(problem.L, problem.mu, A, B, lam)


# ================================================================================ the page's experiment
@dataclass(frozen=True)
class QuadraticLabConfig:
    """Everything the quadratics page (and ``demos.quadratic``) asks for; defaults give a quick run."""

    problem: str = "ridge"
    n: int = 100
    dim: int = 10
    cond: float = 10.0
    row_norm_ratio: float = 3.0
    reg: float = 1e-2
    noise: float = 0.0  # additive gradient noise (std)
    problem_seed: int = 0
    variants: tuple = ("sgd", "sam", "usam", "ssam", "unified_sam")
    lams: tuple = (0.0, 0.5, 1.0, "1/t")  # Unified SAM's λ values / schedules in the curves
    sampling: str = "nice"
    batch_size: int = 10
    reweight: bool = True
    lr_mult: float = 1.0  # lr = lr_mult × theoretical γ
    rho_mult: float = 1.0  # ρ = rho_mult × theoretical ρ(λ)
    lr: float | None = None  # an explicit lr overrides the theory
    rho: float | None = None  # an explicit ρ overrides the theory
    steps: int = 2000
    seeds: int = 3
    heatmap: bool = True
    heat_lams: tuple = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    heat_lr_mults: tuple = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
    compare_sampling: bool = True
    budget_epochs: float = 100.0  # sampling comparison budget: per-example gradient evaluations / n

    def build_problem(self):
        kw: dict = dict(dim=self.dim, cond=self.cond, seed=self.problem_seed)
        if self.problem != "quadratic":
            kw.update(n=self.n, row_norm_ratio=self.row_norm_ratio, reg=self.reg)
        return make_problem(self.problem, **kw)

    def build_sampling(self) -> Sampling:
        return Sampling(self.sampling, batch_size=self.batch_size, reweight=self.reweight)

    def validate(self):
        if not self.variants:
            raise ValueError("variants: choose at least one variant")
        for v in self.variants:
            get_spec(v)
        if not 1 <= self.budget_epochs <= 1e5:
            raise ValueError(f"budget_epochs must be in [1, 100000], got {self.budget_epochs}")
        for name, value, lo, hi in [("steps", self.steps, 1, 1_000_000), ("seeds", self.seeds, 1, 100)]:
            if not lo <= int(value) <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
        for name, value in [("lr_mult", self.lr_mult), ("rho_mult", self.rho_mult)]:
            if not (0 < value <= 1e6):
                raise ValueError(f"{name} must be in (0, 1e6], got {value}")
        if self.lr is not None and not (0 < self.lr <= 1e3):
            raise ValueError(f"lr must be in (0, 1000], got {self.lr}")
        if self.rho is not None and not (0 <= self.rho <= 10):
            raise ValueError(f"rho must be in [0, 10], got {self.rho}")
        for lam in self.lams:
            resolve_hparams("unified_sam", lam=lam)
        return self


@dataclass
class QuadraticLabResult:
    config: QuadraticLabConfig
    problem: dict  # problem.describe()
    theory: dict  # γ, ρ for the main sampling (λ = 1) and A, B
    curves: list[CurveSet] = field(default_factory=list)
    heatmap: dict | None = None  # lams (m,), lrs (k,), final (m, k) median over seeds, theory_lr
    sampling_curves: list[CurveSet] = field(default_factory=list)
    sampling_theory: list[dict] = field(default_factory=list)
    phase: str = ""

    def curves_frame(self) -> pd.DataFrame:
        """Long table: label, variant, lam, sampling, seed, step, grad_evals, rel_error."""
        frames = []
        for c in [*self.curves, *self.sampling_curves]:
            for r in range(c.rel_error.shape[1]):
                lam = c.extra.get("lam_schedule", c.extra["lam"][r] if "lam" in c.extra else np.nan)
                frames.append(
                    pd.DataFrame(
                        {
                            "label": c.label,
                            "variant": c.variant,
                            "lam": lam,
                            "sampling": c.extra.get("sampling", ""),
                            "seed": r,
                            "step": c.steps,
                            "grad_evals": c.grad_evals,
                            "rel_error": c.rel_error[:, r],
                            "lr": c.lr[r],
                            "rho": c.rho[r],
                        }
                    )
                )
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def snapshot(self) -> QuadraticLabResult:
        return replace(
            self,
            curves=list(self.curves),
            sampling_curves=list(self.sampling_curves),
            sampling_theory=list(self.sampling_theory),
        )


def _variant_runs(variant: str, lam, th_for_lam, cfg: QuadraticLabConfig, R: int):
    """(lr, hp, label) of one curve: theory defaults × multipliers, or the explicit values."""
    gamma = th_for_lam(1.0)["gamma"]
    lr = cfg.lr if cfg.lr is not None else cfg.lr_mult * gamma
    spec = get_spec(variant)
    hp: dict = {}
    label = spec.label
    if "rho" in spec.hparams:
        lam_for_rho = lam if "lam" in spec.hparams else spec.theory_lam  # the variant's place in Unified SAM
        rho = cfg.rho if cfg.rho is not None else cfg.rho_mult * th_for_lam(lam_for_rho)["rho"]
        hp["rho"] = rho
    if "lam" in spec.hparams:  # Unified SAM: one curve per λ
        hp["lam"] = lam
        label = f"{spec.label} λ={lam}"
    return lr, hp, label


def run_quadratic_lab(
    config: QuadraticLabConfig | None = None, threads: int | None = 1, stop_event=None
) -> Iterator[tuple[float, QuadraticLabResult]]:
    """The quadratics page's computation; yields ``(progress, QuadraticLabResult snapshot)``."""
    cfg = (config or QuadraticLabConfig()).validate()
    with limited_threads(threads):
        yield from _lab(cfg, stop_event)


def _lab(cfg: QuadraticLabConfig, stop_event):
    problem = cfg.build_problem()
    sampling = cfg.build_sampling() if problem.n > 1 else Sampling("full")
    sampling.check(problem.n)

    def th(lam):
        return theory_for(problem, sampling, lam)

    res = QuadraticLabResult(config=cfg, problem=problem.describe(), theory=th(1.0))
    should_stop = (lambda: stop_event.is_set()) if stop_event is not None else None  # noqa: E731
    # one job per variant; Unified SAM's numeric λ values are one batched job (λ a per-run tensor), each
    # schedule ("1/t") its own: the same curves as one run_finite_sum call per λ (common random numbers)
    jobs: list[tuple[str, list]] = []
    for v in cfg.variants:
        if "lam" not in get_spec(v).hparams:
            jobs.append((v, [None]))
            continue
        numeric = [x for x in cfg.lams if not isinstance(x, str)]
        if numeric:
            jobs.append((v, numeric))
        jobs += [(v, [x]) for x in cfg.lams if isinstance(x, str)]
    order = [(v, lam) for v in cfg.variants for lam in (cfg.lams if "lam" in get_spec(v).hparams else (None,))]
    n_parts = len(jobs) + int(cfg.heatmap) + int(cfg.compare_sampling and problem.n > 1)
    done = 0
    yield 0.0, res.snapshot()
    made: dict = {}
    for v, lams in jobs:
        runs = [_variant_runs(v, lam, th, cfg, cfg.seeds) for lam in lams]
        res.phase = "curves: " + ", ".join(label for _, _, label in runs)
        yield done / n_parts, res.snapshot()
        # the same computation as run_finite_sum (one λ) / run_finite_sum_batched (several), reporting the
        # curves as they grow: a 200 000-step curve takes over a minute here, and its bar should move
        groups = [_Group(lr, hp, sampling, label) for lr, hp, label in runs]
        batch = _Batch(cfg.steps, n_runs=cfg.seeds, seed=1, noise=cfg.noise, should_stop=should_stop)
        for frac, sets in _iter_groups(problem, v, groups, batch, report_every_s=REPORT_EVERY_S):
            for lam, cs in zip(lams, sets):
                made[(v, lam)] = cs
            if frac < 1.0:
                res.curves = [made[k] for k in order if k in made]
                yield (done + frac) / n_parts, res.snapshot()
        res.curves = [made[k] for k in order if k in made]
        done += 1
        yield done / n_parts, res.snapshot()
        if should_stop is not None and should_stop():
            return
    if cfg.heatmap:
        res.phase = "λ × lr heatmap"
        yield done / n_parts, res.snapshot()
        lams = torch.tensor([float(x) for x in cfg.heat_lams], dtype=torch.float64)
        mults = torch.tensor([float(x) for x in cfg.heat_lr_mults], dtype=torch.float64)
        base_lr = cfg.lr if cfg.lr is not None else th(1.0)["gamma"]
        S = cfg.seeds
        lam_r = lams.repeat_interleave(len(mults) * S)
        lr_r = (mults * base_lr).repeat_interleave(S).repeat(len(lams))
        rho_r = torch.tensor(
            [cfg.rho if cfg.rho is not None else cfg.rho_mult * th(float(x))["rho"] for x in lam_r], dtype=torch.float64
        )
        # run_finite_sum(problem, "unified_sam", lr=lr_r, hp={"rho": rho_r, "lam": lam_r}, steps=cfg.steps,
        # sampling=sampling, seed=2, noise=cfg.noise, label="heatmap"), its progress reported as it runs
        heat = _Group(lr_r, {"rho": rho_r, "lam": lam_r}, sampling, "heatmap")
        heat_run = _Batch(cfg.steps, seed=2, noise=cfg.noise, should_stop=should_stop)
        for frac, sets in _iter_groups(problem, "unified_sam", [heat], heat_run, REPORT_EVERY_S):
            if frac == 1.0:  # the last report: the finished run
                (cs,) = sets
                break
            yield (done + frac) / n_parts, res.snapshot()
        final = cs.final.reshape(len(lams), len(mults), S)
        with np.errstate(all="ignore"):
            med = np.nanmedian(np.where(np.isnan(final), np.inf, final), axis=-1)
        res.heatmap = {
            "lams": lams.numpy(),
            "lrs": (mults * base_lr).numpy(),
            "final": med,
            "theory_lr": th(1.0)["gamma"],
            "steps": int(cs.steps[-1]),
        }
        done += 1
        yield done / n_parts, res.snapshot()
        if should_stop is not None and should_stop():
            return
    if cfg.compare_sampling and problem.n > 1:
        with_lam = any("lam" in get_spec(v).hparams for v in cfg.variants)
        lam = next((x for x in cfg.lams if not isinstance(x, str)), 1.0) if with_lam else 1.0
        budget = int(cfg.budget_epochs * problem.n)
        b = min(cfg.batch_size, problem.n)
        strategies = [
            Sampling("full"),
            Sampling("uniform"),
            Sampling("nice", b),
            Sampling("importance", 1),
            Sampling("importance", 1, reweight=False),
        ]
        # strategies with the same batch size and hence the same number of steps for the budget (uniform and
        # importance sampling with and without the reweighting, b = 1) run as one batch; each keeps its own
        # draws, so the curves are those of one run_finite_sum call per strategy
        steps_of = [max(1, budget // (2 * s.examples_per_eval(problem.n))) for s in strategies]
        groups: list[list[int]] = []
        for i, s in enumerate(strategies):
            for g in groups:
                f = strategies[g[0]]
                if (f.examples_per_eval(problem.n), steps_of[g[0]]) == (
                    s.examples_per_eval(problem.n),
                    steps_of[i],
                ) and "full" not in (s.kind, f.kind):
                    g.append(i)
                    break
            else:
                groups.append([i])
        out: dict = {}
        for g in groups:
            ths = [theory_for(problem, strategies[i], lam) for i in g]
            res.phase = "sampling: " + ", ".join(strategies[i].label for i in g)
            yield done / n_parts + (len(out) / len(strategies)) / n_parts, res.snapshot()
            confs = [
                dict(
                    lr=cfg.lr_mult * t["gamma"],
                    hp={"rho": cfg.rho_mult * t["rho"], "lam": lam},
                    sampling=strategies[i],
                    label=strategies[i].label,
                )
                for i, t in zip(g, ths)
            ]
            if len(g) == 1:
                c = confs[0]
                sets = [
                    run_finite_sum(
                        problem,
                        "unified_sam",
                        lr=c["lr"],
                        hp=c["hp"],
                        steps=steps_of[g[0]],
                        sampling=c["sampling"],
                        n_runs=cfg.seeds,
                        seed=3,
                        noise=cfg.noise,
                        label=c["label"],
                        should_stop=should_stop,
                        threads=None,
                    )
                ]
            else:
                sets = run_finite_sum_batched(
                    problem,
                    "unified_sam",
                    confs,
                    steps=steps_of[g[0]],
                    n_runs=cfg.seeds,
                    seed=3,
                    noise=cfg.noise,
                    should_stop=should_stop,
                    threads=None,
                )
            for i, t, cs in zip(g, ths, sets):
                out[i] = (
                    cs,
                    {
                        "sampling": strategies[i].label,
                        "gamma": t["gamma"],
                        "rho": t["rho"],
                        "A": t["A"],
                        "B": t["B"],
                        "steps": steps_of[i],
                        "lam": lam,
                    },
                )
            res.sampling_curves = [out[i][0] for i in sorted(out)]
            res.sampling_theory = [out[i][1] for i in sorted(out)]
            yield done / n_parts + (len(out) / len(strategies)) / n_parts, res.snapshot()
            if should_stop is not None and should_stop():
                return
    res.phase = "done"
    yield 1.0, res.snapshot()
