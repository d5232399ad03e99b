"""The `torch.optim` shell around the rules: any SAM variant on a real network, any base optimizer.

    opt = make_optimizer("ssam", model.parameters(), base_optimizer=torch.optim.SGD,
                         rho=0.05, lr=0.1, momentum=0.9, weight_decay=5e-4)
    loss = opt.step(closure)            # closure: zero_grad, forward, backward, return loss (once per pass)

The shell only moves tensors: the maths is `rules.perturbations` / `rules.combine`. The weights are
restored by copying the saved `w` back (bit-exact), the base optimizer then steps on `d` as on a plain
gradient (coupled weight decay at the restored `w`; LR schedulers act on the shared `param_groups`).
`stats` holds the last step's diagnostics as 0-dim tensors, so logging them forces no GPU sync.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch

from sam_core import rules
from sam_core.registry import VARIANTS, get_spec, resolve_hparams, validate_lr

STAT_KEYS = ("loss", "grad_norm", "perturbed_grad_norm", "gamma", "cos", "perturbation_norm")


@contextlib.contextmanager
def frozen_bn(model: torch.nn.Module | None):
    """Keep BatchNorm running statistics (and their batch counters) untouched inside the block.

    BN still normalises with the batch's statistics; only the running estimates are protected, so
    the extra SAM passes do not count twice (docs/ALGORITHMS.md, "Common skeleton").
    """
    if model is None:
        yield
        return
    saved = []
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            bufs = [
                b.clone() if b is not None else None for b in (m.running_mean, m.running_var, m.num_batches_tracked)
            ]
            saved.append((m, m.momentum, bufs))
            m.momentum = 0.0  # and the buffers are copied back: 0 · NaN is NaN, so momentum 0 alone is not enough
    try:
        yield
    finally:
        with torch.no_grad():
            for m, momentum, bufs in saved:
                m.momentum = momentum
                for cur, old in zip((m.running_mean, m.running_var, m.num_batches_tracked), bufs):
                    if cur is not None and old is not None:
                        cur.copy_(old)


def _split_named(params: Iterable) -> tuple[list, dict[int, str]]:
    """Accept parameters, named parameters, or param-group dicts; remember names for ASAM."""
    items = list(params)
    names: dict[int, str] = {}
    if items and isinstance(items[0], tuple):
        for n, p in items:
            names[id(p)] = n
        return [p for _, p in items], names
    if items and isinstance(items[0], dict):
        groups = []
        for gr in items:
            gr = dict(gr)
            ps = list(gr["params"])
            if ps and isinstance(ps[0], tuple):
                for n, p in ps:
                    names[id(p)] = n
                ps = [p for _, p in ps]
            gr["params"] = ps
            groups.append(gr)
        return groups, names
    return items, names


class SAMOptimizer(torch.optim.Optimizer):
    """A SAM-family optimizer: the variant forms `d`, `base_optimizer` steps on it.

    Hyperparameters of the variant (see `sam_core.VARIANTS[variant].hparams`) are stored in every
    param group (so a scheduler may change `group["rho"]`); the ones of group 0 are used, as the
    ascent is one global step over all parameters — except `rho`: param groups that set different
    ρ each ascend by their own, with the global gradient norm, as davda54's `SAM` does (not for a
    stateful rule, which refuses it). Everything else goes to the base optimizer.
    """

    def __init__(
        self, params, base_optimizer: type[torch.optim.Optimizer] = torch.optim.SGD, variant: str = "sam", **kwargs: Any
    ):
        spec = get_spec(variant)
        hp_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in spec.hparams}
        other_sam = ({"adaptive"} | {k for s in VARIANTS.values() for k in s.hparams}) & set(kwargs)
        if other_sam:
            raise ValueError(
                f"{variant}: hyperparameter(s) {sorted(other_sam)} do not apply to this variant; "
                f"allowed: {sorted(spec.hparams) or 'none (only base-optimizer arguments)'}"
            )
        if "lr" in kwargs:
            validate_lr(kwargs["lr"])
        if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer)):
            raise ValueError(f"base_optimizer must be a torch.optim.Optimizer class, got {base_optimizer!r}")
        self.variant = variant
        self.spec = spec
        self.hp = resolve_hparams(variant, **hp_kw)
        params, self._names = _split_named(params)
        group_hp = {k: v for k, v in self.hp.items() if spec.hparams[k].kind != "tensor"}
        super().__init__(params, dict(group_hp, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.rule_state: dict = rules.init_state(spec)
        self.sam_step = 0
        self._lr0 = self.param_groups[0].get("lr")
        self._lr_max = self._lr0
        self._pending: dict | None = None
        self.stats: dict[str, torch.Tensor] = {}
        self._warned_names = False
        self._ddp_model = None
        self._sync_perturbation = False
        self._process_group = None

    def distributed(self, ddp_model: torch.nn.Module, sync_perturbation: bool = False, process_group=None):
        """Data-parallel SAM with a `DistributedDataParallel` model (call once, before training).

        Default (m-sharpness, as in the SAM paper): pass 1, forward *and* backward, runs inside
        `ddp_model.no_sync()`, so each worker ascends along its own gradient; the extra passes are
        all-reduced by DDP as usual. `sync_perturbation=True` all-reduces the pass-1 gradient first
        (global-batch SAM). γ_t of the stable rules is computed from each worker's local norms and
        then averaged over workers; BSAM's clean-gradient term is averaged too, so `d`, and hence
        the weights, stay identical on every worker.
        """
        self._ddp_model = ddp_model
        self._sync_perturbation = bool(sync_perturbation)
        self._process_group = process_group
        return self

    def _allreduce_mean(self, ts: list[torch.Tensor]) -> list[torch.Tensor]:
        import torch.distributed as dist

        world = dist.get_world_size(self._process_group)
        flat = torch.cat([t.reshape(-1) for t in ts])
        dist.all_reduce(flat, group=self._process_group)
        flat = flat / world
        out, i = [], 0
        for t in ts:
            out.append(flat[i : i + t.numel()].view_as(t))
            i += t.numel()
        return out

    # --------------------------------------------------------------------------------- internals
    def _current_hp(self) -> dict:
        g0 = self.param_groups[0]
        return {k: g0.get(k, v) for k, v in self.hp.items()}

    def _group_rhos(self) -> list[float] | None:
        """ρ of each parameter with a gradient (in `_params_with_grad` order) when the param groups set
        different ρ (davda54's SAM scales each group by its own), else None: the one-ρ path."""
        if "rho" not in self.hp or len(self.param_groups) < 2:
            return None
        per_group = [gr.get("rho", self.hp["rho"]) for gr in self.param_groups]
        if all(isinstance(r, (int, float)) and r == per_group[0] for r in per_group):
            return None
        h = self.spec.hparams["rho"]
        for k, r in enumerate(per_group):
            if isinstance(r, torch.Tensor):
                raise ValueError(f"{self.variant}: param group {k}: 'rho' must be a number to differ between groups")
            h.validate(r, f"{self.variant} (param group {k})")
        if self.spec.stateful:
            raise ValueError(
                f"{self.variant}: a different 'rho' per param group is not supported for a stateful "
                f"rule (its state would advance once per ρ); set one rho for all groups"
            )
        return [
            float(per_group[k]) for k, gr in enumerate(self.param_groups) for p in gr["params"] if p.grad is not None
        ]

    def _params_with_grad(self) -> list[torch.Tensor]:
        return [p for gr in self.param_groups for p in gr["params"] if p.grad is not None]

    def _weight_mask(self, params: list[torch.Tensor]) -> list[bool] | None:
        if not self._names:
            msg = self.spec.unnamed_warning(self.hp) if self.spec.unnamed_warning is not None else None
            if msg and not self._warned_names:
                self._warned_names = True
                warnings.warn(msg, stacklevel=3)
            return None  # names unknown: ASAM's T applies to every parameter (pass named_parameters())
        return ["weight" in self._names.get(id(p), "weight") for p in params]

    def _begin(self, found_inf: torch.Tensor | None = None) -> None:
        """After pass 1: save w and g, compute the ascent points, move to the first one."""
        params = self._params_with_grad()
        rhos = self._group_rhos()  # before the gradients are taken off the parameters
        g = [p.grad for p in params]
        for p in params:  # keep our reference; the next backward writes fresh tensors
            p.grad = None
        self.sam_step += 1
        hp = self._current_hp()
        g0 = self.param_groups[0]
        lr_now = g0.get("lr")
        self._lr_max = max(x for x in (self._lr_max, g0.get("initial_lr"), self._lr0, lr_now) if x is not None)
        lr_max = self._lr_max  # the largest LR so far: a warm-up that starts low does not inflate ρ_min
        mask = self._weight_mask(params)
        w = [p.detach().clone() for p in params]
        g_norm = rules.global_norm(g)
        if rhos is None:
            es = rules.perturbations(
                self.spec,
                g,
                w,
                hp,
                self.rule_state,
                self.sam_step,
                0,
                lr=g0.get("lr"),
                lr_max=lr_max,
                weight_mask=mask,
                g_norm=g_norm,
            )
        else:  # davda54: each param group ascends with its own ρ (the norm stays global over all groups)
            es = None
            for rho in sorted(set(rhos)):
                es_r = rules.perturbations(
                    self.spec,
                    g,
                    w,
                    dict(hp, rho=rho),
                    self.rule_state,
                    self.sam_step,
                    0,
                    lr=g0.get("lr"),
                    lr_max=lr_max,
                    weight_mask=mask,
                    g_norm=g_norm,
                )
                es = [list(ek) for ek in es_r] if es is None else es
                for ek, ek_r in zip(es, es_r):
                    for i, r in enumerate(rhos):
                        if r == rho:
                            ek[i] = ek_r[i]
        if found_inf is not None and es:  # fp16: an overflow in pass 1 poisons the step, so it is skipped
            es = [[torch.where(found_inf > 0, torch.full_like(x, math.nan), x) for x in ek] for ek in es]
        self._pending = dict(params=params, w=w, g=g, es=es, g_advs=[], hp=hp, mask=mask, g_norm=g_norm)
        if es:
            torch._foreach_add_(params, es[0])

    def _collect(self) -> None:
        """After an extra pass: keep its gradient, move to the next ascent point (if any)."""
        st = self._pending
        st["g_advs"].append([p.grad if p.grad is not None else torch.zeros_like(p) for p in st["params"]])
        for p in st["params"]:
            p.grad = None
        k = len(st["g_advs"])
        if k < len(st["es"]):
            torch._foreach_copy_(st["params"], st["w"])
            torch._foreach_add_(st["params"], st["es"][k])

    def _finish(self, loss: torch.Tensor | None, scaler=None) -> None:
        """Restore w exactly, form d, and let the base optimizer step on it."""
        st, self._pending = self._pending, None
        params = st["params"]
        if st["es"]:
            torch._foreach_copy_(params, st["w"])
        reduce = self._allreduce_mean if (self._ddp_model is not None and not self._sync_perturbation) else None
        d, stats = rules.combine(
            self.spec,
            st["g"],
            st["g_advs"],
            st["w"],
            st["es"],
            st["hp"],
            0,
            st["mask"],
            reduce=reduce,
            g_norm=st["g_norm"],
            state=self.rule_state,
        )
        for p, di in zip(params, d):
            p.grad = di
        if scaler is not None:
            scaler.step(self.base_optimizer)
        else:
            self.base_optimizer.step()
        if loss is not None:
            stats["loss"] = loss.detach() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
        self.stats = {k: v.detach() for k, v in stats.items()}

    # --------------------------------------------------------------------------------- public API
    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """davda54 form: call after the first backward; moves the weights to w + e."""
        if self.spec.passes != 2:
            raise ValueError(f"first_step/second_step are for two-pass variants; use step(closure) for {self.variant}")
        self._begin()
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """davda54 form: call after the backward at w + e; restores w and steps the base optimizer."""
        if self._pending is None:
            raise RuntimeError("second_step() called without first_step()")
        self._collect()
        self._finish(None)
        self._opt_called = True  # tells an attached LR scheduler that a step happened
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(
        self,
        closure: Callable[[], Any] | None = None,
        bn_model: torch.nn.Module | None = None,
        scaler: torch.amp.GradScaler | None = None,
    ):
        """One full step. `closure` (zero_grad, forward, backward, return loss) runs once per pass.

        bn_model: passes after the first run with that model's BatchNorm running stats frozen.
        scaler:   a `torch.amp.GradScaler` whose scaled loss the closure backpropagates; each pass is
                  unscaled once, and a step in which any pass overflowed is skipped whole (then call
                  `scaler.update()` as usual).
        """
        if closure is None:
            raise ValueError(
                f"{self.variant} needs a closure that recomputes the loss (it runs "
                f"{self.spec.passes} forward-backward passes per step)"
            )
        closure = torch.enable_grad()(closure)
        if self.spec.lookahead is not None:
            return self._lookahead_step(closure, scaler)
        n_extra = self.spec.passes - 1
        if self._ddp_model is not None and n_extra > 0:
            with self._ddp_model.no_sync():  # pass 1 forward and backward stay local (m-sharpness)
                loss = closure()
            if self._sync_perturbation:
                params = self._params_with_grad()
                for p, gr in zip(params, self._allreduce_mean([p.grad for p in params])):
                    p.grad = gr
        else:
            loss = closure()
        found = None
        if scaler is not None and n_extra > 0:
            found = self._unscale_(scaler)
        self._begin(found)
        for k in range(n_extra):
            with frozen_bn(bn_model):
                closure()
            if scaler is not None and k < n_extra - 1:
                found = found + self._unscale_(scaler)
            if k == n_extra - 1 and scaler is not None:
                if n_extra > 1:  # an overflow in an earlier extra pass (BSAM's g_max) must reach the scaler's check
                    for p in self._params_with_grad():
                        p.grad = torch.where(found > 0, torch.full_like(p.grad, math.nan), p.grad)
                scaler.unscale_(self.base_optimizer)
            self._collect()
        if n_extra == 0 and scaler is not None:  # SGD: hand the gradient back for the scaler to unscale in place
            st = self._pending
            for p, gi in zip(st["params"], st["g"]):
                p.grad = gi
            scaler.unscale_(self.base_optimizer)
            st["g_norm"] = None  # it was taken of the scaled gradient
        self._finish(loss, scaler)
        return loss

    def _lookahead_step(self, closure, scaler=None):
        """A one-pass lookahead rule (Momentum-SAM): move to w + e (e from the rule's state), one closure,
        restore w, the base optimizer steps on that gradient, and the rule reads the base optimizer's
        momentum buffer (SGD's `momentum_buffer`, Adam's `exp_avg`) as its state for the next step."""
        params = [p for gr in self.param_groups for p in gr["params"] if p.requires_grad]
        self.sam_step += 1
        hp = self._current_hp()
        g0 = self.param_groups[0]
        w = [p.detach().clone() for p in params]
        e = rules.lookahead_perturbation(
            self.spec,
            w,
            hp,
            self.rule_state,
            self.sam_step,
            0,
            lr=g0.get("lr"),
            lr_max=self._lr_max,
            weight_mask=self._weight_mask(params),
        )
        torch._foreach_add_(params, e)
        loss = closure()
        torch._foreach_copy_(params, w)
        g = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        for p, gi in zip(params, g):
            p.grad = gi
        if scaler is not None:
            scaler.unscale_(self.base_optimizer)
            g = [p.grad for p in params]
        gn = rules.global_norm(g)
        one = torch.ones_like(gn)
        stats = dict(grad_norm=gn, perturbed_grad_norm=gn, gamma=one, cos=one, perturbation_norm=rules.global_norm(e))
        if scaler is not None:
            scaler.step(self.base_optimizer)
        else:
            self.base_optimizer.step()
        st = self.base_optimizer.state
        bufs = [st.get(p, {}).get("momentum_buffer", st.get(p, {}).get("exp_avg")) for p in params]
        if self.spec.after_step is not None:
            self.spec.after_step(
                self.rule_state, [gi.detach() for gi in g], hp, 0, bufs if all(b is not None for b in bufs) else None
            )
        if loss is not None:
            stats["loss"] = loss.detach() if isinstance(loss, torch.Tensor) else torch.tensor(float(loss))
        self.stats = {k: v.detach() for k, v in stats.items()}
        return loss

    def _unscale_(self, scaler) -> torch.Tensor:
        """Divide the current gradients by the scale; return 1.0 if any is inf/NaN (a tensor, no sync)."""
        grads = [p.grad for p in self._params_with_grad()]
        inv = 1.0 / scaler.get_scale()
        torch._foreach_mul_(grads, inv)
        finite = torch.stack([torch.isfinite(g).all() for g in grads]).all()
        return (~finite).float()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base_optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        sd = self.base_optimizer.state_dict()
        sd["sam"] = {
            "variant": self.variant,
            "step": self.sam_step,
            "lr0": self._lr0,
            "lr_max": self._lr_max,
            "rule_state": {k: v for k, v in self.rule_state.items()},
        }
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        sd = dict(state_dict)
        sam = sd.pop("sam", None)
        self.base_optimizer.load_state_dict(sd)
        self.param_groups = self.base_optimizer.param_groups
        if sam is not None:
            if sam.get("variant", self.variant) != self.variant:
                raise ValueError(f"state_dict is for variant {sam['variant']!r}, this optimizer is {self.variant!r}")
            self.sam_step = int(sam["step"])
            self._lr0 = sam.get("lr0", self._lr0)
            self._lr_max = sam.get("lr_max", self._lr0)
            self.rule_state = dict(sam.get("rule_state", {}))

    def __repr__(self) -> str:
        return f"SAMOptimizer(variant={self.variant!r}, hp={self.hp}, base={self.base_optimizer.__class__.__name__})"


def make_optimizer(
    variant: str, params, base_optimizer: type[torch.optim.Optimizer] = torch.optim.SGD, **kwargs: Any
) -> SAMOptimizer:
    """Build a SAM-family optimizer by name (see `sam_core.VARIANTS`); unknown names raise ValueError.

    `adaptive=True` on "sam" is davda54's ASAM (all parameters, η = 0), as in `sam_core.SAM`.
    """
    spec = get_spec(variant)
    if spec.translate is not None:  # aliases such as adaptive=True (the variant's own module says how)
        variant = spec.translate(kwargs)
    return SAMOptimizer(params, base_optimizer, variant=variant, **kwargs)


class SAM(SAMOptimizer):
    """Drop-in for davda54/sam's `SAM(params, base_optimizer, rho, adaptive, **kwargs)`.

    Same semantics: `first_step` / `second_step`, and `step(closure)` where the *caller* has already
    run the first forward-backward and the closure recomputes the loss at w + e. `adaptive=True` is
    ASAM with T = |w| on every parameter.
    """

    def __init__(self, params, base_optimizer, rho: float = 0.05, adaptive: bool = False, **kwargs: Any):
        if adaptive:
            super().__init__(params, base_optimizer, variant="asam", rho=rho, flavour="davda54", eta=0.0, **kwargs)
        else:
            super().__init__(params, base_optimizer, variant="sam", rho=rho, **kwargs)
        self.adaptive = adaptive
        for gr in self.param_groups:
            gr.setdefault("adaptive", adaptive)

    @torch.no_grad()
    def step(self, closure=None):
        if closure is None:
            raise ValueError("Sharpness Aware Minimization requires closure, but it was not provided")
        closure = torch.enable_grad()(closure)
        self.first_step(zero_grad=True)
        closure()
        self.second_step()
