"""Saddle-escape speed: the default comparison as one batched computation per variant vs a Python loop.

Default comparison: SGD, SAM, USAM, SSAM x 3 ρ x 5 seeds x 500 epochs, d = 20, mini-batches of 50 out of
1000 synthetic inputs (20 steps per epoch, 10 000 steps); SGD has no ρ, so it runs once per seed
(5 + 3 x 15 = 50 runs). Target: <= 10 s on a laptop CPU, with the plot updating while it runs.

The loop baseline runs the same 50 runs one at a time (R = 1 per call). It is timed on --loop-epochs
epochs and extrapolated linearly to the full length (cost is linear in epochs); --full-loop times it all.

    python benchmarks/bench_saddle.py [--epochs 500] [--loop-epochs 50] [--full-loop] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from sam_core.dynamics import SaddleConfig, run_saddle

VARIANTS = ["sgd", "sam", "usam", "ssam"]
RHOS = [0.01, 0.05, 0.2]
SEEDS = list(range(5))


def batched(cfg, device):
    t0 = time.perf_counter()
    first, updates, res = None, 0, None
    for _, res in run_saddle(VARIANTS, RHOS, SEEDS, cfg, device=device):
        updates += 1
        if first is None and res.epochs_done > 0:
            first = time.perf_counter() - t0
    return time.perf_counter() - t0, first, updates, res


def looped(cfg, device):
    t0 = time.perf_counter()
    for v in VARIANTS:
        for rho in RHOS if v != "sgd" else [0.0]:
            for s in SEEDS:
                for _ in run_saddle([v], [rho], [s], cfg, device=device, yield_every_s=1e9):
                    pass
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=500)
    ap.add_argument("--loop-epochs", type=int, default=50)
    ap.add_argument("--full-loop", action="store_true")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    cfg = SaddleConfig(epochs=args.epochs)
    n_runs = len(SEEDS) * (1 + 3 * len(RHOS))
    print(
        f"torch {torch.__version__}, device {args.device}, load average {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPUs"
    )
    print(
        f"default comparison: {len(VARIANTS)} variants x {len(RHOS)} rho x {len(SEEDS)} seeds = {n_runs} runs, "
        f"{cfg.epochs} epochs x {cfg.steps_per_epoch} steps, d = {cfg.d}"
    )
    t_full, t_first, updates, res = batched(cfg, args.device)
    print(
        f"batched:  {t_full:7.2f} s for {cfg.epochs} epochs (target <= 10 s); first plot update after "
        f"{t_first:.2f} s, {updates} updates"
    )
    esc = res.escape_table(0.5)
    print(esc.to_string(index=False))
    small = SaddleConfig(epochs=args.loop_epochs if not args.full_loop else args.epochs)
    t_b_small, _, _, _ = batched(small, args.device)
    t_loop = looped(small, args.device)
    scale = cfg.epochs / small.epochs
    print(
        f"on {small.epochs} epochs: batched {t_b_small:.2f} s, Python loop over runs {t_loop:.2f} s "
        f"-> batched is {t_loop / t_b_small:.1f}x faster"
    )
    if not args.full_loop:
        print(
            f"loop extrapolated to {cfg.epochs} epochs: {t_loop * scale:.1f} s (measured batched: {t_full:.1f} s, "
            f"ratio {t_loop * scale / t_full:.1f}x)"
        )


if __name__ == "__main__":
    main()
