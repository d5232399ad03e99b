"""Edge-of-stability tracking cost: top-eigenvalue estimation as a share of training time.

Runs the live panel's default (full-batch GD and SAM on the small MLP, eigenvalue every 50 steps) and
prints training time, tracking time and their ratio (target: tracking <= 25 % of training), with the
Hessian-vector products per estimate, for warm-started Lanczos (default) and cold starts.

    python benchmarks/bench_eos_tracking.py [--steps 1500] [--every 50] [--variants sgd,sam]
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace

import numpy as np
import torch

from sam_core.dynamics.eos import EoSConfig, run_eos


def run(cfg, variants):
    res = None
    for _, item in run_eos(variants, cfg):
        res = item
    return res


def main():
    d = EoSConfig()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=d.steps)
    ap.add_argument("--every", type=int, default=d.eig_every)
    ap.add_argument("--variants", default="sgd,sam")
    args = ap.parse_args()
    variants = args.variants.split(",")
    cfg = replace(d, steps=args.steps, eig_every=args.every)
    print(f"torch {torch.__version__}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(
        f"MLP {cfg.in_dim}-{'-'.join([str(cfg.width)] * cfg.depth)}-{cfg.classes} ({cfg.activation}), "
        f"n = {cfg.n}, full batch, lr {cfg.lr}, rho {cfg.rho}, {cfg.steps} steps, eigenvalue every "
        f"{cfg.eig_every} steps, variants {variants}"
    )
    for warm in (True, False):
        res = run(replace(cfg, warm_start=warm), variants)
        hvps = [x for v in variants for x in res.n_hvp[v][1:]]  # the first estimate is always cold
        print(
            f"{'warm-started' if warm else 'cold-started'} Lanczos: training {res.train_s:.2f} s, tracking "
            f"{res.track_s:.2f} s = {100 * res.tracking_share:.1f} % of training "
            f"({'target <= 25 %' if warm else 'for comparison'}); {np.mean(hvps):.1f} HVPs per estimate"
        )
        if warm:
            for v in variants:
                eig = np.asarray(res.top_eig[v])
                tail = eig[len(eig) // 2 :]
                edge = res.sam_edge[v][-1] if v != "sgd" else res.gd_edge
                print(
                    f"  {v}: top eigenvalue over the second half {tail.min():.2f}..{tail.max():.2f}; "
                    f"2/eta = {res.gd_edge:.2f}; {'SAM edge (final)' if v != 'sgd' else 'GD edge'} {edge:.2f}"
                )


if __name__ == "__main__":
    main()
