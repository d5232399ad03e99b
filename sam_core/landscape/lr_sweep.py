"""Vectorised sweeps on 2-D landscapes: success rate vs learning rate, lr × ρ / lr × λ maps, basins.

Every trajectory comes from ``sam_core.simulate``; a whole sweep is one batch per variant: the
same S start points are repeated for every grid cell (common random numbers, so curves are smooth)
and the learning rate (and ρ or λ) is a per-trajectory tensor. Nothing here imports streamlit.

Success (``Success``, shown and adjustable on the page) is: the trajectory stayed finite and the
point it ends at is within ``tol`` of a global minimum (``target="any"``: of any minimum). "The
point it ends at" is the final iterate (``last_k = 1``) or the mean of the last ``last_k`` iterates:
normalised SAM never settles exactly on a minimum but keeps bouncing at a distance that grows with
η, so a small radius on the final iterate alone makes it look as if it always failed.

    df = sweep_lr(make_landscape("quartic"), ["sgd", "sam", "ssam"], lrs, hp={"sam": {"rho": 0.1}})
    # columns: variant, lr, rho, success_rate, diverged_rate, median_distance

``median_distance`` is the median over all starts of the distance to the nearest target minimum,
a diverged start counting as +inf (so it is inf once half the starts diverge).
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from sam_core.landscape.functions import Landscape
from sam_core.registry import get_spec, resolve_hparams
from sam_core.settings import get_settings
from sam_core.simulate import simulate

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
def _check_int(name: str, v, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise ValueError(f"{name}: must be an integer in [{lo}, {hi}], got {v!r}")
    return int(v)


def _check_lrs(lrs) -> np.ndarray:
    arr = np.asarray(lrs, dtype=np.float64).reshape(-1)
    if not len(arr) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError("lrs: need at least one learning rate, each a finite number > 0")
    return arr


MAX_RANGE_COUNT = 10_000  # values one range or list may ask for (a page passes its own, smaller cap)


def parse_range(text: str, log: bool = True, *, max_count: int = MAX_RANGE_COUNT, name: str = "range") -> np.ndarray:
    """``"0.01:1.0:20"`` -> 20 values from 0.01 to 1.0 (log-spaced unless ``log=False``); ``"0.1,0.2"`` -> list.

    The count is checked against ``max_count`` before anything is allocated (``0:1:1000000000`` is refused
    at once, naming ``name`` and the cap): a shared link or a CLI argument cannot ask for 10⁹ floats.
    """
    text = str(text).strip()
    max_count = int(max_count)

    def too_many(n) -> ValueError:
        return ValueError(f"{name}: at most {max_count} values, got {n}: use fewer (low:high:count with count "
                          f"≤ {max_count})")

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


def start_points(landscape: Landscape, n: int, mode: str = "saddle", spread: float = 0.1, seed: int = 0,
                 center: Sequence[float] | None = None) -> torch.Tensor:
    """``n`` start points (n, 2), float64.

    ``mode``: ``"saddle"`` Gaussian N(p, spread²) around the first saddle (the landscape's default
    start when it has none), ``"point"`` around ``center`` (default: the landscape's start),
    ``"domain"`` uniform on the domain.
    """
    n = _check_int("starts", n, 1, 10_000_000)
    gen = torch.Generator().manual_seed(int(seed))
    if mode == "domain":
        (x0, x1), (y0, y1) = landscape.domain
        u = torch.rand(n, 2, generator=gen, dtype=torch.float64)
        return torch.stack((x0 + (x1 - x0) * u[:, 0], y0 + (y1 - y0) * u[:, 1]), -1)
    if mode not in ("saddle", "point"):
        raise ValueError(f"start mode: must be 'saddle', 'point' or 'domain', got {mode!r}")
    if not (math.isfinite(spread) and spread >= 0):
        raise ValueError(f"spread: must be a number ≥ 0, got {spread!r}")
    if mode == "saddle" and len(landscape.saddles):
        c = landscape.saddles[0]
    else:
        c = np.asarray(center if center is not None else landscape.start, dtype=np.float64)
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


def run_batch(landscape: Landscape, variant: str, w0: torch.Tensor, lr, steps: int, hp: dict | None = None,
              *, last_k: int = 1, momentum: float = 0.0, noise: float = 0.0, seed: int = 0,
              dtype: torch.dtype = torch.float32, max_batch: int | None = None,
              threads: int | None = 1, layout: str | None = None,
              compile: bool | None = None, device: str | torch.device | None = None,
              should_stop: Callable[[], bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Run ``variant`` from every row of ``w0 (N, 2)``; ``lr`` and hp values may be (N,) tensors.

    Returns ``(end (N, 2) float64, diverged (N,) bool)``, where ``end`` is the final iterate or the
    mean of the last ``last_k`` iterates. Chunks of ``max_batch`` trajectories run one after the
    other under :func:`fast_cpu` (``threads``). ``layout`` (default :data:`LAYOUT`): ``"row"`` is
    the usual contiguous (N, 2); ``"col"`` keeps x and y each contiguous (the landscapes' gradients
    keep the layout), which makes every elementwise op faster but is only a win while the core's
    per-trajectory norm is a sum of squares (see benchmarks/bench_lr_sweep.py, ``--layout``).
    ``compile`` (default: :func:`use_compile`) runs the step through ``torch.compile`` (same rule code,
    one fused loop per step; see ``sam_core.simulate``). ``device`` (default: ``SAMLAB_DEVICE``, see
    ``sam_core.settings``): where the trajectories run; on a GPU the whole batch is one chunk.
    ``should_stop()`` is polled every step: once it is true the result is incomplete (the caller drops it).
    """
    dev = get_settings().torch_device() if device is None else torch.device(device)
    on_cpu = dev.type == "cpu"
    layout = LAYOUT if layout is None else layout
    chunk_given = max_batch is not None
    max_batch = CHUNK if max_batch is None else max(1, int(max_batch))
    if layout not in ("row", "col"):
        raise ValueError(f"layout: must be 'row' or 'col', got {layout!r}")
    N = w0.shape[0]
    if compile is None:
        compile = use_compile(landscape, N * steps)
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
        hp_c = {k: (v[a:b].to(device=dev, dtype=dtype) if isinstance(v, torch.Tensor) and v.dim() else v)
                for k, v in (hp or {}).items()}
        with fast_cpu(threads if on_cpu else None):
            res = simulate(variant, landscape.grad_fn, w, steps, lr_t[a:b].contiguous(), hp=hp_c, momentum=momentum,
                           noise=noise, seed=seed + a, record=False, tail=last_k if last_k > 1 else 0,
                           compile=compile, grad_parts=landscape.grad_parts, should_stop=should_stop)
        end = res.tail_mean if last_k > 1 and res.tail_mean is not None else res.final
        ends.append(end.double().cpu().numpy())
        divs.append((res.diverged_step >= 0).cpu().numpy())
    return np.concatenate(ends), np.concatenate(divs)


def use_compile(landscape: Landscape, work: float) -> bool:
    """Whether a batch of ``work`` trajectory-steps compiles its step: SAMLAB_COMPILE=on/off decides, else
    (auto) when the landscape has a closed-form gradient and ``work`` ≥ :data:`COMPILE_MIN_WORK`."""
    mode = get_settings().compile
    if mode != "auto":
        return mode == "on"
    return landscape.fg is not None and work >= COMPILE_MIN_WORK


_PREWARMED: set[tuple] = set()


def prewarm(landscape: Landscape, variants: Sequence[str], hp: dict[str, dict] | None = None, *,
            momentum: float = 0.0, noise: float = 0.0, dtype: torch.dtype = torch.float32) -> threading.Thread | None:
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
            resolve_hparams(v, **h)
        except ValueError:
            continue  # the page shows that error; nothing to compile
        key = (id(landscape), v, repr(sorted(h.items())), bool(momentum), noise > 0, dtype)
        if key not in _PREWARMED:
            if len(_PREWARMED) > 1024:  # a long-running server: forget old ones (a repeat costs one tiny run)
                _PREWARMED.clear()
            _PREWARMED.add(key)
            todo.append((v, h))
    if not todo:
        return None

    def work() -> None:
        w0 = start_points(landscape, 8, "domain")
        lr = torch.full((8,), 1e-3, dtype=torch.float64)
        for v, h in todo:
            try:
                run_batch(landscape, v, w0, lr, 2, h, momentum=momentum, noise=noise, dtype=dtype, compile=True)
            except Exception:  # noqa: BLE001 - a warm-up only; the sweep itself reports any error
                pass

    th = threading.Thread(target=work, name="samlab-prewarm", daemon=True)
    th.start()
    return th


def judge(landscape: Landscape, end: np.ndarray, diverged: np.ndarray, success: Success) -> tuple[np.ndarray, np.ndarray]:
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


def _steps_for(variant: str, steps: int, equal_evals: bool) -> int:
    """With equal gradient evaluations, a variant with p passes per step gets steps // p steps."""
    return max(1, steps // get_spec(variant).passes) if equal_evals else steps


def iter_sweep_lr(landscape: Landscape, variants: Sequence[str], lrs, hp: dict[str, dict] | None = None, *,
                  starts: int = 1000, steps: int = 1000, success: Success = Success(), start_mode: str = "saddle",
                  spread: float = 0.1, momentum: float = 0.0, noise: float = 0.0, seed: int = 0,
                  equal_evals: bool = False, dtype: torch.dtype = torch.float32,
                  center: Sequence[float] | None = None,
                  rhos: Sequence[float] | None = None,
                  stop_event=None) -> Iterator[tuple[float, pd.DataFrame]]:
    """:func:`sweep_lr` one variant at a time: yields ``(progress, table so far)`` (for a background job;
    a set ``stop_event`` ends it within a step, keeping the variants that finished).

    ``rhos``: sweep every variant that has a ρ once per value (overriding ``hp``), as in the paper's
    one-panel-per-ρ figure; variants without ρ (SGD) run once.
    """
    lrs = _check_lrs(lrs)
    steps = _check_int("steps", steps, 1, 1_000_000)
    S = _check_int("starts", starts, 1, 10_000_000)
    success = success.validate(steps)
    targets(landscape, success.target)
    hp = hp or {}
    jobs: list[tuple[str, dict]] = []
    for v in variants:
        own = dict(hp.get(v, {}))
        if rhos is not None and "rho" in get_spec(v).hparams:
            jobs += [(v, {**own, "rho": float(r)}) for r in rhos]
        else:
            jobs.append((v, own))
    hpv_all = [resolve_hparams(v, **h) for v, h in jobs]  # every error before any work
    w0 = start_points(landscape, S, start_mode, spread, seed, center)
    L = len(lrs)
    lr_b = torch.as_tensor(np.repeat(lrs, S))  # (L*S,) lr of each trajectory, lr-major
    w0_b = w0.repeat(L, 1)  # (L*S, 2) the same starts for every lr
    rows: list[dict] = []
    for i_j, ((v, h), hpv) in enumerate(zip(jobs, hpv_all)):
        n_steps = _steps_for(v, steps, equal_evals)
        end, div = run_batch(landscape, v, w0_b, lr_b, n_steps, h, last_k=min(success.last_k, n_steps),
                             momentum=momentum, noise=noise, seed=seed, dtype=dtype, should_stop=_stopper(stop_event))
        if _stopped(stop_event):
            return  # this variant did not finish: the table keeps the ones that did
        ok, dist = judge(landscape, end, div, success)
        summ = _summary(ok.reshape(L, S), div.reshape(L, S), dist.reshape(L, S))
        rho = float(hpv["rho"]) if "rho" in hpv else float("nan")
        for i, lr in enumerate(lrs):
            rows.append({"variant": v, "lr": float(lr), "rho": rho, **{k: float(a[i]) for k, a in summ.items()}})
        yield (i_j + 1) / len(jobs), pd.DataFrame(rows, columns=COLUMNS)


def _stopper(stop_event) -> Callable[[], bool] | None:
    return None if stop_event is None else stop_event.is_set


def _stopped(stop_event) -> bool:
    return stop_event is not None and stop_event.is_set()


def sweep_lr(landscape: Landscape, variants: Sequence[str], lrs, hp: dict[str, dict] | None = None,
             **kw) -> pd.DataFrame:
    """Success rate vs learning rate per variant (the Stable SAM paper's Fig. 2).

    One ``simulate`` call per variant runs all ``len(lrs) × starts`` trajectories at once.
    Keywords as :func:`iter_sweep_lr` (starts, steps, success, start_mode, spread, momentum, noise,
    seed, equal_evals, dtype, center, rhos). Returns one row per (variant, lr) with columns ``COLUMNS``
    (``rho`` is NaN for SGD).
    """
    out = pd.DataFrame(columns=COLUMNS)
    for _, part in iter_sweep_lr(landscape, variants, lrs, hp, **kw):
        out = part
    return out


def sweep_grid(landscape: Landscape, variant: str, lrs, param: str, values, hp: dict | None = None, *,
               starts: int = 200, steps: int = 1000, success: Success = Success(), start_mode: str = "saddle",
               spread: float = 0.1, momentum: float = 0.0, noise: float = 0.0, seed: int = 0,
               equal_evals: bool = False, dtype: torch.dtype = torch.float32,
               center: Sequence[float] | None = None, should_stop: Callable[[], bool] | None = None) -> pd.DataFrame:
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
    steps = _check_int("steps", steps, 1, 1_000_000)
    S = _check_int("starts", starts, 1, 10_000_000)
    success = success.validate(steps)
    targets(landscape, success.target)
    hp = dict(hp or {})
    hp.pop(param, None)
    resolve_hparams(variant, **hp)
    L, V = len(lrs), len(vals)
    w0 = start_points(landscape, S, start_mode, spread, seed, center)
    w0_b = w0.repeat(L * V, 1)  # (L*V*S, 2), order (lr, value, start)
    lr_b = torch.as_tensor(np.repeat(lrs, V * S))
    val_b = torch.as_tensor(np.tile(np.repeat(vals, S), L))
    resolve_hparams(variant, **hp, **{param: val_b})  # range check of every value, names the field
    n_steps = _steps_for(variant, steps, equal_evals)
    end, div = run_batch(landscape, variant, w0_b, lr_b, n_steps, {**hp, param: val_b},
                         last_k=min(success.last_k, n_steps), momentum=momentum, noise=noise, seed=seed, dtype=dtype,
                         should_stop=should_stop)
    ok, dist = judge(landscape, end, div, success)
    summ = _summary(ok.reshape(L, V, S), div.reshape(L, V, S), dist.reshape(L, V, S))
    rows = []
    for i, lr in enumerate(lrs):
        for j, val in enumerate(vals):
            rows.append({"variant": variant, "lr": float(lr), param: float(val),
                         **{k: float(a[i, j]) for k, a in summ.items()}})
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


def iter_basin_maps(landscape: Landscape, variants: Sequence[str], lr: float, hp: dict[str, dict] | None = None,
                    stop_event=None, **kw) -> Iterator[tuple[float, list[BasinMap]]]:
    """:func:`basin_map` for several variants, yielding ``(progress, maps so far)`` (a set ``stop_event``
    ends it within a step, keeping the finished maps)."""
    maps: list[BasinMap] = []
    for i, v in enumerate(variants):
        m = basin_map(landscape, v, lr, (hp or {}).get(v), should_stop=_stopper(stop_event), **kw)
        if _stopped(stop_event):
            return
        maps.append(m)
        yield (i + 1) / len(variants), list(maps)


def basin_map(landscape: Landscape, variant: str, lr: float, hp: dict | None = None, *, n: int = 80,
              steps: int = 500, success: Success = Success(target="any"), momentum: float = 0.0,
              noise: float = 0.0, seed: int = 0, dtype: torch.dtype = torch.float32,
              should_stop: Callable[[], bool] | None = None) -> BasinMap:
    """Basin of attraction of each minimum for ``variant`` from an n×n grid of starts over the domain."""
    n = _check_int("grid size", n, 2, 1000)
    steps = _check_int("steps", steps, 1, 1_000_000)
    success = success.validate(steps)
    _check_lrs([lr])
    mins = landscape.minima
    if not len(mins):
        targets(landscape, "any")
    (x0, x1), (y0, y1) = landscape.domain
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    X, Y = np.meshgrid(xs, ys)
    w0 = torch.as_tensor(np.stack((X.ravel(), Y.ravel()), -1))
    end, div = run_batch(landscape, variant, w0, float(lr), steps, hp or {}, last_k=success.last_k,
                         momentum=momentum, noise=noise, seed=seed, dtype=dtype, should_stop=should_stop)
    idx, dist = landscape.nearest(end, mins)
    label = np.where(div, -2, np.where(dist <= success.tol, idx, -1)).reshape(n, n)
    return BasinMap(variant, xs, ys, label, mins, success.tol)


def iter_sweep_grid(landscape: Landscape, variant: str, lrs, param: str, values, hp: dict | None = None,
                    stop_event=None, **kwargs) -> Iterator[tuple[float, pd.DataFrame]]:
    """:func:`sweep_grid` as a lab job (one batch: one ``(1.0, table)`` item; nothing if stopped first)."""
    df = sweep_grid(landscape, variant, lrs, param, values, hp, should_stop=_stopper(stop_event), **kwargs)
    if not _stopped(stop_event):
        yield 1.0, df


def iter_prewarm(landscape: Landscape, variants: Sequence[str], hp: dict[str, dict] | None = None, *,
                 momentum: float = 0.0, noise: float = 0.0) -> Iterator[tuple[float, None]]:
    """:func:`prewarm` as a lab job: compiles in the worker process that will run the sweep."""
    th = prewarm(landscape, variants, hp, momentum=momentum, noise=noise)
    while th is not None and th.is_alive():  # yields while it compiles, so a Stop is answered at once
        th.join(0.2)
        yield 0.5, None
    yield 1.0, None
