"""Core speed: SAM/SSAM step time vs SGD on a small CNN (batch 128, CPU), and the HVP cost of the
top Hessian eigenvalue (Lanczos, cold and warm-started) vs power iteration at the same tolerance.

Goals (issue 2): SAM and SSAM steps ≤ 2.05× the SGD step (two forward-backward passes are the
limit); top eigenvalue in ≤ 0.5× the HVPs of power iteration from a random start.
Run: .venv/bin/python benchmarks/bench_core.py [--threads N] [--repeats R]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import sam_core
from sam_core import hessian


def small_cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(32 * 8 * 8, 10),
    )


def time_steps(variant: str, x, y, n: int) -> float:
    torch.manual_seed(0)
    model = small_cnn()
    kw = {} if variant == "sgd" else {"rho": 0.05}
    opt = sam_core.make_optimizer(variant, model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, **kw)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    for _ in range(3):
        opt.step(closure)
    t0 = time.perf_counter()
    for _ in range(n):
        opt.step(closure)
    return (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(128, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (128,), generator=g)

    times: dict[str, list[float]] = {"sgd": [], "sam": [], "ssam": []}
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits all alike
        for v in times:
            times[v].append(time_steps(v, x, y, args.steps))
    med = {v: statistics.median(t) for v, t in times.items()}
    print(f"small CNN, batch 128, CPU threads={args.threads}, median of {args.repeats}×{args.steps} steps")
    print(f"  SGD  step: {med['sgd'] * 1e3:8.2f} ms")
    for v in ("sam", "ssam"):
        print(f"  {v.upper():4s} step: {med[v] * 1e3:8.2f} ms  ratio to SGD: {med[v] / med['sgd']:.3f}  (goal ≤ 2.05)")

    # --- top Hessian eigenvalue: HVPs and time, tol 1e-3, on a fixed batch of 128
    torch.manual_seed(0)
    model = small_cnn()
    opt = sam_core.make_optimizer("sam", model.parameters(), lr=0.05, momentum=0.9, rho=0.05)
    loss_fn = torch.nn.functional.cross_entropy
    xb, yb = x[:128], y[:128]

    def train(k):
        for _ in range(k):

            def closure():
                opt.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                return loss

            opt.step(closure)

    train(5)
    tol = 1e-3
    rows = []
    prev = None
    for rnd in range(4):
        op = hessian.HessianOperator(model, loss_fn, xb, yb)
        ref = float(hessian.top_eigenvalues(op, tol=1e-9, max_iter=80, seed=99).values[0])
        out = {
            "power": _hvps_to_accuracy_power(op, ref, tol, rnd),
            "lanczos": _hvps_to_accuracy_lanczos(op, ref, tol, None, rnd),
            "lanczos_warm": _hvps_to_accuracy_lanczos(op, ref, tol, prev, rnd),
        }
        op.n_hvp = 0
        t0 = time.perf_counter()
        r = hessian.top_eigenvalues(op, tol=tol, v0=prev)  # what the training lab runs
        stop_t, stop_n, stop_v = time.perf_counter() - t0, r.n_hvp, float(r.values[0])
        prev = r.vectors[0]
        rows.append(out)
        print(
            f"  round {rnd}: λ_ref={ref:.4f}  HVPs to reach 1e-3 of it: power {out['power']}, "
            f"Lanczos {out['lanczos']}, Lanczos warm {out['lanczos_warm']}   "
            f"[stopping rule: {stop_n} HVP, {stop_t * 1e3:.0f} ms, λ={stop_v:.4f}, "
            f"rel. err {abs(stop_v - ref) / abs(ref):.1e}]"
        )
        train(2)  # the weights move on, as during training
    p = statistics.mean(o["power"] for o in rows)
    lc = statistics.mean(o["lanczos"] for o in rows)
    lw = statistics.mean(o["lanczos_warm"] for o in rows[1:])
    print(
        f"  mean HVPs to 1e-3 relative accuracy: power {p:.1f}, Lanczos cold {lc:.1f} (ratio {lc / p:.2f}), "
        f"Lanczos warm-started {lw:.1f} (ratio {lw / p:.2f})  (goal ≤ 0.5)"
    )


def _hvps_to_accuracy_power(op, ref, tol, seed, cap=300) -> int:
    """HVPs power iteration from a random start needs before its Rayleigh quotient is within tol of ref."""
    v = hessian._start(op, None, seed)
    for i in range(1, cap + 1):
        hv = op.matvec(v)
        if abs(float(v @ hv) - ref) <= tol * abs(ref):
            return i
        v = hv / hv.norm()
    return cap


def _hvps_to_accuracy_lanczos(op, ref, tol, v0, seed, cap=100) -> int:
    hit = [cap]

    def on_step(alphas, betas, j):
        ev = torch.linalg.eigvalsh(hessian._tridiag(alphas, betas))
        if abs(float(ev[torch.argmax(ev.abs())]) - ref) <= tol * abs(ref):
            hit[0] = j
            return True
        return False

    hessian.lanczos(op, cap, v0, seed, on_step=on_step)
    return hit[0]


if __name__ == "__main__":
    main()
