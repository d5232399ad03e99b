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
share of every batch; `distributed.py` says how SAM's passes, γ_t and the metrics are reduced. The
loop has no branch on it: what differs (who writes, who measures, how ranks agree on a stop) is asked
of the trainer's rank object, `distributed.SingleProcess` or `distributed.DistContext`.
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
from sam_core.training.distributed import SINGLE, DistContext, Rank, check_batch
from sam_core.training.models import build_model
from sam_core.training.store import RunStore

WINDOW_KEYS = ("loss", "grad_norm", "perturbed_grad_norm", "gamma", "cos", "perturbation_norm")
TINY_INPUT = 256  # per-example input size (C·H·W) up to which a CPU run trains on one intra-op thread


# ------------------------------------------------------------------------------------------- helpers
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
        return torch.optim.SGD, dict(
            lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.nesterov
        )
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


class _Window:
    """The per-step metric rows since the last write, and the training time they took (Hessian and
    evaluation time excluded: `overhead` is their running total)."""

    def __init__(self, overhead: float):
        self.reset(overhead)

    def reset(self, overhead: float) -> None:
        self.rows: list[torch.Tensor] = []
        self.t0, self.overhead0 = time.perf_counter(), overhead

    def seconds(self, overhead: float) -> float:
        return time.perf_counter() - self.t0 - (overhead - self.overhead0)


