"""The run store: every training run's config, status and metrics in SQLite (WAL), checkpoints beside it.

    <runs_dir>/runs.sqlite          the database (WAL mode: workers write while pages read)
    <runs_dir>/<run_id>/checkpoint.pt   the last checkpoint (written atomically)
    <runs_dir>/<run_id>/worker.log      the worker's stdout/stderr when launched from the page

Status: queued → running → finished | failed | stopped (stopped/failed runs can be resumed: queued again).
Sweeps (`sam_core.cli.sweep`) live in two more tables: `sweeps` (the spec, the executor, the driver process)
and `sweep_trials` (each trial's swept values and config; its run id once started). A trial's run is
an ordinary run whose group is the sweep id, so every run page shows it.
A worker records its pid (and the process start time, against pid reuse) and a heartbeat; a
`running` or `queued` run whose worker process is gone is marked `failed` by `reconcile()` (called by
every listing), keeping the metrics written so far. Metrics are long rows (run_id, step, name, value);
`metrics()` pivots them to one row per step. Every method opens its own short transaction, so one
`RunStore` may be shared by threads and any number of processes may read while workers write.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

STATUSES = ("queued", "running", "finished", "failed", "stopped")
ACTIVE = ("queued", "running")
RUN_ID_RE = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}$")
SWEEP_ID_RE = re.compile(r"^sweep-\d{8}-\d{6}-[0-9a-f]{6}$")
SWEEP_STATUSES = ("queued", "running", "finished", "stopped", "failed")
STALE_HEARTBEAT_S = 300.0  # for workers on another host (no pid check possible)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs(
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    grp TEXT NOT NULL DEFAULT '',
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL, finished REAL, heartbeat REAL,
    pid INTEGER, pid_start TEXT, host TEXT,
    step INTEGER NOT NULL DEFAULT 0,
    epoch INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER,
    steps_per_epoch INTEGER,
    train_seconds REAL NOT NULL DEFAULT 0,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    traceback TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS metrics(
    run_id TEXT NOT NULL, step INTEGER NOT NULL, name TEXT NOT NULL, value REAL,
    PRIMARY KEY(run_id, name, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS artifacts(
    run_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(run_id, name)
);
CREATE TABLE IF NOT EXISTS sweeps(
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    spec TEXT NOT NULL,
    executor TEXT NOT NULL,
    status TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL, finished REAL, heartbeat REAL,
    pid INTEGER, pid_start TEXT, host TEXT,
    n_trials INTEGER NOT NULL,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS sweep_trials(
    sweep_id TEXT NOT NULL, trial INTEGER NOT NULL, params TEXT NOT NULL, config TEXT NOT NULL,
    run_id TEXT, state TEXT NOT NULL DEFAULT 'pending',
    PRIMARY KEY(sweep_id, trial)
);
"""


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def check_sweep_id(sweep_id: str) -> str:
    if not isinstance(sweep_id, str) or not SWEEP_ID_RE.match(sweep_id):
        raise ValueError(f"sweep id must look like sweep-20250101-120000-a1b2c3, got {sweep_id!r}")
    return sweep_id


def check_run_id(run_id: str) -> str:
    """Run ids name directories: refuse anything but the generated form (no path tricks)."""
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise ValueError(f"run id must look like 20250101-120000-a1b2c3, got {run_id!r}")
    return run_id


# ------------------------------------------------------------------------------------------- processes
def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (Linux /proc), to tell a reused pid from the original process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 overall; fields after ')' start at 3


def pid_alive(pid: int | None, start: str | None = None) -> bool:
    """True if process `pid` exists, is not a zombie, and (when known) started at `start`."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return not Path("/proc/self/stat").exists()  # no /proc at all (macOS): trust os.kill
    except OSError:
        return True
    rest = stat.rsplit(")", 1)[1].split()
    if rest[0] in ("Z", "X"):  # zombie / dead: killed, not yet reaped by its parent
        return False
    return start is None or rest[19] == start


# ------------------------------------------------------------------------------------------- records
@dataclass
class RunInfo:
    id: str
    name: str
    group: str
    config: dict
    status: str
    created: float
    started: float | None
    finished: float | None
    heartbeat: float | None
    pid: int | None
    step: int
    epoch: int
    total_steps: int | None
    steps_per_epoch: int | None
    train_seconds: float
    stop_requested: bool
    message: str
    traceback: str

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def progress(self) -> float:
        if not self.total_steps:
            return 1.0 if self.status == "finished" else 0.0
        return min(1.0, self.step / self.total_steps)

    def eta_seconds(self, now: float | None = None) -> float | None:
        """Remaining seconds at the run's own pace (training time per step, across resumes)."""
        if self.status != "running" or not self.total_steps or self.step <= 0:
            return None
        secs = self.train_seconds
        if self.heartbeat and self.started and secs <= 0:
            secs = self.heartbeat - self.started
        if secs <= 0:
            return None
        return max(0.0, (self.total_steps - self.step) * secs / self.step)

    @property
    def variant(self) -> str:
        return str(self.config.get("optimizer", "?"))


