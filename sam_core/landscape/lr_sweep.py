"""Vectorised sweeps on 2-D landscapes: success rate vs learning rate, lr × ρ / lr × λ maps, basins.

Every trajectory comes from ``sam_core.simulate``; a whole sweep is one batch per variant: the
same S start points are repeated for every grid cell (common random numbers, so curves are smooth)
and the learning rate (and ρ or λ) is a per-trajectory tensor. Nothing here imports streamlit.

Success (``Success``, shown and adjustable on the page) is: the trajectory stayed finite and the
point it ends at is within ``tol`` of a global minimum (``target="any"``: of any minimum). "The
point it ends at" is the final iterate (``last_k = 1``) or the mean of the last ``last_k`` iterates:
normalised SAM never settles exactly on a minimum but keeps bouncing at a distance that grows with
η, so a small radius on the final iterate alone makes it look as if it always failed.

    setup = SweepSetup(starts=1000, steps=1000, success=Success(tol=0.2))   # validated here, once
    df = sweep_lr(make_landscape("quartic"), ["sgd", "sam", "ssam"], lrs, {"sam": {"rho": 0.1}}, setup)
    # columns: variant, lr, rho, success_rate, diverged_rate, median_distance

What every sweep shares (starts, steps, the success rule, momentum, noise, seed, equal gradient
evaluations, dtype) is one frozen :class:`SweepSetup`, checked in its constructor with errors that
name the field and its range; how a batch is executed (chunk size, threads, memory layout,
torch.compile, device), which never changes what a sweep means, is an :class:`Execution`. Both are
module-level dataclasses, so a sweep job pickles to a worker process with its arguments.

``median_distance`` is the median over all starts of the distance to the nearest target minimum,
a diverged start counting as +inf (so it is inf once half the starts diverge).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from sam_core.landscape.functions import Landscape
from sam_core.landscape.race import race_steps
from sam_core.registry import get_spec, resolve_hparams
from sam_core.settings import get_settings
from sam_core.simulate import simulate_resolved

CHUNK = 32_768  # trajectories per simulate call: x and y of a chunk stay in L2 cache (1.7x faster than 200k)
# Memory layout of a batch: "col" keeps x and y each contiguous, so the per-trajectory norms (unrolled
# over the 2 coordinates in rules.global_norm) and the (N, 1) broadcasts are plain contiguous ops:
# 3-4x faster per step than the row-major (N, 2) (benchmarks/bench_lr_sweep.py --layout).
LAYOUT = "col"
# From this much work (trajectories × steps in one batch) the sweeps run the step through torch.compile:
# eager costs ~15-25 ns per trajectory-step per variant here, the fused step ~1-2 ns, compiling ~0.3-3 s
# per variant (once per process; the first ever on a machine ~15 s while inductor fills its disk cache).
COMPILE_MIN_WORK = 5e7
COMPILE_CHUNK = 1 << 20  # the fused step makes one pass over the batch, so no cache-sized chunks: fewer calls
COLUMNS = ["variant", "lr", "rho", "success_rate", "diverged_rate", "median_distance"]


@dataclass(frozen=True)
class Success:
    """What counts as a successful run (see the module docstring)."""

    tol: float = 0.2
    last_k: int = 1
    target: str = "global"  # "global" | "any"

    def validate(self, steps: int) -> Success:
        if not (isinstance(self.tol, (int, float)) and math.isfinite(self.tol) and self.tol > 0):
            raise ValueError(f"tol: the success radius must be a number > 0, got {self.tol!r}")
        if not isinstance(self.last_k, (int, np.integer)) or not 1 <= self.last_k <= max(1, steps):
            raise ValueError(f"last_k: must be an integer in [1, steps={steps}], got {self.last_k!r}")
        if self.target not in ("global", "any"):
            raise ValueError(f"target: must be 'global' or 'any', got {self.target!r}")
        return self

    def describe(self) -> str:
        where = "the final iterate" if self.last_k == 1 else f"the mean of the last {self.last_k} iterates"
        which = "a global minimum" if self.target == "global" else "any minimum"
        return f"success = no inf/NaN and {where} lies within {self.tol:g} of {which}"


# ---------------------------------------------------------------------------------------------- inputs
MAX_STARTS = 10_000_000  # start points per grid cell
MAX_STEPS = 1_000_000
START_MODES = ("saddle", "point", "domain")
SEED_RANGE = (-(2**63), 2**63 - 1)  # what torch.Generator.manual_seed takes (chunk offsets added stay inside)


def _check_int(name: str, v, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise ValueError(f"{name}: must be an integer in [{lo}, {hi}], got {v!r}")
    return int(v)


def _check_real(name: str, v, lo: float, hi: float | None = None, why: str = "") -> float:
    """A finite real number in [lo, hi) (``hi`` None: no upper bound), as a float."""
    ok = not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating))
    if not (ok and math.isfinite(v) and v >= lo and (hi is None or v < hi)):
        allowed = f"a number in [{lo:g}, {hi:g})" if hi is not None else f"a number ≥ {lo:g}"
        raise ValueError(f"{name}: must be {allowed}{why}, got {v!r}")
    return float(v)


def _check_lrs(lrs) -> np.ndarray:
    arr = np.asarray(lrs, dtype=np.float64).reshape(-1)
    if not len(arr) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError("lrs: need at least one learning rate, each a finite number > 0")
    return arr


@dataclass(frozen=True)
class SweepSetup:
    """What every sweep here shares: where the starts are, how long each trajectory runs, what counts as
    success, and the run's momentum, noise, seed and dtype.

    Checked once, in the constructor (each error names the field and its allowed range); the sweep
    functions, :func:`run_batch` and the worker process a sweep job is pickled to take it as it is.

    - ``starts`` start points per grid cell (per lr, or per (lr, value) of a map), in [1, 10⁷], drawn by
      ``start_mode`` ("saddle", "point" or "domain"), ``spread`` (≥ 0), ``center`` (None or (x, y)) and
      ``seed`` as in :func:`start_points`. A basin map ignores these four: its starts are its n×n grid.
    - ``steps`` in [1, 10⁶]; with ``equal_evals`` a variant with p gradient passes per step runs
      ``steps // p`` steps (:func:`sam_core.landscape.race.race_steps`, as in the race).
    - ``success``: a :class:`Success` (its ``last_k`` ≤ ``steps``).
    - ``momentum`` in [0, 1); ``noise`` ≥ 0, the std of the Gaussian gradient noise; ``seed`` (an integer)
      draws the starts and the noise; ``dtype`` the floating dtype the trajectories run in.

    ``setup.replace(starts=100)`` is a checked copy with one field changed.
    """

    starts: int = 1000
    steps: int = 1000
    success: Success = Success()
    start_mode: str = "saddle"
    spread: float = 0.1
    center: tuple[float, float] | None = None
    momentum: float = 0.0
    noise: float = 0.0
    seed: int = 0
    equal_evals: bool = False
    dtype: torch.dtype = torch.float32

    def __post_init__(self) -> None:
        def fix(name: str, value) -> None:  # frozen: the checked, normalised value replaces the given one
            object.__setattr__(self, name, value)

        fix("starts", _check_int("starts", self.starts, 1, MAX_STARTS))
        fix("steps", _check_int("steps", self.steps, 1, MAX_STEPS))
        if not isinstance(self.success, Success):
            raise ValueError(f"success: must be a Success(tol, last_k, target), got {self.success!r}")
        self.success.validate(self.steps)
        if self.start_mode not in START_MODES:
            raise ValueError(f"start mode: must be 'saddle', 'point' or 'domain', got {self.start_mode!r}")
        fix("spread", _check_real("spread", self.spread, 0.0))
        if self.center is not None:
            try:
                c = tuple(float(v) for v in self.center)
            except (TypeError, ValueError):
                c = ()
            if len(c) != 2 or not all(math.isfinite(v) for v in c):
                raise ValueError(f"center: must be two finite numbers (x, y), got {self.center!r}")
            fix("center", c)
        fix("momentum", _check_real("momentum", self.momentum, 0.0, 1.0))
        fix("noise", _check_real("noise", self.noise, 0.0, why=" (the std of the gradient noise)"))
        fix("seed", _check_int("seed", self.seed, *SEED_RANGE))
        if not isinstance(self.equal_evals, (bool, np.bool_)):
            raise ValueError(f"equal_evals: must be True or False, got {self.equal_evals!r}")
        fix("equal_evals", bool(self.equal_evals))
        if not (isinstance(self.dtype, torch.dtype) and self.dtype.is_floating_point):
            raise ValueError(
                f"dtype: must be a torch floating dtype (torch.float32 or torch.float64), got {self.dtype!r}"
            )

    def replace(self, **changes) -> SweepSetup:
        """A copy with ``changes`` applied, checked like a new one."""
        return dataclasses.replace(self, **changes)

    def steps_for(self, variant: str) -> int:
        """Steps ``variant`` runs: ``steps``, or ``steps // passes`` with equal gradient evaluations."""
        return race_steps(variant, self.steps, self.equal_evals)


