"""Speed of the landscape sweep: success vs lr, 3 variants × 20 lrs × 10 000 starts × 1000 steps.

Prints the time of ``sam_core.landscape.lr_sweep.sweep_lr`` (every trajectory through ``sam_core.simulate``):
with the step compiled (what a sweep this size uses: the first sweep in a process, which compiles
the three steps, then the same sweep again as the page's second click would run it) and eager
(``compile=False``); then a plain numpy loop over the same batch (the baseline the issue quotes at
~20 s) and a bare eager torch loop with no diagnostics and no divergence bookkeeping, with the
ratios. Target of the issue: ≤ 3 s for the sweep on this 2-core CPU. ``--cold`` compiles into an
empty inductor cache (the first sweep ever on a machine).

    python benchmarks/bench_lr_sweep.py [--starts 10000] [--steps 1000] [--baseline-steps 200] [--cold]

The two baselines run ``--baseline-steps`` steps and are scaled linearly to ``--steps`` (each step
costs the same), which the output says; ``--baseline-steps 0`` runs them in full.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from sam_core.landscape.functions import make_landscape  # noqa: E402
from sam_core.landscape.lr_sweep import Success, SweepSetup, fast_cpu  # noqa: E402

VARIANTS = ("sgd", "sam", "ssam")
RHO = 0.1


def numpy_loop(variant: str, w: np.ndarray, lr: np.ndarray, steps: int) -> np.ndarray:
    """Plain numpy over the whole (N, 2) batch, float32, per-row norms: the baseline."""
    w = w.astype(np.float32).copy()
    lr = lr.astype(np.float32)[:, None]

    def grad(w):
        x, y = w[:, 0], w[:, 1]
        return np.stack((x**3 - y, y - x), 1)

    with np.errstate(all="ignore"):  # lrs above the bound diverge: a result, not a warning
        for _ in range(steps):
            g = grad(w)
            if variant == "sgd":
                d = g
            elif variant == "sam":
                d = grad(w + RHO * g / (np.linalg.norm(g, axis=1, keepdims=True) + 1e-12))
            else:  # ssam: USAM ascent, descent renormalised
                ga = grad(w + RHO * g)
                d = ga * (
                    np.linalg.norm(g, axis=1, keepdims=True) / (np.linalg.norm(ga, axis=1, keepdims=True) + 1e-12)
                )
            w = w - lr * d
    return w


def bare_torch(variant: str, w: torch.Tensor, lr: torch.Tensor, steps: int) -> torch.Tensor:
    """The arithmetic alone: x and y as separate contiguous tensors, no stats, no NaN bookkeeping."""
    x, y = w[:, 0].float().contiguous(), w[:, 1].float().contiguous()
    lr = lr.float()

    def grad(x, y):
        return x * x * x - y, y - x

    for _ in range(steps):
        gx, gy = grad(x, y)
        if variant == "sgd":
            dx, dy = gx, gy
        elif variant == "sam":
            s = RHO / (torch.sqrt(gx * gx + gy * gy) + 1e-12)
            dx, dy = grad(x + s * gx, y + s * gy)
        else:
            ax, ay = grad(x + RHO * gx, y + RHO * gy)
            gam = torch.sqrt(gx * gx + gy * gy) / (torch.sqrt(ax * ax + ay * ay) + 1e-12)
            dx, dy = gam * ax, gam * ay
        x, y = x - lr * dx, y - lr * dy
    return torch.stack((x, y), 1)


@contextlib.contextmanager
def _eager():
    old = os.environ.get("SAMLAB_COMPILE")
    os.environ["SAMLAB_COMPILE"] = "off"
    try:
        yield
    finally:
        if old is None:
            del os.environ["SAMLAB_COMPILE"]
        else:
            os.environ["SAMLAB_COMPILE"] = old


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--starts", type=int, default=10_000)
    p.add_argument("--lrs", type=int, default=20)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--baseline-steps", type=int, default=200, help="0: run the baselines in full")
    p.add_argument("--chunk", type=int, default=None, help="trajectories per simulate call (default: sweeps.CHUNK)")
    p.add_argument(
        "--layout", choices=["row", "col"], default=None, help="batch memory layout (default: sweeps.LAYOUT)"
    )
    p.add_argument("--cold", action="store_true", help="compile into a fresh, empty inductor cache directory")
    p.add_argument("--no-eager", action="store_true", help="skip the eager sweep (~10 s)")
    args = p.parse_args()
    if args.cold:
        import tempfile

        os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="samlab_inductor_")
    L = make_landscape("quartic")
    lrs = np.geomspace(0.01, 1.0, args.lrs)
    N = args.lrs * args.starts
    print(
        f"quartic, {len(VARIANTS)} variants × {args.lrs} lrs × {args.starts} starts × {args.steps} steps "
        f"({N} trajectories per variant), torch {torch.__version__}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )

    import sam_core.landscape.lr_sweep as sw

    if args.chunk:
        sw.CHUNK = args.chunk
    if args.layout:
        sw.LAYOUT = args.layout
    print(
        f"eager: chunks of {sw.CHUNK} trajectories, {sw.LAYOUT}-major batches; compiled: chunks of "
        f"{sw.COMPILE_CHUNK}; 1 intra-op thread, denormals flushed"
    )

    def run_sweep(compile: bool) -> tuple[float, dict]:
        t0 = time.perf_counter()
        per = {}
        for v in VARIANTS:
            t = time.perf_counter()
            iters = sw.iter_sweep_lr(
                L,
                [v],
                lrs,
                {v: {"rho": RHO}} if v != "sgd" else None,
                SweepSetup(starts=args.starts, steps=args.steps, success=Success(tol=0.2)),
            )
            if compile is False:
                with _eager():
                    list(iters)
            else:
                list(iters)
            per[v] = time.perf_counter() - t
        return time.perf_counter() - t0, per

    def show(label: str, total: float, per: dict, target: bool = False) -> None:
        print(
            f"{label:<44}{total:7.2f} s   ("
            + ", ".join(f"{v} {t:.2f} s" for v, t in per.items())
            + ")"
            + ("   target ≤ 3 s" if target else "")
        )

    first, per1 = run_sweep(True)
    # compiled only if use_compile said so and no step fell back to the eager loop
    how = (
        "compiled"
        if sw.use_compile(L, N * args.steps) and not sys.modules["sam_core.simulate"]._FUSED_FAILED
        else "EAGER (compile off or failed)"
    )
    show(f"sweep_lr, {how}, first in this process:", first, per1)
    total, per = run_sweep(True)
    show(f"sweep_lr, {how}, again:", total, per, target=True)
    if not args.no_eager:
        t_eager, per_e = run_sweep(False)
        show("sweep_lr, eager (SAMLAB_COMPILE=off):", t_eager, per_e)

    bs = args.steps if args.baseline_steps <= 0 else min(args.baseline_steps, args.steps)
    scale = args.steps / bs
    rng = np.random.default_rng(0)
    w0 = rng.normal(0, 0.1, size=(N, 2))
    lr_b = np.repeat(lrs, args.starts)
    t = time.perf_counter()
    for v in VARIANTS:
        numpy_loop(v, w0, lr_b, bs)
    t_np = (time.perf_counter() - t) * scale
    with fast_cpu(1):
        t = time.perf_counter()
        for v in VARIANTS:
            bare_torch(v, torch.as_tensor(w0), torch.as_tensor(lr_b), bs)
        t_bare = (time.perf_counter() - t) * scale
    note = "" if scale == 1 else f"   ({bs} steps measured, ×{scale:g})"
    print(f"plain numpy loop, same batch:          {t_np:7.2f} s{note}")
    print(f"bare torch loop (no stats/NaN checks): {t_bare:7.2f} s{note}")
    print(
        f"ratio numpy / sweep_lr:                {t_np / total:7.2f}x   (first sweep in the process: "
        f"{t_np / first:.2f}x)"
    )
    print(f"ratio bare eager torch / sweep_lr:     {t_bare / total:7.2f}x")
    if not args.no_eager:
        print(f"ratio eager sweep_lr / compiled:       {t_eager / total:7.2f}x")


if __name__ == "__main__":
    main()
