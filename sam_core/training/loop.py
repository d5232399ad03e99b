"""The training loop of a run: data → model → `sam_core.make_optimizer(...).step(closure, bn_model=model)`.

No SAM rule lives here: every update comes from the optimizer shell. The loop only measures:
  * every step (no GPU sync): `opt.stats` (loss, ‖g‖, ‖g_adv‖, γ_t, cos, ‖e‖) and the batch accuracy
    are stacked into one small tensor; every `log_every` steps the window is moved to the host in one
    transfer and its means are written (plus lr, ρ, step time, images/s);
  * every epoch: train (eval mode, un-augmented, `eval_train_size` examples) and test loss/accuracy,
    the gap test − train, and ‖w − w₀‖;
  * every `hessian_every` steps, on a fixed batch in eval mode: the top Hessian eigenvalue by Lanczos
    warm-started from the previous eigenvector (`sam_core.hessian`), beside 2(1+β)/η
    (`sam_core.gd_edge`) and the SAM edge (`sam_core.sam_edge`), optionally Hutchinson's trace;
  * at the end: the top-k eigenvalues and the spectral density (stochastic Lanczos quadrature);
  * with `stability=True`: a twin network trained in lockstep (same init, same batches and
    augmentations) on the training set with one example replaced; ‖w − w_twin‖ is logged.
The data order is a pure function of (seed, epoch), so a resume from a checkpoint replays nothing
and continues the step counter, the metrics and the warm-start vector exactly.

Under torchrun (`dist` given) the same loop trains a DistributedDataParallel model, each rank on its
share of every batch; `distributed.py` says how SAM's passes, γ_t and the metrics are reduced.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import sam_core
from sam_core import hessian as H
from sam_core.theory import effective_rho
from sam_core.training.config import ConfigError, RunConfig
from sam_core.training.data import (
    PlanDataLoader,
    ResidentLoader,
    TrainData,
    eval_batches,
    load_raw,
    prepare,
    replace_one,
)
from sam_core.training.distributed import DistContext, NullStore, check_batch, rank_device, save_debug_weights
from sam_core.training.models import build_model
from sam_core.training.store import RunStore

WINDOW_KEYS = ("loss", "grad_norm", "perturbed_grad_norm", "gamma", "cos", "perturbation_norm")
TINY_INPUT = 256  # per-example input size (C·H·W) up to which a CPU run trains on one intra-op thread


# ------------------------------------------------------------------------------------------- helpers
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        from sam_core.settings import get_settings

        return get_settings().torch_device()
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError([f"device: {name} was requested but CUDA is not available here; use cpu or auto"])
    return torch.device(name)


def make_loss(cfg: RunConfig, num_classes: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Cross-entropy (optionally label-smoothed), or the squared loss ½‖f(x) − onehot(y)‖² averaged over
    the batch (Long & Bartlett's setting). Computed in float32 even under autocast."""
    if cfg.loss == "mse":
        def mse(out, y):
            return 0.5 * (out.float() - F.one_hot(y, num_classes).float()).pow(2).sum(1).mean()
        return mse
    ls = cfg.label_smoothing

    def ce(out, y):
        return F.cross_entropy(out.float(), y, label_smoothing=ls)
    return ce


def lr_at(cfg: RunConfig, step: int, total: int) -> float:
    """The learning rate of update number `step` (0-based) under the run's schedule (per iteration)."""
    if cfg.lr_schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / max(total, 1)))
    if cfg.lr_schedule == "step":
        return cfg.lr * (0.1 ** (int(step >= 0.5 * total) + int(step >= 0.75 * total)))
    return cfg.lr


def base_optimizer(cfg: RunConfig) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    if cfg.base == "sgd":
        return torch.optim.SGD, dict(lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                     nesterov=cfg.nesterov)
    cls = torch.optim.Adam if cfg.base == "adam" else torch.optim.AdamW
    return cls, dict(lr=cfg.lr, weight_decay=cfg.weight_decay)


def flat_params(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def param_distance(a: torch.nn.Module, b: torch.nn.Module | torch.Tensor) -> torch.Tensor:
    """‖w_a − w_b‖ over all parameters (a 0-dim tensor: no sync)."""
    pa = [p.detach() for p in a.parameters()]
    if isinstance(b, torch.Tensor):
        return (torch.cat([p.reshape(-1) for p in pa]) - b).norm()
    pb = [p.detach() for p in b.parameters()]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(torch._foreach_sub(pa, pb))))


