"""Speed of data-parallel training: the same run (same global batch, same steps) trained by one process
and by `torchrun --nproc_per_node N`, through the real command. Prints measured numbers; asserts nothing.

    python benchmarks/bench_ddp.py [--nproc 2] [--model lenet5] [--batch 64] [--epochs 2] [--optimizer sam]

For each of: one process with 1 thread, one process with N threads, N ranks (1 thread each) with
m-sharpness, N ranks with --sync-perturbation, it reports the training seconds per step (the loop's own
`timing` artifact: evaluation and Hessian time excluded), images/s, and the ratio to the 1-thread
single process, plus the job's wall time (process start-up included). On CUDA the ranks use one GPU
each (NCCL); on a CPU-only machine they share its cores (Gloo), so the ratio mostly shows the cost of
the all-reduces there. It also checks, from each rank's dumped weights, that the ranks ended identical.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "tests"))  # the tests' fake datasets (tests/fakes.py): test data, not the library's

from fakes import write_fake_cifar10  # noqa: E402

from sam_core.training import RunStore  # noqa: E402


def run(cmd: list[str], env: dict) -> tuple[str, float]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=3600)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1], wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--model", default="lenet5")
    p.add_argument("--optimizer", default="sam")
    p.add_argument("--batch", type=int, default=64, help="global batch")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--n-train", type=int, default=2048)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_fake_cifar10(tmp / "data", n_train=a.n_train, n_test=64)
        cfg = {
            "dataset": "cifar10",
            "data_dir": str(tmp / "data"),
            "download": False,
            "model": a.model,
            "optimizer": a.optimizer,
            "epochs": a.epochs,
            "batch_size": a.batch,
            "log_every": 10,
            "hessian_every": 0,
            "final_top_k": 0,
            "final_density": False,
            "eval_train_size": 64,
            "augment": False,
        }
        (tmp / "run.json").write_text(json.dumps(cfg))
        base = [
            sys.executable,
            "-m",
            "sam_core.cli.train",
            "--config",
            str(tmp / "run.json"),
            "--runs-dir",
            str(tmp / "runs"),
        ]
        dist = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(a.nproc),
            "-m",
            "sam_core.cli.train",
            "--config",
            str(tmp / "run.json"),
            "--runs-dir",
            str(tmp / "runs"),
        ]
        env0 = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        cases = [
            ("1 process, 1 thread", base, dict(env0, OMP_NUM_THREADS="1")),
            (f"1 process, {a.nproc} threads", base, dict(env0, OMP_NUM_THREADS=str(a.nproc))),
            (
                f"{a.nproc} ranks, m-sharpness",
                dist,
                dict(env0, OMP_NUM_THREADS="1", SAMLAB_DDP_DEBUG_DIR=str(tmp / "dbg_m")),
            ),
            (
                f"{a.nproc} ranks, --sync-perturbation",
                dist + ["--sync-perturbation"],
                dict(env0, OMP_NUM_THREADS="1", SAMLAB_DDP_DEBUG_DIR=str(tmp / "dbg_s")),
            ),
        ]
        store = RunStore(tmp / "runs")
        device = "cuda" if torch.cuda.is_available() else "cpu"
        print(
            f"{a.model} · {a.optimizer} · global batch {a.batch} · {a.n_train} examples × {a.epochs} epochs · "
            f"{device} · torch {torch.__version__}"
        )
        print(f"{'case':34s} {'s/step':>9s} {'images/s':>10s} {'vs 1 thread':>12s} {'wall s':>8s}")
        ref = None
        for name, cmd, env in cases:
            rid, wall = run(cmd, env)
            t = store.get_artifact(rid, "timing")
            per_step = t["train_seconds"] / t["steps"]
            ref = ref or per_step
            print(f"{name:34s} {per_step:9.4f} {a.batch / per_step:10.0f} {ref / per_step:11.2f}x {wall:8.1f}")
        for tag in ("m", "s"):
            w = [torch.load(tmp / f"dbg_{tag}" / f"rank{r}.pt") for r in range(a.nproc)]
            diff = max(float((w[0] - x).abs().max()) for x in w[1:])
            print(f"max |w_rank - w_0| after training ({'m-sharpness' if tag == 'm' else 'sync'}): {diff:.3g}")


if __name__ == "__main__":
    main()
