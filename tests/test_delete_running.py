"""Deleting a running run stops its worker first; a worker whose run vanished exits at once; a Stop
during the end-of-run phase is honoured (issue 16, items 4 and 6).

* `python -m sam_core.cli.runs delete ID --force` on a real training worker: the command returns after the
  worker process (and its session) is gone, and no row, metric, artifact or checkpoint of the id is left;
* a worker whose rows are deleted behind its back (no stop request at all) exits on its next poll,
  writing no further metric row and no checkpoint;
* in process: the run vanishing at an epoch end stops the trainer before its checkpoint; a Stop that
  arrives after the last step's poll ends the run "stopped", and a resume then finishes it.
"""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import write_fake_cifar10

from sam_core.training import RunConfig, RunStore
from sam_core.training.store import pid_alive
from sam_core.training.worker import create, execute, execute_claimed, spawn_worker

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    base = tmp_path_factory.mktemp("del")
    write_fake_cifar10(base / "data", n_train=160, n_test=32, seed=0)
    mp = pytest.MonkeyPatch()
    mp.setenv("SAMLAB_DATA", str(base / "data"))
    mp.setenv("SAMLAB_OFFLINE", "1")
    mp.setenv("SAMLAB_MAX_RUNS", "2")
    mp.setenv("OMP_NUM_THREADS", "1")
    mp.delenv("SAMLAB_READ_ONLY", raising=False)
    yield base
    mp.undo()


def _cfg(**kw) -> RunConfig:
    base = dict(
        dataset="cifar10",
        model="lenet5",
        optimizer="sam",
        hparams={"rho": 0.05},
        lr=0.05,
        subset=160,
        batch_size=16,
        epochs=200,
        log_every=1,
        hessian_every=0,
        final_top_k=0,
        final_density=False,
        eval_train_size=16,
        test_subset=16,
        poll_seconds=0.0,
        download=False,
    )
    base.update(kw)
    return RunConfig(**base)


def _rows(db: Path, run_id: str) -> dict:
    con = sqlite3.connect(db)
    try:
        return {
            t: con.execute(f"SELECT COUNT(*) FROM {t} WHERE {c}=?", (run_id,)).fetchone()[0]
            for t, c in (("runs", "id"), ("metrics", "run_id"), ("artifacts", "run_id"))
        }
    finally:
        con.close()


