"""Vectorised trajectories: N points (N, D) optimised at once by any variant, on any gradient field.

The rule comes from `rules.sam_direction` with `batch_dims=1`, so every norm is per trajectory.
Learning rate and hyperparameters may be tensors of shape (N,), which is how sweeps put a whole
lr × ρ grid in one batch. A trajectory whose iterate or loss becomes inf/NaN is frozen at its last
finite point and reported in `diverged_step` (a divergence is a result, not an exception).

`compile=True` (sweeps ask for it when the batch is large) runs the same step, the same rule code,
through `torch.compile`: one fused C++ loop per step instead of ~40 elementwise passes over the batch,
5-20x faster on CPU once compiled (benchmarks/bench_lr_sweep.py). Only for `record=False` and stateless
rules (not those whose spec says `stateful`: infoSAM, fsam, looksam, msam); when compiling fails (no C++
compiler, an untraceable gradient such as autograd) it warns once and the eager loop runs instead.
`shared_noise` runs eagerly too (the compiled step draws one sample per row).

A recorded run of a stateless rule (the race) tests for divergence after the loop, on the recorded iterates
(`_freeze_late`: the same test, the same frozen rows), and with `grad_only` or `grad_parts` runs on coordinate
columns: a single race trajectory is dispatch-bound, and these were a third of its operations.

Both loops take the base step of every lab, `sam_core.step.base_step` (heavy ball, `w − lr·d`) and
`step.freeze` (a diverged row keeps its last finite point). `simulate` validates its arguments;
`simulate_resolved` is the same run for a caller that already resolved the hyperparameters (the race).
"""

from __future__ import annotations

import itertools
import threading
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import torch

from sam_core import fused_store, rules  # fused_store is light: torch.compile's modules load only to build
from sam_core.registry import get_spec, resolve_hparams, validate_lr
from sam_core.step import base_step, freeze

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
    compile: bool = False,
    grad_parts: Callable[[list[torch.Tensor]], tuple[torch.Tensor, list[torch.Tensor]]] | None = None,
    shared_noise: bool = False,
    grad_only: Callable[[list[torch.Tensor]], list[torch.Tensor]] | None = None,
) -> SimResult:
    """Run `steps` steps of `variant` from each row of `w0`.

    grad_fn(w (N, D)) -> (loss (N,), grad (N, D)). `noise` adds N(0, noise²) to every gradient
    evaluation; all passes of one step share the same draw, like one mini-batch.
    `compile=True` runs the compiled step (module docstring); `grad_parts([w[:, 0], …]) -> (loss,
    [∂₀, …])` is the same gradient on coordinate columns, which lets that step fuse completely.
    `shared_noise=True` gives every row the same draw per step (one (1, D) sample, as a single trajectory
    with this seed gets): rows that differ only in lr or a hyperparameter then see identical noise.
    `grad_only([w[:, 0], …]) -> [∂₀, …]` is the gradient alone on coordinate columns, for the recorded loop
    of a stateless rule, which needs no loss inside the loop (it takes f from `grad_fn` afterwards).
    """
    spec, lr = _check(variant, w0, steps, momentum, noise, lr)
    hpv = resolve_hparams(variant, **(hp or {}))
    return _simulate(
        _Run(
            variant,
            spec,
            grad_fn,
            w0,
            steps,
            lr,
            hpv,
            momentum,
            noise,
            seed,
            record,
            tail,
            should_stop,
            compile,
            grad_parts,
            shared_noise,
            grad_only,
        )
    )


def simulate_resolved(
    variant: str, grad_fn: GradFn, w0: torch.Tensor, steps: int, lr: Any, hpv: dict, **options: Any
) -> SimResult:
    """`simulate` for a caller that has already resolved the hyperparameters: `hpv` is what
    `registry.resolve_hparams(variant, …)` returned and is used as is (not validated again); every other
    argument is checked as `simulate` checks it, and `options` are `simulate`'s keywords after `hp`."""
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(f"simulate_resolved: unexpected keyword(s) {sorted(unknown)}")
    spec, lr = _check(variant, w0, steps, options.get("momentum", 0.0), options.get("noise", 0.0), lr)
    return _simulate(_Run(variant, spec, grad_fn, w0, steps, lr, hpv, **options))