def _row_to_info(r: sqlite3.Row) -> RunInfo:
    return RunInfo(
        id=r["id"],
        name=r["name"],
        group=r["grp"],
        config=json.loads(r["config"]),
        status=r["status"],
        created=r["created"],
        started=r["started"],
        finished=r["finished"],
        heartbeat=r["heartbeat"],
        pid=r["pid"],
        step=r["step"],
        epoch=r["epoch"],
        total_steps=r["total_steps"],
        steps_per_epoch=r["steps_per_epoch"],
        train_seconds=r["train_seconds"],
        stop_requested=bool(r["stop_requested"]),
        message=r["message"],
        traceback=r["traceback"],
    )


class StoreError(ValueError):
    """The runs folder or its database cannot be used (a file, unwritable, corrupt, another program's)."""


class StoreMissing(StoreError, FileNotFoundError):
    """Read-only or create=False: no run store in that folder ("no runs here"); nothing was created."""


class RunVanished(KeyError):
    """The run's row is gone (deleted while its worker ran): the worker must stop at once, writing nothing."""


# the columns every run store of this project has had (older stores may lack later tables, never these)
_RUN_COLUMNS = {
    "id",
    "name",
    "grp",
    "config",
    "status",
    "created",
    "started",
    "finished",
    "heartbeat",
    "pid",
    "pid_start",
    "host",
    "step",
    "epoch",
    "total_steps",
    "steps_per_epoch",
    "train_seconds",
    "stop_requested",
    "message",
    "traceback",
}


def _ro_uri(path: Path) -> str:
    """A read-only URI for `path` that creates nothing beside it: `immutable` when no writer has a WAL
    open (a read-only WAL connection would otherwise leave -wal/-shm files behind), `mode=ro` when one has."""
    from urllib.parse import quote

    wal = Path(str(path) + "-wal")
    return f"file:{quote(str(path))}?mode=ro" + ("" if wal.exists() else "&immutable=1")


def inspect_store(path: Path) -> str:
    """'new' (no file or an empty one), 'ours' (a run store), or raise StoreError: corrupt or foreign.

    Only reads: a corrupt or foreign file is reported, never altered."""
    if not path.exists():
        return "new"
    if not path.is_file():
        raise StoreError(
            f"run store {path} is not a file (a folder or a device?); remove it or choose another runs folder"
        )
    # never open() the database file itself: closing any descriptor of it would drop every POSIX lock
    # this process's SQLite connections hold on it (another process could then delete the live WAL);
    # SQLite reads the header, and a file that is not a database fails its first query
    try:
        if path.stat().st_size == 0:
            return "new"
    except OSError as exc:
        raise StoreError(f"run store {path} cannot be read ({exc.strerror or exc})") from None
    try:
        con = sqlite3.connect(_ro_uri(path), uri=True, timeout=30.0)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            cols = {r[1] for r in con.execute("PRAGMA table_info(runs)")} if "runs" in tables else set()
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise StoreError(
            f"run store {path} is corrupt ({exc}); it was left unchanged — move it away or choose another runs folder"
        ) from None
    if not tables:
        return "new"
    if "runs" not in tables:
        raise StoreError(
            f"run store {path} belongs to another program (tables {sorted(tables)[:6]}, no 'runs' "
            f"table); it was left unchanged — choose another runs folder"
        )
    missing = sorted(_RUN_COLUMNS - cols)
    if missing:
        raise StoreError(
            f"run store {path} has another schema (table 'runs' lacks {missing[:6]}); it was left "
            f"unchanged — choose another runs folder"
        )
    return "ours"


