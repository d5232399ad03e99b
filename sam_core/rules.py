"""The SAM update rules' shared machinery: the helpers every rule uses and the dispatch to the variants.

Each variant's own maths (its ascent, its combination of the gradients, its state) lives in its module,
`sam_core/variants/<name>.py` (or a plug-in, docs/VARIANTS.md); `perturbations`, `combine` and
`sam_direction` look the variant up in the registry and call it, and `stable_direction` is Stable SAM's
γ_t renormalisation for any two-pass rule.

Every rule works on a *list of tensors* (a network's parameters, or one `(N, D)` tensor of N
trajectories) with `batch_dims` leading dimensions of independent trajectories: all norms are global
over the tensors of one trajectory and separate per trajectory (`(N,)` norms, never one norm over
the batch). Hyperparameters may be Python numbers or tensors of the batch shape (a sweep over ρ).

A step has the same shape for every variant (docs/ALGORITHMS.md, "Common skeleton"):

    loss, g  = grad_fn(w)                      # pass 1
    es       = perturbations(variant, g, w, …) # 0 (SGD), 1 (SAM family) or 2 (BSAM) ascent points
    g_advs   = [grad_fn(w + e)[1] for e in es] # the extra passes
    d, stats = combine(variant, g, g_advs, …)  # the direction the base optimizer follows

No `.item()`, no Python `if` on tensor values, no in-place writes on inputs: the same code runs
inside the torch.optim shell (`optim.py`), over thousands of 2-D trajectories (`simulate.py`), and
batched over runs in the labs (`dynamics/problems/`). Rules may replace entries of the `state` dict
(infoSAM's moments) but never modify a tensor they were given. One-pass lookahead rules (Momentum-SAM)
take their only gradient at w + e, e from their state (`lookahead_perturbation`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch

EPS = 1e-12
Tensors = list[torch.Tensor]


# ---------------------------------------------------------------------------------------------- helpers
def _b(x: Any, t: torch.Tensor, bd: int) -> Any:
    """Broadcast a per-trajectory value (scalar, or a tensor of the batch shape) against tensor `t`."""
    if isinstance(x, torch.Tensor) and x.dim() > 0:
        return x.reshape(x.shape + (1,) * (t.dim() - x.dim()))
    return x


def _sum_per_traj(ts: Sequence[torch.Tensor], bd: int) -> torch.Tensor:
    """Σ over all elements of each trajectory: a 0-dim tensor (bd = 0) or one of the batch shape."""
    if bd == 0:
        return torch.stack([t.sum() for t in ts]).sum() if len(ts) > 1 else ts[0].sum()
    if len(ts) == 1 and ts[0].dim() == bd + 1:
        return _last_dim_sum(ts[0])
    out = None
    for t in ts:
        s = t if t.dim() == bd else t.reshape(*t.shape[:bd], -1).sum(-1)
        out = s if out is None else out + s
    return out


def _last_dim_sum(x: torch.Tensor) -> torch.Tensor:
    """Σ over the last dimension; unrolled when it is tiny (a 2-D point), where torch's reduction
    kernels are ~10× slower than a few elementwise ops, and far slower still on column-major batches."""
    if x.shape[-1] <= 4:
        out = x[..., 0]
        for i in range(1, x.shape[-1]):
            out = out + x[..., i]
        return out
    return x.sum(-1)


def global_norm(ts: Sequence[torch.Tensor], bd: int = 0) -> torch.Tensor:
    """‖·‖₂ over all tensors of a trajectory; shape = batch shape (0-dim when bd = 0)."""
    if bd == 0:
        if len(ts) == 1:
            return torch.linalg.vector_norm(ts[0])
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(list(ts))))
    if len(ts) == 1 and ts[0].dim() == bd + 1 and ts[0].shape[-1] <= 4:  # points (N, D) with small D
        t = ts[0]
        return _last_dim_sum(t * t).sqrt()
    if all(t.dim() == bd for t in ts):  # one number per trajectory in each tensor: (x, y) of 2-D points
        return _sum_per_traj([t * t for t in ts], bd).sqrt()  # plain arithmetic fuses (hypot does not)
    norms = [torch.linalg.vector_norm(t, dim=tuple(range(bd, t.dim()))) if t.dim() > bd else t.abs() for t in ts]
    if len(norms) == 1:
        return norms[0]
    if len(norms) == 2:
        return torch.hypot(norms[0], norms[1])
    return torch.linalg.vector_norm(torch.stack(norms), dim=0)


def _wide_norm(ts: Sequence[torch.Tensor], bd: int = 0) -> torch.Tensor:
    """‖·‖₂ as `global_norm`, computed in float64 where the tensors are narrower (not on MPS, which has
    no float64): squares of a float32 gradient underflow once ‖g‖ < ~1e-22, float64's only below ~1e-154."""
    t0 = ts[0]
    if t0.dtype == torch.float64 or not t0.dtype.is_floating_point or t0.device.type == "mps":
        return global_norm(ts, bd)
    if bd == 0:
        norms = torch._foreach_norm(list(ts), dtype=torch.float64)
        return norms[0] if len(norms) == 1 else torch.linalg.vector_norm(torch.stack(norms))
    return global_norm([t.double() for t in ts], bd)


