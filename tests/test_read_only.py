"""SAMLAB_READ_ONLY=1 writes nothing (issue 16, item 2): the runs root is byte-for-byte the same after
the Training lab, Compare runs and Sweeps pages were driven through every folder box (the root, a new
folder inside it, a nested path, one outside it, an existing sub-store), every button and checkbox they
show, and after the read-only CLI commands. A folder without a store says "no runs here" and is not
created; the SQLite store gains no -wal/-shm file.
"""

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_cli_errors import run_inprocess

from sam_core.training import RunStore
from sam_core.training.store import StoreMissing, _ro_uri
from sam_core.training.sweeps import SweepSpec, create

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"pages/training.py": "tl", "pages/compare_runs.py": "cr", "pages/training_sweeps.py": "sw"}
FOLDERS = [".", "new-folder", "deep/new/tree", "sub", "../../etc", "/tmp", "."]


def tree(root: Path) -> dict:
    """Every path under `root` with its bytes' hash (folders: 'dir'), and its mode."""
    out = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(root))] = (
            "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest(),
            st.st_mode,
        )
    return out


def _fill(store: RunStore) -> tuple[str, str]:
    """One finished run with metrics and artifacts, one stopped one, and a sweep whose trial is the first."""
    done = store.create_run(
        {"optimizer": "sam", "model": "lenet5", "dataset": "cifar10", "hparams": {"rho": 0.05}},
        name="finished-run",
        total_steps=4,
        steps_per_epoch=2,
    )
    store.log_metrics(done, [(s, k, 1.0 / s) for s in range(1, 5) for k in ("loss", "gamma", "accuracy")])
    store.log_metrics(done, [(2, "test_acc", 0.5), (4, "test_acc", 0.6), (4, "top_eig", 3.0)])
    store.put_artifact(done, "top_eigenvalues", {"step": 4, "values": [3.0, 2.0], "n_hvp": 9, "converged": True})
    store.finish(done, "finished", message="finished 4 steps")
    stopped = store.create_run(
        {"optimizer": "ssam", "model": "lenet5", "dataset": "cifar10"}, name="stopped-run", total_steps=4
    )
    store.finish(stopped, "stopped", message="stopped at step 2")
    spec = SweepSpec.from_dict(
        {"name": "ro", "base": {"dataset": "cifar10", "subset": 32, "batch_size": 16}, "params": {"lr": [0.1]}}
    ).validate()
    sid = create(store, spec)
    store.start_trial(sid, 0, done)
    store.update_sweep(sid, status="finished")
    return done, stopped