@dataclass(frozen=True)
class Execution:
    """How :func:`run_batch` executes a batch. None of it changes what a sweep computes, only how fast
    (compiled and eager steps agree to float rounding); every ``None`` is decided at call time.

    - ``max_batch``: trajectories per ``simulate`` call (default :data:`CHUNK`, cache-sized; a compiled
      step or a GPU takes the whole batch, unless this is given).
    - ``threads``: intra-op threads on the CPU (:func:`fast_cpu`; None leaves torch's setting).
    - ``layout``: "row" is the usual contiguous (N, 2), "col" keeps x and y each contiguous (default
      :data:`LAYOUT`; see benchmarks/bench_lr_sweep.py ``--layout``).
    - ``compile``: run the step through ``torch.compile`` (default :func:`use_compile`).
    - ``device``: where the trajectories run (default ``SAMLAB_DEVICE``, see ``sam_core.settings``).
    """

    max_batch: int | None = None
    threads: int | None = 1
    layout: str | None = None
    compile: bool | None = None
    device: str | torch.device | None = None

    def __post_init__(self) -> None:
        if self.layout not in (None, "row", "col"):
            raise ValueError(f"layout: must be 'row' or 'col', got {self.layout!r}")
        if self.max_batch is not None:
            object.__setattr__(self, "max_batch", max(1, int(self.max_batch)))


