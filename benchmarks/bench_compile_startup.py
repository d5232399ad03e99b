"""What the first compiled landscape sweep costs against the same sweep again, per kind of process.

A sweep large enough to compile its step (3 variants × 20 lrs × 10 000 starts × 1000 steps) is run
twice: in a fresh process as a CLI runs it, without and with the store of compiled steps
(``sam_core.fused_store``, filled by a first run and its background builder in a temporary directory),
in a fresh process that imported torch.compile's modules first, and in the dashboard's warm worker
process (``sam_core.workers``: a page's first sweep). Prints first, again, their ratio (target of the
issue: first ≤ 2× again where the user waits) and the whole process's wall time.

    python benchmarks/bench_compile_startup.py [--starts 10000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

CHILD = r"""
import sys, time
t0 = time.perf_counter()
if sys.argv[1] == "pre":
    import torch._dynamo, torch._inductor.compile_fx, torch._inductor.codecache  # noqa: F401
sys.path.insert(0, {root!r})
from benchmarks.bench_compile_startup import sweep_twice
print(*sweep_twice(int(sys.argv[2])), time.perf_counter() - t0)
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
    store = tempfile.mkdtemp(prefix="samlab-steps-")
    env = dict(os.environ, SAMLAB_COMPILE="on")
    print(f"3 variants × 20 lrs × {args.starts} starts × 1000 steps, compiled (inductor disk cache as it is)")

    def child(mode: str, step_cache: str) -> tuple[float, float, float]:
        r = subprocess.run(
            [sys.executable, "-c", CHILD.format(root=ROOT), mode, str(args.starts)],
            env=dict(env, SAMLAB_STEP_CACHE=step_cache),
            capture_output=True,
            text=True,
            check=True,
        )
        return tuple(float(v) for v in r.stdout.split()[-3:])

    child("plain", store)  # fills the store: this run compiles and queues its steps, the builder builds them
    t = time.perf_counter()
    while list(Path(store).glob("*.todo")) or not list(Path(store).glob("*.pt2")):
        if time.perf_counter() - t > 600:
            raise SystemExit(f"the step store's builder did not finish: {Path(store, 'builder.log').read_text()}")
        time.sleep(0.5)
    time.sleep(1.0)  # the builder's last rename and exit
    rows = (
        ("plain", "off", "fresh process (a CLI), no step store"),
        ("plain", store, "fresh process (a CLI), steps stored"),
        ("pre", "off", "fresh process, torch.compile modules imported"),
    )
    for mode, step_cache, label in rows:
        out = [child(mode, step_cache) for _ in range(args.repeat)]
        first, again, whole = (statistics.median(o[i] for o in out) for i in range(3))
        print(
            f"  {label:<58} first {first:6.2f} s · again {again:5.2f} s · ratio {first / again:4.1f}× · "
            f"process {whole:5.2f} s"
        )
    os.environ["SAMLAB_COMPILE"] = "on"
    from benchmarks.bench_compile_startup import (
        iter_sweep_twice as job_fn,  # by module name: the worker imports it
    )
    from sam_core.workers import WorkerPool

    for step_cache, label in (("off", "no step store"), (store, "steps stored")):
        os.environ["SAMLAB_STEP_CACHE"] = step_cache  # the worker processes inherit it
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
            f"  {'dashboard worker (idle before the click), ' + label:<58} first {first:6.2f} s · "
            f"again {again:5.2f} s · ratio {first / again:4.1f}×"
        )
    shutil.rmtree(store, ignore_errors=True)


if __name__ == "__main__":
    main()