@dataclass(frozen=True, eq=False)
class _Run:
    """One checked `simulate` call: what the eager loop and the compiled step read."""

    variant: Any  # the name (or spec) the caller gave: the compiled step's cache key
    spec: Any
    grad_fn: GradFn
    w0: torch.Tensor
    steps: int
    lr: Any  # validated: a float, or a tensor of one lr per row
    hpv: dict  # resolved hyperparameters
    momentum: float = 0.0
    noise: float = 0.0
    seed: int = 0
    record: bool = True
    tail: int = 0
    should_stop: Callable[[], bool] | None = None
    compile: bool = False
    grad_parts: Callable | None = None
    shared_noise: bool = False
    grad_only: Callable | None = None


_OPTIONS = frozenset(f.name for f in fields(_Run)) - {"variant", "spec", "grad_fn", "w0", "steps", "lr", "hpv"}


@dataclass
class _Trace:
    """What the eager loop hands back: the final iterate, the divergence steps and whatever was recorded."""

    w: torch.Tensor
    diverged: torch.Tensor
    ws: list[torch.Tensor]  # iterates w_0 … (record only)
    xis: list[torch.Tensor]  # the steps' noise draws (posthoc diagnostics only)
    losses: list[torch.Tensor]
    gnorms: list[torch.Tensor]
    gammas: list[torch.Tensor]
    ascents: list[torch.Tensor]
    tail_sum: torch.Tensor | None
    n_evals: int


def _check(variant: Any, w0: torch.Tensor, steps: Any, momentum: float, noise: float, lr: Any) -> tuple[Any, Any]:
    """Every argument check of `simulate` but the hyperparameters': (the spec, the validated lr)."""
    spec = get_spec(variant)
    if w0.dim() != 2:
        raise ValueError(f"w0 must have shape (N, D), got {tuple(w0.shape)}")
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer ≥ 0, got {steps!r}")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    if not noise >= 0.0:
        raise ValueError(f"noise must be ≥ 0, got {noise}")
    return spec, validate_lr(lr)


def _simulate(run: _Run) -> SimResult:
    spec, hpv, w0, steps, tail = run.spec, run.hpv, run.w0, run.steps, run.tail
    N, D = w0.shape
    # the compiled step draws one (N, D) sample per step: a shared (1, D) draw runs eagerly
    if run.compile and not run.record and not spec.stateful and not run.shared_noise:
        try:
            res = _simulate_fused(run)
        except _CompileFailed as cf:
            # the eager loop decides whose fault it was: if it fails too, the error is the caller's (a bad
            # input) and propagates; if it runs, the compiler is the problem and is not tried again
            res = _simulate(replace(run, compile=False))
            _FUSED_FAILED.add(cf.key)
            warnings.warn(
                f"simulate: compiling the {run.variant} step failed ({cf.reason}); ran it eagerly", stacklevel=3
            )
            return res
        if res is not None:
            return res
    lr_b = run.lr.reshape(N, 1).to(w0) if isinstance(run.lr, torch.Tensor) else run.lr
    # With record, a stateless rule's diagnostics (loss, ‖g‖, γ_t, ascent point) are functions of w_t and
    # the step's noise alone: one batched pass after the loop computes them for every step at once,
    # instead of ~15 extra small ops per step (the race's single trajectories are dispatch-bound).
    posthoc = run.record and not spec.stateful and all(_per_traj_ok(v, N) for v in hpv.values())
    # A recorded stateless run needs no divergence test inside the loop either: the recorded iterates say
    # where each row blew up, and the rows are independent, so freezing them afterwards gives the same numbers.
    # With `grad_only` (or `grad_parts`) and a few coordinates the loop also runs on coordinate columns (no
    # slicing and stacking of (N, D) tensors in every gradient call, and with `grad_only` no loss either).
    # docs/PERFORMANCE.md, "The race's eager loop".
    late = posthoc and tail == 0
    cols = late and (run.grad_only is not None or run.grad_parts is not None) and D <= 4
    if cols and isinstance(lr_b, torch.Tensor):
        lr_b = lr_b.reshape(N)
    tr = _freeze_late(run.grad_fn, _loop_unchecked(run, lr_b, cols)) if late else _loop(run, lr_b, posthoc)
    losses, gnorms, gammas, ascents = tr.losses, tr.gnorms, tr.gammas, tr.ascents
    if posthoc and len(tr.ws) > 1:
        losses, gnorms, gammas, ascents = _diagnostics(spec, run.grad_fn, tr.ws, tr.xis, hpv)
    tail_mean = tr.tail_sum / min(tail, steps) if tr.tail_sum is not None and steps else None
    if run.record:
        return SimResult(
            _stack(tr.ws, (0, N, D)),
            _stack(losses, (0, N)),
            _stack(gnorms, (0, N)),
            _stack(gammas, (0, N)),
            _stack(ascents, (0, N, D)),
            tr.diverged,
            tail_mean,
            tr.n_evals,
        )
    return SimResult(tr.w, None, None, None, None, tr.diverged, tail_mean, tr.n_evals)