def _max_abs(ts: Sequence[torch.Tensor]) -> torch.Tensor:
    out = ts[0].abs()
    for t in ts[1:]:
        out = torch.maximum(out, t.abs())
    return out


def _sum_sq(ts: Sequence[torch.Tensor], inv: torch.Tensor) -> torch.Tensor:
    out = None
    for t in ts:
        x = t * inv
        out = x * x if out is None else out + x * x
    return out


def norm_ratio(num: Sequence[torch.Tensor], den: Sequence[torch.Tensor], bd: int = 0) -> torch.Tensor:
    """‖num‖ / ‖den‖ per trajectory, exact down to the smallest gradients: no ε in the denominator (an ε
    of 1e-12 takes over as ‖g‖ nears it and drives SSAM's γ_t to 0 near every minimum), norms in float64
    (or rescaled), and 1 where ‖den‖ = 0 (then the direction is 0 whatever γ is). NaN — the run has blown
    up and is marked diverged — where ‖den‖² overflows the tensors' dtype, or where the ratio itself
    underflows to 0 there (γ·g_adv would freeze the run at a huge finite point). Returned in that dtype."""
    a, b = num[0], den[0]
    dt = a.dtype if a.dtype.is_floating_point else torch.get_default_dtype()
    # blown up: ‖den‖² overflows the dtype (float32/64: where a plain norm would be inf; float16, whose
    # square root of the max is 256, only where ‖den‖ itself is not representable)
    big = torch.finfo(dt).max
    big = big**0.5 if big > 1e10 else big
    if bd and len(num) == len(den) == 1 and a.dim() == bd + 1 and a.shape[-1] <= 4:
        num, den = a.unbind(-1), b.unbind(-1)  # (N, 2) points: their (x, y) columns
    if bd and len(num) <= 4 and all(t.dim() == bd for t in (*num, *den)) and dt != torch.float64:
        # 2-D points in float32 (the landscape sweeps, compiled: every op counts): one common scale, the
        # largest |component|, keeps the squares in range — plain elementwise arithmetic that fuses
        mb = _max_abs(den)
        inv = 1.0 / torch.maximum(_max_abs(num), mb).clamp_min(torch.finfo(dt).tiny)
        sa, sb = _sum_sq(num, inv), _sum_sq(den, inv)
        pos = sb > 0
        out = torch.where(pos, sa.sqrt() / torch.where(pos, sb, torch.ones_like(sb)).sqrt(), torch.ones_like(sb))
        # blown up: ‖den‖ ≥ its largest component beyond big/2 (within √2 of the exact test)
        return torch.where(mb > 0.5 * big, torch.full_like(out, float("nan")), out)
    n, d = _wide_norm(num, bd), _wide_norm(den, bd)
    pos = d > 0
    out = torch.where(pos, n / torch.where(pos, d, torch.ones_like(d)), torch.ones_like(d)).to(dt)
    blown = ~(d <= big) | ((out == 0) & (n > 0))
    return torch.where(blown, torch.full_like(out, float("nan")), out)


def dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor], bd: int = 0) -> torch.Tensor:
    return _sum_per_traj([x * y for x, y in zip(a, b)], bd)