GRID_SETUP = SweepSetup(starts=200)  # sweep_grid's default: a map has many cells
BASIN_SETUP = SweepSetup(steps=500, success=Success(target="any"))  # basin maps: any minimum counts


MAX_RANGE_COUNT = 10_000  # values one range or list may ask for (a page passes its own, smaller cap)


def parse_range(text: str, log: bool = True, *, max_count: int = MAX_RANGE_COUNT, name: str = "range") -> np.ndarray:
    """``"0.01:1.0:20"`` -> 20 values from 0.01 to 1.0 (log-spaced unless ``log=False``); ``"0.1,0.2"`` -> list.

    The count is checked against ``max_count`` before anything is allocated (``0:1:1000000000`` is refused
    at once, naming ``name`` and the cap): a shared link or a CLI argument cannot ask for 10⁹ floats.
    """
    text = str(text).strip()
    max_count = int(max_count)

    def too_many(n) -> ValueError:
        return ValueError(
            f"{name}: at most {max_count} values, got {n}: use fewer (low:high:count with count ≤ {max_count})"
        )

    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            count = parts[2].strip()
            if count.isdigit() and len(count) > 30:  # before int(): a 5000-digit count is no count
                raise too_many(f"a {len(count)}-digit count")
            lo, hi, n = float(parts[0]), float(parts[1]), int(count)
            if n > max_count:
                raise too_many(n)
            if n < 1 or not hi >= lo or (log and lo <= 0) or not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError
            if n == 1:
                return np.array([lo])
            return np.geomspace(lo, hi, n) if log else np.linspace(lo, hi, n)
        n = text.count(",") + 1
        if n > max_count:  # counted before the list is split or converted
            raise too_many(n)
        vals = [float(x) for x in text.split(",") if x.strip()]
        if not all(math.isfinite(v) for v in vals):
            raise ValueError
        return np.array(vals)
    except ValueError as err:
        if str(err).startswith(f"{name}: at most"):
            raise
        raise ValueError(
            f"{name} {text[:40]!r}{'…' if len(text) > 40 else ''}: write low:high:count (e.g. 0.01:1.0:20, "
            f"low > 0, count ≤ {max_count}) or a comma list of finite numbers (0.1,0.2)"
        ) from None