def _per_traj_ok(v: Any, N: int) -> bool:
    """A hyperparameter that is the same for every step and at most one number per trajectory (what the
    batched after-the-loop diagnostics and the compiled step can take): not a list such as presam's D."""
    if isinstance(v, torch.Tensor):
        return v.dim() == 0 or (v.dim() == 1 and v.shape[0] == N)
    return v is None or isinstance(v, (bool, int, float, str))


def _stack(x: list[torch.Tensor] | torch.Tensor, empty: tuple[int, ...]) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    return torch.stack(x) if x else torch.empty(empty)


def _with_noise(grad_fn: GradFn, xi: torch.Tensor | None) -> Callable:
    """The rules' gradient callable on one (N, D) tensor: `grad_fn`, plus the step's noise draw `xi` if any
    (every pass of a step gets the same draw, like one mini-batch)."""

    def gf(ps):
        loss, g = grad_fn(ps[0])
        return loss, [g if xi is None else g + xi]

    return gf


def _with_noise_parts(run: _Run, xi: torch.Tensor | None) -> Callable:
    """`_with_noise` for a gradient on coordinate columns (`run.grad_only`, whose loss is None, or else
    `run.grad_parts`): the draw's columns added to the gradient's."""
    grad_only, grad_parts = run.grad_only, run.grad_parts
    xs = None if xi is None else xi.unbind(1)

    def gf(ps):
        loss, gs = (None, grad_only(ps)) if grad_only is not None else grad_parts(ps)
        return loss, (gs if xs is None else [g + x for g, x in zip(gs, xs)])

    return gf


def _draw(gen: torch.Generator | None, noise: float, w: torch.Tensor, shared: bool) -> torch.Tensor | None:
    """One step's gradient noise for the (N, D) batch `w`: N(0, noise²) per entry, or one (1, D) draw
    shared by every row (`shared_noise`); None without noise."""
    if gen is None:
        return None
    if shared:
        return (noise * torch.randn((1, w.shape[1]), generator=gen, device=w.device, dtype=w.dtype)).expand(w.shape)
    return noise * torch.randn(w.shape, generator=gen, device=w.device, dtype=w.dtype)