def scale(ts: Sequence[torch.Tensor], c: Any, bd: int = 0) -> Tensors:
    return [t * _b(c, t, bd) for t in ts]


def numel_per_traj(ts: Sequence[torch.Tensor], bd: int) -> int:
    return sum(t[(0,) * bd].numel() for t in ts)


def unified_lam(lam: Any, step: Any) -> Any:
    """λ of Unified SAM at step t ≥ 1: a number/tensor, or the schedules '1/t' and '1-1/t'."""
    if isinstance(lam, str):  # never compare a tensor λ (a λ sweep) with a string
        if lam == "1/t":
            return 1.0 / step
        if lam == "1-1/t":
            return 1.0 - 1.0 / step
    return lam


def bsam_rho_min(hp: dict, lr: Any = None, lr_max: Any = None) -> Any:
    """BSAM's ρ_min(t) = lo + (ρ_min − lo)·(η_t − η_min)/(η_max − η_min) with η_min = 0 and the ratio
    clamped to [0, 1] (so ρ_min at the largest LR, `rho_min_lo` at LR 0), or the constant ρ_min."""
    if hp["rho_min_schedule"] == "lr" and lr is not None and lr_max is not None and not _is_zero(lr_max):
        ratio = lr / lr_max
        ratio = ratio.clamp(0.0, 1.0) if isinstance(ratio, torch.Tensor) else min(max(ratio, 0.0), 1.0)
        lo = hp.get("rho_min_lo", 0.0)
        return lo + (hp["rho_min"] - lo) * ratio
    return hp["rho_min"]


def _is_zero(x: Any) -> bool:
    return (not isinstance(x, torch.Tensor)) and float(x) == 0.0


# ---------------------------------------------------------------------------------------------- the rules
class AscentStep:
    """What a variant's `ascent` sees: the clean gradient `g` at the weights `w` (lists of tensors with
    `bd` batch dimensions), its norm `g_norm`, the hyperparameters `hp`, the rule's `state` dict, the
    step `t` (≥ 1; a tensor of the batch shape in the after-the-loop diagnostics), the current and
    largest learning rates (None where unknown) and ASAM's `weight_mask`."""

    __slots__ = ("g", "w", "hp", "state", "step", "bd", "lr", "lr_max", "weight_mask", "g_norm")

    def __init__(self, g, w, hp, state, step, bd, lr, lr_max, weight_mask, g_norm):
        self.g, self.w, self.hp, self.state, self.step, self.bd = g, w, hp, state, step, bd
        self.lr, self.lr_max, self.weight_mask, self.g_norm = lr, lr_max, weight_mask, g_norm


class CombineStep:
    """What a variant's `combine` and `stable_gamma` see: `g`, the gradients `g_advs` at the ascent points
    `w + es[k]`, `w`, `es`, `hp`, `bd`, `weight_mask`, `g_norm`, the data-parallel `reduce` (None
    outside DDP: average what must agree across workers with it) and `stats`, the step's diagnostics so
    far (a rule may add its own, e.g. BSAM's σ)."""

    __slots__ = ("g", "g_advs", "w", "es", "hp", "bd", "weight_mask", "reduce", "g_norm", "stats", "state")

    def __init__(self, g, g_advs, w, es, hp, bd, weight_mask, reduce, g_norm, stats, state=None):
        self.g, self.g_advs, self.w, self.es, self.hp, self.bd = g, g_advs, w, es, hp, bd
        self.weight_mask, self.reduce, self.g_norm, self.stats = weight_mask, reduce, g_norm, stats
        self.state = {} if state is None else state


def perturbations(
    variant: Any,
    g: Tensors,
    w: Tensors,
    hp: dict,
    state: dict | None = None,
    step: Any = 1,
    batch_dims: int = 0,
    lr: Any = None,
    lr_max: Any = None,
    weight_mask: Sequence[bool] | None = None,
    g_norm: torch.Tensor | None = None,
) -> list[Tensors]:
    """The ascent perturbations `e` of one step: [] for SGD, [e] for two-pass rules, [e_max, e_min] for BSAM.

    `variant` is a name or a `VariantSpec`; the maths is the variant's own `ascent` (sam_core/variants/).
    `g_norm` may pass in ‖g‖ when the caller already has it (it is computed otherwise).
    """
    spec = get_spec(variant)
    if spec.ascent is None:
        return []
    bd = batch_dims
    state = {} if state is None else state
    if g_norm is None:
        g_norm = global_norm(g, bd)
    return spec.ascent(AscentStep(g, w, hp, state, step, bd, lr, lr_max, weight_mask, g_norm))


