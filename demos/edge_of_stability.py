"""Edge of stability (Long & Bartlett), headless: full-batch GD vs SAM on a small MLP.

    python -m demos.edge_of_stability --variants sgd,sam --lr 0.4 --rho 0.05 --steps 1500 \\
        --every 50 --csv out.csv [--html out.html]

CSV columns: variant,step,loss,grad_norm,top_eig,gd_edge,sam_edge — one row per step; top_eig is
filled every ``--every`` steps (warm-started Lanczos), sam_edge is Long & Bartlett's edge from the
current ‖g‖ (a heuristic for variants other than SAM, and with momentum).
"""

from __future__ import annotations

import argparse
import sys
import time

from sam_core.cli import NO_CAPS_HELP, Parser, check_cap, check_device, cli_main, ensure_writable, parse_names
from sam_core.dynamics.eos import CSV_COLUMNS, EoSConfig, run_eos
from sam_core.dynamics.problems import EOS_DATASETS
from sam_core.registry import VARIANTS

# the page's limits (pages/edge_of_stability.py); --no-caps lifts them
CAPS = {"steps": 100_000, "n": 60_000, "width": 512, "depth": 6}


def build_parser() -> argparse.ArgumentParser:
    d = EoSConfig()
    p = Parser(
        prog="python -m demos.edge_of_stability",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--variants", default="sgd,sam", help="comma-separated variant names")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate η")
    p.add_argument("--rho", type=float, default=d.rho, help="ρ for every variant that has one")
    p.add_argument("--momentum", type=float, default=d.momentum, help="heavy-ball momentum β")
    p.add_argument("--steps", type=int, default=d.steps, help="full-batch steps")
    p.add_argument("--every", type=int, default=d.eig_every, help="top eigenvalue every k steps")
    p.add_argument("--eig-method", choices=["lanczos", "power"], default=d.eig_method)
    p.add_argument("--dataset", choices=EOS_DATASETS, default=d.dataset)
    p.add_argument("--data-dir", default=None, help="where MNIST's files are (never downloaded)")
    p.add_argument("--n", type=int, default=d.n, help="number of training points")
    p.add_argument("--width", type=int, default=d.width)
    p.add_argument("--depth", type=int, default=d.depth, help="hidden layers")
    p.add_argument("--activation", choices=["tanh", "relu", "elu"], default=d.activation)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default="cpu")
    p.add_argument("--csv", default=None, help="write " + ",".join(CSV_COLUMNS) + " here")
    p.add_argument("--html", default=None, help="write the figure here (self-contained HTML)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--no-caps", action="store_true", help=NO_CAPS_HELP)
    return p


@cli_main(exit=True)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    # everything that can be refused is refused before the computation: options, caps, device, outputs
    variants = parse_names(args.variants, "--variants", list(VARIANTS))
    for name, cap in CAPS.items():
        check_cap(f"--{name}", getattr(args, name), cap, args.no_caps)
    check_device(args.device)
    ensure_writable(args.csv, "--csv")
    ensure_writable(args.html, "--html")
    try:
        cfg = EoSConfig(
            dataset=args.dataset,
            n=args.n,
            width=args.width,
            depth=args.depth,
            activation=args.activation,
            lr=args.lr,
            rho=args.rho,
            momentum=args.momentum,
            steps=args.steps,
            eig_every=args.every,
            eig_method=args.eig_method,
            seed=args.seed,
            data_dir=args.data_dir,
        ).validate()
        t0 = time.perf_counter()
        res = None
        for _, res in run_eos(variants, cfg, device=args.device):
            if not args.quiet:
                print(f"\rstep {res.steps_done}/{cfg.steps}", end="", file=sys.stderr, flush=True)
    except (ValueError, FileNotFoundError) as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(
            f"\rdone in {time.perf_counter() - t0:.1f} s (tracking {100 * res.tracking_share:.0f} % of training time)",
            file=sys.stderr,
        )
    df = res.to_frame()
    summary = df.dropna(subset=["top_eig"]).groupby("variant").tail(3)
    print(summary[["variant", "step", "loss", "grad_norm", "top_eig", "gd_edge", "sam_edge"]].to_string(index=False))
    for v, s in res.diverged_step.items():
        print(f"{v} diverged at step {s}", file=sys.stderr)
    if args.csv:
        df[CSV_COLUMNS].to_csv(args.csv, index=False)
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.html:
        from sam_core.plots import dynamics as dplots

        html = dplots.eos_figure(res).to_html(include_plotlyjs=True, full_html=True)
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(html)
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