def _loop(run: _Run, lr_b: Any, posthoc: bool) -> _Trace:
    """The eager loop of `simulate`; with `posthoc` it records iterates and noise draws only."""
    spec, grad_fn, hpv, steps, tail, record = run.spec, run.grad_fn, run.hpv, run.steps, run.tail, run.record
    momentum, noise, should_stop, shared_noise = run.momentum, run.noise, run.should_stop, run.shared_noise
    N = run.w0.shape[0]
    in_loop = record and not posthoc  # diagnostics computed step by step (stateful rules)
    w = run.w0.detach().clone()
    buf = [torch.zeros_like(w)] if momentum else None
    state = rules.init_state(spec)
    gen = torch.Generator(device=w.device).manual_seed(run.seed) if noise > 0 else None
    alive = torch.ones(N, dtype=torch.bool, device=w.device)
    all_alive = True
    diverged = torch.full((N,), -1, dtype=torch.long, device=w.device)
    ws, xis, losses, gnorms, gammas, ascents = ([w] if record else []), [], [], [], [], []
    tail_sum = torch.zeros_like(w) if tail > 0 else None
    n_evals = 0
    for t in range(1, steps + 1):
        if should_stop is not None and should_stop():
            break
        xi = _draw(gen, noise, w, shared_noise)
        if posthoc and xi is not None:
            xis.append(xi)
        d, st, n = rules.sam_direction(
            spec, [w], _with_noise(grad_fn, xi), hpv, state, t, batch_dims=1, keep_e=in_loop, diagnostics=in_loop
        )
        n_evals += n
        (w_new,), buf_new = base_step([w], d, lr_b, buf, momentum)
        ok = torch.isfinite(st["loss"] + rules._last_dim_sum(w_new))  # inf/NaN anywhere propagates
        if all_alive and bool(ok.all()):  # the common case: no bookkeeping needed
            w, buf = w_new, buf_new
        else:
            diverged = torch.where(alive & ~ok, t, diverged)
            alive = alive & ok
            all_alive = bool(alive.all())
            (w,), buf = freeze(alive, [w_new], [w], buf_new)
        if tail_sum is not None and t > steps - tail:
            tail_sum = tail_sum + w
        if record:
            ws.append(w)
        if in_loop:
            losses.append(st["loss"])
            gnorms.append(st["grad_norm"])
            gammas.append(st["gamma"])
            es = st["e"]
            ascents.append(ws[-2] + es[0][0] if es else ws[-2])
    return _Trace(w, diverged, ws, xis, losses, gnorms, gammas, ascents, tail_sum, n_evals)


def _loop_unchecked(run: _Run, lr_b: Any, cols: bool) -> _Trace:
    """The recorded stateless loop without a divergence test: iterates and noise draws, nothing else. With
    `cols` the iterate is the list of its coordinate columns and the gradient is `run.grad_only` or
    `run.grad_parts`. A row that blows up runs on with inf/NaN (a `grad_fn` must accept them: it sees them in
    `_freeze_late` too), which then puts the row back at its last finite iterate."""
    spec, hpv, steps, momentum, noise = run.spec, run.hpv, run.steps, run.momentum, run.noise
    should_stop, shared_noise = run.should_stop, run.shared_noise
    w0 = run.w0.detach()
    N, D = w0.shape
    ps = [w0[:, i].clone() for i in range(D)] if cols else [w0.clone()]
    buf = [torch.zeros_like(p) for p in ps] if momentum else None
    gen = torch.Generator(device=w0.device).manual_seed(run.seed) if noise > 0 else None
    ws, xis = [ps], []
    n_evals = 0
    for t in range(1, steps + 1):
        if should_stop is not None and should_stop():
            break
        xi = _draw(gen, noise, w0, shared_noise)
        if xi is not None:
            xis.append(xi)
        gf = _with_noise_parts(run, xi) if cols else _with_noise(run.grad_fn, xi)
        d, _, n = rules.sam_direction(spec, ps, gf, hpv, {}, t, batch_dims=1, diagnostics=False)
        n_evals += n
        ps, buf = base_step(ps, d, lr_b, buf, momentum)
        ws.append(ps)
    if cols:  # (K+1) lists of D columns (N,) -> K+1 tensors (N, D), one stack per coordinate
        W = torch.stack([torch.stack(c) for c in zip(*ws)], -1)
        ws = list(W.unbind(0))
    else:
        ws = [p[0] for p in ws]
    z = torch.full((N,), -1, dtype=torch.long, device=w0.device)
    return _Trace(ws[-1], z, ws, xis, [], [], [], [], None, n_evals)


