"""Race SAM variants on a 2-D function from one start point, headless (same code as the landscape page).

    python -m demos.landscape --function rosenbrock --variants sam,ssam --lr 0.001 --steps 2000 --html fig.html

Prints where each variant ends (loss, distance to the nearest minimum, divergence) and optionally writes
the race as a standalone HTML figure (contour with play/pause animation, or ``--surface`` for 3-D) and
the trajectories as CSV.
"""

from __future__ import annotations

import argparse
import sys
import time

from sam_core.cli import (
    NO_CAPS_HELP,
    CLIError,
    Parser,
    check_cap,
    cli_main,
    ensure_writable,
    parse_float,
    parse_names,
)
from sam_core.landscape.functions import NAMES
from sam_core.landscape.race import race, tracks_frame
from sam_core.registry import VARIANTS

from .stability_sweep import build_landscape


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m demos.landscape",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--function", default="quartic", choices=[*NAMES, "custom"])
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="function parameter, e.g. kappa=100")
    p.add_argument("--expr", help="custom function of x and y (with --function custom)")
    p.add_argument("--domain", default="-3,3,-3,3", help="custom function's domain x_min,x_max,y_min,y_max")
    p.add_argument("--variants", default="sgd,sam,ssam", help="comma list of: " + ",".join(VARIANTS))
    p.add_argument("--lr", type=float, default=None, help="learning rate (default: the function's suggested one)")
    p.add_argument("--rho", type=float, default=None, help="ρ for every variant that has one (default: the function's)")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--start", default=None, help="x,y (default: the function's start point)")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--noise", type=float, default=0.0, help="std of Gaussian gradient noise")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--equal-evals", action="store_true", help="same gradient evaluations per variant")
    p.add_argument("--html", default=None, help="write the race figure here")
    p.add_argument("--surface", action="store_true", help="draw the 3-D surface instead of the contour map")
    p.add_argument("--csv", default=None, help="write the trajectories here")
    p.add_argument("--no-caps", action="store_true", help=NO_CAPS_HELP)
    return p


MAX_STEPS = 5000  # the page's race (ui/landscape_controls.py); --no-caps lifts it


@cli_main(exit=True)
def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    variants = parse_names(args.variants, "--variants", list(VARIANTS))  # ',' names none: refused, nothing runs
    check_cap("--steps", args.steps, MAX_STEPS, args.no_caps)
    ensure_writable(args.csv, "--csv")
    ensure_writable(args.html, "--html")
    L = build_landscape(args)
    rho = L.rho if args.rho is None else args.rho
    hp = {v: {"rho": rho} for v in variants if "rho" in VARIANTS[v].hparams}
    if args.start is None:
        start = L.start
    else:
        start = tuple(parse_float(s, "--start") for s in args.start.split(","))
        if len(start) != 2:
            raise CLIError("--start", f"write x,y (two numbers), got {args.start!r}")
    lr = L.lr if args.lr is None else args.lr
    t0 = time.perf_counter()
    tracks = race(
        L,
        variants,
        lr=lr,
        steps=args.steps,
        start=start,
        hp=hp,
        momentum=args.momentum,
        noise=args.noise,
        seed=args.seed,
        equal_evals=args.equal_evals,
    )
    dt = time.perf_counter() - t0
    print(f"{L.label} from {start}, lr={lr:g}, ρ={rho:g}: {len(tracks)} variants in {dt:.2f} s")
    for t in tracks:
        d = f"{t.dist[-1]:.3g}" if len(L.minima) else "n/a"
        print(
            f"  {t.label:40s} steps={t.steps:5d} evals={int(t.evals[-1]):5d} end=({t.w[-1, 0]:.4g}, {t.w[-1, 1]:.4g}) "
            f"f={t.loss[-1]:.4g} distance to min={d}"
        )
    if args.csv:
        tracks_frame(tracks).to_csv(args.csv, index=False)
        print(f"wrote {args.csv}")
    if args.html:
        from sam_core.plots.landscape import contour_figure, figure_html, surface_figure

        fig = (
            surface_figure(L, tracks)
            if args.surface
            else contour_figure(L, tracks, x_axis="evals" if args.equal_evals else "step", click_grid=0)
        )
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(figure_html(fig))
        print(f"wrote {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