def combine(
    variant: Any,
    g: Tensors,
    g_advs: Sequence[Tensors],
    w: Tensors,
    es: Sequence[Tensors],
    hp: dict,
    batch_dims: int = 0,
    weight_mask: Sequence[bool] | None = None,
    reduce: Callable[[Tensors], Tensors] | None = None,
    g_norm: torch.Tensor | None = None,
    diagnostics: bool = True,
    state: dict | None = None,
) -> tuple[Tensors, dict[str, torch.Tensor]]:
    """The descent direction `d` and the step's diagnostics (tensors of the batch shape).

    `reduce` (data-parallel training only) averages a list of tensors over the workers. The clean `g`
    is then local (each worker perturbed with its own gradient) while `g_advs` arrive already
    averaged; what enters `d` must agree across workers, so BSAM's `g` term and the stable rules'
    γ_t (a ratio of local norms) are averaged with it. `diagnostics=False` skips the statistics the
    rule itself does not need (cos, ‖e‖, and ‖g_adv‖/γ_t where unused): sweeps over many trajectories.
    With `hp["stable"]` the variant's direction is renormalised by Stable SAM's γ_t (`stable_direction`).
    """
    spec = get_spec(variant)
    bd = batch_dims
    g_norm = global_norm(g, bd) if g_norm is None else g_norm
    if spec.ascent is None or not g_advs:
        if not diagnostics:
            return list(g), dict(grad_norm=g_norm)
        one = torch.ones_like(g_norm)
        return list(g), dict(
            grad_norm=g_norm, perturbed_grad_norm=g_norm, gamma=one, cos=one, perturbation_norm=torch.zeros_like(g_norm)
        )
    g_adv = g_advs[0]
    stable = hp.get("stable", False)
    stats = dict(grad_norm=g_norm)
    if diagnostics or stable:
        adv_norm = global_norm(g_adv, bd)
        gamma = norm_ratio(g, g_adv, bd)
        stats.update(perturbed_grad_norm=adv_norm, gamma=gamma)
    if diagnostics:
        stats.update(cos=dot(g, g_adv, bd) / (g_norm * adv_norm + EPS), perturbation_norm=global_norm(es[0], bd))
    ctx = CombineStep(g, g_advs, w, es, hp, bd, weight_mask, reduce, g_norm, stats, state)
    d = list(g_adv) if spec.combine is None else spec.combine(ctx)
    if stable:
        d = stable_direction(spec, ctx, d)
    return d, stats


def stable_direction(spec: Any, ctx: CombineStep, d: Tensors) -> Tensors:
    """Stable SAM's renormalisation on any two-pass rule: γ_t·d with γ_t = ‖g‖/‖d‖ (d = ∇L(w+e) for the
    plain rules, so γ_t = ‖g‖/‖g_adv‖), or the variant's own `stable_gamma` (ASAM: its weighted norms).
    γ_t is `norm_ratio`: exact near minima (no ε), averaged over workers under DDP, `min(1, γ_t)` with
    `clip_gamma`. Stored in `stats["gamma"]`."""
    spec = get_spec(spec)
    if spec.stable_gamma is not None:
        gamma = spec.stable_gamma(ctx)
    elif spec.combine is None:
        gamma = ctx.stats["gamma"]
    else:
        gamma = norm_ratio(ctx.g, d, ctx.bd)
    if ctx.reduce is not None:
        gamma = ctx.reduce([gamma])[0]
    if ctx.hp.get("clip_gamma", False):
        gamma = gamma.clamp(max=1.0)
    ctx.stats["gamma"] = gamma
    return scale(d, gamma, ctx.bd)