class RunStore:
    """Runs in `<runs_dir>/runs.sqlite`; see the module docstring.

    create=False: the folder must exist (the database is created in it if missing).
    read_only=True: nothing is ever created or written — no folder, no database, no WAL files; a folder
    without a store raises `StoreMissing` ("no runs here"), and writes fail.
    A runs folder that is a file or unwritable, or a database that is corrupt or another program's,
    raises `StoreError` naming it (and the file is left unchanged).
    """

    def __init__(self, runs_dir: str | os.PathLike, create: bool = True, read_only: bool = False):
        try:
            self.dir = Path(runs_dir).expanduser().resolve()
        except (OSError, RuntimeError, ValueError) as exc:
            raise StoreError(f"runs folder {runs_dir!r}: {exc}") from None
        self.path = self.dir / "runs.sqlite"
        self.read_only = bool(read_only)
        self._local = threading.local()
        if self.dir.exists() and not self.dir.is_dir():
            raise StoreError(f"runs folder {self.dir} is a file, not a folder; choose another runs folder")
        if read_only or not create:
            if not self.dir.is_dir():
                raise StoreMissing(f"no runs here: the runs folder {self.dir} does not exist")
        if read_only:
            if inspect_store(self.path) == "new":
                raise StoreMissing(f"no runs here: {self.dir} holds no run store (runs.sqlite)")
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"runs folder {self.dir} cannot be created ({exc.strerror or exc}); choose a writable folder"
            ) from None
        state = inspect_store(self.path)
        if not os.access(self.dir, os.W_OK | os.X_OK) or (state == "ours" and not os.access(self.path, os.W_OK)):
            raise StoreError(
                f"runs folder {self.dir} is not writable; choose a writable folder (or set "
                f"SAMLAB_READ_ONLY=1 to only read it)"
            )
        try:
            self._con().executescript(_SCHEMA)  # idempotent; executescript commits by itself
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(
                f"run store {self.path} cannot be opened for writing ({exc}); choose a writable folder"
            ) from None

    def __getstate__(self) -> dict:  # picklable (Ray callbacks, processes): connections are per thread anyway
        return {"dir": self.dir, "path": self.path, "read_only": self.read_only}

    def __setstate__(self, state: dict) -> None:
        self.dir, self.path = state["dir"], state["path"]
        self.read_only = state.get("read_only", False)
        self._local = threading.local()

    # ------------------------------------------------------------------------------ connection
    def _con(self) -> sqlite3.Connection:
        if self.read_only:  # a fresh connection each time: its mode follows whether a writer is active now
            con = sqlite3.connect(_ro_uri(self.path), uri=True, timeout=30.0, isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA busy_timeout=30000")
            return con
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            con.execute("PRAGMA busy_timeout=30000")
            self._local.con = con
        return con

    class _Tx:
        def __init__(self, con: sqlite3.Connection, immediate: bool):
            self.con, self.immediate = con, immediate

        def __enter__(self):
            self.con.execute("BEGIN IMMEDIATE" if self.immediate else "BEGIN")
            return self.con

        def __exit__(self, et, ev, tb):
            self.con.execute("COMMIT" if et is None else "ROLLBACK")
            return False

    def _tx(self, immediate: bool = True) -> RunStore._Tx:
        if self.read_only:  # every write goes through here
            raise StoreError(f"the run store {self.path} is open read-only (SAMLAB_READ_ONLY): nothing is written")
        return RunStore._Tx(self._con(), immediate)

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # ------------------------------------------------------------------------------ paths
    def run_dir(self, run_id: str) -> Path:
        return self.dir / check_run_id(run_id)

    def checkpoint_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "checkpoint.pt"

    def log_path(self, run_id: str) -> Path:
        return self.run_dir(run_id) / "worker.log"

    # ------------------------------------------------------------------------------ runs
    def create_run(
        self,
        config: dict,
        name: str = "",
        group: str = "",
        total_steps: int | None = None,
        steps_per_epoch: int | None = None,
    ) -> str:
        run_id = new_run_id()
        with self._tx() as con:
            while con.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone():
                run_id = new_run_id()
            con.execute(
                "INSERT INTO runs(id, name, grp, config, status, created, total_steps, steps_per_epoch) "
                "VALUES (?, ?, ?, ?, 'queued', ?, ?, ?)",
                (run_id, name, group, json.dumps(config, sort_keys=True), time.time(), total_steps, steps_per_epoch),
            )
        self.run_dir(run_id).mkdir(parents=True, exist_ok=True)
        return run_id

    def get(self, run_id: str) -> RunInfo:
        r = self._con().execute("SELECT * FROM runs WHERE id=?", (check_run_id(run_id),)).fetchone()
        if r is None:
            raise KeyError(f"no run {run_id!r} in {self.dir}")
        return _row_to_info(r)

    def exists(self, run_id: str) -> bool:
        return self._con().execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is not None

    def list_runs(self, status: Iterable[str] | None = None, reconcile: bool = True) -> list[RunInfo]:
        """All runs, newest first (dead workers marked failed first, unless reconcile=False)."""
        if reconcile:
            self.reconcile()
        rows = self._con().execute("SELECT * FROM runs ORDER BY created DESC, id DESC").fetchall()
        out = [_row_to_info(r) for r in rows]
        if status is not None:
            keep = set(status)
            out = [r for r in out if r.status in keep]
        return out

    def _update_row(self, table: str, row_id: str, fields: dict[str, Any], allowed: set[str], statuses: tuple) -> None:
        """UPDATE one row of `table` (runs or sweeps): only the `allowed` columns, a known status."""
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"cannot update {sorted(bad)}")
        if "status" in fields and fields["status"] not in statuses:
            raise ValueError(f"status must be one of {statuses}")
        cols = ", ".join(f"{k}=?" for k in fields)
        with self._tx() as con:
            con.execute(f"UPDATE {table} SET {cols} WHERE id=?", (*fields.values(), row_id))

    def update(self, run_id: str, **fields: Any) -> None:
        allowed = {
            "status",
            "started",
            "finished",
            "heartbeat",
            "pid",
            "pid_start",
            "host",
            "step",
            "epoch",
            "total_steps",
            "steps_per_epoch",
            "train_seconds",
            "stop_requested",
            "message",
            "traceback",
            "name",
        }
        self._update_row("runs", run_id, fields, allowed, STATUSES)

    def register_worker(
        self, run_id: str, pid: int | None = None, host: str | None = None, pid_start: str | None = None
    ) -> None:
        """Record the process that owns this run (the waiting worker of a queued run, or the trainer).

        `host`/`pid_start`: for a process on another machine (a Ray trial writing through the driver)."""
        pid = os.getpid() if pid is None else pid
        if host is None:
            host, pid_start = socket.gethostname(), process_start_time(pid)
        self.update(run_id, pid=pid, pid_start=pid_start, host=host, heartbeat=time.time())

    def claim_slot(self, run_id: str, max_concurrent: int) -> str:
        """Try to move `run_id` from queued to running (first come, first served, at most
        `max_concurrent` running). Returns the run's status afterwards ('running' when claimed)."""
        self.reconcile()
        with self._tx() as con:
            r = con.execute("SELECT status, stop_requested FROM runs WHERE id=?", (run_id,)).fetchone()
            if r is None:
                raise KeyError(f"no run {run_id!r}")
            if r["status"] != "queued":
                return r["status"]
            if r["stop_requested"]:
                con.execute(
                    "UPDATE runs SET status='stopped', stop_requested=0, message='stopped while queued' WHERE id=?",
                    (run_id,),
                )
                return "stopped"
            running = con.execute("SELECT COUNT(*) FROM runs WHERE status='running'").fetchone()[0]
            free = max_concurrent - running
            if free <= 0:
                return "queued"
            ahead = [
                x[0]
                for x in con.execute(
                    "SELECT id FROM runs WHERE status='queued' ORDER BY created, id LIMIT ?", (free,)
                ).fetchall()
            ]
            if run_id not in ahead:
                return "queued"
            now = time.time()
            con.execute(
                "UPDATE runs SET status='running', started=?, heartbeat=?, pid=?, pid_start=?, host=?, "
                "message='' WHERE id=?",
                (now, now, os.getpid(), process_start_time(os.getpid()), socket.gethostname(), run_id),
            )
            return "running"

    def heartbeat(self, run_id: str, step: int, epoch: int, train_seconds: float) -> bool:
        """Record progress; returns True if a stop was requested. Raises `RunVanished` if the run was deleted."""
        with self._tx() as con:
            con.execute(
                "UPDATE runs SET heartbeat=?, step=?, epoch=?, train_seconds=? WHERE id=?",
                (time.time(), step, epoch, train_seconds, run_id),
            )
            r = con.execute("SELECT stop_requested FROM runs WHERE id=?", (run_id,)).fetchone()
        if r is None:
            raise RunVanished(f"run {run_id} was deleted while its worker ran")
        return bool(r[0])

    def stop_requested(self, run_id: str) -> bool:
        """Whether a stop was asked for (raises `RunVanished` if the run is gone)."""
        r = self._con().execute("SELECT stop_requested FROM runs WHERE id=?", (run_id,)).fetchone()
        if r is None:
            raise RunVanished(f"run {run_id} was deleted while its worker ran")
        return bool(r[0])

    def check_alive(self, run_id: str) -> None:
        """Raise `RunVanished` if the run's row is gone (a worker asks before writing a checkpoint)."""
        if not self.exists(run_id):
            raise RunVanished(f"run {run_id} was deleted while its worker ran")

    def request_stop(self, run_id: str) -> str:
        """Ask the worker to stop (it checkpoints first). Returns the status afterwards."""
        with self._tx() as con:
            r = con.execute("SELECT status FROM runs WHERE id=?", (check_run_id(run_id),)).fetchone()
            if r is None:
                raise KeyError(f"no run {run_id!r}")
            if r["status"] in ACTIVE:
                con.execute("UPDATE runs SET stop_requested=1 WHERE id=?", (run_id,))
            return r["status"]

    def prepare_resume(self, run_id: str) -> RunInfo:
        """stopped / failed → queued (the worker continues from the last checkpoint)."""
        self.reconcile()
        with self._tx() as con:
            r = con.execute("SELECT status FROM runs WHERE id=?", (check_run_id(run_id),)).fetchone()
            if r is None:
                raise KeyError(f"no run {run_id!r}")
            if r["status"] not in ("stopped", "failed"):
                raise ValueError(f"run {run_id} is {r['status']}; only stopped or failed runs can be resumed")
            con.execute(
                "UPDATE runs SET status='queued', stop_requested=0, message='resuming', traceback='', "
                "finished=NULL, pid=NULL, pid_start=NULL WHERE id=?",
                (run_id,),
            )
        return self.get(run_id)

    def finish(self, run_id: str, status: str, message: str = "", traceback: str = "") -> None:
        self.update(run_id, status=status, finished=time.time(), message=message, traceback=traceback, stop_requested=0)

    def finish_unless_stopped(self, run_id: str, message: str, stopped_message: str) -> str:
        """End a run that completed its steps: 'finished', or 'stopped' if a stop arrived meanwhile (during
        the end-of-run measurements) — one transaction, so a Stop is never lost. Returns the status."""
        with self._tx() as con:
            r = con.execute("SELECT stop_requested FROM runs WHERE id=?", (run_id,)).fetchone()
            if r is None:
                raise RunVanished(f"run {run_id} was deleted while its worker ran")
            status, msg = ("stopped", stopped_message) if r[0] else ("finished", message)
            con.execute(
                "UPDATE runs SET status=?, finished=?, message=?, traceback='', stop_requested=0 WHERE id=?",
                (status, time.time(), msg, run_id),
            )
        return status

    def reconcile(self) -> list[str]:
        """Mark runs whose worker process is gone as failed (metrics are kept). Returns their ids.

        A read-only store changes nothing (returns [])."""
        if self.read_only:
            return []
        rows = (
            self._con()
            .execute(
                "SELECT id, status, pid, pid_start, host, heartbeat, step FROM runs "
                "WHERE status IN ('queued','running')"
            )
            .fetchall()
        )
        host, now, dead = socket.gethostname(), time.time(), []
        for r in rows:
            if r["pid"] is None:
                continue  # not registered yet (a launch in progress)
            if r["host"] and r["host"] != host:
                gone = r["heartbeat"] is not None and now - r["heartbeat"] > STALE_HEARTBEAT_S
            else:
                gone = not pid_alive(r["pid"], r["pid_start"])
            if gone:
                dead.append((r["id"], r["status"], r["pid"], r["step"]))
        for run_id, status, pid, step in dead:
            what = (
                f"the worker process (pid {pid}) ended without reporting (killed, e.g. SIGKILL or out of "
                f"memory, or crashed hard)"
            )
            msg = (
                f"{what} at step {step}; the metrics written so far are kept; resume continues from the last checkpoint"
                if status == "running"
                else f"{what} before the run started"
            )
            with self._tx() as con:  # re-check inside the transaction: the worker may just have finished
                cur = con.execute("SELECT status, pid FROM runs WHERE id=?", (run_id,)).fetchone()
                if cur and cur["status"] == status and cur["pid"] == pid:
                    con.execute(
                        "UPDATE runs SET status='failed', finished=?, message=?, stop_requested=0 WHERE id=?",
                        (now, msg, run_id),
                    )
        return [d[0] for d in dead]

    def delete(self, run_id: str, force: bool = False, stop_timeout: float = 30.0) -> None:
        """Delete a run's rows and directory; an active run must be stopped first (or force=True).

        force=True on an active run stops its worker first (`stop_worker`: a stop request, then SIGTERM,
        then SIGKILL), so nothing keeps training, logging or checkpointing for the deleted id."""
        info = self.get(run_id)
        if info.active and not force:
            raise ValueError(f"run {run_id} is {info.status}; stop it before deleting it")
        if info.active:
            self.stop_worker(run_id, timeout=stop_timeout)
        with self._tx() as con:
            for table, col in (("metrics", "run_id"), ("artifacts", "run_id"), ("runs", "id")):
                con.execute(f"DELETE FROM {table} WHERE {col}=?", (run_id,))
            con.execute("UPDATE sweep_trials SET state='deleted' WHERE run_id=?", (run_id,))
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    def stop_worker(self, run_id: str, timeout: float = 30.0) -> bool:
        """Stop the worker of an active run and wait until its process is gone. Returns True if it is.

        A stop request first (the worker checkpoints and exits within its poll interval); past half of
        `timeout`, SIGTERM to its process group (the worker's own session: its loader processes too); past
        `timeout`, SIGKILL. A worker on another host can only be asked (its heartbeat is waited for)."""
        import signal

        info = self.get(run_id)
        if not info.active:
            return True
        self.request_stop(run_id)
        r = self._con().execute("SELECT pid, pid_start, host FROM runs WHERE id=?", (run_id,)).fetchone()
        if r is None or r["pid"] is None:
            return True
        pid, start = r["pid"], r["pid_start"]
        local = not r["host"] or r["host"] == socket.gethostname()
        if pid == os.getpid():
            return True  # this very process (an in-process worker): the request is all it needs
        t0, sent = time.monotonic(), None

        def alive() -> bool:
            if local:
                return pid_alive(pid, start)
            cur = self._con().execute("SELECT status FROM runs WHERE id=?", (run_id,)).fetchone()
            return bool(cur and cur[0] in ACTIVE)

        while alive():
            waited = time.monotonic() - t0
            if local and waited > timeout and sent != signal.SIGKILL:
                sent = signal.SIGKILL
            elif local and waited > timeout / 2 and sent is None:
                sent = signal.SIGTERM
            else:
                if waited > timeout + 10:
                    return False
                time.sleep(0.1)
                continue
            try:
                if os.getpgid(pid) == pid:
                    os.killpg(pid, sent)
                else:
                    os.kill(pid, sent)
            except (ProcessLookupError, PermissionError):
                pass
        return True

    # ------------------------------------------------------------------------------ metrics
    def log_metrics(self, run_id: str, rows: Iterable[tuple[int, str, float]]) -> None:
        """Insert (step, name, value) rows; a re-logged (step, name) replaces the old value.

        Raises `RunVanished` (writing nothing) if the run was deleted."""
        data = [(run_id, int(s), n, _real(v)) for s, n, v in rows]
        if not data:
            return
        with self._tx() as con:
            if con.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
                raise RunVanished(f"run {run_id} was deleted while its worker ran")
            con.executemany("INSERT OR REPLACE INTO metrics(run_id, step, name, value) VALUES (?, ?, ?, ?)", data)

    def truncate_metrics(self, run_id: str, after_step: int) -> int:
        """Drop metrics logged after `after_step` (a resume replays those steps from the checkpoint)."""
        with self._tx() as con:
            cur = con.execute("DELETE FROM metrics WHERE run_id=? AND step>?", (run_id, after_step))
            return cur.rowcount

    def metric_names(self, run_id: str) -> list[str]:
        rows = self._con().execute("SELECT DISTINCT name FROM metrics WHERE run_id=? ORDER BY name", (run_id,))
        return [r[0] for r in rows]

    def metrics(self, run_id: str, names: Iterable[str] | None = None, since_step: int | None = None) -> pd.DataFrame:
        """One row per step that logged anything, one column per metric (NaN where not measured)."""
        q, args = "SELECT step, name, value FROM metrics WHERE run_id=?", [run_id]
        if names is not None:
            names = list(names)
            q += f" AND name IN ({','.join('?' * len(names))})"
            args += names
        if since_step is not None:
            q += " AND step>?"
            args.append(since_step)
        rows = self._con().execute(q, args).fetchall()
        if not rows:
            return pd.DataFrame(columns=list(names or []), index=pd.Index([], name="step"), dtype=float)
        long = pd.DataFrame(rows, columns=["step", "name", "value"])
        long["value"] = pd.to_numeric(long["value"], errors="coerce")
        wide = long.pivot(index="step", columns="name", values="value").sort_index()
        wide.columns.name = None
        return wide

    # ------------------------------------------------------------------------------ artifacts
    def put_artifact(self, run_id: str, name: str, value: Any) -> None:
        with self._tx() as con:
            if con.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
                raise RunVanished(f"run {run_id} was deleted while its worker ran")
            con.execute(
                "INSERT OR REPLACE INTO artifacts(run_id, name, value) VALUES (?, ?, ?)",
                (run_id, name, json.dumps(value, allow_nan=True)),
            )

    def get_artifact(self, run_id: str, name: str, default: Any = None) -> Any:
        r = self._con().execute("SELECT value FROM artifacts WHERE run_id=? AND name=?", (run_id, name)).fetchone()
        return default if r is None else json.loads(r[0])

    def artifact_names(self, run_id: str) -> list[str]:
        return [r[0] for r in self._con().execute("SELECT name FROM artifacts WHERE run_id=? ORDER BY name", (run_id,))]

    # ------------------------------------------------------------------------------ sweeps
    def create_sweep(self, name: str, spec: dict, executor: str, trials: list[tuple[dict, dict]]) -> str:
        """Record a sweep and its trials ((swept values, RunConfig dict) each, all pending). Returns its id."""
        sweep_id = "sweep-" + new_run_id()
        with self._tx() as con:
            while con.execute("SELECT 1 FROM sweeps WHERE id=?", (sweep_id,)).fetchone():
                sweep_id = "sweep-" + new_run_id()
            con.execute(
                "INSERT INTO sweeps(id, name, spec, executor, status, created, n_trials) "
                "VALUES (?, ?, ?, ?, 'queued', ?, ?)",
                (sweep_id, name, json.dumps(spec, sort_keys=True), executor, time.time(), len(trials)),
            )
            con.executemany(
                "INSERT INTO sweep_trials(sweep_id, trial, params, config) VALUES (?, ?, ?, ?)",
                [
                    (sweep_id, i, json.dumps(p, sort_keys=True), json.dumps(c, sort_keys=True))
                    for i, (p, c) in enumerate(trials)
                ],
            )
        return sweep_id

    def get_sweep(self, sweep_id: str) -> SweepInfo:
        r = self._con().execute("SELECT * FROM sweeps WHERE id=?", (check_sweep_id(sweep_id),)).fetchone()
        if r is None:
            raise KeyError(f"no sweep {sweep_id!r} in {self.dir}")
        return _row_to_sweep(r)

    def list_sweeps(self, reconcile: bool = True) -> list[SweepInfo]:
        """All sweeps, newest first (sweeps whose driver died are marked failed first)."""
        if reconcile:
            self.reconcile_sweeps()
        return [_row_to_sweep(r) for r in self._con().execute("SELECT * FROM sweeps ORDER BY created DESC, id DESC")]

    def update_sweep(self, sweep_id: str, **fields: Any) -> None:
        allowed = {
            "status",
            "started",
            "finished",
            "heartbeat",
            "pid",
            "pid_start",
            "host",
            "stop_requested",
            "message",
        }
        self._update_row("sweeps", sweep_id, fields, allowed, SWEEP_STATUSES)

    def register_sweep_driver(self, sweep_id: str, pid: int | None = None) -> None:
        pid = os.getpid() if pid is None else pid
        self.update_sweep(
            sweep_id, pid=pid, pid_start=process_start_time(pid), host=socket.gethostname(), heartbeat=time.time()
        )

    def sweep_trials(self, sweep_id: str) -> list[TrialInfo]:
        """The sweep's trials in order, each with its run's status (None while pending)."""
        rows = (
            self._con()
            .execute(
                "SELECT t.trial, t.params, t.config, t.run_id, t.state, r.status FROM sweep_trials t "
                "LEFT JOIN runs r ON r.id = t.run_id WHERE t.sweep_id=? ORDER BY t.trial",
                (sweep_id,),
            )
            .fetchall()
        )
        return [TrialInfo(r[0], json.loads(r[1]), json.loads(r[2]), r[3], r[4], r[5]) for r in rows]

    def start_trial(self, sweep_id: str, trial: int, run_id: str) -> bool:
        """Attach `run_id` to a pending trial (False if the trial is no longer pending, e.g. cancelled)."""
        with self._tx() as con:
            cur = con.execute(
                "UPDATE sweep_trials SET run_id=?, state='started' WHERE sweep_id=? AND trial=? AND state='pending'",
                (run_id, sweep_id, trial),
            )
            return cur.rowcount == 1

    def cancel_pending_trials(self, sweep_id: str) -> int:
        with self._tx() as con:
            return con.execute(
                "UPDATE sweep_trials SET state='cancelled' WHERE sweep_id=? AND state='pending'", (sweep_id,)
            ).rowcount

    def request_sweep_stop(self, sweep_id: str) -> str:
        """Stop a sweep: no new trial starts, and every active trial's run is asked to stop (it
        checkpoints first). Returns the sweep's status afterwards."""
        info = self.get_sweep(sweep_id)
        if info.status in ("queued", "running"):
            self.update_sweep(sweep_id, stop_requested=1)
            if info.pid is None or info.status == "queued":
                self.cancel_pending_trials(sweep_id)
        for t in self.sweep_trials(sweep_id):
            if t.run_id and t.run_status in ACTIVE:
                self.request_stop(t.run_id)
        return self.get_sweep(sweep_id).status

    def reconcile_sweeps(self) -> list[str]:
        """Mark sweeps whose driver process is gone as failed (their pending trials are cancelled;
        trials already started keep running in their own workers)."""
        rows = (
            self._con()
            .execute("SELECT id, pid, pid_start, host, heartbeat FROM sweeps WHERE status IN ('queued','running')")
            .fetchall()
        )
        if self.read_only:
            return []
        host, now, dead = socket.gethostname(), time.time(), []
        for r in rows:
            if r["pid"] is None:
                continue
            if r["host"] and r["host"] != host:
                gone = r["heartbeat"] is not None and now - r["heartbeat"] > STALE_HEARTBEAT_S
            else:
                gone = not pid_alive(r["pid"], r["pid_start"])
            if gone:
                dead.append((r["id"], r["pid"]))
        for sweep_id, pid in dead:
            with self._tx() as con:
                cur = con.execute("SELECT status, pid FROM sweeps WHERE id=?", (sweep_id,)).fetchone()
                if cur and cur["status"] in ("queued", "running") and cur["pid"] == pid:
                    n = con.execute(
                        "UPDATE sweep_trials SET state='cancelled' WHERE sweep_id=? AND state='pending'", (sweep_id,)
                    ).rowcount
                    con.execute(
                        "UPDATE sweeps SET status='failed', finished=?, message=? WHERE id=?",
                        (
                            now,
                            f"the sweep's driver process (pid {pid}) ended without reporting; {n} trial(s) "
                            f"not started were cancelled, started ones keep their runs",
                            sweep_id,
                        ),
                    )
        return [d[0] for d in dead]

    def delete_sweep(self, sweep_id: str, force: bool = False) -> None:
        """Delete a sweep, its trials and their runs (an active sweep must be stopped first, or force=True)."""
        info = self.get_sweep(sweep_id)
        if info.status in ("queued", "running") and not force:
            raise ValueError(f"sweep {sweep_id} is {info.status}; stop it before deleting it")
        trials = self.sweep_trials(sweep_id)
        if not force and any(t.run_status in ACTIVE for t in trials):
            raise ValueError(f"sweep {sweep_id} still has running trials; stop it and wait, or force")
        for t in trials:
            if t.run_id and self.exists(t.run_id):
                self.delete(t.run_id, force=force)
        with self._tx() as con:
            con.execute("DELETE FROM sweep_trials WHERE sweep_id=?", (sweep_id,))
            con.execute("DELETE FROM sweeps WHERE id=?", (sweep_id,))


