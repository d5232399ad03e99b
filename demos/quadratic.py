"""Unified SAM on quadratics / ridge / logistic regression with arbitrary sampling, headless.

    python -m demos.quadratic --problem ridge --variants sgd,sam,usam,ssam,unified_sam --lam 0,0.5,1,1/t \\
        --sampling importance --batch-size 1 --steps 2000 --csv out.csv [--html out.html]

Step size and radius default to the Unified SAM paper's theoretical values for the chosen sampling
(``--lr-mult`` / ``--rho-mult`` scale them; ``--lr`` / ``--rho`` override them). Also runs a λ × lr
heatmap and a comparison of sampling strategies at equal per-example gradient evaluations.
CSV columns: label,variant,lam,sampling,seed,step,grad_evals,rel_error,lr,rho.
"""

from __future__ import annotations

import argparse
import sys
import time

from sam_core.cli import (
    NO_CAPS_HELP,
    Parser,
    check_cap,
    cli_main,
    ensure_writable,
    list_count,
    parse_float,
    parse_names,
)
from sam_core.dynamics.problems import PROBLEM_KINDS, SAMPLING_KINDS
from sam_core.dynamics.quadratics import QuadraticLabConfig, run_quadratic_lab
from sam_core.registry import VARIANTS

# the Quadratics page's limits (pages/quadratics.py); --no-caps lifts them
CAPS = {"dim": 100, "n": 10_000, "steps": 200_000, "seeds": 10, "batch_size": 10_000, "budget_epochs": 10_000}
MAX_LAMS = 20


def _lam(x: str):
    x = x.strip()
    return x if x in ("1/t", "1-1/t") else parse_float(x, "--lam")


def build_parser() -> argparse.ArgumentParser:
    d = QuadraticLabConfig()
    p = Parser(
        prog="python -m demos.quadratic",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--problem", choices=PROBLEM_KINDS, default=d.problem)
    p.add_argument("--dim", type=int, default=d.dim)
    p.add_argument("--cond", type=float, default=d.cond, help="condition number")
    p.add_argument("--n", type=int, default=d.n, help="examples (ridge/logistic)")
    p.add_argument("--row-norm-ratio", type=float, default=d.row_norm_ratio, help="max/min row norm")
    p.add_argument("--reg", type=float, default=d.reg, help="L2 penalty")
    p.add_argument("--noise", type=float, default=d.noise, help="additive gradient noise std")
    p.add_argument("--variants", default=",".join(d.variants))
    p.add_argument("--lam", default="0,0.5,1,1/t", help="Unified SAM λ values / schedules")
    p.add_argument("--sampling", choices=SAMPLING_KINDS, default=d.sampling)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--no-reweight", action="store_true", help="importance sampling without 1/(n p_i) (biased)")
    p.add_argument("--lr-mult", type=float, default=1.0, help="lr = this × theoretical γ")
    p.add_argument("--rho-mult", type=float, default=1.0, help="ρ = this × theoretical ρ(λ)")
    p.add_argument("--lr", type=float, default=None, help="explicit lr (overrides the theory)")
    p.add_argument("--rho", type=float, default=None, help="explicit ρ (overrides the theory)")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--seeds", type=int, default=d.seeds)
    p.add_argument("--no-heatmap", action="store_true")
    p.add_argument("--no-sampling-comparison", action="store_true")
    p.add_argument(
        "--budget-epochs",
        type=float,
        default=d.budget_epochs,
        help="sampling comparison budget in passes over the data",
    )
    p.add_argument("--csv", default=None)
    p.add_argument("--html", default=None)
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--no-caps", action="store_true", help=NO_CAPS_HELP)
    return p


@cli_main(exit=True)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    parse_names(args.variants, "--variants", list(VARIANTS))
    for name, cap in CAPS.items():
        check_cap("--" + name.replace("_", "-"), getattr(args, name), cap, args.no_caps)
    check_cap("--lam", list_count(args.lam), MAX_LAMS, args.no_caps, what=f"{list_count(args.lam)} values")
    ensure_writable(args.csv, "--csv")
    ensure_writable(args.html, "--html")
    try:
        cfg = QuadraticLabConfig(
            problem=args.problem,
            n=args.n,
            dim=args.dim,
            cond=args.cond,
            row_norm_ratio=args.row_norm_ratio,
            reg=args.reg,
            noise=args.noise,
            variants=tuple(v for v in args.variants.split(",") if v),
            lams=tuple(_lam(x) for x in args.lam.split(",") if x.strip()),
            sampling=args.sampling,
            batch_size=args.batch_size,
            reweight=not args.no_reweight,
            lr_mult=args.lr_mult,
            rho_mult=args.rho_mult,
            lr=args.lr,
            rho=args.rho,
            steps=args.steps,
            seeds=args.seeds,
            heatmap=not args.no_heatmap,
            compare_sampling=not args.no_sampling_comparison,
            budget_epochs=args.budget_epochs,
        ).validate()
        t0 = time.perf_counter()
        res = None
        for _, res in run_quadratic_lab(cfg):
            if not args.quiet:
                print(f"\r{res.phase:60s}", end="", file=sys.stderr, flush=True)
    except ValueError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"\rdone in {time.perf_counter() - t0:.1f} s{' ' * 50}", file=sys.stderr)
    print(f"problem: {res.problem}")
    print(
        f"theory (λ=1): γ={res.theory['gamma']:.4g} ρ={res.theory['rho']:.4g} A={res.theory['A']:.4g} "
        f"B={res.theory['B']:.4g}"
    )
    for c in [*res.curves, *res.sampling_curves]:
        finals = ", ".join(f"{x:.2e}" for x in c.final)
        print(f"{c.label:45s} [{c.extra.get('sampling', '')}] final rel. error: {finals}")
    if args.csv:
        res.curves_frame().to_csv(args.csv, index=False)
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.html:
        from sam_core.plots import dynamics as dplots

        figs = [dplots.relative_error_figure(res.curves)] if res.curves else []
        if res.heatmap is not None:
            figs.append(dplots.lam_lr_heatmap(res.heatmap))
        if res.sampling_curves:
            figs.append(dplots.sampling_figure(res.sampling_curves, res.sampling_theory))
        parts = [f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(
                "<html><head><meta charset='utf-8'><title>Quadratics</title></head><body>"
                + "\n".join(parts)
                + "</body></html>"
            )
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