def init_state(variant: Any) -> dict:
    """A fresh rule state (`{}` unless the variant keeps one, e.g. infoSAM's gradient moments).

    The rules build their state lazily from the first step's tensors, so neither this nor a variant's own
    `init_state()` hook (docs/VARIANTS.md) takes the parameters. A plug-in written for the earlier
    one-argument hook, `init_state(params)`, still works: it is given None, as it always was."""
    spec = get_spec(variant)
    if spec.init_state is None:
        return {}
    try:
        takes_arg = len(inspect.signature(spec.init_state).parameters) == 1
    except (TypeError, ValueError):  # a builtin without a signature: call it as documented
        takes_arg = False
    return spec.init_state(None) if takes_arg else spec.init_state()


def sam_direction(
    variant: str,
    params: Tensors,
    grad_fn: Callable[[Tensors], tuple[torch.Tensor, Tensors]],
    hp: dict,
    state: dict | None = None,
    step: Any = 1,
    batch_dims: int = 0,
    lr: Any = None,
    lr_max: Any = None,
    weight_mask: Sequence[bool] | None = None,
    keep_e: bool = False,
    diagnostics: bool = True,
) -> tuple[Tensors, dict[str, torch.Tensor], int]:
    """One full step's direction: evaluates `grad_fn` at w and at every ascent point.

    Returns `(d, stats, n_evals)`; `stats` holds loss, grad_norm, perturbed_grad_norm, gamma, cos and
    perturbation_norm (and the perturbations under "e" when `keep_e`).
    """
    spec = get_spec(variant)
    if spec.lookahead is not None:
        return _lookahead_direction(
            spec, params, grad_fn, hp, state, step, batch_dims, lr, lr_max, weight_mask, keep_e, diagnostics
        )
    loss, g = grad_fn(params)
    g_norm = global_norm(g, batch_dims)
    es = perturbations(spec, g, params, hp, state, step, batch_dims, lr, lr_max, weight_mask, g_norm=g_norm)
    g_advs = [grad_fn([p + e for p, e in zip(params, ek)])[1] for ek in es]
    d, stats = combine(
        spec, g, g_advs, params, es, hp, batch_dims, weight_mask, g_norm=g_norm, diagnostics=diagnostics, state=state
    )
    stats["loss"] = loss
    if keep_e:
        stats["e"] = es
    return d, stats, 1 + len(es)


def lookahead_perturbation(
    variant: Any,
    w: Tensors,
    hp: dict,
    state: dict,
    step: Any = 1,
    batch_dims: int = 0,
    lr: Any = None,
    lr_max: Any = None,
    weight_mask: Sequence[bool] | None = None,
) -> Tensors:
    """The perturbation of a one-pass lookahead rule (Momentum-SAM), taken before the step's gradient."""
    spec = get_spec(variant)
    return spec.lookahead(AscentStep(None, w, hp, state, step, batch_dims, lr, lr_max, weight_mask, None))


def _lookahead_direction(spec, params, grad_fn, hp, state, step, bd, lr, lr_max, weight_mask, keep_e, diagnostics):
    """One step of a lookahead rule: the only gradient is taken at w + e, e from the rule's state; then the
    rule updates its state with d (its own momentum buffer: the labs' runners keep theirs apart)."""
    state = {} if state is None else state
    e = lookahead_perturbation(spec, params, hp, state, step, bd, lr, lr_max, weight_mask)
    loss, g = grad_fn([p + x for p, x in zip(params, e)])
    g_norm = global_norm(g, bd)
    d = (
        list(g)
        if spec.combine is None
        else spec.combine(CombineStep(g, [], params, [e], hp, bd, weight_mask, None, g_norm, {}, state))
    )
    stats = dict(grad_norm=g_norm, loss=loss)
    if diagnostics:
        one = torch.ones_like(g_norm)
        stats.update(perturbed_grad_norm=g_norm, gamma=one, cos=one, perturbation_norm=global_norm(e, bd))
    if spec.after_step is not None:
        spec.after_step(state, d, hp, bd, None)
    if keep_e:
        stats["e"] = [e]
    return d, stats, 1


# the registry's variant modules use the helpers above: imported last, so either module may load first
from sam_core.registry import get_spec  # noqa: E402
