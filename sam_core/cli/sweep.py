"""`python -m sam_core.cli.sweep …`: a grid or random search of training runs, on this machine or on Ray.

    python -m sam_core.cli.sweep --config sweep.json                       # local run queue; waits, prints a table
    python -m sam_core.cli.sweep --config sweep.json --detach              # record it, start its driver, return
    python -m sam_core.cli.sweep --config sweep.json --dry-run             # list the trials, run nothing
    python -m sam_core.cli.sweep --config sweep.json --executor ray [--address auto] \\
        [--cpus-per-trial 1] [--gpus-per-trial 0.5] [--asha [--asha-metric test_acc] [--asha-grace 1]]
    python -m sam_core.cli.sweep --list | --results ID | --stop ID         # sweeps of the run store
    python -m sam_core.cli.sweep --sweep-id ID                             # the driver of a recorded sweep

sweep.json (see `sam_core.training.sweeps.spec` for every field):

    {"name": "lr x rho", "base": {"dataset": "cifar10", "model": "resnet20", "epochs": 10},
     "search": "grid", "params": {"optimizer": ["sam", "ssam"], "lr": [0.05, 0.1], "rho": [0.02, 0.05, 0.1]}}

Each trial is an ordinary run of the store (group = the sweep id), visible on the Training lab, Compare
runs and Sweeps pages. Exit status: 0 when every trial finished, 1 if any failed (or the sweep did),
2 for an invalid sweep or option. The sweep id is the last line printed.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from sam_core.cli import Parser, cli_main, text_table


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="python -m sam_core.cli.sweep",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example sweep.json:\n"
        + __doc__.split("sweep.json (see")[1].split("\n\n", 1)[1].split("\n\nEach trial")[0],
    )
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--config", help="the sweep's JSON file (base config, params, search, …)")
    what.add_argument("--sweep-id", help="run the driver of this recorded sweep (what the page starts)")
    what.add_argument("--list", action="store_true", help="list the sweeps of the run store")
    what.add_argument("--results", metavar="ID", help="print a sweep's table: swept values and final metrics")
    what.add_argument("--stop", metavar="ID", help="stop a sweep: cancel trials not started, stop running ones")
    p.add_argument("--runs-dir", help="run store directory (default: SAMLAB_RUNS_DIR or runs/)")
    p.add_argument("--detach", action="store_true", help="start the driver in the background and return")
    p.add_argument("--dry-run", action="store_true", help="print the trials and exit")
    p.add_argument("--executor", choices=["local", "ray"], help="where trials run (default: the file's, else local)")
    p.add_argument(
        "--parallel", type=int, help="local: trials at once (default SAMLAB_MAX_RUNS); ray: at most this many"
    )
    p.add_argument("--max-trials", type=int, help="refuse sweeps with more trials (default 64)")
    g = p.add_argument_group("Ray (--executor ray; needs pip install -r requirements-ray.txt)")
    g.add_argument("--address", help="a running Ray cluster ('auto', 'ray://head:10001'); default: start one here")
    g.add_argument("--cpus-per-trial", type=float, help="CPUs reserved per trial (default 1)")
    g.add_argument("--gpus-per-trial", type=float, help="GPUs per trial; fractions share a GPU (default 0)")
    g.add_argument("--asha", action="store_true", help="early-stop weak trials with ASHA (per epoch)")
    g.add_argument("--asha-metric", help="metric reported each epoch (default test_acc)")
    g.add_argument("--asha-mode", choices=["max", "min"], help="default max")
    g.add_argument("--asha-grace", type=int, help="epochs before a trial may be stopped (default 1)")
    g.add_argument("--asha-reduction", type=float, help="ASHA's reduction factor (default 2)")
    return p


def _spec_from_args(a: argparse.Namespace):
    from sam_core.training.sweeps import SweepSpec

    spec = SweepSpec.from_json_file(a.config)
    if a.executor:
        spec.executor = a.executor
    if a.parallel is not None:
        spec.parallel = a.parallel
    if a.max_trials is not None:
        spec.max_trials = a.max_trials
    ray = dict(spec.ray or {}) if isinstance(spec.ray, dict) else spec.ray
    if isinstance(ray, dict):
        for opt in (
            "address",
            "cpus_per_trial",
            "gpus_per_trial",
            "asha_metric",
            "asha_mode",
            "asha_grace",
            "asha_reduction",
        ):
            v = getattr(a, opt)
            if v is not None:
                ray[opt] = v
        if a.asha:
            ray["asha"] = True
        spec.ray = ray
    return spec.validate()


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    return "" if v is None else str(v)


def _table(df) -> str:
    cols = ["trial", "status", *df.attrs.get("params", []), "test_acc", "top_eig", "gamma_mean", "run_id"]
    return text_table([[_fmt(r[c]) for c in cols] for _, r in df.iterrows()], cols)


@cli_main
def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    from sam_core.settings import get_settings
    from sam_core.training.config import ConfigError
    from sam_core.training.store import RunStore, check_sweep_id
    from sam_core.training.sweeps import SweepError, create, execute, spawn_driver, summary, sweep_frame

    def echo(s: str) -> None:
        print(s, flush=True)

    settings = get_settings()
    runs_dir = a.runs_dir or str(settings.runs_dir)
    reading = bool(a.list or a.results)
    if settings.read_only and not (reading or a.dry_run):
        print(
            "error: SAMLAB_READ_ONLY=1: launching or stopping a sweep writes to the run store and is switched "
            "off in read-only mode",
            file=sys.stderr,
        )
        return 2

    def open_store() -> RunStore:
        if reading:  # never creates a store; on an existing one outside read-only mode, a normal open
            exists = (Path(runs_dir).expanduser() / "runs.sqlite").exists()
            return RunStore(runs_dir, create=False, read_only=settings.read_only or not exists)
        return RunStore(runs_dir, create=not (a.stop or a.sweep_id))

    try:
        store = None if (a.config and a.dry_run) else open_store()
        if a.list:
            for s in store.list_sweeps():
                counts = summary(store, s.id)
                echo(
                    f"{s.id}  {s.status:8s}  {s.executor:5s}  {s.n_trials:4d} trials  {s.name}  "
                    f"{', '.join(f'{v} {k}' for k, v in sorted(counts.items()))}"
                )
            return 0
        if a.results:
            echo(_table(sweep_frame(store, check_sweep_id(a.results))))
            return 0
        if a.stop:
            status = store.request_sweep_stop(check_sweep_id(a.stop))
            echo(f"stop requested for {a.stop} ({status})")
            return 0
        if a.sweep_id:
            sweep_id = check_sweep_id(a.sweep_id)
        else:
            spec = _spec_from_args(a)
            if spec.executor == "ray":
                from sam_core.training.sweeps.ray_executor import NOT_INSTALLED, ray_available

                if not ray_available():
                    raise SweepError([NOT_INSTALLED])
            if a.dry_run:
                trials = spec.trials()
                for t in trials:
                    echo(f"trial {t.index}: {t.label()}")
                echo(f"{len(trials)} trial(s), executor {spec.executor}")
                return 0
            if store is None:
                store = open_store()
            sweep_id = create(store, spec)
            print(
                f"sweep {sweep_id} in {store.dir}: {store.get_sweep(sweep_id).n_trials} trial(s)",
                file=sys.stderr,
                flush=True,
            )
            if a.detach:
                spawn_driver(store, sweep_id)
                echo(sweep_id)
                return 0
        status = execute(store, sweep_id, echo=echo)
    except (SweepError, ConfigError, ValueError, KeyError, RuntimeError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"error: {msg}", file=sys.stderr, flush=True)
        return 2
    df = sweep_frame(store, sweep_id)
    echo(_table(df))
    echo(sweep_id)
    return 1 if status == "failed" or (df["status"] == "failed").any() else 0


if __name__ == "__main__":
    sys.exit(main())