@torch.no_grad()
def evaluate(model, x, y, spec, loss_fn, device, batch_size, autocast, channels_last) -> tuple[float, float]:
    """(mean loss, accuracy) in eval mode, no augmentation."""
    if len(y) == 0:
        return math.nan, math.nan
    was = model.training
    model.eval()
    tot_loss = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for xb, yb in eval_batches(x, y, spec, batch_size, device, channels_last):
        with autocast():
            out = model(xb)
        tot_loss += loss_fn(out, yb).double() * len(yb)
        correct += (out.argmax(1) == yb).sum()
    model.train(was)
    return float(tot_loss) / len(y), float(correct) / len(y)


@dataclass
class Replica:
    """One network being trained: the main run, or the uniform-stability twin.

    `net` is what the closure calls: the DistributedDataParallel wrapper of `model` under torchrun,
    else `model` itself. Evaluation, Hessian and checkpoints use `model`.
    """

    model: torch.nn.Module
    opt: Any
    loader: Any
    holder: dict = field(default_factory=dict)
    net: Any = None

    def __post_init__(self):
        if self.net is None:
            self.net = self.model


def make_closure(rep: Replica, xb, yb, loss_fn, autocast):
    """closure(): zero_grad, forward, backward, return loss — once per pass; pass 1 also counts hits."""
    first = [True]

    def closure():
        rep.opt.zero_grad(set_to_none=True)
        with autocast():
            out = rep.net(xb)
        loss = loss_fn(out, yb)
        loss.backward()
        if first[0]:
            first[0] = False
            rep.holder["correct"] = (out.argmax(1) == yb).sum()
        return loss

    return closure


def _atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class _StopSignal:
    """SIGTERM → a stop request (checkpoint, then status 'stopped')."""

    def __init__(self):
        self.flag = False
        self._old = None

    def __enter__(self):
        try:
            self._old = signal.signal(signal.SIGTERM, self._handler)
        except ValueError:  # not the main thread
            self._old = None
        return self

    def _handler(self, *_):
        self.flag = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
        return False


