"""The cost of accepting a custom formula (``sam_core.landscape.expr.custom_landscape``: parse, finiteness check on
the 61 × 61 grid, critical-point search) for the costliest formulas the parser accepts, with the bounded
search (``search_iters``) and with the former fixed 60 Newton iterations.

The formulas: the accepted inputs of the fuzz corpus (tests/test_expr_fuzz.py) with the highest cost,
plus hand-made long ones (199 nodes, 50 powers; 60 nested calls). Prints one row per formula: cost,
Newton iterations, best-of-3 seconds now and with 60 iterations.

    python benchmarks/bench_expr.py [--top 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sam_core.landscape import expr as E  # noqa: E402

HAND = [
    "+".join(["(x**2-y**2)"] * 25),
    "+".join(["x**2*y**2"] * 25),
    "sin(" * 60 + "x" + ")" * 60,
    "+".join(["sin(x*y)*cos(x-y)"] * 14),
    "+".join(["exp(-(x-1)**2-(y+1)**2)"] * 10),
]


def best_of(fn, n=3) -> float:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            fn()
        except E.ExprError:
            pass
        out.append(time.perf_counter() - t0)
    return min(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--top", type=int, default=8, help="costliest fuzz-corpus formulas to time")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    import test_expr_fuzz as fz

    accepted = []
    for text in fz.inputs():
        try:
            f = E.compile_expression(text)
            E.check_finite(f, fz.DOMAIN)
        except E.ExprError:
            continue
        accepted.append((f.cost, text))
    accepted.sort(reverse=True)
    cases = [t for _, t in accepted[: args.top]] + HAND
    original = E.search_iters
    print(f"{len(accepted)} accepted formulas in the fuzz corpus; max cost {accepted[0][0]}")
    print(f"{'cost':>5} {'iters':>5} {'now s':>7} {'60 it s':>8}  formula")
    worst_now = worst_old = 0.0
    for text in cases:
        try:
            cost = E.compile_expression(text).cost
        except E.ExprError as err:
            print(f"{'-':>5} {'-':>5} {'-':>7} {'-':>8}  {text[:50]}… refused: {str(err)[:40]}")
            continue
        now = best_of(lambda t=text: E.custom_landscape(t))
        E.search_iters = lambda c: 60
        try:
            old = best_of(lambda t=text: E.custom_landscape(t))
        finally:
            E.search_iters = original
        worst_now, worst_old = max(worst_now, now), max(worst_old, old)
        print(f"{cost:>5} {original(cost):>5} {now:>7.3f} {old:>8.3f}  {text[:50]}{'…' if len(text) > 50 else ''}")
    print(f"worst: {worst_now:.3f} s now, {worst_old:.3f} s with 60 iterations")


if __name__ == "__main__":
    main()
