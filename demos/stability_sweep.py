"""Rate of successful training vs learning rate on a 2-D function (the Stable SAM paper's Fig. 2), headless.

    python -m demos.stability_sweep --function quartic --variants sgd,sam,ssam --rho 0.1 \\
        --lrs 0.01:1.0:20 --starts 1000 --steps 2000 --tol 0.2 --seed 0 --csv out.csv [--html fig.html]

Writes one row per (variant, lr, rho) with columns variant,lr,rho,success_rate,diverged_rate,
median_distance (``--rho 0.05,0.1,0.2`` gives one block per ρ; SGD has no ρ and appears once).
Same code as the page: ``sam_core.landscape.lr_sweep.sweep_lr`` on ``sam_core.simulate``.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from sam_core.cli import (
    NO_CAPS_HELP,
    CLIError,
    Parser,
    check_cap,
    cli_main,
    ensure_writable,
    list_count,
    parse_float,
    parse_names,
)
from sam_core.landscape.expr import ExprError, custom_landscape
from sam_core.landscape.functions import NAMES, make_landscape
from sam_core.landscape.lr_sweep import COLUMNS, Success, SweepSetup, parse_range, sweep_lr
from sam_core.registry import VARIANTS

# the Landscape lab's limits for one sweep (pages/landscape.py); --no-caps lifts them
CAPS = {"--lrs": 40, "--rho": 30, "--starts": 20_000, "--steps": 5000}
MAX_WORK = 1e9  # trajectory-steps: variants × ρ values × lrs × starts × steps, as on the page


def _params(items: list[str]) -> dict[str, float]:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise CLIError("--param", f"{it!r}: write NAME=VALUE, e.g. kappa=100")
        k, v = it.split("=", 1)
        out[k.strip()] = parse_float(v, f"--param {k.strip()}")
    return out


def build_landscape(args):
    if args.function == "custom":
        if not args.expr:
            raise CLIError("--expr", "--function custom needs --expr, e.g. --expr 'sin(x)*y + 0.1*x**2'")
        d = [parse_float(v, "--domain") for v in args.domain.split(",")]
        if len(d) != 4:
            raise CLIError("--domain", "write x_min,x_max,y_min,y_max")
        try:
            return custom_landscape(args.expr, ((d[0], d[1]), (d[2], d[3])))
        except ExprError as exc:
            raise CLIError("--expr", str(exc)) from None
        except (ArithmeticError, RecursionError, MemoryError, TypeError) as exc:  # the parser's own bugs: one line
            raise CLIError("--expr", f"cannot use this formula ({type(exc).__name__}: {exc})") from None
    try:
        return make_landscape(args.function, **_params(args.param))
    except TypeError as exc:  # an unknown parameter name
        raise CLIError("--param", str(exc)) from None


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m demos.stability_sweep",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--function", default="quartic", choices=[*NAMES, "custom"], help="the 2-D test function")
    p.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="a parameter of the function (quadratic: lam, kappa; valley: k, mu); repeatable",
    )
    p.add_argument("--expr", help="custom function of x and y (with --function custom)")
    p.add_argument("--domain", default="-3,3,-3,3", help="custom function's domain x_min,x_max,y_min,y_max")
    p.add_argument("--variants", default="sgd,sam,ssam", help="comma list of: " + ",".join(VARIANTS))
    p.add_argument("--rho", default="0.1", help="ρ for every variant that has one; a comma list gives one block per ρ")
    p.add_argument("--lam", default=None, help="Unified SAM's λ (a number in [0,1], 1/t or 1-1/t)")
    p.add_argument("--lrs", default="0.01:1.0:20", help="low:high:count (log-spaced) or a comma list")
    p.add_argument("--starts", type=int, default=1000, help="start points per learning rate")
    p.add_argument(
        "--start-mode",
        default="saddle",
        choices=["saddle", "domain", "point"],
        help="saddle: Gaussian around the first saddle; domain: uniform; point: around the default start",
    )
    p.add_argument("--spread", type=float, default=0.1, help="std of the starts around the saddle / point")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--tol", type=float, default=0.2, help="success radius around a global minimum")
    p.add_argument("--last-k", type=int, default=1, help="judge the mean of the last k iterates (1 = final iterate)")
    p.add_argument("--target", default="global", choices=["global", "any"], help="which minima count as success")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--noise", type=float, default=0.0, help="std of Gaussian gradient noise (mimics SGD)")
    p.add_argument("--equal-evals", action="store_true", help="same gradient evaluations per variant (SAM: steps/2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--csv", default="stability_sweep.csv", help="output table")
    p.add_argument("--html", default=None, help="also write the figure as a standalone HTML file")
    p.add_argument("--no-caps", action="store_true", help=NO_CAPS_HELP)
    return p


def _range(text: str, field: str, log: bool = True):
    try:
        return parse_range(text, log=log)
    except ValueError as exc:
        raise CLIError(field, str(exc)) from None


def check_work(args) -> list[str]:
    """Every option and cap, before anything is computed or allocated. Returns the variants."""
    variants = parse_names(args.variants, "--variants", list(VARIANTS))
    n_lrs, n_rhos = list_count(args.lrs), list_count(args.rho)
    for field, value in (("--lrs", n_lrs), ("--rho", n_rhos), ("--starts", args.starts), ("--steps", args.steps)):
        check_cap(
            field, value, CAPS[field], args.no_caps, what=f"{value} values" if field in ("--lrs", "--rho") else ""
        )
    work = len(variants) * max(n_rhos, 1) * max(n_lrs, 1) * args.starts * args.steps
    check_cap(
        "--starts/--steps/--lrs",
        work,
        MAX_WORK,
        args.no_caps,
        what=f"{len(variants)} variants × {max(n_rhos, 1)} ρ × {n_lrs} lrs × {args.starts} starts × "
        f"{args.steps} steps = {work:.2g} trajectory-steps",
    )
    return variants


def run(args) -> pd.DataFrame:
    variants = check_work(args)
    L = build_landscape(args)
    lrs = _range(args.lrs, "--lrs")
    rhos = _range(args.rho, "--rho", log=False)
    success = Success(tol=args.tol, last_k=args.last_k, target=args.target)
    setup = SweepSetup(
        starts=args.starts,
        steps=args.steps,
        success=success,
        start_mode=args.start_mode,
        spread=args.spread,
        momentum=args.momentum,
        noise=args.noise,
        seed=args.seed,
        equal_evals=args.equal_evals,
    )
    hp = {}
    if args.lam is not None and "unified_sam" in variants:
        hp["unified_sam"] = {"lam": args.lam if args.lam in ("1/t", "1-1/t") else parse_float(args.lam, "--lam")}
    df = sweep_lr(L, variants, lrs, hp, setup, rhos=[float(r) for r in rhos])
    order = {v: i for i, v in enumerate(variants)}
    df = df.sort_values(
        ["rho", "variant", "lr"], key=lambda s: s.map(order) if s.name == "variant" else s, na_position="first"
    ).reset_index(drop=True)
    return df[COLUMNS], L


@cli_main(exit=True)
def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    ensure_writable(args.csv, "--csv")  # before the computation, which may take minutes
    ensure_writable(args.html, "--html")
    t0 = time.perf_counter()
    df, L = run(args)
    dt = time.perf_counter() - t0
    df.to_csv(args.csv, index=False)
    bounds = ", ".join(f"{b:.4g}" for b in L.gd_bounds) or "none"
    n_traj = args.starts * len(parse_range(args.lrs))
    print(
        f"{L.label}: GD bound 2/λ_max = {bounds}; {n_traj} trajectories × {args.steps} steps per variant and ρ; "
        f"{dt:.2f} s"
    )
    print(Success(args.tol, args.last_k, args.target).describe())
    with pd.option_context("display.max_rows", 200, "display.width", 120):
        print(df.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {args.csv}")
    if args.html:
        from sam_core.plots.landscape import figure_html, sweep_figure

        fig = sweep_figure(df, L.gd_bounds, title=f"{L.label}: rate of successful training vs learning rate")
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(figure_html(fig))
        print(f"wrote {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