@dataclass
class SweepInfo:
    id: str
    name: str
    spec: dict
    executor: str
    status: str
    created: float
    started: float | None
    finished: float | None
    heartbeat: float | None
    pid: int | None
    n_trials: int
    stop_requested: bool
    message: str

    @property
    def active(self) -> bool:
        return self.status in ("queued", "running")


@dataclass
class TrialInfo:
    trial: int
    params: dict  # the swept values of this trial
    config: dict  # its full RunConfig
    run_id: str | None
    state: str  # pending | started | cancelled | deleted
    run_status: str | None  # the run's status once started

    @property
    def status(self) -> str:
        """pending / cancelled / deleted, or the run's status (queued, running, finished, failed, stopped)."""
        return self.run_status if self.state == "started" and self.run_status else self.state


def _row_to_sweep(r: sqlite3.Row) -> SweepInfo:
    return SweepInfo(
        id=r["id"],
        name=r["name"],
        spec=json.loads(r["spec"]),
        executor=r["executor"],
        status=r["status"],
        created=r["created"],
        started=r["started"],
        finished=r["finished"],
        heartbeat=r["heartbeat"],
        pid=r["pid"],
        n_trials=r["n_trials"],
        stop_requested=bool(r["stop_requested"]),
        message=r["message"],
    )


