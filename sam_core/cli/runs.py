"""`python -m sam_core.cli.runs …`: look after the run store from a terminal.

    python -m sam_core.cli.runs list   --runs-dir R [--status running]
    python -m sam_core.cli.runs show   RUN_ID --runs-dir R            # config, message, traceback of a failure
    python -m sam_core.cli.runs export RUN_ID --runs-dir R --csv out.csv   # one row per logged step ('-' = stdout)
    python -m sam_core.cli.runs stop   RUN_ID --runs-dir R            # the worker checkpoints and stops
    python -m sam_core.cli.runs resume RUN_ID --runs-dir R [--foreground]
    python -m sam_core.cli.runs delete RUN_ID --runs-dir R [--force]

The CSV columns start with step, epoch, loss, accuracy, lr, rho, grad_norm, perturbed_grad_norm, gamma,
cos, perturbation_norm, step_time, images_per_s, top_eig, gd_edge, sam_edge, hessian_trace, then the
per-epoch ones; a cell is empty where that quantity was not measured at that step.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from sam_core.cli import Parser, cli_main, ensure_writable, text_table
from sam_core.training.store import STATUSES, RunStore, check_run_id, export_csv


def _fmt_time(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t)) if t else "-"


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m sam_core.cli.runs", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs-dir", default=None, help="run store directory (default: SAMLAB_RUNS_DIR or runs/)")
    sub = p.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="all runs, newest first")
    ls.add_argument("--status", choices=STATUSES)
    for name in ("show", "export", "stop", "resume", "delete"):
        sp = sub.add_parser(name)
        sp.add_argument("run_id")
        sp.add_argument("--runs-dir", dest="runs_dir_sub", default=None)
        if name == "export":
            sp.add_argument("--csv", default="-", help="output file ('-' = stdout)")
        if name == "resume":
            sp.add_argument("--foreground", action="store_true", help="train in this process instead of a worker")
        if name == "delete":
            sp.add_argument(
                "--force",
                action="store_true",
                help="also delete an active run: its worker is stopped first (stop request, then "
                "SIGTERM, then SIGKILL after --stop-timeout seconds)",
            )
            sp.add_argument("--stop-timeout", type=float, default=30.0, help="seconds to wait for the worker")
    ls.add_argument("--runs-dir", dest="runs_dir_sub", default=None)
    a = p.parse_args(argv)
    from sam_core.settings import get_settings

    runs_dir = a.runs_dir_sub or a.runs_dir or str(get_settings().runs_dir)
    if a.cmd == "export":
        ensure_writable(a.csv, "--csv")
    if a.cmd == "delete" and not (0 < a.stop_timeout <= 3600):
        p.error(f"argument --stop-timeout: must be in (0, 3600] seconds, got {a.stop_timeout}")
    settings = get_settings()
    reading = a.cmd in ("list", "show", "export")
    if settings.read_only and not reading:
        print(
            f"error: SAMLAB_READ_ONLY=1: '{a.cmd}' writes to the run store and is switched off in read-only mode",
            file=sys.stderr,
        )
        return 2
    # reading commands never create a store (an unknown folder is "no runs here"); on an existing store
    # outside read-only mode they open it normally, so runs whose worker died are shown as failed
    read_only = settings.read_only or (reading and not (Path(runs_dir).expanduser() / "runs.sqlite").exists())
    try:
        store = RunStore(runs_dir, create=False, read_only=read_only)
        if a.cmd == "list":
            runs = store.list_runs(status=[a.status] if a.status else None)
            rows = [
                [
                    r.id,
                    r.status,
                    r.variant,
                    r.config.get("model", ""),
                    r.config.get("dataset", ""),
                    f"{r.step}/{r.total_steps or '?'}",
                    _fmt_time(r.created),
                    r.message[:60],
                ]
                for r in runs
            ]
            print(text_table(rows, ["id", "status", "optimizer", "model", "dataset", "step", "created", "message"]))
            return 0
        run_id = check_run_id(a.run_id)
        if a.cmd == "show":
            store.reconcile()
            info = store.get(run_id)
            print(
                json.dumps(
                    {
                        "id": info.id,
                        "status": info.status,
                        "name": info.name,
                        "group": info.group,
                        "step": info.step,
                        "total_steps": info.total_steps,
                        "message": info.message,
                        "config": info.config,
                    },
                    indent=2,
                )
            )
            if info.traceback:
                print(info.traceback)
            return 0
        if a.cmd == "export":
            store.get(run_id)
            if a.csv == "-":
                sys.stdout.write(export_csv(store, run_id))
            else:
                export_csv(store, run_id, a.csv)
                print(f"wrote {a.csv}")
            return 0
        if a.cmd == "stop":
            status = store.request_stop(run_id)
            print(
                f"stop requested for {run_id} ({status})"
                if status in ("queued", "running")
                else f"run {run_id} is already {status}"
            )
            return 0
        if a.cmd == "resume":
            from sam_core.training import worker

            if a.foreground:
                store.prepare_resume(run_id)
                status = worker.execute(store, run_id, echo=lambda s: print(s, flush=True))
                print(run_id)
                return 1 if status == "failed" else 0
            proc = worker.resume(store, run_id)
            print(f"resumed {run_id} (worker pid {proc.pid})")
            print(run_id)
            return 0
        if a.cmd == "delete":
            info = store.get(run_id)
            if a.force and info.active:
                print(f"stopping the worker of {run_id} ({info.status}) …", file=sys.stderr, flush=True)
                if not store.stop_worker(run_id, timeout=a.stop_timeout):
                    print(
                        f"error: the worker of {run_id} runs on another host and did not stop within "
                        f"{a.stop_timeout:g} s; nothing was deleted",
                        file=sys.stderr,
                    )
                    return 1
            store.delete(run_id, force=a.force)
            print(f"deleted {run_id}")
            return 0
    except FileNotFoundError as exc:  # create=False/read-only: no such folder or no store in it
        print(f"error: --runs-dir: {exc}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
