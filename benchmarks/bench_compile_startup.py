"""What the first compiled landscape sweep costs against the same sweep again, per kind of process.

A sweep large enough to compile its step (3 variants × 20 lrs × 10 000 starts × 1000 steps) is run
twice: in a fresh process as a CLI runs it, in a fresh process that imported torch.compile's modules
first, and in the dashboard's warm worker process (``sam_core.workers``: a page's first sweep). Prints
first, again and their ratio (target of the issue: first ≤ 2× again where the user waits).

    python benchmarks/bench_compile_startup.py [--starts 10000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CHILD = r"""
import sys, time
if sys.argv[1] == "pre":
    import torch._dynamo, torch._inductor.compile_fx, torch._inductor.codecache  # noqa: F401
sys.path.insert(0, {root!r})
from benchmarks.bench_compile_startup import sweep_twice
print(*sweep_twice(int(sys.argv[2])))
"""


def sweep_once(starts: int) -> float:
    import numpy as np

    from sam_core.landscape.functions import make_landscape
    from sam_core.landscape.lr_sweep import Success, SweepSetup, sweep_lr

    t = time.perf_counter()
    sweep_lr(
        make_landscape("quartic"),
        ["sgd", "sam", "ssam"],
        np.geomspace(0.01, 1, 20),
        {"sam": {"rho": 0.1}, "ssam": {"rho": 0.1}},
        SweepSetup(starts=starts, steps=1000, success=Success(tol=0.2)),
    )
    return time.perf_counter() - t


def sweep_twice(starts: int) -> tuple[float, float]:
    return sweep_once(starts), sweep_once(starts)


def iter_sweep_twice(starts: int):
    """The same, as a worker-pool job."""
    yield 1.0, sweep_twice(starts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--starts", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    env = dict(os.environ, SAMLAB_COMPILE="on")
    print(f"3 variants × 20 lrs × {args.starts} starts × 1000 steps, compiled (inductor disk cache as it is)")
    for mode, label in (("plain", "fresh process (a CLI)"), ("pre", "fresh process, torch.compile modules imported")):
        out = []
        for _ in range(args.repeat):
            r = subprocess.run(
                [sys.executable, "-c", CHILD.format(root=ROOT), mode, str(args.starts)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            out.append(tuple(float(v) for v in r.stdout.split()[-2:]))
        first, again = statistics.median(o[0] for o in out), statistics.median(o[1] for o in out)
        print(f"  {label:<50} first {first:6.2f} s · again {again:5.2f} s · ratio {first / again:4.1f}×")
    os.environ["SAMLAB_COMPILE"] = "on"
    from benchmarks.bench_compile_startup import (
        iter_sweep_twice as job_fn,  # by module name: the worker imports it
    )
    from sam_core.workers import WorkerPool

    out = []
    for _ in range(args.repeat):
        pool = WorkerPool(size=1)
        pool.warm()
        time.sleep(8)  # the page's worker has been idle a moment before the first click
        job = pool.submit(job_fn, args.starts)
        job.join()
        if job.status != "done":
            raise SystemExit(job.error)
        out.append(job.result)
        pool.close()
    first, again = statistics.median(o[0] for o in out), statistics.median(o[1] for o in out)
    print(
        f"  {'dashboard worker (warm, idle before the click)':<50} first {first:6.2f} s · again {again:5.2f} s · "
        f"ratio {first / again:4.1f}×"
    )


if __name__ == "__main__":
    main()