# ------------------------------------------------------------------------------------------- the run
class Trainer:
    """Trains one run of the store; `run()` returns the final status ('finished' or 'stopped').

    dist:     this rank of a torchrun job (None: a single process). Ranks other than 0 write nothing.
    on_epoch: called with (epoch, step, epoch metrics) after every epoch's evaluation (on rank 0);
              a true return stops the run there (checkpointed, 'stopped'; single process only).
              The Ray sweep executor reports to Tune through it.
    """

    def __init__(self, cfg: RunConfig, store: RunStore, run_id: str, echo: Callable[[str], None] | None = None,
                 data: TrainData | None = None, dist: DistContext | None = None,
                 on_epoch: Callable[[int, int, dict], None] | None = None):
        self.cfg = cfg.validate()
        self.dist = dist
        self.is_main = dist is None or dist.is_main
        if not self.is_main:
            store, echo = NullStore(), None
        self.store, self.run_id = store, run_id
        self.echo = echo or (lambda s: None)
        self._data = data
        self.on_epoch = on_epoch

    # ------------------------------------------------------------------------------ setup
    def setup(self) -> None:
        cfg = self.cfg
        if self.dist is not None:
            check_batch(cfg.batch_size, self.dist.world)
            self.device = rank_device(self.dist, cfg.device)
        else:
            self.device = resolve_device(cfg.device)
        cuda = self.device.type == "cuda"
        self.channels_last = bool(cfg.channels_last and cuda)
        amp = bool(cfg.amp and cuda)
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext
        if cuda:
            torch.backends.cudnn.benchmark = True
        if self._data is None:
            from sam_core.settings import get_settings

            data_dir = cfg.data_dir or str(get_settings().data_dir)
            raw = load_raw(cfg.dataset, data_dir, cfg.download)
            data = prepare(raw, cfg.subset, cfg.label_noise, cfg.seed, cfg.test_subset)
        else:
            raw, data = None, self._data
        self.data, self.spec = data, data.spec
        n = len(data.y_train)
        if cfg.batch_size > n:
            raise ConfigError([f"batch_size {cfg.batch_size} is larger than the training set read from disk "
                               f"({n} examples); use at most {n}"])
        self.spe = n // cfg.batch_size
        self.total = self.spe * cfg.epochs
        self.augment = self.spec.augment if cfg.augment is None else bool(cfg.augment)
        self.loss_fn = make_loss(cfg, self.spec.num_classes)
        self.hp = cfg.resolved_hparams()
        self.momentum = cfg.momentum if cfg.base == "sgd" else 0.0

        model = build_model(cfg.model, self.spec.channels, self.spec.size, self.spec.num_classes, cfg.seed)
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.reps = [self._replica(model, data)]
        if cfg.stability:
            if raw is None:
                raise ValueError("stability mode needs the raw dataset (pass data=None)")
            twin_data, idx = replace_one(data, cfg.seed % n, raw, cfg.seed)
            self.reps.append(self._replica(copy.deepcopy(model), twin_data))
            self.echo(f"stability twin: training example {idx} replaced")
        self.w0 = flat_params(model).clone()

        # the fixed Hessian batch: the first `hessian_batch` training examples (no augmentation)
        hb = min(cfg.hessian_batch, n)
        self.hx, self.hy = next(eval_batches(data.x_train[:hb], data.y_train[:hb], self.spec, hb, self.device))
        self.v_eig: torch.Tensor | None = None
        self.step = 0
        self.train_seconds = 0.0
        self.hessian_seconds = 0.0
        self.eval_seconds = 0.0
        self.store.update(self.run_id, total_steps=self.total, steps_per_epoch=self.spe)
        if data.note:
            self.echo(f"data: {data.note}")

    def _replica(self, model, data: TrainData) -> Replica:
        cfg = self.cfg
        cls, kw = base_optimizer(cfg)
        opt = sam_core.make_optimizer(cfg.optimizer, model.named_parameters(), base_optimizer=cls,
                                      **cfg.hparams, **kw)
        use_resident = cfg.loader == "resident" or (cfg.loader == "auto" and self.device.type == "cuda")
        shard = (0, 1) if self.dist is None else (self.dist.rank, self.dist.world)
        if use_resident:
            loader = ResidentLoader(data.x_train, data.y_train, self.spec, cfg.batch_size, cfg.seed, self.augment,
                                    self.device, self.channels_last, shard=shard)
        else:
            loader = PlanDataLoader(data.x_train, data.y_train, self.spec, cfg.batch_size, cfg.seed, self.augment,
                                    cfg.num_workers, shard=shard)
        if self.dist is None:
            return Replica(model, opt, loader)
        ids = [self.device.index] if self.device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        opt.distributed(net, sync_perturbation=cfg.sync_perturbation)
        return Replica(model, opt, loader, net=net)

    # ------------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> None:
        self.store.check_alive(self.run_id)  # a deleted run gets no checkpoint re-created (RunVanished)
        state = {
            "step": self.step, "config": self.cfg.to_dict(), "w0": self.w0.cpu(),
            "v_eig": None if self.v_eig is None else self.v_eig.cpu(),
            "train_seconds": self.train_seconds, "hessian_seconds": self.hessian_seconds,
            "eval_seconds": self.eval_seconds,
            "replicas": [{"model": r.model.state_dict(), "opt": r.opt.state_dict()} for r in self.reps],
        }
        _atomic_save(state, self.store.checkpoint_path(self.run_id))

    def load_checkpoint(self) -> bool:
        if self.dist is None:
            path = self.store.checkpoint_path(self.run_id)
            if not path.exists():
                return False
            state = torch.load(path, map_location=self.device, weights_only=False)
        else:  # rank 0 reads the file, every rank gets its content (no shared filesystem needed)
            state = None
            if self.is_main and self.store.checkpoint_path(self.run_id).exists():
                state = torch.load(self.store.checkpoint_path(self.run_id), map_location="cpu", weights_only=False)
            state = self.dist.broadcast_object(state)
            if state is None:
                return False
        if len(state["replicas"]) != len(self.reps):
            raise ValueError("the checkpoint's number of networks does not match the configuration (stability mode)")
        for rep, st in zip(self.reps, state["replicas"]):
            rep.model.load_state_dict(st["model"])
            rep.opt.load_state_dict(st["opt"])
        self.step = int(state["step"])
        self.w0 = state["w0"].to(self.device)
        self.v_eig = None if state["v_eig"] is None else state["v_eig"].to(self.device)
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.hessian_seconds = float(state.get("hessian_seconds", 0.0))
        self.eval_seconds = float(state.get("eval_seconds", 0.0))
        return True

    # ------------------------------------------------------------------------------ measurements
    def hessian_point(self) -> dict[str, float]:
        """Top eigenvalue (warm-started Lanczos), the two edges, optionally the trace, at the current w."""
        t0 = time.perf_counter()
        cfg, model = self.cfg, self.reps[0].model
        op = H.HessianOperator(model, self.loss_fn, self.hx, self.hy)
        res = H.top_eigenvalues(op, k=1, method="lanczos", v0=self.v_eig, tol=1e-3, which="algebraic",
                                max_iter=min(cfg.hessian_iters, op.dim), seed=self.cfg.seed + self.step)
        self.v_eig = res.vectors[0].detach()
        gnorm = float(op.grad.norm())
        lr = lr_at(cfg, self.step, self.total)
        out = {"top_eig": float(res.values[0]), "hessian_grad_norm": gnorm, "eig_hvps": float(res.n_hvp),
               "eig_converged": float(res.converged),
               "grad_eig_align": float((op.grad @ self.v_eig).abs() / (op.grad.norm() + 1e-12))}
        if cfg.base == "sgd":
            out["gd_edge"] = float(sam_core.gd_edge(lr, self.momentum))
            rho = effective_rho(cfg.optimizer, self.hp, gnorm, self.step)
            if rho is not None:
                out["sam_edge"] = float(sam_core.sam_edge(gnorm, lr, rho, self.momentum))
        if cfg.hutchinson:
            tr, se = H.hutchinson_trace(op, cfg.hutchinson, seed=self.cfg.seed + self.step)
            out["hessian_trace"], out["hessian_trace_se"] = tr, se
        del op
        out["hessian_time"] = time.perf_counter() - t0
        self.hessian_seconds += out["hessian_time"]
        return out

    def epoch_point(self) -> dict[str, float]:
        t0 = time.perf_counter()
        cfg, d, model = self.cfg, self.data, self.reps[0].model
        ne = min(cfg.eval_train_size, len(d.y_train)) if cfg.eval_train_size else 0
        ebs = max(cfg.batch_size, 256)
        args = (self.spec, self.loss_fn, self.device, ebs, self.autocast, self.channels_last)
        tr_loss, tr_acc = evaluate(model, d.x_train[:ne], d.y_train[:ne], *args) if ne else (math.nan, math.nan)
        te_loss, te_acc = evaluate(model, d.x_test, d.y_test, *args)
        out = {"train_loss": tr_loss, "train_acc": tr_acc, "test_loss": te_loss, "test_acc": te_acc,
               "gap": te_loss - tr_loss, "gap_acc": tr_acc - te_acc,
               "dist_w0": float(param_distance(model, self.w0))}
        if len(self.reps) > 1:
            out["twin_distance"] = float(param_distance(model, self.reps[1].model))
        self.eval_seconds += time.perf_counter() - t0
        return out

    def final_spectrum(self, stopping: Callable[[], bool] = lambda: False) -> None:
        """Top-k eigenvalues, then the spectral density (each skipped once `stopping()` is true)."""
        cfg = self.cfg
        if not (cfg.final_top_k or cfg.final_density):
            return
        op = H.HessianOperator(self.reps[0].model, self.loss_fn, self.hx, self.hy)
        if cfg.final_top_k:
            k = min(cfg.final_top_k, op.dim)
            res = H.top_eigenvalues(op, k=k, method="lanczos", v0=self.v_eig, tol=1e-3, which="algebraic",
                                    max_iter=min(op.dim, max(3 * k + 20, 60)), seed=cfg.seed)
            self.store.put_artifact(self.run_id, "top_eigenvalues",
                                    {"step": self.step, "values": [float(v) for v in res.values],
                                     "n_hvp": res.n_hvp, "converged": bool(res.converged)})
        if cfg.final_density and not stopping():
            grid, dens = H.spectral_density(op, n_steps=min(100, op.dim), n_runs=1, n_grid=400, seed=cfg.seed)
            self.store.put_artifact(self.run_id, "spectral_density",
                                    {"step": self.step, "grid": grid.tolist(), "density": dens.tolist()})

    # ------------------------------------------------------------------------------ the loop
    def run(self) -> str:
        self.setup()
        # tiny inputs (digits: 64 pixels) on a CPU: intra-op threads only add overhead, and on busy cores
        # OpenMP's spinning made a 5-epoch digits run ~10x slower with 2 threads than with 1 (measured)
        tiny = self.device.type == "cpu" and self.spec.channels * self.spec.size ** 2 <= TINY_INPUT
        threads = torch.get_num_threads()
        if tiny:
            torch.set_num_threads(1)
        try:
            return self._run()
        finally:
            torch.set_num_threads(threads)

    def _run(self) -> str:
        cfg, store, rid = self.cfg, self.store, self.run_id
        resumed = self.load_checkpoint()
        dropped = store.truncate_metrics(rid, self.step if resumed else -1)
        if resumed:
            self.echo(f"resumed from the checkpoint at step {self.step} ({dropped} later metric rows replaced)")
        main, dist = self.is_main, self.dist
        if dist is not None:
            store.put_artifact(rid, "distributed", {"world_size": dist.world, "backend": dist.backend,
                                                    "sync_perturbation": cfg.sync_perturbation,
                                                    "per_rank_batch": cfg.batch_size // dist.world})
        stop = stop_local = False  # distributed: a rank's own request, until the ranks agree at a flush
        with _StopSignal() as sig:
            t_run = time.perf_counter()
            seconds0 = self.train_seconds
            if self.step == 0 and cfg.hessian_every and main:
                self._log(0, self.hessian_point())
            window: list[torch.Tensor] = []
            t_win = time.perf_counter()
            overhead0 = self.hessian_seconds + self.eval_seconds
            last_poll = t_ckpt = time.monotonic()
            start_epoch, start_in = divmod(self.step, self.spe)
            for epoch in range(start_epoch, cfg.epochs):
                iters = [rep.loader.batches(epoch, start_in if epoch == start_epoch else 0) for rep in self.reps]
                for batches in zip(*iters):
                    lr = lr_at(cfg, self.step, self.total)
                    for rep, (xb, yb) in zip(self.reps, batches):
                        xb, yb = xb.to(self.device, non_blocking=True), yb.to(self.device, non_blocking=True)
                        if self.channels_last and xb.dim() == 4:
                            xb = xb.contiguous(memory_format=torch.channels_last)
                        for g in rep.opt.param_groups:
                            g["lr"] = lr
                        rep.opt.step(make_closure(rep, xb, yb, self.loss_fn, self.autocast), bn_model=rep.model)
                    rep0 = self.reps[0]
                    row = [rep0.opt.stats[k] for k in WINDOW_KEYS] + [rep0.holder["correct"] / len(yb)]
                    if len(self.reps) > 1:
                        row.append(param_distance(rep0.model, self.reps[1].model))
                    window.append(torch.stack([r.float() for r in row]))
                    self.step += 1
                    end_of_epoch = self.step % self.spe == 0
                    now = time.monotonic()
                    poll = now - last_poll >= cfg.poll_seconds
                    if poll:
                        last_poll = now
                        self.train_seconds = seconds0 + time.perf_counter() - t_run
                        if dist is None:
                            stop = store.heartbeat(rid, self.step, epoch, self.train_seconds) or sig.flag
                        else:
                            stop_local = store.heartbeat(rid, self.step, epoch, self.train_seconds) or sig.flag \
                                or stop_local
                    if self.step % cfg.log_every == 0 or end_of_epoch or stop:
                        overhead = self.hessian_seconds + self.eval_seconds - overhead0
                        if dist is None:
                            diverged = self._flush(window, time.perf_counter() - t_win - overhead, lr, yb)
                        else:  # one all-reduce: the window's metrics (mean over ranks) and the stop flags
                            diverged, stop = self._flush(window, time.perf_counter() - t_win - overhead, lr, yb,
                                                         stop_local)
                        window, t_win = [], time.perf_counter()
                        overhead0 = self.hessian_seconds + self.eval_seconds
                        if diverged:
                            self.train_seconds = seconds0 + time.perf_counter() - t_run
                            return self._finish_diverged()
                    if cfg.hessian_every and self.step % cfg.hessian_every == 0 and main:
                        self._log(self.step, self.hessian_point())
                    if end_of_epoch:
                        if dist is not None:
                            diff = dist.weight_diff(self.reps[0].model)  # a collective: every rank
                        if main:
                            ep = self.epoch_point()
                            if dist is not None:
                                ep["rank_weight_diff"] = diff
                            self._log(self.step, ep)
                            self.echo(self._epoch_line(epoch, ep))
                            if self.on_epoch is not None and self.on_epoch(epoch, self.step, ep) and dist is None:
                                stop = True  # the caller asked to stop here (e.g. ASHA early stopping)
                    if main and (end_of_epoch or stop or (now - t_ckpt) >= 60 * cfg.checkpoint_minutes):
                        self.train_seconds = seconds0 + time.perf_counter() - t_run
                        self.save_checkpoint()
                        t_ckpt = now
                    if stop:
                        store.heartbeat(rid, self.step, epoch, self.train_seconds)
                        store.finish(rid, "stopped", message=f"stopped at step {self.step}; resume continues here")
                        self.echo(f"stopped at step {self.step}")
                        return "stopped"
            self.train_seconds = seconds0 + time.perf_counter() - t_run
            store.heartbeat(rid, self.step, cfg.epochs, self.train_seconds)
            if dist is not None:
                save_debug_weights(dist, self.reps[0].model)
                if not main:
                    return "finished"
            stopped_msg = (f"stopped during the end-of-run measurements after all {self.step} steps; resume "
                           f"runs them again")
            if store.stop_requested(rid) or sig.flag:  # a Stop that came after the last step's poll
                store.finish(rid, "stopped", message=stopped_msg)
                self.echo(stopped_msg)
                return "stopped"
            self.final_spectrum(lambda: sig.flag or store.stop_requested(rid))
            self._timing()
            status = store.finish_unless_stopped(rid, f"finished {self.step} steps", stopped_msg)
            return status

    def _log(self, step: int, values: dict[str, float]) -> None:
        self.store.log_metrics(self.run_id, [(step, k, v) for k, v in values.items()])

    def _flush(self, window: list[torch.Tensor], seconds: float, lr: float, yb, stop_local: bool | None = None):
        """Write the window's means (one device→host transfer). Returns True if the loss diverged.

        Distributed (`stop_local` given): the window is first averaged over ranks together with the
        ranks' stop flags (one all-reduce); returns (diverged, stop) — the same on every rank.
        """
        if stop_local is not None:
            if not window:  # cannot happen (a flush follows a step), but keep the collectives matched
                window = [torch.full((len(WINDOW_KEYS) + 1 + (len(self.reps) > 1),), math.nan, device=self.device)]
            m, stop = self.dist.reduce_window(torch.stack(window).double(), stop_local)
            m = m.cpu()
            return self._write_window(m, seconds, lr, yb), stop
        if not window:
            return False
        m = torch.stack(window).double().cpu()  # (k, n_keys): the one sync of this window
        return self._write_window(m, seconds, lr, yb)

    def _write_window(self, m: torch.Tensor, seconds: float, lr: float, yb) -> bool:
        k = m.shape[0]
        means = m.mean(0).tolist()
        names = list(WINDOW_KEYS) + ["accuracy"] + (["twin_distance"] if len(self.reps) > 1 else [])
        vals = dict(zip(names, means))
        if len(self.reps) > 1:
            vals["twin_distance"] = float(m[-1, -1])  # the distance now, not a window mean
        per_step = len(yb) * (1 if self.dist is None else self.dist.world)  # images of the global batch
        vals.update(lr=lr, epoch=self.step / self.spe, step_time=seconds / k if seconds > 0 else math.nan,
                    images_per_s=k * per_step / seconds if seconds > 0 else math.nan)
        if "rho" in self.hp:
            vals["rho"] = float(self.hp["rho"])
        self._log(self.step, vals)
        return not math.isfinite(float(m[:, 0].sum()))

    def _finish_diverged(self) -> str:
        self.store.heartbeat(self.run_id, self.step, self.step // self.spe, self.train_seconds)
        self._timing()
        msg = f"diverged at step {self.step}: the loss became NaN or infinite (a result, not a crash)"
        self.store.put_artifact(self.run_id, "diverged_step", self.step)
        self.store.finish(self.run_id, "finished", message=msg)
        self.echo(msg)
        return "finished"

    def _timing(self) -> None:
        self.store.put_artifact(self.run_id, "timing", {
            "train_seconds": self.train_seconds, "hessian_seconds": self.hessian_seconds,
            "eval_seconds": self.eval_seconds, "steps": self.step, "device": str(self.device)})

    def _epoch_line(self, epoch: int, ep: dict) -> str:
        return (f"epoch {epoch + 1}/{self.cfg.epochs} step {self.step}/{self.total} "
                f"train loss {ep['train_loss']:.4f} acc {ep['train_acc']:.3f} · "
                f"test loss {ep['test_loss']:.4f} acc {ep['test_acc']:.3f}")


def train(cfg: RunConfig, store: RunStore, run_id: str, echo: Callable[[str], None] | None = None) -> str:
    """Train run `run_id` (already marked running); returns 'finished' or 'stopped'. Exceptions propagate."""
    return Trainer(cfg, store, run_id, echo).run()
