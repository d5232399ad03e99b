"""Speed of the landscape race: ≤ 8 trajectories × 2000 steps, and the redraw after a slider change.

Prints (1) the race of all 8 variants from scratch (``sam_core.landscape.race`` on ``simulate``), (2) what a
slider change costs on the page: one variant recomputed (the others come from the per-variant cache)
plus building the animated contour and the metric figures and serialising them as Streamlit does
(``to_dict`` and JSON),
and (3) a plain numpy loop for the SGD/SAM/SSAM part of the race, with ratios. Target of the issue:
the redraw after a slider change in ≤ 0.5 s.

    python benchmarks/bench_race.py [--steps 2000] [--variants 8] [--function quartic] [--repeat 3]

(The page's default is 3 variants × 500 steps: ``--variants 3 --steps 500``.) It also times (4) a click on the
map: a new start, every variant at the lr slider's 61 positions, against the same runs with the divergence
test in every step (the loop before the race deferred it), alternating, p50 over ``--repeat`` rounds.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import plotly.io  # noqa: E402

from sam_core.landscape.functions import make_landscape  # noqa: E402
from sam_core.landscape.race import race, run_track, run_tracks  # noqa: E402
from sam_core.plots.landscape import contour_figure, metrics_figure  # noqa: E402
from sam_core.registry import VARIANTS  # noqa: E402

RHO = 0.1
S = importlib.import_module("sam_core.simulate")  # the module (the package exports its function)


def numpy_race(start, lr: float, steps: int) -> float:
    """SGD, SAM and SSAM on the quartic from one start, plain numpy scalars: seconds taken."""

    def grad(w):
        return np.array([w[0] ** 3 - w[1], w[1] - w[0]])

    t = time.perf_counter()
    for variant in ("sgd", "sam", "ssam"):
        w = np.array(start, dtype=float)
        path = [w]
        for _ in range(steps):
            g = grad(w)
            if variant == "sgd":
                d = g
            elif variant == "sam":
                d = grad(w + RHO * g / (np.linalg.norm(g) + 1e-12))
            else:
                ga = grad(w + RHO * g)
                d = ga * np.linalg.norm(g) / (np.linalg.norm(ga) + 1e-12)
            w = w - lr * d
            path.append(w)
    return time.perf_counter() - t


def best(fn, repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out)


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--function", default="quartic")
    p.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    p.add_argument("--variants", type=int, default=8, help="how many variants race (registry order, 2..9)")
    args = p.parse_args()
    L = make_landscape(args.function)
    order = ["sgd", "sam", "ssam"] + [v for v in VARIANTS if v not in ("sgd", "sam", "ssam")]
    variants = order[: max(2, args.variants)]
    hp = {v: {"rho": RHO} for v in variants if "rho" in VARIANTS[v].hparams}
    print(f"{L.label}, {len(variants)} variants × {args.steps} steps, lr={L.lr}, load average {os.getloadavg()[0]:.2f}")

    tracks = []

    def full():
        tracks[:] = race(L, variants, lr=L.lr, steps=args.steps, hp=hp)

    t_full = best(full, args.repeat)
    per = {}
    for v in variants:
        per[v] = best(lambda v=v: run_track(L, v, hp.get(v), L.start, L.lr, args.steps), args.repeat)
    print(
        f"race from scratch ({len(variants)} simulate calls):  {t_full:6.3f} s   ("
        + ", ".join(f"{v} {t * 1e3:.0f} ms" for v, t in per.items())
        + ")"
    )

    def shipped(fig) -> str:
        """What st.plotly_chart does with a figure: to_dict(), then JSON for the browser."""
        return plotly.io.to_json(fig.to_dict(), validate=False)

    def redraw():
        tracks[1] = run_track(L, "sam", {"rho": 0.05}, L.start, L.lr, args.steps)  # the changed variant
        shipped(contour_figure(L, tracks, step=args.steps // 2))
        shipped(metrics_figure(tracks, current=args.steps // 2))

    t_sim1 = best(lambda: run_track(L, "sam", {"rho": 0.05}, L.start, L.lr, args.steps), args.repeat)
    t_fig = best(lambda: shipped(contour_figure(L, tracks, step=args.steps // 2)), args.repeat)
    t_fig_static = best(lambda: shipped(contour_figure(L, tracks, step=args.steps // 2, animate=False)), args.repeat)
    t_met = best(lambda: shipped(metrics_figure(tracks, current=args.steps // 2)), args.repeat)
    t_redraw = best(redraw, args.repeat)
    print(f"slider change: 1 variant re-simulated: {t_sim1:6.3f} s")
    print(f"               contour + animation:    {t_fig:6.3f} s   (without animation frames {t_fig_static:.3f} s)")
    print(f"               metric plots:           {t_met:6.3f} s")
    print(f"               total redraw:           {t_redraw:6.3f} s   target ≤ 0.5 s")
    # a click on the map: a new start recomputes every variant at all of the lr slider's positions
    lrs = list(np.geomspace(1e-4, 1.0, 61))
    start = (0.3 * L.start[0] + 0.2, 0.3 * L.start[1] - 0.1)
    runs = [(v, args.steps) for v in variants]

    def click_new():
        for v, n in runs:
            run_tracks(L, v, hp.get(v), start, lrs, n)

    def click_checked():  # the same runs with the divergence test in every step (the loop before)
        unchecked, late = S._loop_unchecked, S._freeze_late
        S._loop_unchecked = lambda run, lr_b, cols: S._loop(run, lr_b.reshape(-1, 1) if cols else lr_b, True)
        S._freeze_late = lambda grad_fn, tr: tr
        try:
            click_new()
        finally:
            S._loop_unchecked, S._freeze_late = unchecked, late

    t_new, t_chk = [], []
    for _ in range(args.repeat):  # alternating, so both see the same box
        t_chk.append(timed(click_checked))
        t_new.append(timed(click_new))
    p50 = lambda xs: float(np.median(xs))  # noqa: E731
    print(
        f"new start, {len(variants)} variants × 61 lrs: {p50(t_new):6.3f} s p50 (max {max(t_new):.3f})   "
        f"checked every step: {p50(t_chk):.3f} s   ratio new / checked: {p50(t_new) / p50(t_chk):.2f}x"
    )
    if args.function == "quartic" and len(variants) >= 3:
        t_np = best(lambda: numpy_race(L.start, L.lr, args.steps), args.repeat)
        t_ours = sum(per[v] for v in ("sgd", "sam", "ssam"))
        print(
            f"plain numpy loop, SGD+SAM+SSAM:       {t_np:6.3f} s   simulate: {t_ours:.3f} s   "
            f"ratio simulate / numpy: {t_ours / t_np:.2f}x"
        )


if __name__ == "__main__":
    main()
