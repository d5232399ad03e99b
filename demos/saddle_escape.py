"""Saddle escape (Stable SAM paper, Fig. 1), headless: the same computation as the Dynamics lab page.

    python -m demos.saddle_escape --variants sgd,usam,ssam --rho 0.1,0.5 --lr 1e-3 --epochs 500 \\
        --seeds 3 --csv out.csv [--html out.html] [--batch-size 50 | --full-batch | --population]

CSV columns: variant,rho,seed,epoch,loss (epoch 0 = initialisation; an epoch is one pass over the
data). Prints the escape epoch (first epoch with loss < frac·L(0)) per variant and ρ.
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
    check_device,
    cli_main,
    ensure_writable,
    parse_float,
    parse_names,
)
from sam_core.dynamics import SaddleConfig, run_saddle
from sam_core.registry import VARIANTS

# the Dynamics lab's limits (pages/saddle.py); --no-caps lifts them
CAPS = {"seeds": 10, "epochs": 5000, "d": 64, "n_samples": 100_000, "batch_size": 100_000}
MAX_RHOS = 20


def _list(conv):
    def parse(text):
        try:
            return [conv(x) for x in text.split(",") if x.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}") from exc

    return parse


def build_parser() -> argparse.ArgumentParser:
    d = SaddleConfig()
    p = Parser(
        prog="python -m demos.saddle_escape",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--variants", type=_list(str), default=["sgd", "sam", "usam", "ssam"], help="comma-separated")
    p.add_argument("--rho", type=_list(float), default=[0.01, 0.05, 0.2], help="comma-separated ρ values")
    p.add_argument("--lr", type=float, default=d.lr, help="learning rate η (constant)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over the data")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0 .. seeds-1)")
    p.add_argument("--d", type=int, default=d.d, help="matrix size")
    p.add_argument("--init-var", type=float, default=d.init_var, help="variance of the initial entries")
    p.add_argument("--n-samples", type=int, default=d.n_samples, help="synthetic inputs x ~ N(0, I)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--batch-size", type=int, default=d.batch_size, help="mini-batch size")
    g.add_argument("--full-batch", action="store_true", help="one full-batch step per epoch")
    g.add_argument("--population", action="store_true", help="exact population loss ½‖W2W1 − I‖²_F")
    p.add_argument("--momentum", type=float, default=0.0, help="heavy-ball momentum β")
    p.add_argument("--lam", default=None, help="Unified SAM's λ (number, 1/t or 1-1/t)")
    p.add_argument("--escape-frac", type=float, default=0.5, help="escape threshold as a fraction of L(0)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--csv", default=None, help="write variant,rho,seed,epoch,loss here")
    p.add_argument("--html", default=None, help="write the figures here (self-contained HTML)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--no-caps", action="store_true", help=NO_CAPS_HELP)
    return p


@cli_main(exit=True)
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.variants = parse_names(",".join(args.variants), "--variants", list(VARIANTS))
    if not args.rho:
        raise CLIError("--rho", "give at least one ρ value, e.g. --rho 0.05")
    for name, cap in CAPS.items():
        check_cap("--" + name.replace("_", "-"), getattr(args, name), cap, args.no_caps)
    if args.seeds < 1:
        raise CLIError("--seeds", f"must be at least 1, got {args.seeds}")
    check_cap("--rho", len(args.rho), MAX_RHOS, args.no_caps, what=f"{len(args.rho)} values")
    check_device(args.device)
    ensure_writable(args.csv, "--csv")
    ensure_writable(args.html, "--html")
    if not 0 < args.escape_frac < 1:
        raise CLIError("--escape-frac", f"must be in (0, 1), got {args.escape_frac}")
    hp = {}
    if args.lam is not None:
        import sam_core

        lam = args.lam if args.lam in ("1/t", "1-1/t") else parse_float(args.lam, "--lam")
        sam_core.resolve_hparams("unified_sam", lam=lam)  # refused now even if unified_sam is not raced
        hp["unified_sam"] = {"lam": lam}
    try:
        cfg = SaddleConfig(
            d=args.d,
            init_var=args.init_var,
            lr=args.lr,
            epochs=args.epochs,
            n_samples=args.n_samples,
            batch_size=None if args.full_batch else args.batch_size,
            population=args.population,
            momentum=args.momentum,
        ).validate()
        t0 = time.perf_counter()
        res, shown = None, -1
        for progress, res in run_saddle(args.variants, args.rho, list(range(args.seeds)), cfg, hp, device=args.device):
            pct = int(progress * 10)
            if not args.quiet and pct != shown:
                shown = pct
                print(f"\repoch {res.epochs_done}/{cfg.epochs}", end="", file=sys.stderr, flush=True)
        if not args.quiet:
            print(f"\rdone: {cfg.epochs} epochs in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = res.escape_table(args.escape_frac)
    print(table.to_string(index=False))
    if args.csv:
        res.to_frame()[["variant", "rho", "seed", "epoch", "loss"]].to_csv(args.csv, index=False)
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.html:
        from sam_core.plots import dynamics as dplots

        figs = [
            dplots.saddle_loss_figure(res, escape_frac=args.escape_frac),
            dplots.escape_time_figure(res, args.escape_frac),
            dplots.saddle_metric_figure(res, "w_norm"),
            dplots.saddle_metric_figure(res, "gamma"),
        ]
        _write_html(args.html, "Saddle escape", figs)
        print(f"wrote {args.html}", file=sys.stderr)
    return 0


def _write_html(path, title, figs):
    parts = [f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(
            f"<html><head><meta charset='utf-8'><title>{title}</title></head><body>"
            + "\n".join(parts)
            + "</body></html>"
        )


if __name__ == "__main__":
    sys.exit(main())