def _processes_naming(text: str) -> list[int]:
    """Live (non-zombie) processes whose command line contains `text`."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace") and pid_alive(
                    int(d.name)
                ):
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def _wait_running(store: RunStore, run_id: str, min_step: int, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = store.get(run_id)
        if info.status == "running" and info.step >= min_step:
            return info
        assert info.status in ("queued", "running"), (info.status, info.message, info.traceback)
        time.sleep(0.05)
    raise AssertionError(f"{run_id} did not reach step {min_step}")


@pytest.mark.slow
def test_cli_delete_force_stops_the_worker_and_leaves_nothing(data, tmp_path):
    store = RunStore(tmp_path / "runs")
    rid = create(store, _cfg())
    proc = spawn_worker(store, rid)
    info = _wait_running(store, rid, min_step=3)
    assert info.pid == proc.pid and store.metrics(rid).shape[0] >= 3
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "sam_core.cli.runs", "delete", rid, "--force", "--runs-dir", str(store.dir)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=str(ROOT),
    )
    assert out.returncode == 0 and f"deleted {rid}" in out.stdout, out.stderr
    proc.wait(timeout=5)  # already gone when the command returned: this only reaps it
    left = _processes_naming(rid)
    assert not left and not pid_alive(info.pid), left
    assert _rows(store.path, rid) == {"runs": 0, "metrics": 0, "artifacts": 0}
    assert not store.run_dir(rid).exists()  # no checkpoint, no log: the worker wrote nothing after the delete


@pytest.mark.slow
def test_a_worker_whose_run_vanished_exits_and_writes_nothing(data, tmp_path):
    store = RunStore(tmp_path / "runs")
    rid = create(store, _cfg())
    proc = spawn_worker(store, rid)
    _wait_running(store, rid, min_step=3)
    con = sqlite3.connect(store.path)  # another tool deletes the run behind the worker's back: no stop request
    with con:
        for t, c in (("metrics", "run_id"), ("artifacts", "run_id"), ("runs", "id")):
            con.execute(f"DELETE FROM {t} WHERE {c}=?", (rid,))
    con.close()
    shutil.rmtree(store.run_dir(rid))
    code = proc.wait(timeout=60)  # a bound for a broken worker, not a speed claim (it polls every step)
    assert code != 0  # it did not finish: it noticed the run was gone and left
    assert _rows(store.path, rid) == {"runs": 0, "metrics": 0, "artifacts": 0}
    assert not store.run_dir(rid).exists()  # no checkpoint re-created


def test_vanishing_at_an_epoch_end_stops_before_the_checkpoint(data, tmp_path):
    store = RunStore(tmp_path / "runs")
    rid = create(store, _cfg(epochs=3, subset=32))
    assert store.claim_slot(rid, max_concurrent=1) == "running"

    def vanish(epoch, step, metrics):
        if epoch == 0:
            with store._tx() as con:  # what a delete that does not stop the worker would do
                for t, c in (("metrics", "run_id"), ("artifacts", "run_id"), ("runs", "id")):
                    con.execute(f"DELETE FROM {t} WHERE {c}=?", (rid,))
            shutil.rmtree(store.run_dir(rid))
        return False

    assert execute_claimed(store, rid, _cfg(epochs=3, subset=32), on_epoch=vanish) == "deleted"
    assert _rows(store.path, rid) == {"runs": 0, "metrics": 0, "artifacts": 0}
    assert not store.run_dir(rid).exists()


def test_a_stop_after_the_last_step_is_honoured_and_resume_finishes(data, tmp_path):
    store = RunStore(tmp_path / "runs")
    cfg = _cfg(epochs=2, subset=32, final_top_k=2, final_density=False, hessian_batch=16)
    rid = create(store, cfg)

    def stop_at_the_end(epoch, step, metrics):
        if epoch == cfg.epochs - 1:
            store.request_stop(rid)  # after the last step's poll: only the end-of-run phase can see it
        return False

    assert store.claim_slot(rid, max_concurrent=1) == "running"
    assert execute_claimed(store, rid, cfg, on_epoch=stop_at_the_end) == "stopped"
    info = store.get(rid)
    assert info.status == "stopped" and "end-of-run" in info.message and info.step == 4
    assert store.get_artifact(rid, "top_eigenvalues") is None  # the end-of-run measurement was skipped
    store.prepare_resume(rid)
    assert execute(store, rid, max_concurrent=1) == "finished"
    done = store.get(rid)
    assert done.status == "finished" and done.step == 4
    assert len(store.get_artifact(rid, "top_eigenvalues")["values"]) == 2


def test_finish_unless_stopped_keeps_a_stop_that_came_during_the_end_phase(tmp_path):
    store = RunStore(tmp_path / "runs")
    a = store.create_run({"optimizer": "sam"})
    b = store.create_run({"optimizer": "sam"})
    for r in (a, b):
        store.register_worker(r)
        assert store.claim_slot(r, max_concurrent=2) == "running"
    store.request_stop(a)
    assert store.finish_unless_stopped(a, "finished 4 steps", "stopped at the end") == "stopped"
    assert store.finish_unless_stopped(b, "finished 4 steps", "stopped at the end") == "finished"
    assert (store.get(a).status, store.get(a).message) == ("stopped", "stopped at the end")
    assert (store.get(b).status, store.get(b).stop_requested) == ("finished", False)


def test_store_delete_force_in_process_kills_a_worker_that_ignores_the_stop(tmp_path):
    """A worker that never polls (stuck) is sent SIGTERM, then SIGKILL, before its rows go."""
    store = RunStore(tmp_path / "runs")
    rid = store.create_run({"optimizer": "sam"})
    stuck = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, "
            "signal.SIG_IGN); print('ready', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert stuck.stdout.readline().strip() == b"ready"  # SIGTERM is ignored from here on
    store.register_worker(rid, stuck.pid)
    store.update(rid, status="running")
    store.delete(rid, force=True, stop_timeout=1.0)
    assert stuck.wait(timeout=10) == -signal.SIGKILL
    assert not store.exists(rid)


@pytest.mark.slow
def test_training_page_delete_stops_the_running_worker_first(data, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SAMLAB_RUNS_DIR", str(tmp_path / "runs"))
    store = RunStore(tmp_path / "runs")
    rid = create(store, _cfg())
    proc = spawn_worker(store, rid)
    info = _wait_running(store, rid, min_step=3)
    at = AppTest.from_file(str(ROOT / "pages" / "training.py"), default_timeout=90)
    at.session_state["tl_show"] = [rid]
    at.run()
    assert not at.exception, at.exception
    at.checkbox(key=f"tl_delsure_{rid}").check().run()
    at.button(key=f"tl_del_{rid}").click().run()
    assert not at.exception, at.exception
    proc.wait(timeout=5)  # gone before the page went on: this only reaps it
    assert not pid_alive(info.pid) and not _processes_naming(rid)
    assert _rows(store.path, rid) == {"runs": 0, "metrics": 0, "artifacts": 0}
    assert not store.run_dir(rid).exists()


def test_opening_the_store_again_keeps_this_process_sqlite_locks(tmp_path):
    """Inspecting runs.sqlite (every RunStore() does, for corrupt/foreign files) must not drop the POSIX
    locks this process's open connections hold: else another process closing its connection thinks it
    is the last one and deletes the live WAL under us ('disk I/O error' here)."""
    store = RunStore(tmp_path / "runs")
    rid = store.create_run({"optimizer": "sam"})
    RunStore(tmp_path / "runs")  # a second store on the same folder (a page, a CLI call in this process)
    RunStore(tmp_path / "runs", read_only=True).list_runs()
    code = (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA journal_mode=WAL'); "
        "c.execute('UPDATE runs SET message=? WHERE id=?', ('other process', sys.argv[2])); c.commit(); c.close()"
    )
    subprocess.run([sys.executable, "-c", code, str(store.path), rid], check=True, timeout=60)
    assert Path(str(store.path) + "-wal").exists() and Path(str(store.path) + "-shm").exists()
    assert store.get(rid).message == "other process"
    store.log_metrics(rid, [(1, "loss", 0.5)])
    assert store.metrics(rid).loc[1, "loss"] == 0.5