def start_points(
    landscape: Landscape,
    n: int,
    mode: str = "saddle",
    spread: float = 0.1,
    seed: int = 0,
    center: Sequence[float] | None = None,
) -> torch.Tensor:
    """``n`` start points (n, 2), float64.

    ``mode``: ``"saddle"`` Gaussian N(p, spread²) around the first saddle (the landscape's default
    start when it has none), ``"point"`` around ``center`` (default: the landscape's start),
    ``"domain"`` uniform on the domain. (The checks are :class:`SweepSetup`'s.)
    """
    return _draw_starts(landscape, SweepSetup(starts=n, start_mode=mode, spread=spread, seed=seed, center=center))


def _draw_starts(landscape: Landscape, setup: SweepSetup) -> torch.Tensor:
    """The ``setup.starts`` start points of a checked setup."""
    n, mode, spread = setup.starts, setup.start_mode, setup.spread
    gen = torch.Generator().manual_seed(setup.seed)
    if mode == "domain":
        (x0, x1), (y0, y1) = landscape.domain
        u = torch.rand(n, 2, generator=gen, dtype=torch.float64)
        return torch.stack((x0 + (x1 - x0) * u[:, 0], y0 + (y1 - y0) * u[:, 1]), -1)
    if mode == "saddle" and len(landscape.saddles):
        c = landscape.saddles[0]
    else:
        c = np.asarray(setup.center if setup.center is not None else landscape.start, dtype=np.float64)
    return torch.as_tensor(c, dtype=torch.float64) + spread * torch.randn(n, 2, generator=gen, dtype=torch.float64)


def targets(landscape: Landscape, target: str = "global") -> np.ndarray:
    pts = landscape.global_minima if target == "global" else landscape.minima
    if not len(pts):
        raise ValueError(
            f"{landscape.label}: this function has no minimum on its domain, so success is undefined; "
            "pick a function with a minimum for sweeps"
        )
    return pts


# ---------------------------------------------------------------------------------------------- core
@contextlib.contextmanager
def fast_cpu(threads: int | None = 1) -> Iterator[None]:
    """CPU settings for many small elementwise ops, restored on exit (both act on the calling thread).

    - Denormals flushed to zero: converged trajectories have gradients ~1e-20 whose squares (in the
      per-trajectory norms) are float32 denormals, handled by a slow microcode path on x86; one sqrt
      over 4 500 trajectories took ~7 ms instead of ~5 µs. Rounding 1e-40 to 0 changes no result.
    - ``threads`` intra-op threads (default 1): on this shared 2-core machine OpenMP's spinning made
      a 20 000-trajectory step 27 ms with 2 threads against 0.36 ms with 1 (benchmarks/bench_lr_sweep.py).
    """
    on = torch.set_flush_denormal(True)
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    try:
        yield
    finally:
        if threads is not None:
            torch.set_num_threads(old)
        if on:
            torch.set_flush_denormal(False)


