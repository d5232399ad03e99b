"""The run store: WAL SQLite, statuses and the queue, dead-worker detection, metrics round trip, export."""

import math
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from sam_core.cli import runs as runs_cli
from sam_core.training.store import (
    EXPORT_COLUMNS,
    RunStore,
    check_run_id,
    export_frame,
    pid_alive,
    process_start_time,
)


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def test_create_get_list_and_wal(store):
    a = store.create_run({"optimizer": "sam", "model": "lenet5"}, name="a", total_steps=10, steps_per_epoch=5)
    b = store.create_run({"optimizer": "sgd"}, name="b")
    info = store.get(a)
    assert info.status == "queued" and info.config["model"] == "lenet5" and info.total_steps == 10
    assert [r.id for r in store.list_runs()] == [b, a]  # newest first
    assert store.run_dir(a).is_dir()
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    with pytest.raises(KeyError):
        store.get("20000101-000000-abcdef")


def test_run_ids_cannot_escape_the_folder(store):
    for bad in ("../etc", "20250101-120000-a1b2c3/../../x", "", "x" * 22):
        with pytest.raises(ValueError, match="run id"):
            check_run_id(bad)
    with pytest.raises(ValueError):
        store.run_dir("../../tmp")


def test_readers_are_not_blocked_by_a_writer(store, tmp_path):
    rid = store.create_run({"optimizer": "sam"})
    writer = sqlite3.connect(store.path, timeout=0.1, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE runs SET step=5 WHERE id=?", (rid,))
    t0 = time.monotonic()
    other = RunStore(tmp_path / "runs")  # a second process's view
    assert other.get(rid).step == 0  # sees the last committed state, without waiting
    assert time.monotonic() - t0 < 1.0
    writer.execute("COMMIT")
    assert other.get(rid).step == 5


def test_metrics_round_trip_nan_inf_and_replace(store):
    rid = store.create_run({"optimizer": "sam"}, steps_per_epoch=4)
    store.log_metrics(
        rid,
        [(1, "loss", 2.5), (1, "gamma", 1.1), (2, "loss", float("nan")), (3, "loss", math.inf), (4, "top_eig", 7.0)],
    )
    store.log_metrics(rid, [(1, "loss", 2.0)])  # a re-logged (step, name) replaces
    df = store.metrics(rid)
    assert list(df.index) == [1, 2, 3, 4]
    assert df.loc[1, "loss"] == 2.0 and df.loc[1, "gamma"] == 1.1
    assert math.isnan(df.loc[2, "loss"]) and df.loc[3, "loss"] == math.inf
    assert math.isnan(df.loc[1, "top_eig"]) and df.loc[4, "top_eig"] == 7.0
    assert list(store.metrics(rid, ["gamma"]).columns) == ["gamma"]
    assert list(store.metrics(rid, since_step=2).index) == [3, 4]
    assert store.truncate_metrics(rid, 2) == 2
    assert list(store.metrics(rid).index) == [1, 2]
    empty = store.metrics(store.create_run({}), ["loss"])
    assert empty.empty and list(empty.columns) == ["loss"]


def test_export_columns_and_empty_cells(store, tmp_path):
    rid = store.create_run({"optimizer": "sam"}, steps_per_epoch=10)
    store.log_metrics(
        rid,
        [
            (10, "loss", 1.5),
            (10, "gamma", 0.9),
            (10, "epoch", 1.0),
            (15, "top_eig", 3.0),
            (15, "gd_edge", 40.0),
            (15, "sam_edge", 30.0),
            (15, "custom", 1.0),
        ],
    )
    df = export_frame(store, rid)
    assert list(df.columns[: len(EXPORT_COLUMNS)]) == list(EXPORT_COLUMNS) and "custom" in df.columns
    assert df["epoch"].tolist() == [1.0, 1.5]  # logged, or step / steps_per_epoch where not logged
    out = tmp_path / "out.csv"
    assert runs_cli.main(["--runs-dir", str(store.dir), "export", rid, "--csv", str(out)]) == 0
    text = out.read_text().splitlines()
    assert text[0].startswith("step,epoch,loss,accuracy,lr,rho,grad_norm,perturbed_grad_norm,gamma,cos")
    back = pd.read_csv(out)
    assert back.loc[0, "loss"] == 1.5 and pd.isna(back.loc[0, "top_eig"]) and back.loc[1, "sam_edge"] == 30.0


def test_queue_first_come_first_served(store):
    a = store.create_run({})
    time.sleep(0.01)
    b = store.create_run({})
    time.sleep(0.01)
    c = store.create_run({})
    for r in (a, b, c):
        store.register_worker(r)  # this (live) process owns all three
    assert store.claim_slot(b, max_concurrent=1) == "queued"  # a is first in line
    assert store.claim_slot(a, max_concurrent=1) == "running"
    assert store.claim_slot(b, max_concurrent=1) == "queued"  # no free slot
    assert store.claim_slot(c, max_concurrent=2) == "queued"  # b is ahead of c
    assert store.claim_slot(b, max_concurrent=2) == "running"
    store.finish(a, "finished")
    assert store.claim_slot(c, max_concurrent=2) == "running"
    assert sum(r.status == "running" for r in store.list_runs()) == 2


def test_stop_while_queued_and_resume_rules(store):
    a = store.create_run({})
    store.register_worker(a)
    assert store.request_stop(a) == "queued"
    assert store.claim_slot(a, 1) == "stopped"
    info = store.prepare_resume(a)
    assert info.status == "queued" and not info.stop_requested
    with pytest.raises(ValueError, match="only stopped or failed"):
        store.prepare_resume(a)


def test_dead_worker_is_marked_failed_and_metrics_kept(store):
    rid = store.create_run({})
    proc = _sleeper()
    try:
        store.register_worker(rid, proc.pid)
        store.update(rid, status="running", step=7)
        store.log_metrics(rid, [(5, "loss", 1.0), (7, "gamma", 1.2)])
        assert store.reconcile() == [] and store.get(rid).status == "running"  # alive: left alone
        proc.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 5
        while pid_alive(proc.pid) and time.monotonic() < deadline:  # not reaped: a zombie counts as dead
            time.sleep(0.02)
        assert not pid_alive(proc.pid)
        runs = store.list_runs()  # listing reconciles
        info = [r for r in runs if r.id == rid][0]
        assert info.status == "failed" and "killed" in info.message and "step 7" in info.message
        assert list(store.metrics(rid).index) == [5, 7]
    finally:
        proc.kill()
        proc.wait()


def test_pid_reuse_is_not_mistaken_for_the_worker(store):
    rid = store.create_run({})
    store.register_worker(rid)  # our own pid …
    assert store.get(rid).pid and process_start_time(store.get(rid).pid) != "1"
    store.update(rid, status="running", pid_start="1")  # … but a different start time: another process
    store.reconcile()
    assert store.get(rid).status == "failed"


def test_delete(store):
    rid = store.create_run({})
    store.log_metrics(rid, [(1, "loss", 1.0)])
    store.put_artifact(rid, "x", {"a": [1, 2]})
    assert store.get_artifact(rid, "x") == {"a": [1, 2]}
    store.register_worker(rid)
    with pytest.raises(ValueError, match="stop it before deleting"):
        store.delete(rid)
    store.finish(rid, "stopped")
    store.delete(rid)
    assert not store.exists(rid) and not store.run_dir(rid).exists()
    assert store.metrics(rid).empty and store.get_artifact(rid, "x") is None


def test_runs_cli_list_stop_delete(store, capsys):
    rid = store.create_run({"optimizer": "ssam", "model": "lenet5", "dataset": "cifar10"}, total_steps=4)
    assert runs_cli.main(["--runs-dir", str(store.dir), "list"]) == 0
    out = capsys.readouterr().out
    assert rid in out and "ssam" in out and "queued" in out
    store.register_worker(rid)
    assert runs_cli.main(["stop", rid, "--runs-dir", str(store.dir)]) == 0
    assert store.get(rid).stop_requested
    assert runs_cli.main(["delete", rid, "--runs-dir", str(store.dir)]) == 2  # still active
    assert "stop it before deleting" in capsys.readouterr().err
    assert runs_cli.main(["delete", rid, "--force", "--runs-dir", str(store.dir)]) == 0
    assert runs_cli.main(["show", "bad/../id", "--runs-dir", str(store.dir)]) == 2