# ------------------------------------------------------------------------------------------- the run
class Trainer:
    """Trains one run of the store; `run()` returns the final status ('finished' or 'stopped').

    dist:     this rank of a torchrun job (None: a single process). Whatever differs between one
              process and N ranks goes through `self.rank` (see `distributed.SingleProcess`): ranks
              other than 0 write nothing, measure nothing, and agree with rank 0 on when to stop.
    on_epoch: called with (epoch, step, epoch metrics) after every epoch's evaluation (on rank 0);
              a true return stops the run there (checkpointed, 'stopped'; single process only).
              The Ray sweep executor reports to Tune through it.
    """

    def __init__(
        self,
        cfg: RunConfig,
        store: RunStore,
        run_id: str,
        echo: Callable[[str], None] | None = None,
        data: TrainData | None = None,
        dist: DistContext | None = None,
        on_epoch: Callable[[int, int, dict], None] | None = None,
    ):
        self.cfg = cfg.validate()
        self.rank: Rank = SINGLE if dist is None else dist
        self.store, self.run_id = self.rank.store(store), run_id
        self.echo = self.rank.echo(echo)
        self._data = data
        self.on_epoch = on_epoch

    # ------------------------------------------------------------------------------ setup
    def setup(self) -> None:
        cfg = self.cfg
        check_batch(cfg.batch_size, self.rank.world)
        self.device = self.rank.device(cfg.device)
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
            raise ConfigError(
                [
                    f"batch_size {cfg.batch_size} is larger than the training set read from disk "
                    f"({n} examples); use at most {n}"
                ]
            )
        self.spe = cfg.steps_per_epoch(n)
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
        opt = sam_core.make_optimizer(cfg.optimizer, model.named_parameters(), base_optimizer=cls, **cfg.hparams, **kw)
        use_resident = cfg.loader == "resident" or (cfg.loader == "auto" and self.device.type == "cuda")
        if use_resident:
            loader = ResidentLoader(
                data.x_train,
                data.y_train,
                self.spec,
                cfg.batch_size,
                cfg.seed,
                self.augment,
                self.device,
                self.channels_last,
                shard=self.rank.shard,
            )
        else:
            loader = PlanDataLoader(
                data.x_train,
                data.y_train,
                self.spec,
                cfg.batch_size,
                cfg.seed,
                self.augment,
                cfg.num_workers,
                shard=self.rank.shard,
            )
        return Replica(model, opt, loader, net=self.rank.wrap(model, opt, self.device, cfg.sync_perturbation))

    # ------------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> None:
        self.store.check_alive(self.run_id)  # a deleted run gets no checkpoint re-created (RunVanished)
        state = {
            "step": self.step,
            "config": self.cfg.to_dict(),
            "w0": self.w0.cpu(),
            "v_eig": None if self.v_eig is None else self.v_eig.cpu(),
            "train_seconds": self.train_seconds,
            "hessian_seconds": self.hessian_seconds,
            "eval_seconds": self.eval_seconds,
            "replicas": [{"model": r.model.state_dict(), "opt": r.opt.state_dict()} for r in self.reps],
        }
        _atomic_save(state, self.store.checkpoint_path(self.run_id))

    def load_checkpoint(self) -> bool:
        state = self.rank.load_checkpoint(self.store, self.run_id, self.device)
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
        res = H.top_eigenvalues(
            op,
            k=1,
            method="lanczos",
            v0=self.v_eig,
            tol=1e-3,
            which="algebraic",
            max_iter=min(cfg.hessian_iters, op.dim),
            seed=self.cfg.seed + self.step,
        )
        self.v_eig = res.vectors[0].detach()
        gnorm = float(op.grad.norm())
        lr = lr_at(cfg, self.step, self.total)
        out = {
            "top_eig": float(res.values[0]),
            "hessian_grad_norm": gnorm,
            "eig_hvps": float(res.n_hvp),
            "eig_converged": float(res.converged),
            "grad_eig_align": float((op.grad @ self.v_eig).abs() / (op.grad.norm() + 1e-12)),
        }
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
        out = {
            "train_loss": tr_loss,
            "train_acc": tr_acc,
            "test_loss": te_loss,
            "test_acc": te_acc,
            "gap": te_loss - tr_loss,
            "gap_acc": tr_acc - te_acc,
            "dist_w0": float(param_distance(model, self.w0)),
        }
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
            res = H.top_eigenvalues(
                op,
                k=k,
                method="lanczos",
                v0=self.v_eig,
                tol=1e-3,
                which="algebraic",
                max_iter=min(op.dim, max(3 * k + 20, 60)),
                seed=cfg.seed,
            )
            self.store.put_artifact(
                self.run_id,
                "top_eigenvalues",
                {
                    "step": self.step,
                    "values": [float(v) for v in res.values],
                    "n_hvp": res.n_hvp,
                    "converged": bool(res.converged),
                },
            )
        if cfg.final_density and not stopping():
            grid, dens = H.spectral_density(op, n_steps=min(100, op.dim), n_runs=1, n_grid=400, seed=cfg.seed)
            self.store.put_artifact(
                self.run_id, "spectral_density", {"step": self.step, "grid": grid.tolist(), "density": dens.tolist()}
            )

    # ------------------------------------------------------------------------------ the loop
    def run(self) -> str:
        self.setup()
        # tiny inputs (digits: 64 pixels) on a CPU: intra-op threads only add overhead, and on busy cores
        # OpenMP's spinning made a 5-epoch digits run ~10x slower with 2 threads than with 1 (measured)
        tiny = self.device.type == "cpu" and self.spec.channels * self.spec.size**2 <= TINY_INPUT
        threads = torch.get_num_threads()
        if tiny:
            torch.set_num_threads(1)
        try:
            self._resume()
            with _StopSignal() as sig:
                return self._train(sig)
        finally:
            torch.set_num_threads(threads)

    def _train(self, sig: _StopSignal) -> str:
        """Every step: batch → optimizer step → log window → Hessian every k → at an epoch end evaluation
        and checkpoint → stop check; after the last step the end-of-run measurements. Every rank runs
        this same code; `self.rank` decides what a rank other than 0 skips or shares."""
        cfg, rank = self.cfg, self.rank
        self._start_clock()
        if self.step == 0 and self._hessian_due():
            rank.on_main(self._log_hessian)  # λ_max at the initial weights
        window = _Window(self._overhead())
        self._last_poll = self._t_ckpt = self._now = time.monotonic()
        requested = stop = False  # a stop asked for on this process (store flag, SIGTERM) / one acted on
        start_epoch, start_in = divmod(self.step, self.spe)
        for epoch in range(start_epoch, cfg.epochs):
            for batches in self._batches(epoch, start_in if epoch == start_epoch else 0):
                lr = lr_at(cfg, self.step, self.total)
                window.rows.append(self._train_step(batches, lr))
                self.step += 1
                end_of_epoch = self.step % self.spe == 0
                if self._poll_due():
                    requested = self._heartbeat(epoch) or sig.flag or requested
                    stop = rank.stop_now(requested)
                if self.step % cfg.log_every == 0 or end_of_epoch or stop:
                    diverged, stop = self._flush(window, lr, requested)
                    if diverged:
                        return self._finish_diverged()
                if self._hessian_due():
                    rank.on_main(self._log_hessian)
                if end_of_epoch:
                    stop = self._end_epoch(epoch) or stop
                if end_of_epoch or stop or self._checkpoint_due():
                    rank.on_main(self._checkpoint)
                if stop:
                    return self._finish_stopped(epoch)
        self._tick()
        self.store.heartbeat(self.run_id, self.step, cfg.epochs, self.train_seconds)
        rank.at_end(self.reps[0].model)
        return rank.on_main(self._end_of_run, sig, default="finished")

    def _resume(self) -> None:
        """Continue from the checkpoint if there is one (the metric rows logged after it are dropped)."""
        resumed = self.load_checkpoint()
        dropped = self.store.truncate_metrics(self.run_id, self.step if resumed else -1)
        if resumed:
            self.echo(f"resumed from the checkpoint at step {self.step} ({dropped} later metric rows replaced)")
        self.rank.describe(self.store, self.run_id, self.cfg.batch_size, self.cfg.sync_perturbation)

    def _batches(self, epoch: int, start: int):
        """Every step's batch for each network (the run, its stability twin): the epoch's plan from `start`."""
        return zip(*[rep.loader.batches(epoch, start) for rep in self.reps])

    def _train_step(self, batches, lr: float) -> torch.Tensor:
        """One optimizer step of every network on its batch; returns the main run's row of the window:
        its `WINDOW_KEYS` stats, the batch accuracy (and the twin distance in stability mode). No sync."""
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
        return torch.stack([r.float() for r in row])

    # clocks: training seconds (the checkpoint's total + this session's), polls, timed checkpoints
    def _start_clock(self) -> None:
        self._t_run, self._seconds0 = time.perf_counter(), self.train_seconds

    def _tick(self) -> None:
        self.train_seconds = self._seconds0 + time.perf_counter() - self._t_run

    def _overhead(self) -> float:
        return self.hessian_seconds + self.eval_seconds

    def _poll_due(self) -> bool:
        """Reads the clock (once a step; `_checkpoint_due` uses the same reading)."""
        self._now = time.monotonic()
        if self._now - self._last_poll < self.cfg.poll_seconds:
            return False
        self._last_poll = self._now
        return True

    def _checkpoint_due(self) -> bool:
        return self._now - self._t_ckpt >= 60 * self.cfg.checkpoint_minutes

    def _hessian_due(self) -> bool:
        return bool(self.cfg.hessian_every) and self.step % self.cfg.hessian_every == 0

    # what a step does besides training
    def _heartbeat(self, epoch: int) -> bool:
        """Write step, epoch and training seconds; True if a stop was requested in the store."""
        self._tick()
        return self.store.heartbeat(self.run_id, self.step, epoch, self.train_seconds)

    def _flush(self, window: _Window, lr: float, requested: bool) -> tuple[bool, bool]:
        """Write the window's means (one device→host transfer) and start a new window.

        Returns (diverged, stop). On ranks the window is first averaged over ranks together with their
        stop requests (one all-reduce), so both answers are the same on every rank.
        """
        seconds = window.seconds(self._overhead())
        m, stop = self.rank.reduce_window(torch.stack(window.rows).double(), requested)
        diverged = self._write_window(m.cpu(), seconds, lr)
        window.reset(self._overhead())
        return diverged, stop

    def _write_window(self, m: torch.Tensor, seconds: float, lr: float) -> bool:
        k = m.shape[0]
        means = m.mean(0).tolist()
        names = list(WINDOW_KEYS) + ["accuracy"] + (["twin_distance"] if len(self.reps) > 1 else [])
        vals = dict(zip(names, means))
        if len(self.reps) > 1:
            vals["twin_distance"] = float(m[-1, -1])  # the distance now, not a window mean
        per_step = self.cfg.batch_size  # images of the global batch (every rank's share is full)
        vals.update(
            lr=lr,
            epoch=self.step / self.spe,
            step_time=seconds / k if seconds > 0 else math.nan,
            images_per_s=k * per_step / seconds if seconds > 0 else math.nan,
        )
        if "rho" in self.hp:
            vals["rho"] = float(self.hp["rho"])
        self._log(self.step, vals)
        return not math.isfinite(float(m[:, 0].sum()))

    def _log_hessian(self) -> None:
        self._log(self.step, self.hessian_point())

    def _end_epoch(self, epoch: int) -> bool:
        """Rank 0 evaluates and logs the epoch (every rank joins `epoch_metrics`). True: stop here."""
        extra = self.rank.epoch_metrics(self.reps[0].model)
        return self.rank.stop_now(bool(self.rank.on_main(self._evaluate_epoch, epoch, extra)))

    def _evaluate_epoch(self, epoch: int, extra: dict[str, float]) -> bool:
        """Log the epoch's evaluation; True if `on_epoch` asks to stop (e.g. ASHA early stopping)."""
        ep = self.epoch_point()
        ep.update(extra)
        self._log(self.step, ep)
        self.echo(self._epoch_line(epoch, ep))
        return self.on_epoch is not None and bool(self.on_epoch(epoch, self.step, ep))

    def _checkpoint(self) -> None:
        self._tick()
        self.save_checkpoint()
        self._t_ckpt = self._now

    def _log(self, step: int, values: dict[str, float]) -> None:
        self.store.log_metrics(self.run_id, [(step, k, v) for k, v in values.items()])

    # ------------------------------------------------------------------------------ how a run ends
    def _finish_stopped(self, epoch: int) -> str:
        self.store.heartbeat(self.run_id, self.step, epoch, self.train_seconds)
        self.store.finish(self.run_id, "stopped", message=f"stopped at step {self.step}; resume continues here")
        self.echo(f"stopped at step {self.step}")
        return "stopped"

    def _finish_diverged(self) -> str:
        self._tick()
        self.store.heartbeat(self.run_id, self.step, self.step // self.spe, self.train_seconds)
        self._timing()
        msg = f"diverged at step {self.step}: the loss became NaN or infinite (a result, not a crash)"
        self.store.put_artifact(self.run_id, "diverged_step", self.step)
        self.store.finish(self.run_id, "finished", message=msg)
        self.echo(msg)
        return "finished"

    def _end_of_run(self, sig: _StopSignal) -> str:
        """After the last step (rank 0): the final spectrum and the timing, unless a Stop came first."""
        store, rid = self.store, self.run_id
        stopped_msg = f"stopped during the end-of-run measurements after all {self.step} steps; resume runs them again"
        if store.stop_requested(rid) or sig.flag:  # a Stop that came after the last step's poll
            store.finish(rid, "stopped", message=stopped_msg)
            self.echo(stopped_msg)
            return "stopped"
        self.final_spectrum(lambda: sig.flag or store.stop_requested(rid))
        self._timing()
        return store.finish_unless_stopped(rid, f"finished {self.step} steps", stopped_msg)

    def _timing(self) -> None:
        self.store.put_artifact(
            self.run_id,
            "timing",
            {
                "train_seconds": self.train_seconds,
                "hessian_seconds": self.hessian_seconds,
                "eval_seconds": self.eval_seconds,
                "steps": self.step,
                "device": str(self.device),
            },
        )

    def _epoch_line(self, epoch: int, ep: dict) -> str:
        return (
            f"epoch {epoch + 1}/{self.cfg.epochs} step {self.step}/{self.total} "
            f"train loss {ep['train_loss']:.4f} acc {ep['train_acc']:.3f} · "
            f"test loss {ep['test_loss']:.4f} acc {ep['test_acc']:.3f}"
        )


def train(cfg: RunConfig, store: RunStore, run_id: str, echo: Callable[[str], None] | None = None) -> str:
    """Train run `run_id` (already marked running); returns 'finished' or 'stopped'. Exceptions propagate."""
    return Trainer(cfg, store, run_id, echo).run()
