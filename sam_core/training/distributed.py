"""Data-parallel training runs: `torchrun --nproc_per_node N -m sam_core.cli.train …` (DistributedDataParallel).

    torchrun --standalone --nproc_per_node 4 -m sam_core.cli.train --dataset cifar10 --model resnet18 \\
        --optimizer ssam --rho 0.05 --batch-size 512 --epochs 200 [--sync-perturbation]

torchrun starts N copies of the command with RANK, WORLD_SIZE and LOCAL_RANK set; `detect()` reads
them and `init()` joins the process group (NCCL on CUDA, with Gloo beside it for CPU objects; Gloo
alone on CPU). A single process (no torchrun, or WORLD_SIZE=1) takes none of these paths: no process
group, no DDP wrapper, no extra collective or host sync per step.

How a SAM step runs on N ranks (the maths is `SAMOptimizer.distributed`, never re-implemented here):
  * `batch_size` is the global batch B. Every rank follows the same epoch plan (a pure function of
    seed and epoch) and trains on its columns [r·B/N, (r+1)·B/N) of every batch (`data.shard_plan`),
    so the N ranks together see exactly the batches of the single-process run.
  * Pass 1 (forward *and* backward at w) runs inside `ddp.no_sync()`: rank r ascends along its own
    gradient g_r, e_r = ρ g_r/‖g_r‖ — m-sharpness with m = B/N, as in Foret et al. With
    `--sync-perturbation` g is all-reduced first (ḡ = mean_r g_r) and every rank uses the same
    e = ρ ḡ/‖ḡ‖: global-batch SAM, equal to the single-process run up to float rounding (no BatchNorm).
  * The extra pass(es) are all-reduced by DDP: g_adv = mean_r ∇L_r(w + e_r).
  * γ_t of the stable rules (SSAM, stable ASAM/…): each rank forms γ_r = ‖g_r‖ / ‖g_adv‖ from its
    *local* clean-gradient norm and the all-reduced perturbed one, then γ_t = mean_r γ_r is used by
    every rank (one extra all-reduce of one number). BSAM's clean-gradient term is averaged the same
    way. Under `--sync-perturbation` the norms are already global, so γ_t is the single-process value.
    Hence `d`, and the weights, are identical on every rank (checked: `rank_weight_diff` below).
  * BatchNorm: each rank normalises with its own shard's statistics; the extra passes keep the running
    statistics frozen (`optim.frozen_bn`), and DDP broadcasts rank 0's buffers at every forward.
  * Metrics: the per-step window (loss, ‖g‖, ‖g_adv‖, γ_t, cos, ‖e‖, batch accuracy) is averaged over
    ranks in one all-reduce every `log_every` steps (under m-sharpness ‖g‖ is then the mean of the
    local norms); the epoch evaluation, the Hessian estimates and the final spectrum are computed by
    rank 0 on its weights (identical on every rank). At every epoch end `rank_weight_diff` =
    max_r max_i |w_r,i − w_0,i| is logged (0 while the ranks are in sync).
  * Only rank 0 opens the run store and writes checkpoints. The stop flag (a stop requested in the
    store, seen by rank 0's heartbeat, or SIGTERM on any rank) rides in the same all-reduce, so all
    ranks stop at the same step, at most `log_every` steps after the request.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

DEBUG_DIR_ENV = "SAMLAB_DDP_DEBUG_DIR"  # tests: every rank saves its final flat weights there


class SingleProcess:
    """The rank of a run trained by one process: the trainer's whole view of "where am I".

    `Trainer` talks to its rank only through this interface, which `DistContext` (a rank of a torchrun
    job) implements too, so the training loop has no single-process / distributed branches:

      rank, world, is_main     this process's place (0, 1, True here)
      device(requested)        the device it trains on
      shard                    (rank, world): its columns of every batch
      wrap(model, opt, ...)    the network the closure calls (a DDP wrapper on ranks)
      store(s), echo(f)        where it writes: the run store and the log (rank 0), or nothing
      load_checkpoint(...)     the checkpoint's content (read by rank 0, given to every rank)
      describe(...)            records the job's layout in the store (ranks only)
      reduce_window(m, stop)   the metric window (mean over ranks) and whether the ranks stop now
      stop_now(requested)      whether a stop requested here takes effect at once
      epoch_metrics(model)     extra metrics every rank computes at an epoch end (a collective)
      on_main(fn, ...)         fn(...) on rank 0, which measures, evaluates and checkpoints
      at_end(model)            what every rank does after the last step
    """

    rank = 0
    world = 1
    local_rank = 0
    backend = ""
    is_main = True
    shard = (0, 1)

    def device(self, requested: str) -> torch.device:
        return resolve_device(requested)

    def wrap(self, model: torch.nn.Module, opt: Any, device: torch.device, sync_perturbation: bool) -> torch.nn.Module:
        return model

    def store(self, store: Any) -> Any:
        return store

    def echo(self, echo: Callable[[str], None] | None) -> Callable[[str], None]:
        return echo or _silent

    def load_checkpoint(self, store: Any, run_id: str, device: torch.device) -> dict | None:
        path = store.checkpoint_path(run_id)
        return torch.load(path, map_location=device, weights_only=False) if path.exists() else None

    def describe(self, store: Any, run_id: str, batch_size: int, sync_perturbation: bool) -> None:
        pass

    def reduce_window(self, m: torch.Tensor, stop: bool) -> tuple[torch.Tensor, bool]:
        return m, stop

    def stop_now(self, requested: bool) -> bool:
        """A single process acts on a stop request at once (SIGTERM, the store's flag, `on_epoch`)."""
        return requested

    def epoch_metrics(self, model: torch.nn.Module) -> dict[str, float]:
        return {}

    def on_main(self, fn: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        return fn(*args)

    def at_end(self, model: torch.nn.Module) -> None:
        pass


SINGLE = SingleProcess()


def _silent(_: str) -> None:
    pass


@dataclass(frozen=True)
class DistContext:
    """This process's place in a torchrun job: the rank interface of `SingleProcess`, on N processes."""

    rank: int
    world: int
    local_rank: int
    backend: str = ""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def shard(self) -> tuple[int, int]:
        return self.rank, self.world

    def device(self, requested: str) -> torch.device:
        return rank_device(self, requested)

    def wrap(self, model: torch.nn.Module, opt: Any, device: torch.device, sync_perturbation: bool) -> torch.nn.Module:
        """DistributedDataParallel around `model`; the optimizer learns how to reduce SAM's passes."""
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        opt.distributed(net, sync_perturbation=sync_perturbation)
        return net

    def store(self, store: Any) -> Any:
        """Only rank 0 opens the run store; the others write nothing."""
        return store if self.is_main else NullStore()

    def echo(self, echo: Callable[[str], None] | None) -> Callable[[str], None]:
        return (echo if self.is_main else None) or _silent

    def load_checkpoint(self, store: Any, run_id: str, device: torch.device) -> dict | None:
        """Rank 0 reads the file, every rank gets its content (no shared filesystem needed)."""
        state = None
        if self.is_main and store.checkpoint_path(run_id).exists():
            state = torch.load(store.checkpoint_path(run_id), map_location="cpu", weights_only=False)
        return self.broadcast_object(state)

    def describe(self, store: Any, run_id: str, batch_size: int, sync_perturbation: bool) -> None:
        store.put_artifact(
            run_id,
            "distributed",
            {
                "world_size": self.world,
                "backend": self.backend,
                "sync_perturbation": sync_perturbation,
                "per_rank_batch": batch_size // self.world,
            },
        )

    def stop_now(self, requested: bool) -> bool:
        """Never at once: the ranks agree on a stop in the next window's all-reduce (`reduce_window`), so
        all of them stop at the same step; `on_epoch`'s request (rank 0 only) is not honoured."""
        return False

    def epoch_metrics(self, model: torch.nn.Module) -> dict[str, float]:
        return {"rank_weight_diff": self.weight_diff(model)}  # a collective: every rank

    def on_main(self, fn: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        return fn(*args) if self.is_main else default

    def at_end(self, model: torch.nn.Module) -> None:
        save_debug_weights(self, model)

    # ------------------------------------------------------------------------------ collectives
    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank (pickled; for small control data and checkpoints)."""
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def reduce_window(self, m: torch.Tensor, stop: bool) -> tuple[torch.Tensor, bool]:
        """Average the (k, n) metric window over ranks and OR the ranks' stop flags: one all-reduce."""
        import torch.distributed as dist

        flat = torch.cat([m.reshape(-1), torch.tensor([1.0 if stop else 0.0], dtype=m.dtype, device=m.device)])
        dist.all_reduce(flat)
        return (flat[:-1] / self.world).view_as(m), bool(flat[-1] > 0)

    def weight_diff(self, model: torch.nn.Module) -> float:
        """max over ranks of max |w_rank − w_rank0| (all ranks call it; 0.0 when in sync)."""
        import torch.distributed as dist

        w = torch.cat([p.detach().reshape(-1).float() for p in model.parameters()])
        w0 = w.clone()
        dist.broadcast(w0, src=0)
        diff = (w - w0).abs().max().reshape(1) if w.numel() else torch.zeros(1, device=w.device)
        dist.all_reduce(diff, op=dist.ReduceOp.MAX)
        return float(diff)


Rank = SingleProcess | DistContext


def detect() -> DistContext | None:
    """The torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK), or None for a single process."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise ValueError("RANK, WORLD_SIZE and LOCAL_RANK must be integers (as torchrun sets them)") from None
    if world <= 1:
        return None
    if not 0 <= rank < world:
        raise ValueError(f"RANK must be in [0, {world - 1}] for WORLD_SIZE={world}, got {rank}")
    return DistContext(rank, world, local)


def wants_cuda(device: str | None) -> bool:
    """Whether ranks train on CUDA: the requested device (option, else SAMLAB_DEVICE/auto) allows it."""
    if device is None:
        from sam_core.settings import get_settings

        device = get_settings().device
    return device != "cpu" and not device.startswith("mps") and torch.cuda.is_available()


def init(ctx: DistContext, device: str | None = None, timeout_minutes: float = 30.0) -> DistContext:
    """Join the process group: NCCL for CUDA tensors (with Gloo for CPU objects), Gloo on CPU."""
    import torch.distributed as dist

    if wants_cuda(device):
        torch.cuda.set_device(ctx.local_rank % torch.cuda.device_count())
        backend = "cpu:gloo,cuda:nccl"
    else:
        backend = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=timeout_minutes))
    return DistContext(ctx.rank, ctx.world, ctx.local_rank, backend)


def shutdown(timeout_s: float = 120.0) -> None:
    """Leave the process group together: a barrier first (bounded, so a rank that crashed cannot hang the
    others), then destroy it. A rank tearing its Gloo connections down while another still used them
    occasionally aborted ("terminate called without an active exception") after a finished run."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return
    try:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier(timeout=datetime.timedelta(seconds=timeout_s))
        else:
            dist.barrier()
    except Exception:  # noqa: BLE001 - a peer is gone: nothing left to wait for
        pass
    dist.destroy_process_group()


def resolve_device(name: str) -> torch.device:
    """A single process's device: `auto` (the settings' choice) or the one named (cuda only if available)."""
    if name == "auto":
        from sam_core.settings import get_settings

        return get_settings().torch_device()
    if name.startswith("cuda") and not torch.cuda.is_available():
        from sam_core.training.config import ConfigError

        raise ConfigError([f"device: {name} was requested but CUDA is not available here; use cpu or auto"])
    return torch.device(name)


def rank_device(ctx: DistContext, requested: str) -> torch.device:
    """Each rank's device: its own GPU (cuda:LOCAL_RANK) when CUDA is used, else the CPU."""
    if "nccl" in ctx.backend and requested != "cpu":
        return torch.device("cuda", torch.cuda.current_device())
    if requested not in ("auto", "cpu"):
        from sam_core.training.config import ConfigError

        raise ConfigError(
            [
                f"device: {requested} was requested but this torchrun job runs on the CPU "
                f"(no CUDA here); use --device cpu or auto"
            ]
        )
    return torch.device("cpu")


def check_batch(batch_size: int, world: int) -> None:
    if batch_size % world:
        from sam_core.training.config import ConfigError

        raise ConfigError(
            [
                f"batch_size {batch_size} must be divisible by the number of processes ({world}): "
                f"it is the global batch, split evenly over the ranks"
            ]
        )


def save_debug_weights(ctx: DistContext, model: torch.nn.Module) -> None:
    """With SAMLAB_DDP_DEBUG_DIR set, every rank writes its flat weights to rank<r>.pt (for tests)."""
    out = os.environ.get(DEBUG_DIR_ENV)
    if not out:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    w = torch.cat([p.detach().reshape(-1).cpu() for p in model.parameters()])
    torch.save(w, Path(out) / f"rank{ctx.rank}.pt")


class NullStore:
    """What ranks other than 0 hold instead of the run store: every write is dropped."""

    def update(self, *a, **k) -> None:
        pass

    def truncate_metrics(self, *a, **k) -> int:
        return 0

    def heartbeat(self, *a, **k) -> bool:
        return False

    def log_metrics(self, *a, **k) -> None:
        pass

    def put_artifact(self, *a, **k) -> None:
        pass

    def finish(self, *a, **k) -> None:
        pass

    def stop_requested(self, *a, **k) -> bool:
        return False

    def check_alive(self, *a, **k) -> None:
        pass

    def finish_unless_stopped(self, *a, **k) -> str:
        return "finished"

    def checkpoint_path(self, run_id: str):
        raise RuntimeError("only rank 0 reads or writes checkpoints")