def _real(v: Any) -> float | None:
    """SQLite stores NaN as NULL; keep ±inf. Non-numbers become NULL."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


# ------------------------------------------------------------------------------------------- export
EXPORT_COLUMNS = (
    "step",
    "epoch",
    "loss",
    "accuracy",
    "lr",
    "rho",
    "grad_norm",
    "perturbed_grad_norm",
    "gamma",
    "cos",
    "perturbation_norm",
    "step_time",
    "images_per_s",
    "top_eig",
    "gd_edge",
    "sam_edge",
    "hessian_trace",
    "train_loss",
    "train_acc",
    "test_loss",
    "test_acc",
    "gap",
    "dist_w0",
    "twin_distance",
)


def export_frame(store: RunStore, run_id: str) -> pd.DataFrame:
    """One row per logged step; the standard columns first (empty where not measured), then any others."""
    info = store.get(run_id)
    df = store.metrics(run_id).reset_index()
    if df.empty:
        df = pd.DataFrame(columns=["step"])
    spe = info.steps_per_epoch or 0
    if "epoch" not in df.columns or df["epoch"].isna().any():
        computed = df["step"] / spe if spe else pd.Series([float("nan")] * len(df))
        df["epoch"] = df["epoch"].fillna(computed) if "epoch" in df.columns else computed
    for c in EXPORT_COLUMNS:
        if c not in df.columns:
            df[c] = float("nan")
    extra = [c for c in df.columns if c not in EXPORT_COLUMNS]
    return df[list(EXPORT_COLUMNS) + sorted(extra)]


def export_csv(store: RunStore, run_id: str, path_or_buf=None) -> str | None:
    df = export_frame(store, run_id)
    return df.to_csv(path_or_buf, index=False, na_rep="")