@pytest.fixture()
def root(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    data = tmp_path / "data"
    data.mkdir()
    store = RunStore(runs)
    ids = _fill(store)
    store.close()
    sub = RunStore(runs / "sub")
    sub.create_run({"optimizer": "sgd"}, name="sub-run")
    sub.close()
    for extra in ("runs.sqlite-wal", "runs.sqlite-shm"):  # closed cleanly: a plain database file
        assert not (runs / extra).exists()
    monkeypatch.setenv("SAMLAB_RUNS_DIR", str(runs))
    monkeypatch.setenv("SAMLAB_DATA", str(data))
    monkeypatch.setenv("SAMLAB_READ_ONLY", "1")
    monkeypatch.setenv("SAMLAB_OFFLINE", "1")
    monkeypatch.delenv("SAMLAB_DEBUG", raising=False)  # debug re-raises: an in-process crash would look like exit 0
    return tmp_path, runs, ids


def _click_everything(at: AppTest) -> None:
    """Tick every checkbox (delete confirmations, options), then press every enabled button."""
    for cb in list(at.checkbox):
        cb.check()
    at.run()
    for key in [b.key for b in at.button if not b.disabled and b.key]:
        at.button(key=key).click().run()
        assert not at.exception, at.exception


def test_read_only_pages_write_nothing(root):
    base, runs, (done, stopped) = root
    before = tree(base)
    seen_no_runs = set()
    for page, prefix in PAGES.items():
        at = AppTest.from_file(str(ROOT / page), default_timeout=60)
        if prefix == "tl":
            at.session_state["tl_show"] = [done, stopped]
        at.run()
        assert not at.exception, (page, at.exception)
        _click_everything(at)
        for folder in FOLDERS:
            at.text_input(key=f"{prefix}_runs_dir").set_value(folder).run()
            assert not at.exception, (page, folder, at.exception)
            if any("No runs here" in i.value for i in at.info):
                seen_no_runs.add((page, folder))
            _click_everything(at)
            if prefix in ("tl", "sw"):
                at.text_input(key=f"{prefix}_data_dir").set_value(folder).run()
                assert not at.exception, (page, folder, at.exception)
        labels = {b.label for b in at.button}
        assert not labels & {"Launch sweep", "Stop sweep"}, labels
        assert not {lab.split(" ")[0] for lab in labels} & {"Stop", "Resume", "Delete"}, labels  # "Stop <run>" too
    assert tree(base) == before  # nothing created, written or deleted anywhere under the roots
    assert not (runs / "new-folder").exists() and not (runs / "deep").exists()
    for page in PAGES:
        assert (page, "new-folder") in seen_no_runs and (page, "deep/new/tree") in seen_no_runs


def test_read_only_store_reads_and_refuses_writes(root):
    base, runs, (done, _) = root
    before = tree(base)
    with pytest.raises(StoreMissing, match="no runs here"):
        RunStore(runs / "nowhere", read_only=True)
    with pytest.raises(StoreMissing, match="no runs here"):
        RunStore(base / "data", read_only=True)  # a folder without a store
    ro = RunStore(runs, read_only=True)
    assert {r.id for r in ro.list_runs()} >= {done} and ro.metrics(done).shape[0] == 4
    assert len(ro.list_sweeps()) == 1
    for write in (
        lambda: ro.create_run({"optimizer": "sam"}),
        lambda: ro.update(done, message="x"),
        lambda: ro.delete(done),
        lambda: ro.log_metrics(done, [(9, "loss", 1.0)]),
    ):
        with pytest.raises(ValueError, match="read-only"):
            write()
    con = sqlite3.connect(_ro_uri(ro.path), uri=True)  # the connection itself refuses writes too
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        con.execute("DELETE FROM runs")
    con.close()
    assert tree(base) == before


@pytest.mark.slow
def test_read_only_cli_reads_and_refuses_every_write(root, monkeypatch):
    base, runs, (done, _) = root
    before = tree(base)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    monkeypatch.chdir(base)

    def process(*args):  # a real interpreter start, as an admin's shell runs it
        p = subprocess.run(
            [sys.executable, "-m", *args], capture_output=True, text=True, timeout=120, env=env, cwd=str(base)
        )
        return p.returncode, p.stderr, p.stdout

    def in_process(module, *argv):  # the same `main(argv)`, in this interpreter (SAMLAB_READ_ONLY is read per call)
        return run_inprocess(module, list(argv))

    # Two commands as real processes (one read, one refused); the other eight call the CLIs' `main` here:
    # ten interpreters each importing torch took 59 s of a busy CI run for the same checks.
    listed = process("sam_core.cli.runs", "list")
    refused = [process("sam_core.cli.train", "--epochs", "1")]
    shown = in_process("sam_core.cli.runs", "show", done)
    exported = in_process("sam_core.cli.runs", "export", done, "--csv", "-")
    swept = in_process("sam_core.cli.sweep", "--list")
    refused += [
        in_process("sam_core.cli.runs", "delete", done, "--force"),
        in_process("sam_core.cli.runs", "stop", done),
        in_process("sam_core.cli.runs", "resume", done),
        in_process("sam_core.cli.runs", "list", "--runs-dir", str(runs / "new")),
        in_process("sam_core.cli.sweep", "--stop", "sweep-20250101-120000-abcdef"),
    ]
    for code, err, _ in (listed, shown, exported, swept):
        assert code == 0 and "Traceback" not in err, err
    assert done in listed[2] and done in shown[2], (listed[2], shown[2])
    assert exported[2].startswith("step,"), exported[1]
    assert swept[2].startswith("sweep-") and " ro " in swept[2], swept[2]  # the root's sweep: its id, its name
    for code, err, _ in refused:
        assert code != 0 and "Traceback" not in err and err.count("error:") == 1, err
    assert tree(base) == before