def run_batch(
    landscape: Landscape,
    variant: str,
    w0: torch.Tensor,
    lr,
    hp: dict | None,
    setup: SweepSetup,
    execution: Execution | None = None,
    *,
    resolved: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``variant`` from every row of ``w0 (N, 2)``; ``lr`` and hyperparameter values may be (N,) tensors.

    ``hp`` is checked and completed by ``registry.resolve_hparams`` (an error names the field), once for the
    whole batch. A caller that has resolved it already, before any work (this module's sweeps), passes
    ``resolved=True`` and the dict is used as is (``simulate_resolved``).

    The run's settings come from ``setup``: ``setup.steps_for(variant)`` steps (fewer with equal gradient
    evaluations), its momentum, noise, seed and dtype; its start fields are not used (the starts are
    ``w0``). Returns ``(end (N, 2) float64, diverged (N,) bool)``, where ``end`` is the final iterate or
    the mean of the last ``setup.success.last_k`` iterates. ``execution`` (:class:`Execution`) says how:
    chunks of ``max_batch`` trajectories run one after the other under :func:`fast_cpu`, in the memory
    ``layout``, compiled or not, on a ``device`` (on a GPU the whole batch is one chunk).
    ``should_stop()`` is polled every step: once it is true the result is incomplete (the caller drops it).
    """
    hpv = dict(hp or {}) if resolved else resolve_hparams(variant, **(hp or {}))
    ex = _DEFAULT_EXECUTION if execution is None else execution
    steps = setup.steps_for(variant)
    last_k = min(setup.success.last_k, steps)
    noise, dtype = setup.noise, setup.dtype
    dev = get_settings().torch_device() if ex.device is None else torch.device(ex.device)
    on_cpu = dev.type == "cpu"
    layout = LAYOUT if ex.layout is None else ex.layout
    chunk_given = ex.max_batch is not None
    max_batch = CHUNK if ex.max_batch is None else ex.max_batch
    N = w0.shape[0]
    compile = use_compile(landscape, N * steps) if ex.compile is None else ex.compile
    if compile and not chunk_given and noise == 0:
        # no cache-sized chunks for a fused step; with noise, the chunks (each seeded seed + offset) stay as
        # they are, so that a seed gives the same draws compiled or not
        max_batch = max(max_batch, COMPILE_CHUNK)
    if not on_cpu and not chunk_given and noise == 0:
        max_batch = max(max_batch, N)  # a GPU wants the whole batch at once (CPU chunks are cache-sized)
    lr_t = torch.as_tensor(lr, dtype=dtype).to(dev)
    lr_t = lr_t.expand(N) if lr_t.dim() == 0 else lr_t
    ends, divs = [], []
    for a in range(0, N, max_batch):
        b = min(N, a + max_batch)
        w = w0[a:b].to(device=dev, dtype=dtype).contiguous()  # (n, 2)
        if layout == "col":
            w = w.T.contiguous().T  # same values, x and y each contiguous
        hpv_c = {
            k: (v[a:b].to(device=dev, dtype=dtype) if isinstance(v, torch.Tensor) and v.dim() else v)
            for k, v in hpv.items()
        }
        with fast_cpu(ex.threads if on_cpu else None):
            res = simulate_resolved(
                variant,
                landscape.grad_fn,
                w,
                steps,
                lr_t[a:b].contiguous(),
                hpv_c,
                momentum=setup.momentum,
                noise=noise,
                seed=setup.seed + a,
                record=False,
                tail=last_k if last_k > 1 else 0,
                compile=compile,
                grad_parts=landscape.grad_parts,
                should_stop=should_stop,
            )
        end = res.tail_mean if last_k > 1 and res.tail_mean is not None else res.final
        ends.append(end.double().cpu().numpy())
        divs.append((res.diverged_step >= 0).cpu().numpy())
    return np.concatenate(ends), np.concatenate(divs)


_DEFAULT_EXECUTION = Execution()


def use_compile(landscape: Landscape, work: float) -> bool:
    """Whether a batch of ``work`` trajectory-steps compiles its step: SAMLAB_COMPILE=on/off decides, else
    (auto) when the landscape has a closed-form gradient and ``work`` ≥ :data:`COMPILE_MIN_WORK`."""
    mode = get_settings().compile
    if mode != "auto":
        return mode == "on"
    return landscape.fg is not None and work >= COMPILE_MIN_WORK


_PREWARMED: set[tuple] = set()


_PREWARMED: set[tuple] = set()


def prewarm(
    landscape: Landscape,
    variants: Sequence[str],
    hp: dict[str, dict] | None = None,
    *,
    momentum: float = 0.0,
    noise: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> threading.Thread | None:
    """Compile the sweep step of each variant on a tiny batch in a background thread, so that a large sweep
    started a moment later finds it compiled (the first compile in a process also pays ~3 s of
    torch.compile's own start-up). Once per configuration per process; a no-op with SAMLAB_COMPILE=off
    or an autograd gradient. Returns the thread (None when there was nothing to do)."""
    if get_settings().compile == "off" or landscape.fg is None:
        return None
    todo = []
    for v in variants:
        h = dict((hp or {}).get(v, {}))
        try:
            hv = resolve_hparams(v, **h)
        except ValueError:
            continue  # the page shows that error; nothing to compile
        key = (id(landscape), v, repr(sorted(h.items())), bool(momentum), noise > 0, dtype)
        if key not in _PREWARMED:
            if len(_PREWARMED) > 1024:  # a long-running server: forget old ones (a repeat costs one tiny run)
                _PREWARMED.clear()
            _PREWARMED.add(key)
            todo.append((v, hv))
    if not todo:
        return None

    def work() -> None:
        try:
            setup = SweepSetup(starts=8, steps=2, start_mode="domain", momentum=momentum, noise=noise, dtype=dtype)
        except ValueError:
            return  # the sweep itself reports it
        w0 = _draw_starts(landscape, setup)
        lr = torch.full((8,), 1e-3, dtype=torch.float64)
        for v, hv in todo:
            try:
                run_batch(landscape, v, w0, lr, hv, setup, _COMPILED, resolved=True)
            except Exception:  # noqa: BLE001 - a warm-up only; the sweep itself reports any error
                pass

    th = threading.Thread(target=work, name="samlab-prewarm", daemon=True)
    th.start()
    return th


_COMPILED = Execution(compile=True)


def judge(
    landscape: Landscape, end: np.ndarray, diverged: np.ndarray, success: Success
) -> tuple[np.ndarray, np.ndarray]:
    """``(success (N,) bool, distance (N,))``: distance to the nearest target minimum, inf if diverged."""
    _, dist = landscape.nearest(end, targets(landscape, success.target))
    dist = np.where(diverged, np.inf, dist)
    return (~diverged) & (dist <= success.tol), dist


def _summary(ok: np.ndarray, div: np.ndarray, dist: np.ndarray) -> dict:
    """Rates over the last axis (the starts)."""
    return {
        "success_rate": ok.mean(-1),
        "diverged_rate": div.mean(-1),
        "median_distance": np.median(dist, axis=-1),  # inf sorts last: finite while < half diverged
    }


def iter_sweep_lr(
    landscape: Landscape,
    variants: Sequence[str],
    lrs,
    hp: dict[str, dict] | None = None,
    setup: SweepSetup = SweepSetup(),
    *,
    rhos: Sequence[float] | None = None,
    stop_event=None,
) -> Iterator[tuple[float, pd.DataFrame]]:
    """:func:`sweep_lr` one variant at a time: yields ``(progress, table so far)`` (for a background job;
    a set ``stop_event`` ends it within a step, keeping the variants that finished).

    ``rhos``: sweep every variant that has a ρ once per value (overriding ``hp``), as in the paper's
    one-panel-per-ρ figure; variants without ρ (SGD) run once.
    """
    lrs = _check_lrs(lrs)
    targets(landscape, setup.success.target)
    hp = hp or {}
    jobs: list[tuple[str, dict]] = []
    for v in variants:
        own = dict(hp.get(v, {}))
        if rhos is not None and "rho" in get_spec(v).hparams:
            jobs += [(v, {**own, "rho": float(r)}) for r in rhos]
        else:
            jobs.append((v, own))
    hpv_all = [resolve_hparams(v, **h) for v, h in jobs]  # every error before any work
    S = setup.starts
    w0 = _draw_starts(landscape, setup)
    L = len(lrs)
    lr_b = torch.as_tensor(np.repeat(lrs, S))  # (L*S,) lr of each trajectory, lr-major
    w0_b = w0.repeat(L, 1)  # (L*S, 2) the same starts for every lr
    rows: list[dict] = []
    for i_j, ((v, _), hpv) in enumerate(zip(jobs, hpv_all)):
        end, div = run_batch(landscape, v, w0_b, lr_b, hpv, setup, resolved=True, should_stop=_stopper(stop_event))
        if _stopped(stop_event):
            return  # this variant did not finish: the table keeps the ones that did
        ok, dist = judge(landscape, end, div, setup.success)
        summ = _summary(ok.reshape(L, S), div.reshape(L, S), dist.reshape(L, S))
        rho = float(hpv["rho"]) if "rho" in hpv else float("nan")
        for i, lr in enumerate(lrs):
            rows.append({"variant": v, "lr": float(lr), "rho": rho, **{k: float(a[i]) for k, a in summ.items()}})
        yield (i_j + 1) / len(jobs), pd.DataFrame(rows, columns=COLUMNS)


def _stopper(stop_event) -> Callable[[], bool] | None:
    return None if stop_event is None else stop_event.is_set


def _stopped(stop_event) -> bool:
    return stop_event is not None and stop_event.is_set()


def sweep_lr(
    landscape: Landscape,
    variants: Sequence[str],
    lrs,
    hp: dict[str, dict] | None = None,
    setup: SweepSetup = SweepSetup(),
    *,
    rhos: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Success rate vs learning rate per variant (the Stable SAM paper's Fig. 2).

    One ``simulate`` call per variant runs all ``len(lrs) × setup.starts`` trajectories at once; ``rhos``
    as in :func:`iter_sweep_lr`. Returns one row per (variant, lr) with columns ``COLUMNS`` (``rho`` is
    NaN for SGD).
    """
    out = pd.DataFrame(columns=COLUMNS)
    for _, part in iter_sweep_lr(landscape, variants, lrs, hp, setup, rhos=rhos):
        out = part
    return out


def sweep_grid(
    landscape: Landscape,
    variant: str,
    lrs,
    param: str,
    values,
    hp: dict | None = None,
    setup: SweepSetup = GRID_SETUP,
    *,
    should_stop: Callable[[], bool] | None = None,
) -> pd.DataFrame:
    """An lr × ``param`` map (``param`` = "rho", or "lam" for Unified SAM) in one batch.

    Returns one row per (lr, value): ``variant, lr, <param>, success_rate, diverged_rate, median_distance``.
    """
    lrs = _check_lrs(lrs)
    spec = get_spec(variant)
    if param not in spec.hparams or spec.hparams[param].kind not in ("float", "schedule"):
        numeric = [k for k, h in spec.hparams.items() if h.kind in ("float", "schedule")]
        raise ValueError(f"{variant}: cannot sweep {param!r}; numeric hyperparameters: {numeric or 'none'}")
    vals = np.asarray(values, dtype=np.float64).reshape(-1)
    if not len(vals) or not np.all(np.isfinite(vals)):
        raise ValueError(f"{param}: need at least one finite value")
    targets(landscape, setup.success.target)
    hp = dict(hp or {})
    hp.pop(param, None)
    S, L, V = setup.starts, len(lrs), len(vals)
    # one check of the other hyperparameters and of every value (the error names the field), before any work
    hpv = resolve_hparams(variant, **hp, **{param: torch.as_tensor(np.tile(np.repeat(vals, S), L))})
    w0 = _draw_starts(landscape, setup)
    w0_b = w0.repeat(L * V, 1)  # (L*V*S, 2), order (lr, value, start)
    lr_b = torch.as_tensor(np.repeat(lrs, V * S))
    end, div = run_batch(landscape, variant, w0_b, lr_b, hpv, setup, resolved=True, should_stop=should_stop)
    ok, dist = judge(landscape, end, div, setup.success)
    summ = _summary(ok.reshape(L, V, S), div.reshape(L, V, S), dist.reshape(L, V, S))
    rows = []
    for i, lr in enumerate(lrs):
        for j, val in enumerate(vals):
            rows.append(
                {"variant": variant, "lr": float(lr), param: float(val), **{k: float(a[i, j]) for k, a in summ.items()}}
            )
    return pd.DataFrame(rows, columns=["variant", "lr", param, "success_rate", "diverged_rate", "median_distance"])


@dataclass
class BasinMap:
    """Which minimum each start of an n×n grid reaches: ``label`` = index into ``minima``,
    -1 = ends near no minimum (within ``tol``), -2 = diverged. Row i is ``ys[i]``, column j ``xs[j]``."""

    variant: str
    xs: np.ndarray
    ys: np.ndarray
    label: np.ndarray  # (n, n) int
    minima: np.ndarray  # (k, 2)
    tol: float

    def fractions(self) -> dict[int, float]:
        u, c = np.unique(self.label, return_counts=True)
        return {int(a): float(b) / self.label.size for a, b in zip(u, c)}


def iter_basin_maps(
    landscape: Landscape,
    variants: Sequence[str],
    lr: float,
    hp: dict[str, dict] | None = None,
    setup: SweepSetup = BASIN_SETUP,
    *,
    n: int = 80,
    stop_event=None,
) -> Iterator[tuple[float, list[BasinMap]]]:
    """:func:`basin_map` for several variants, yielding ``(progress, maps so far)`` (a set ``stop_event``
    ends it within a step, keeping the finished maps)."""
    maps: list[BasinMap] = []
    for i, v in enumerate(variants):
        m = basin_map(landscape, v, lr, (hp or {}).get(v), setup, n=n, should_stop=_stopper(stop_event))
        if _stopped(stop_event):
            return
        maps.append(m)
        yield (i + 1) / len(variants), list(maps)


def basin_map(
    landscape: Landscape,
    variant: str,
    lr: float,
    hp: dict | None = None,
    setup: SweepSetup = BASIN_SETUP,
    *,
    n: int = 80,
    should_stop: Callable[[], bool] | None = None,
) -> BasinMap:
    """Basin of attraction of each minimum for ``variant`` from an n×n grid of starts over the domain
    (``setup``'s steps, success radius and last_k, momentum, noise, seed and dtype; its start fields do
    not apply)."""
    n = _check_int("grid size", n, 2, 1000)
    _check_lrs([lr])
    mins = landscape.minima
    if not len(mins):
        targets(landscape, "any")
    (x0, x1), (y0, y1) = landscape.domain
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    X, Y = np.meshgrid(xs, ys)
    w0 = torch.as_tensor(np.stack((X.ravel(), Y.ravel()), -1))
    end, div = run_batch(landscape, variant, w0, float(lr), hp, setup, should_stop=should_stop)
    idx, dist = landscape.nearest(end, mins)
    label = np.where(div, -2, np.where(dist <= setup.success.tol, idx, -1)).reshape(n, n)
    return BasinMap(variant, xs, ys, label, mins, setup.success.tol)


def iter_sweep_grid(
    landscape: Landscape,
    variant: str,
    lrs,
    param: str,
    values,
    hp: dict | None = None,
    setup: SweepSetup = GRID_SETUP,
    *,
    stop_event=None,
) -> Iterator[tuple[float, pd.DataFrame]]:
    """:func:`sweep_grid` as a lab job (one batch: one ``(1.0, table)`` item; nothing if stopped first)."""
    df = sweep_grid(landscape, variant, lrs, param, values, hp, setup, should_stop=_stopper(stop_event))
    if not _stopped(stop_event):
        yield 1.0, df


def iter_prewarm(
    landscape: Landscape,
    variants: Sequence[str],
    hp: dict[str, dict] | None = None,
    *,
    momentum: float = 0.0,
    noise: float = 0.0,
) -> Iterator[tuple[float, None]]:
    """:func:`prewarm` as a lab job: compiles in the worker process that will run the sweep."""
    th = prewarm(landscape, variants, hp, momentum=momentum, noise=noise)
    while th is not None and th.is_alive():  # yields while it compiles, so a Stop is answered at once
        th.join(0.2)
        yield 0.5, None
    yield 1.0, None
