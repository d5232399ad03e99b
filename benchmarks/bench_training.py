"""Speed of the training lab: what one SAM step costs against one SGD step, and what Hessian tracking
costs at its default interval. Prints measured numbers; asserts nothing.

    python benchmarks/bench_training.py [--models lenet5,resnet20] [--steps 5] [--blocks 3] [--threads 1]

1. Step-time ratio (target: SAM ≤ 2.05 × SGD; two passes are the floor) and the share of a step spent
   outside the forward-backward passes (what the shell adds; robust to load on a shared CPU): the same model, batch and
   closure as the training loop (`loop.make_closure` + `opt.step(closure, bn_model=model)`), median
   over timed blocks that alternate between the variants. SSAM and BSAM (three passes) are printed beside it.
2. Hessian overhead (target ≤ 10 %): the real `Trainer` on a synthetic CIFAR-format dataset with the
   default Hessian settings (every HESSIAN_EVERY steps, HESSIAN_BATCH examples, ≤ HESSIAN_ITERS
   warm-started Lanczos iterations); overhead = Hessian seconds / the rest of the training seconds.
On CUDA it also reports images/s for SGD and SAM on ResNet-18 and the fast net (bf16 autocast,
channels_last), as the training loop runs them.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's sam_core
sys.path.insert(1, str(ROOT / "tests"))  # the tests' fake datasets (tests/fakes.py): test data, not the library's

from fakes import write_fake_cifar10  # noqa: E402

import sam_core  # noqa: E402
from sam_core.training.config import HESSIAN_BATCH, HESSIAN_EVERY, HESSIAN_ITERS, RunConfig  # noqa: E402
from sam_core.training.loop import Replica, Trainer, make_closure  # noqa: E402
from sam_core.training.models import build_model  # noqa: E402
from sam_core.training.store import RunStore  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class _Stepper:
    """One model + optimizer + fixed batch, stepped exactly as the training loop steps."""

    def __init__(self, model_name, variant, device, batch, amp=False, channels_last=False):
        self.model = build_model(model_name, 3, 32, 10, seed=0).to(device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = sam_core.make_optimizer(
            variant, self.model.named_parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4
        )
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(batch, 3, 32, 32, generator=g).to(device)
        if channels_last:
            self.x = self.x.contiguous(memory_format=torch.channels_last)
        self.y = torch.randint(0, 10, (batch,), generator=g).to(device)
        self.rep = Replica(self.model, self.opt, None)
        self.autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if amp else contextlib.nullcontext
        self.device = device

    @staticmethod
    def loss_fn(out, t):
        return F.cross_entropy(out.float(), t)

    def run(self, steps: int) -> tuple[float, float]:
        """(seconds per step, seconds per step spent outside the closures, i.e. in the optimizer shell).
        The second number needs a sync per pass, so it is exact on CPU and an upper bound on CUDA."""
        inside = 0.0

        def timed(closure):
            def run_closure():
                nonlocal inside
                _sync(self.device)
                t = time.perf_counter()
                loss = closure()
                _sync(self.device)
                inside += time.perf_counter() - t
                return loss

            return run_closure

        _sync(self.device)
        t0 = time.perf_counter()
        for _ in range(steps):
            cl = make_closure(self.rep, self.x, self.y, self.loss_fn, self.autocast)
            self.opt.step(timed(cl), bn_model=self.model)
        _sync(self.device)
        total = time.perf_counter() - t0
        return total / steps, (total - inside) / steps


def step_times(
    model_name: str,
    variants,
    device,
    batch: int = 128,
    steps: int = 5,
    blocks: int = 3,
    amp: bool = False,
    channels_last: bool = False,
) -> dict[str, tuple[float, float, float]]:
    """Per variant: (median seconds per step, median ratio to SGD, median fraction of the step spent
    outside the forward-backward passes). Blocks alternate between variants, so a load change on a
    shared machine hits all of them alike."""
    steppers = {v: _Stepper(model_name, v, device, batch, amp, channels_last) for v in ("sgd", *variants)}
    for s in steppers.values():
        s.run(2)  # warm-up (allocator, cuDNN autotuning)
    times: dict[str, list[float]] = {v: [] for v in steppers}
    shell: dict[str, list[float]] = {v: [] for v in steppers}
    for _ in range(blocks):
        for v, s in steppers.items():
            t, outside = s.run(steps)
            times[v].append(t)
            shell[v].append(outside / t)
    out = {}
    for v in steppers:
        ratios = [t / b for t, b in zip(times[v], times["sgd"])]
        out[v] = (statistics.median(times[v]), statistics.median(ratios), statistics.median(shell[v]))
    return out


def hessian_overhead(model: str, steps: int, device: str) -> dict:
    """Train `steps` steps with the default Hessian tracking; return the timing split."""
    with tempfile.TemporaryDirectory() as tmp:
        n = steps * 128
        write_fake_cifar10(f"{tmp}/data", n_train=n, n_test=256, seed=0)
        store = RunStore(f"{tmp}/runs")
        cfg = RunConfig(
            dataset="cifar10",
            data_dir=f"{tmp}/data",
            download=False,
            model=model,
            optimizer="sam",
            hparams={"rho": 0.05},
            epochs=1,
            batch_size=128,
            log_every=10,
            final_top_k=0,
            final_density=False,
            eval_train_size=0,
            test_subset=256,
            device=device,
        )
        rid = store.create_run(cfg.to_dict())
        Trainer(cfg, store, rid).run()
        t = store.get_artifact(rid, "timing")
        m = store.metrics(rid, ["eig_hvps", "top_eig", "hessian_time"])
    rest = t["train_seconds"] - t["hessian_seconds"] - t["eval_seconds"]
    warm = m["hessian_time"].dropna().iloc[1:]  # after the cold start at step 0
    per_step = rest / t["steps"]
    return dict(
        steps=t["steps"],
        train_s=rest,
        hessian_s=t["hessian_seconds"],
        n_estimates=int(m["top_eig"].notna().sum()),
        hvps=m["eig_hvps"].dropna().astype(int).tolist(),
        overhead=t["hessian_seconds"] / rest,
        steady=float(warm.mean()) / (HESSIAN_EVERY * per_step) if len(warm) else float("nan"),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="lenet5,resnet20")
    ap.add_argument("--steps", type=int, default=5, help="steps per timed block")
    ap.add_argument("--blocks", type=int, default=3, help="timed blocks per variant (median)")
    ap.add_argument("--hessian-steps", type=int, default=3 * HESSIAN_EVERY)
    ap.add_argument("--hessian-model", default="lenet5")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {device} · torch {torch.__version__} · CPU threads {torch.get_num_threads()}")
    print("\n1. step time, batch 128 (target: SAM/SGD ≤ 2.05)")
    for m in a.models.split(","):
        res = step_times(m, ("sam", "ssam", "bsam"), device, steps=a.steps, blocks=a.blocks)
        line = [f"  {m:9s} SGD {1000 * res['sgd'][0]:7.1f} ms"]
        for v in ("sam", "ssam", "bsam"):
            t, ratio, _ = res[v]
            line.append(f"{v.upper()} {1000 * t:7.1f} ms ({ratio:.2f}×)")
        print(" · ".join(line), flush=True)
        print(
            f"  {'':9s} time outside the passes (optimizer shell): "
            + " · ".join(f"{v.upper()} {100 * res[v][2]:.1f} %" for v in res),
            flush=True,
        )
    print(
        f"\n2. Hessian tracking at the default interval (every {HESSIAN_EVERY} steps, batch {HESSIAN_BATCH}, "
        f"≤ {HESSIAN_ITERS} Lanczos iterations, warm-started; target ≤ 10 %)"
    )
    r = hessian_overhead(a.hessian_model, a.hessian_steps, str(device))
    print(
        f"  {a.hessian_model}, SAM, {r['steps']} steps: training {r['train_s']:.2f} s, Hessian {r['hessian_s']:.2f} s "
        f"in {r['n_estimates']} estimates (HVPs each: {r['hvps']}) → overhead {100 * r['overhead']:.1f} % "
        f"over this run, {100 * r['steady']:.1f} % per interval once warm-started"
    )
    if device.type == "cuda":
        print("\n3. CUDA throughput, bf16 autocast + channels_last, batch 512")
        for m in ("resnet18", "fast"):
            res = step_times(
                m, ("sam",), device, batch=512, steps=a.steps, blocks=a.blocks, amp=True, channels_last=True
            )
            for v, (t, ratio, _) in res.items():
                print(f"  {m:9s} {v.upper():4s} {512 / t:10.0f} images/s ({1000 * t:.1f} ms/step, {ratio:.2f}× SGD)")
    else:
        print("\n3. CUDA throughput: not measured (no GPU here)")


if __name__ == "__main__":
    main()
