"""`python -m sam_core.cli.train …`: train one run headless (the same worker the dashboard starts).

    python -m sam_core.cli.train --dataset cifar10 --data-dir D --model lenet5 --optimizer ssam --rho 0.05 \\
        --lr 0.05 --epochs 1 --batch-size 64 --hessian-every 5 --runs-dir R
    python -m sam_core.cli.train --config run.json [--epochs 3 …]     # options given also override the file
    python -m sam_core.cli.train … --detach                            # queue it, start a worker, return at once
    python -m sam_core.cli.train --run-id ID --runs-dir R              # the worker of an existing queued run
    torchrun --standalone --nproc_per_node 4 -m sam_core.cli.train … [--sync-perturbation]   # data-parallel
    torchrun --standalone --nproc_per_node 4 -m sam_core.cli.train --run-id ID --runs-dir R  # resume on 4 GPUs

Progress goes to stdout; the run id is the last line. Exit status 0 unless the run failed (1) or
the options were invalid (2). The variant's hyperparameter options (--rho, --lam, --stable, …) come
from the registry (`sam_core.VARIANTS`).

Under torchrun (WORLD_SIZE > 1) every rank runs this command: rank 0 creates the run in the store
(it takes no queue slot: the job owns its processes) and tells the others its id and config; the
model is wrapped in DistributedDataParallel and `--batch-size` is the global batch. With `--run-id`
of a stopped or failed run, the job resumes it from its checkpoint (written by any number of
processes: a checkpoint holds one copy of the weights). See
`sam_core.training.distributed` for how SAM's passes, γ_t and the metrics are reduced.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from sam_core.cli import CLIError, Parser, check_device, cli_main, parse_bool
from sam_core.registry import VARIANTS
from sam_core.training.config import (
    BASES,
    DATASET_DEFAULTS,
    LOADERS,
    LOSSES,
    SCHEDULES,
    ConfigError,
    RunConfig,
    dataset_defaults,
)
from sam_core.training.data import DATASETS
from sam_core.training.models import MODELS


def _hparam_specs() -> dict:
    """Every variant hyperparameter settable from the command line, by name (first spec wins)."""
    out = {}
    for spec in VARIANTS.values():
        for name, h in spec.hparams.items():
            if h.ui and h.kind != "tensor":
                out.setdefault(name, h)
    return out


def _schedule_or_float(s: str):
    try:
        return float(s)
    except ValueError:
        return s


def build_parser() -> argparse.ArgumentParser:
    d = RunConfig()
    p = Parser(
        prog="python -m sam_core.cli.train",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    a = p.add_argument
    a("--config", help="a JSON file of RunConfig fields; options given here override it")
    a("--runs-dir", help="run store directory (default: SAMLAB_RUNS_DIR or runs/)")
    a("--run-id", help="execute this queued run of the store (what the dashboard's worker does)")
    a("--detach", action="store_true", help="queue the run, start a background worker, print the id and return")
    g = p.add_argument_group("data")
    g.add_argument(
        "--dataset",
        choices=list(DATASETS),
        help=f"default {d.dataset}; digits (ships with scikit-learn, no files) has its own defaults: "
        + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in DATASET_DEFAULTS["digits"].items()),
    )
    g.add_argument("--data-dir", dest="data_dir", help="dataset root (default: SAMLAB_DATA or data/)")
    g.add_argument("--no-download", dest="download", action="store_false", help="never try to download")
    g.add_argument("--subset", type=int, help="training examples used (default: all)")
    g.add_argument("--test-subset", dest="test_subset", type=int, help="test examples used (default: all)")
    g.add_argument("--label-noise", dest="label_noise", type=float, help="symmetric label noise rate in [0, 1]")
    g.add_argument("--augment", type=parse_bool, help="flip+crop (default: on for CIFAR, off for digits)")
    g.add_argument("--seed", type=int, help=f"default {d.seed}")
    g = p.add_argument_group("model and optimizer")
    g.add_argument("--model", help=f"one of {list(MODELS)} (default {d.model})")
    g.add_argument("--optimizer", help=f"a variant: {list(VARIANTS)} (default {d.optimizer})")
    g.add_argument("--base", choices=BASES, help=f"base optimizer (default {d.base})")
    g.add_argument("--lr", type=float, help=f"default {d.lr}")
    g.add_argument("--momentum", type=float, help=f"default {d.momentum}")
    g.add_argument("--nesterov", type=parse_bool)
    g.add_argument("--weight-decay", dest="weight_decay", type=float, help=f"default {d.weight_decay}")
    g.add_argument("--lr-schedule", dest="lr_schedule", choices=SCHEDULES, help=f"default {d.lr_schedule}")
    g.add_argument("--loss", choices=LOSSES, help="ce (cross-entropy) or mse (½‖f(x) − onehot‖²)")
    g.add_argument("--label-smoothing", dest="label_smoothing", type=float)
    g.add_argument("--epochs", type=int, help=f"default {d.epochs}")
    g.add_argument("--batch-size", dest="batch_size", type=int, help=f"default {d.batch_size}")
    g = p.add_argument_group("variant hyperparameters (only those of the chosen --optimizer apply)")
    for name, h in _hparam_specs().items():
        flag = "--" + name.replace("_", "-")
        dest = "hp__" + name
        if h.kind == "bool":
            g.add_argument(flag, dest=dest, type=parse_bool, metavar="BOOL", help=h.help)
        elif h.kind == "choice":
            g.add_argument(flag, dest=dest, choices=list(h.choices), help=h.help)
        elif h.kind == "schedule":
            g.add_argument(flag, dest=dest, type=_schedule_or_float, metavar=name.upper(), help=h.help)
        else:
            g.add_argument(flag, dest=dest, type=float, metavar=name.upper(), help=h.help)
    g = p.add_argument_group("measurements")
    g.add_argument("--log-every", dest="log_every", type=int, help=f"k: metrics every k steps (default {d.log_every})")
    g.add_argument(
        "--hessian-every",
        dest="hessian_every",
        type=int,
        help=f"m: top Hessian eigenvalue every m steps, 0 = off (default {d.hessian_every})",
    )
    g.add_argument("--hessian-batch", dest="hessian_batch", type=int, help=f"default {d.hessian_batch}")
    g.add_argument("--hessian-iters", dest="hessian_iters", type=int, help=f"default {d.hessian_iters}")
    g.add_argument("--hutchinson", type=int, help="Hutchinson probes per estimate (0 = no trace)")
    g.add_argument("--final-top-k", dest="final_top_k", type=int, help=f"default {d.final_top_k}")
    g.add_argument("--final-density", dest="final_density", type=parse_bool)
    g.add_argument("--stability", type=parse_bool, help="uniform-stability twin run (one example replaced)")
    g.add_argument("--eval-train-size", dest="eval_train_size", type=int)
    g = p.add_argument_group("execution")
    g.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    g.add_argument("--amp", type=parse_bool, help="bf16 autocast on CUDA (default on)")
    g.add_argument("--channels-last", dest="channels_last", type=parse_bool)
    g.add_argument("--loader", choices=LOADERS)
    g.add_argument("--num-workers", dest="num_workers", type=int)
    g.add_argument("--checkpoint-minutes", dest="checkpoint_minutes", type=float)
    g.add_argument("--poll-seconds", dest="poll_seconds", type=float, help="stop-flag/heartbeat interval")
    g.add_argument(
        "--sync-perturbation",
        dest="sync_perturbation",
        action="store_true",
        help="torchrun only: all-reduce the ascent gradient before perturbing (global-batch SAM); "
        "default: each rank perturbs with its own gradient (m-sharpness)",
    )
    g.add_argument("--name")
    return p


def config_from_args(ns: argparse.Namespace) -> RunConfig:
    """Defaults ← --config file ← options given on the command line."""
    given = vars(ns)
    base = (
        RunConfig.from_json_file(given["config"]).to_dict()
        if "config" in given
        else dataset_defaults(given.get("dataset", RunConfig.dataset))
    )  # digits: its own small defaults
    field_names = {f.name for f in fields(RunConfig)}
    hp = {k[4:]: v for k, v in given.items() if k.startswith("hp__")}
    for k, v in given.items():
        if k in field_names:
            base[k] = v
    if hp:
        variant = base.get("optimizer")
        spec = VARIANTS.get(variant)
        if spec is not None:
            bad = sorted(set(hp) - set(spec.hparams))
            if bad:
                opts = ", ".join("--" + n.replace("_", "-") for n in spec.hparams) or "none"
                raise ConfigError(
                    [
                        f"{', '.join('--' + b.replace('_', '-') for b in bad)} does not apply to "
                        f"--optimizer {variant}; its options: {opts}"
                    ]
                )
        base["hparams"] = {**base.get("hparams", {}), **hp}
    return RunConfig.from_dict(base).validate()


def _data_problem(cfg: RunConfig) -> str | None:
    """Why the run's dataset cannot be had right now (not on disk, and no download possible), or None.

    Checked before the run is created, so a missing dataset is one line and no failed run; a cheap
    look for the files (nothing is read), then — only if a download would be tried — one short probe
    of the host (a few seconds at most; none at all under SAMLAB_OFFLINE=1 or --no-download)."""
    from sam_core.settings import get_settings
    from sam_core.training import data as D

    spec = DATASETS.get(cfg.dataset)
    files = tuple(getattr(spec, "files", ()) or ())
    if spec is None or not files or not hasattr(D, "_folder_candidates"):
        return None  # a dataset without files on disk (generated): nothing to look for
    data_dir = Path(cfg.data_dir or str(get_settings().data_dir)).expanduser()
    try:
        data_dir = data_dir.resolve()
        for folder in D._folder_candidates(spec, data_dir):
            if cfg.dataset == "cifar10":
                if (folder / "test_batch").is_file() and any((folder / f).is_file() for f in files[:5]):
                    return None
            elif all((folder / f).is_file() or (folder / (f + ".gz")).is_file() for f in files):
                return None
    except (OSError, RuntimeError, ValueError):
        pass  # unreadable path: missing
    offline = os.environ.get("SAMLAB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    if not cfg.download or offline:
        why = "downloading is switched off" + (" (SAMLAB_OFFLINE=1)" if offline else " (--no-download)")
        return D.missing_message(spec, data_dir, why)
    if not D._host_reachable(spec.url):
        return D.missing_message(spec, data_dir, f"its host ({spec.url}) cannot be reached")
    return None


def precheck(cfg: RunConfig) -> RunConfig:
    """What must hold before a run is created: the device exists here and the data can be had."""
    if cfg.device != "auto":
        check_device(cfg.device, "device")
    problem = _data_problem(cfg)
    if problem:
        raise CLIError("data", problem)
    return cfg


def _main_distributed(ns: argparse.Namespace, ctx) -> int:
    """One rank of a torchrun job (see the module docstring)."""
    from sam_core.settings import get_settings
    from sam_core.training import distributed, worker
    from sam_core.training.store import RunStore, check_run_id

    given = vars(ns)
    if "detach" in given:
        print("error: --detach does not apply under torchrun (torchrun itself runs the job)", file=sys.stderr)
        return 2
    device = given.get("device")
    if device is None and "config" in given and "run_id" not in given:
        try:
            device = RunConfig.from_json_file(given["config"]).device
        except ConfigError:
            device = None  # reported below by rank 0
    if get_settings().read_only:
        print(
            "error: SAMLAB_READ_ONLY: training writes to the run store and is switched off in read-only mode",
            file=sys.stderr,
            flush=True,
        )
        return 2
    ctx = distributed.init(ctx, None if device in (None, "auto") else device)
    echo = (lambda s: print(s, flush=True)) if ctx.is_main else None
    store = None
    try:
        if ctx.is_main:
            try:
                store = RunStore(given.get("runs_dir") or str(get_settings().runs_dir))
                if "run_id" in given:
                    run_id = check_run_id(given["run_id"])
                    cfg = RunConfig.from_dict(store.get(run_id).config)
                    distributed.check_batch(cfg.batch_size, ctx.world)
                    if store.get(run_id).status in ("stopped", "failed"):  # resume it on these processes
                        store.prepare_resume(run_id)
                else:
                    cfg = precheck(config_from_args(ns))
                    distributed.check_batch(cfg.batch_size, ctx.world)
                    run_id = worker.create(store, cfg)
                    print(
                        f"run {run_id} in {store.dir} ({ctx.world} processes, {ctx.backend})",
                        file=sys.stderr,
                        flush=True,
                    )
                store.register_worker(run_id)
                status = store.claim_slot(run_id, max_concurrent=10**9)  # no queue slot: the job is running
                payload = {"run_id": run_id, "config": cfg.to_dict(), "status": status}
            except (ConfigError, ValueError, KeyError, OSError) as exc:
                from sam_core.cli import describe

                payload = {"error": describe(exc)[0]}
        else:
            payload = None
        payload = ctx.broadcast_object(payload)
        if "error" in payload:
            if ctx.is_main:
                print(f"error: {payload['error']}", file=sys.stderr, flush=True)
            return 2
        run_id = payload["run_id"]
        if payload["status"] != "running":
            if ctx.is_main:
                print(f"run {run_id} is {payload['status']}; nothing to do", flush=True)
                print(run_id, flush=True)
            return 0
        status = worker.execute_claimed(store, run_id, RunConfig.from_dict(payload["config"]), echo=echo, dist=ctx)
        if not ctx.is_main:
            return 1 if status == "failed" else 0
        info = store.get(run_id)
        if info.message:
            print(f"{status}: {info.message}", flush=True)
        print(run_id, flush=True)
        return 1 if status == "failed" else 0
    finally:
        distributed.shutdown()


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    ns = p.parse_args(argv)
    given = vars(ns)
    from sam_core.training import distributed

    try:
        ctx = distributed.detect()
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    if ctx is not None:
        return _main_distributed(ns, ctx)
    from sam_core.settings import get_settings
    from sam_core.training import worker
    from sam_core.training.store import RunStore, check_run_id

    if get_settings().read_only:
        raise CLIError(
            "SAMLAB_READ_ONLY",
            "training writes to the run store and is switched off in read-only mode (unset SAMLAB_READ_ONLY to train)",
        )

    def echo(s: str) -> None:
        print(s, flush=True)

    try:
        runs_dir = given.get("runs_dir") or str(get_settings().runs_dir)
        if "run_id" in given:
            run_id = check_run_id(given["run_id"])
            store = RunStore(runs_dir, create=False)
            store.get(run_id)  # KeyError "no run …" for an id the store never had
            status = worker.execute(store, run_id, echo=echo)
        else:
            cfg = precheck(config_from_args(ns))  # before the store: a bad option creates nothing
            store = RunStore(runs_dir)
            run_id = worker.create(store, cfg)
            print(f"run {run_id} in {store.dir}", file=sys.stderr, flush=True)
            if "detach" in given:
                worker.spawn_worker(store, run_id)
                print(run_id, flush=True)
                return 0
            status = worker.execute(store, run_id, echo=echo)
    except KeyError as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr, flush=True)
        return 2
    if status == "deleted" or not store.exists(run_id):
        print(f"run {run_id} was deleted while it ran", file=sys.stderr, flush=True)
        return 1
    info = store.get(run_id)
    if info.message:
        echo(f"{status}: {info.message}")
    print(run_id, flush=True)
    return 1 if status == "failed" else 0


if __name__ == "__main__":
    code = main()
    if os.environ.get("WORLD_SIZE", "1").strip() not in ("", "1"):
        # a torchrun rank, its run already saved in the store: leave without interpreter teardown, where
        # Gloo's threads and the process group may be destroyed in either order and abort the process
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
