"""One short run over every GPU path of SAM Lab; prints what each took (run it when a GPU is lent).

    python benchmarks/gpu_check.py [--device cuda] [--quick]

Exercises, on ``--device`` (default: ``SAMLAB_DEVICE`` / auto), through the same code the pages and
CLIs use: the success-vs-η sweep at 10⁶ trajectories (eager, then the compiled step), the saddle escape,
the edge of stability (Lanczos on the GPU), a training step loop with bf16 autocast for SAM and SSAM,
and the compiled (fused) step against the eager one. Well under 5 minutes on one GPU; ``--quick`` is a
CPU smoke run of the same script. Every figure is printed, nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def timed(label: str, fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t = time.perf_counter()
    try:
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        print(f"  {label:<62} {time.perf_counter() - t:8.2f} s", flush=True)
        return out
    except Exception as exc:  # noqa: BLE001 - report every path, keep going
        print(f"  {label:<62}   FAILED  {type(exc).__name__}: {str(exc)[:200]}", flush=True)
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (a CPU smoke run)")
    args = ap.parse_args()
    if args.device:
        os.environ["SAMLAB_DEVICE"] = args.device
    from sam_core.dynamics import SaddleConfig, run_saddle
    from sam_core.dynamics.eos import EoSConfig, run_eos
    from sam_core.landscape.functions import make_landscape
    from sam_core.landscape.lr_sweep import Success, SweepSetup, sweep_lr
    from sam_core.optim import make_optimizer
    from sam_core.settings import get_settings
    from sam_core.simulate import simulate

    dev = get_settings().torch_device()
    q = args.quick
    print(
        f"device {dev}"
        + (f" · {torch.cuda.get_device_name(dev)}" if dev.type == "cuda" else "")
        + f" · torch {torch.__version__}",
        flush=True,
    )
    L = make_landscape("quartic")
    lrs = np.geomspace(0.01, 1.0, 20)
    starts = 500 if q else 50_000  # × 20 lrs = 10⁶ trajectories
    for compile_mode in ("off", "on"):
        os.environ["SAMLAB_COMPILE"] = compile_mode
        for rep in ("first", "again"):
            df = timed(
                f"sweep sgd,sam,ssam · {20 * starts:,} trajectories × 1000 steps · compile {compile_mode} ({rep})",
                lambda: sweep_lr(
                    L,
                    ["sgd", "sam", "ssam"],
                    lrs,
                    {"sam": {"rho": 0.1}, "ssam": {"rho": 0.1}},
                    SweepSetup(starts=starts, steps=1000, success=Success(tol=0.2)),
                ),
            )
        if df is not None:
            print(
                "    success at the smallest / largest lr:",
                {
                    v: (round(g.success_rate.iloc[0], 3), round(g.success_rate.iloc[-1], 3))
                    for v, g in df.groupby("variant")
                },
            )
    os.environ["SAMLAB_COMPILE"] = "auto"
    cfg = SaddleConfig(lr=1e-3, epochs=50 if q else 500).validate()
    timed(
        f"saddle escape 4 variants × 3 ρ × 5 seeds × {cfg.epochs} epochs",
        lambda: [
            r
            for r in run_saddle(["sgd", "sam", "usam", "ssam"], [0.01, 0.05, 0.2], list(range(5)), cfg, {}, device=dev)
        ],
    )
    ecfg = EoSConfig(steps=100 if q else 1500, eig_every=50, lr=0.4, rho=0.05).validate()
    timed(
        f"edge of stability GD + SAM · {ecfg.steps} steps, λ_max every 50",
        lambda: [r for r in run_eos(["sgd", "sam"], ecfg, device=dev)],
    )

    def train(variant: str):
        torch.manual_seed(0)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(3, 32, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(4),
            torch.nn.Flatten(),
            torch.nn.Linear(512, 10),
        ).to(dev)
        opt = make_optimizer(
            variant, model.parameters(), base_optimizer=torch.optim.SGD, rho=0.05, lr=0.05, momentum=0.9
        )
        x = torch.randn(256, 3, 32, 32, device=dev)
        y = torch.randint(0, 10, (256,), device=dev)

        def closure():
            opt.zero_grad()
            with torch.autocast(dev.type, dtype=torch.bfloat16):
                loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        for _ in range(5 if q else 100):
            opt.step(closure)
        return {k: float(v) for k, v in opt.stats.items() if k in ("loss", "gamma")}

    for v in ("sam", "ssam"):
        st = timed(f"training {v}, bf16 autocast, batch 256, {5 if q else 100} steps", lambda v=v: train(v))
        if st:
            print("    last stats:", st)
    n = 1000 if q else 1_000_000
    w0 = torch.randn(n, 2, dtype=torch.float32, device=dev)
    for comp in (False, True):
        timed(
            f"simulate ssam {n:,} × 200 steps, fused={comp}",
            lambda comp=comp: simulate(
                "ssam", L.grad_fn, w0, 200, 0.1, hp={"rho": 0.1}, record=False, compile=comp, grad_parts=L.grad_parts
            ),
        )


if __name__ == "__main__":
    main()