def _freeze_late(grad_fn: GradFn, tr: _Trace) -> _Trace:
    """What the loop's per-step test would have done, from the recorded iterates: step t fails where the
    loss at w_{t-1} plus the sum of w_t's coordinates is not finite (the test of `_loop`), the first failing
    step is the row's `diverged_step`, and the row keeps w_{t-1} from there on."""
    K = len(tr.ws) - 1
    if K == 0:
        return tr
    W = torch.stack(tr.ws)  # (K+1, N, D)
    N, D = W.shape[1:]
    block = max(1, DIAG_BLOCK // N)
    bad = []
    for a in range(0, K, block):
        b = min(K, a + block)
        loss, _ = grad_fn(W[a:b].reshape((b - a) * N, D))
        bad.append(~torch.isfinite(loss.reshape(b - a, N) + rules._last_dim_sum(W[a + 1 : b + 1])))
    bad = torch.cat(bad)  # (K, N): step t = index + 1 failed
    if not bool(bad.any()):
        return tr
    hit = bad.any(0)
    first = torch.where(hit, bad.int().argmax(0), torch.full_like(hit, K, dtype=torch.long))  # index of t* - 1
    steps = torch.arange(K + 1, device=W.device).reshape(K + 1, 1)
    keep = steps <= first.reshape(1, N)  # rows at or before their last finite iterate
    last = W[first.clamp(max=K), torch.arange(N, device=W.device)]  # (N, D) w_{t*-1}
    W = torch.where(keep.unsqueeze(-1), W, last.unsqueeze(0))
    diverged = torch.where(hit, first + 1, torch.full_like(first, -1))
    ws = list(W.unbind(0))
    return replace(tr, w=ws[-1], diverged=diverged, ws=ws)


def _diagnostics(variant, grad_fn, ws, xis, hpv):
    """Loss, ‖g‖, γ_t and the ascent point of every recorded step in one batched call of the rule:
    the K steps × N trajectories become K·N independent trajectories (step t, iterate w_{t-1}, draw ξ_t)."""
    K, (N, D) = len(ws) - 1, ws[0].shape
    block = max(1, DIAG_BLOCK // N)  # steps per call: bounded memory for large N × K
    out: list[list[torch.Tensor]] = [[], [], [], []]
    for a in range(0, K, block):
        b = min(K, a + block)
        k = b - a
        W = torch.stack(ws[a:b]).reshape(k * N, D)
        X = torch.stack(xis[a:b]).reshape(k * N, D) if xis else None
        t = torch.arange(a + 1, b + 1, dtype=W.dtype, device=W.device).repeat_interleave(N)  # λ = 1/t schedules
        hp = {n: (v.repeat(k) if isinstance(v, torch.Tensor) and v.dim() else v) for n, v in hpv.items()}
        _, st, _ = rules.sam_direction(
            variant, [W], _with_noise(grad_fn, X), hp, {}, t, batch_dims=1, keep_e=True, diagnostics=True
        )
        es = st["e"]
        for lst, v in zip(out, (st["loss"], st["grad_norm"], st["gamma"], W + es[0][0] if es else W)):
            lst.append(v.reshape(k, N, *v.shape[1:]))
    return tuple(torch.cat(x) for x in out)


# ---------------------------------------------------------------------------------------------- fused
class _Stateful:
    """The variants whose state (Python counters, moment lists) a compiled step cannot carry: those whose
    spec says `stateful=True` (infoSAM, and any plug-in that keeps state), read from the registry live."""

    def __contains__(self, variant: object) -> bool:
        from sam_core.registry import VARIANTS

        spec = VARIANTS.get(variant) if isinstance(variant, str) else variant
        return bool(getattr(spec, "stateful", False))

    def __iter__(self):
        from sam_core.registry import VARIANTS

        return iter([n for n, s in VARIANTS.items() if s.stateful])

    def __repr__(self) -> str:
        return f"STATEFUL{tuple(self)}"


STATEFUL = _Stateful()
DIAG_BLOCK = 1 << 16  # trajectory-steps per batched diagnostics call
FUSED_CACHE = 32  # compiled steps kept per process (least recently used dropped, with their compiled code)
_FUSED: OrderedDict[tuple, Callable] = OrderedDict()
_FUSED_FAILED: set[tuple] = set()
_FUSED_LOCK = threading.Lock()
_FUSED_COUNT = itertools.count()


class _CompileFailed(Exception):
    def __init__(self, key: tuple, reason: str):
        super().__init__(reason)
        self.key, self.reason = key, reason


def _split_hp(hpv: dict) -> tuple[tuple, tuple[str, ...], list[Any]]:
    """Numbers become tensor inputs of the compiled step (a new ρ must not recompile it); strings,
    flags and None stay Python values the trace specialises on (they pick the code path)."""
    static, keys, vals = [], [], []
    for k, v in sorted(hpv.items()):
        if isinstance(v, torch.Tensor) or (isinstance(v, (int, float)) and not isinstance(v, bool)):
            keys.append(k)
            vals.append(v)
        else:  # str, bool or None (callers check with _per_traj_ok first)
            static.append((k, v))
    return tuple(static), tuple(keys), vals


def _fused_fn(variant: Any, gf_parts: Callable, static: dict, keys: tuple[str, ...], momentum: bool, noisy: bool):
    """The step to compile, on coordinate columns: `ws` = [w[:, 0], …, w[:, D-1]], each (N,). The rule sees
    them as a D-tensor parameter list with one number per trajectory in each, so every norm is plain
    arithmetic on contiguous columns and the whole step fuses into one loop. `torch.compile` takes it here
    (`_make_fused`); `sam_core.fused_store` exports the same function ahead of time."""

    def fused_step(ws, lr, alive, div, t, vals, bufs, mom, xis):
        hp = {**static, **dict(zip(keys, vals))}

        def gf(ps):
            loss, gs = gf_parts(ps)
            return loss, [g + x for g, x in zip(gs, xis)] if noisy else gs

        d, st, _ = rules.sam_direction(variant, ws, gf, hp, {}, t, batch_dims=1, diagnostics=False)
        new, new_bufs = base_step(ws, d, lr, bufs if momentum else None, mom)
        # alive/ok as 0/1 floats, not bools: bool tensors in and out made the fused CPU loop 5x slower
        ok = alive * torch.isfinite(st["loss"] + rules._sum_per_traj(new, 1)).to(ws[0].dtype)  # as eager
        div = div + (alive - ok) * t  # t at the step a trajectory blew up, 0 otherwise
        ws, new_bufs = freeze(ok > 0, new, ws, new_bufs)
        return ws, ok, div, new_bufs if momentum else bufs

    # dynamo keeps compiled code per code object and caps recompiles per code object: a code object of its
    # own per configuration keeps configurations from counting against each other, and lets the compiled
    # code go when the configuration leaves the cache
    code = fused_step.__code__.replace(co_name=f"fused_step_{next(_FUSED_COUNT)}")
    return types.FunctionType(
        code, fused_step.__globals__, code.co_name, fused_step.__defaults__, fused_step.__closure__
    )


def _make_fused(variant: Any, gf_parts: Callable, static: dict, keys: tuple[str, ...], momentum: bool, noisy: bool):
    """The step (`_fused_fn`) through torch.compile."""
    return torch.compile(_fused_fn(variant, gf_parts, static, keys, momentum, noisy), dynamic=True, fullgraph=True)


def _layout(lr: Any, vals: list[Any]) -> tuple[int, tuple[int, ...]]:
    """lr and each numeric hyperparameter: one number (0) or one per trajectory (1)."""
    return int(isinstance(lr, torch.Tensor)), tuple(int(isinstance(v, torch.Tensor) and v.dim() == 1) for v in vals)


def _simulate_fused(run: _Run) -> SimResult | None:
    """`simulate(record=False)` through a compiled step. None when this configuration cannot be compiled
    (the caller runs eagerly); raises _CompileFailed when compiling fails."""
    variant, grad_fn, grad_parts, w0, steps = run.variant, run.grad_fn, run.grad_parts, run.w0, run.steps
    lr, hpv = run.lr, run.hpv
    momentum, noise, seed, tail, should_stop = run.momentum, run.noise, run.seed, run.tail, run.should_stop
    N, D = w0.shape
    if not all(_per_traj_ok(v, N) for v in hpv.values()):
        return None  # e.g. presam's per-parameter D: a list the trace would not see through
    static, keys, vals = _split_hp(hpv)
    # lr and each numeric hyperparameter: one number (0) or one per trajectory (1); a stored step is
    # exported for one such layout (torch.compile would recompile for another one anyway)
    layout = _layout(lr, vals)
    key = (
        variant,
        grad_parts if grad_parts is not None else grad_fn,
        grad_parts is not None,
        static,
        keys,
        bool(momentum),
        noise > 0,
        w0.dtype,
        w0.device.type,
        layout,
    )
    try:
        hash(key)
    except TypeError:  # an unhashable gradient function: nothing to cache the compiled step under
        return None
    if key in _FUSED_FAILED:
        return None
    recipe = None  # set when this process compiles a step the disk store can keep for the next one
    with _FUSED_LOCK:
        fn = _FUSED.get(key)
        if fn is not None:
            _FUSED.move_to_end(key)
        else:
            stored = fused_store.recipe_of(run.spec, grad_parts, static, keys, bool(momentum), noise > 0, w0, layout)
            fn = fused_store.load(stored) if stored is not None else None
            if fn is None:
                if grad_parts is None:

                    def grad_parts(ps, grad_fn=grad_fn):  # noqa: E306 - the (N, D) gradient, cut into columns
                        loss, g = grad_fn(torch.stack(ps, 1))
                        return loss, list(g.unbind(1))

                fn = _make_fused(run.spec, grad_parts, dict(static), keys, bool(momentum), noise > 0)
                recipe = stored
            _FUSED[key] = fn
            while len(_FUSED) > FUSED_CACHE:
                _FUSED.popitem(last=False)
    dt, dev = w0.dtype, w0.device
    ws = [w0[:, i].detach().clone(memory_format=torch.contiguous_format) for i in range(D)]
    lr_t = lr.reshape(N).to(w0) if isinstance(lr, torch.Tensor) else torch.tensor(float(lr), dtype=dt, device=dev)
    vals = [v.to(w0) if isinstance(v, torch.Tensor) else torch.tensor(float(v), dtype=dt, device=dev) for v in vals]
    alive = torch.ones(N, dtype=dt, device=dev)
    div = torch.zeros(N, dtype=dt, device=dev)
    bufs = [torch.zeros_like(w) for w in ws] if momentum else []
    mom = torch.tensor(float(momentum), dtype=dt, device=dev) if momentum else None
    gen = torch.Generator(device=dev).manual_seed(seed) if noise > 0 else None
    tail_sum = [torch.zeros_like(w) for w in ws] if tail > 0 else None
    done = 0
    for t in range(1, steps + 1):
        if should_stop is not None and should_stop():
            break
        # the same draws as the eager loop: one (N, D) sample per step, shared by all passes
        xis = list((noise * torch.randn((N, D), generator=gen, device=dev, dtype=dt)).unbind(1)) if gen else []
        tt = torch.tensor(float(t), dtype=dt, device=dev)
        try:
            ws, alive, div, bufs = fn(ws, lr_t, alive, div, tt, vals, bufs, mom, xis)
        except Exception as e:  # noqa: BLE001 - compiling happens in the first call; simulate sorts it out
            if t > 1:
                raise
            first = str(e).splitlines()[0][:200] if str(e) else ""
            raise _CompileFailed(key, f"{type(e).__name__}: {first}") from e
        if t == 1 and recipe is not None:  # it compiled: the next process can load it instead
            fused_store.request_build(recipe)
        if tail_sum is not None and t > steps - tail:
            tail_sum = [a + w for a, w in zip(tail_sum, ws)]
        done = t
    diverged = torch.where(alive > 0, torch.full_like(div, -1), div).long()
    tail_mean = torch.stack(tail_sum, 1) / min(tail, steps) if tail_sum is not None and steps else None
    return SimResult(torch.stack(ws, 1), None, None, None, None, diverged, tail_mean, run.spec.passes * done)
