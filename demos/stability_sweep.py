"""Rate of successful training vs learning rate on a 2-D function (the Stable SAM paper's Fig. 2), headless.

    python -m demos.stability_sweep --function quartic --variants sgd,sam,ssam --rho 0.1 \\
        --lrs 0.01:1.0:20 --starts 1000 --steps 2000 --tol 0.2 --seed 0 --csv out.csv [--html fig.html]

Writes one row per (variant, lr, rho) with columns variant,lr,rho,success_rate,diverged_rate,
median_distance (``--rho 0.05,0.1,0.2`` gives one block per ρ; SGD has no ρ and appears once).
Same code as the page: ``sam_core.sweeps.sweep_lr`` on ``sam_core.simulate``.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from sam_core.expr import ExprError, custom_landscape
from sam_core.landscapes import NAMES, make_landscape
from sam_core.registry import VARIANTS
from sam_core.sweeps import COLUMNS, Success, parse_range, sweep_lr


def _params(items: list[str]) -> dict[str, float]:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ValueError(f"--param {it!r}: write NAME=VALUE, e.g. kappa=100")
        k, v = it.split("=", 1)
        out[k.strip()] = float(v)
    return out


def build_landscape(args):
    if args.function == "custom":
        if not args.expr:
            raise ValueError("--function custom needs --expr, e.g. --expr 'sin(x)*y + 0.1*x**2'")
        d = [float(v) for v in args.domain.split(",")]
        if len(d) != 4:
            raise ValueError("--domain: write x_min,x_max,y_min,y_max")
        return custom_landscape(args.expr, ((d[0], d[1]), (d[2], d[3])))
    return make_landscape(args.function, **_params(args.param))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m demos.stability_sweep", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--function", default="quartic", choices=[*NAMES, "custom"], help="the 2-D test function")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a parameter of the function (quadratic: lam, kappa; valley: k, mu); repeatable")
    p.add_argument("--expr", help="custom function of x and y (with --function custom)")
    p.add_argument("--domain", default="-3,3,-3,3", help="custom function's domain x_min,x_max,y_min,y_max")
    p.add_argument("--variants", default="sgd,sam,ssam", help="comma list of: " + ",".join(VARIANTS))
    p.add_argument("--rho", default="0.1", help="ρ for every variant that has one; a comma list gives one block per ρ")
    p.add_argument("--lam", default=None, help="Unified SAM's λ (a number in [0,1], 1/t or 1-1/t)")
    p.add_argument("--lrs", default="0.01:1.0:20", help="low:high:count (log-spaced) or a comma list")
    p.add_argument("--starts", type=int, default=1000, help="start points per learning rate")
    p.add_argument("--start-mode", default="saddle", choices=["saddle", "domain", "point"],
                   help="saddle: Gaussian around the first saddle; domain: uniform; point: around the default start")
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
    return p


def run(args) -> pd.DataFrame:
    L = build_landscape(args)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            raise ValueError(f"--variants: unknown variant {v!r}; choose from {','.join(VARIANTS)}")
    lrs = parse_range(args.lrs)
    rhos = parse_range(args.rho, log=False)
    success = Success(tol=args.tol, last_k=args.last_k, target=args.target)
    kw = dict(starts=args.starts, steps=args.steps, success=success, start_mode=args.start_mode, spread=args.spread,
              momentum=args.momentum, noise=args.noise, seed=args.seed, equal_evals=args.equal_evals)
    hp = {}
    if args.lam is not None and "unified_sam" in variants:
        hp["unified_sam"] = {"lam": args.lam if args.lam in ("1/t", "1-1/t") else float(args.lam)}
    df = sweep_lr(L, variants, lrs, hp, rhos=[float(r) for r in rhos], **kw)
    order = {v: i for i, v in enumerate(variants)}
    df = df.sort_values(["rho", "variant", "lr"], key=lambda s: s.map(order) if s.name == "variant" else s,
                        na_position="first").reset_index(drop=True)
    return df[COLUMNS], L


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    try:
        df, L = run(args)
    except (ValueError, ExprError) as err:
        p.error(str(err))
    dt = time.perf_counter() - t0
    df.to_csv(args.csv, index=False)
    bounds = ", ".join(f"{b:.4g}" for b in L.gd_bounds) or "none"
    n_traj = args.starts * len(parse_range(args.lrs))
    print(f"{L.label}: GD bound 2/λ_max = {bounds}; {n_traj} trajectories × {args.steps} steps per variant and ρ; "
          f"{dt:.2f} s")
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
