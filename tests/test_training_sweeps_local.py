"""Sweeps end to end on this machine: real worker processes train a tiny LeNet on a tiny CIFAR-10.

* `python -m sam_core.cli.sweep --config sweep.json` runs a 4-trial grid to completion with the local run
  queue; every trial is a finished run of the sweep's group, and the sweep table holds each run's own
  final numbers (read back independently from the store);
* a trial whose config makes its worker raise (a batch larger than the training set on disk) is
  failed with its traceback, the other trial finishes, and the command exits 1;
* the Sweeps page shows a sweep as a table, a heatmap and parallel coordinates, refuses an invalid
  form, launches a sweep (its driver process) and stops it: running trials stop, the ones not
  started are cancelled.
"""

import json
import os
import subprocess
import sys
import time

import pytest
from fakes import write_fake_cifar10
from streamlit.testing.v1 import AppTest

from sam_core.training import RunStore
from sam_core.training.sweeps import sweep_frame

pytestmark = pytest.mark.slow  # worker processes; `make test` runs them

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {
    "dataset": "cifar10",
    "download": False,
    "model": "lenet5",
    "epochs": 1,
    "batch_size": 32,
    "log_every": 1,
    "hessian_every": 2,
    "hessian_batch": 16,
    "final_top_k": 1,
    "final_density": False,
    "eval_train_size": 32,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("sweep")
    write_fake_cifar10(base / "data", n_train=96, n_test=32, seed=0)
    (base / "runs").mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("SAMLAB_DATA", str(base / "data"))
    mp.setenv("SAMLAB_RUNS_DIR", str(base / "runs"))
    mp.setenv("SAMLAB_OFFLINE", "1")
    mp.setenv("SAMLAB_MAX_RUNS", "2")
    mp.setenv("OMP_NUM_THREADS", "1")
    yield base
    mp.undo()


def run_cli(env, spec: dict, *extra):
    path = env / f"sweep{time.monotonic_ns()}.json"
    path.write_text(json.dumps(spec))
    out = subprocess.run(
        [sys.executable, "-m", "sam_core.cli.sweep", "--config", str(path), "--runs-dir", str(env / "runs"), *extra],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=dict(os.environ),
    )
    return out, out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""


@pytest.fixture(scope="module")
def grid_sweep(env):
    spec = {
        "name": "grid4",
        "base": dict(TINY, data_dir=str(env / "data")),
        "params": {"optimizer": ["sam", "ssam"], "rho": [0.02, 0.1]},
    }
    out, sweep_id = run_cli(env, spec)
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout
    return RunStore(env / "runs"), sweep_id, out.stdout


def test_four_trial_grid_completes_locally(grid_sweep):
    store, sid, stdout = grid_sweep
    info = store.get_sweep(sid)
    assert info.status == "finished" and info.executor == "local" and info.n_trials == 4
    trials = store.sweep_trials(sid)
    assert [t.status for t in trials] == ["finished"] * 4
    assert [(t.params["optimizer"], t.params["rho"]) for t in trials] == [
        ("sam", 0.02),
        ("sam", 0.1),
        ("ssam", 0.02),
        ("ssam", 0.1),
    ]
    runs = {r.id: r for r in store.list_runs()}
    for t in trials:
        r = runs[t.run_id]
        assert r.group == sid and r.status == "finished" and r.step == 3  # 96 // 32
        assert r.config["optimizer"] == t.params["optimizer"] and r.config["hparams"] == {"rho": t.params["rho"]}
    df = sweep_frame(store, sid)
    for _, row in df.iterrows():  # the table's numbers are each run's own, read back directly
        m = store.metrics(row["run_id"])
        assert row["test_acc"] == m["test_acc"].dropna().iloc[-1]
        assert row["top_eig"] == store.get_artifact(row["run_id"], "top_eigenvalues")["values"][0]
        assert row["gamma_mean"] == pytest.approx(m["gamma"].dropna().mean())
    for t in trials:
        assert t.run_id in stdout  # the printed table lists every run
    assert stdout.strip().splitlines()[-1] == sid


def test_failing_trial_is_failed_and_the_others_finish(env):
    spec = {
        "name": "fails",
        "base": dict(TINY, data_dir=str(env / "data"), hessian_every=0, final_top_k=0),
        "params": {"batch_size": [4096, 32]},
    }  # 4096 > the 96 examples on disk: that worker raises
    out, sid = run_cli(env, spec)
    assert out.returncode == 1, out.stderr[-3000:] + out.stdout
    store = RunStore(env / "runs")
    assert store.get_sweep(sid).status == "finished"
    bad, good = store.sweep_trials(sid)
    assert bad.status == "failed" and good.status == "finished"
    info = store.get(bad.run_id)
    assert "batch_size 4096 is larger than the training set read from disk" in info.message
    assert "Traceback" in info.traceback
    assert store.get(good.run_id).step == 3


def test_page_validates_launches_and_shows_a_sweep(env, grid_sweep):
    store, sid, _ = grid_sweep
    at = AppTest.from_file(os.path.join(ROOT, "pages/training_sweeps.py"), default_timeout=60)
    at.run()
    assert not at.exception
    # the existing sweep: its table, a heatmap (two swept parameters) and parallel coordinates
    at.selectbox(key="sw_show").set_value(sid).run()
    assert not at.exception and not at.error
    charts = at.get("plotly_chart")
    kinds = [json.loads(c.proto.spec)["data"][0]["type"] for c in charts]
    assert kinds == ["heatmap", "parcoords"]
    assert len(at.dataframe) == 1 and list(at.dataframe[0].value["status"]) == ["finished"] * 4

    # form validation: an unreadable list and a grid over the page's cap are refused, nothing created
    n_before = len(store.list_sweeps())
    at.text_input(key="sw_g_lr").set_value("0.05, fast").run()
    at.button(key="sw_launch").click().run()
    assert any("lr: 'fast' is not a number" in e.value for e in at.error)
    at.text_input(key="sw_g_lr").set_value(", ".join(str(0.01 * i) for i in range(1, 31))).run()
    at.button(key="sw_launch").click().run()
    assert any("at most 48 are allowed" in e.value for e in at.error)
    assert len(store.list_sweeps()) == n_before

    # a real launch from the form: 1 variant × 3 learning rates; its driver process runs 2 at once
    # (SAMLAB_MAX_RUNS=2); the page's Stop button stops them and cancels the third, not started yet
    at.multiselect(key="sw_variants").set_value(["sam"])
    at.selectbox(key="sw_model").set_value("lenet5")
    at.number_input(key="sw_epochs").set_value(300)  # long enough that the stop always lands mid-run
    at.number_input(key="sw_bs").set_value(32)
    at.number_input(key="sw_hevery").set_value(0)
    at.selectbox(key="sw_device").set_value("cpu")
    at.text_input(key="sw_g_lr").set_value("0.01, 0.02, 0.03")
    at.text_input(key="sw_g_rho").set_value("0.05")
    at.text_input(key="sw_name").set_value("from-page").run()
    at.button(key="sw_launch").click().run()
    assert not at.error, [e.value for e in at.error]
    new = [s for s in store.list_sweeps() if s.name == "from-page"]
    assert len(new) == 1 and new[0].n_trials == 3
    nid = new[0].id
    assert [t.params for t in store.sweep_trials(nid)] == [
        {"optimizer": "sam", "lr": x, "rho": 0.05} for x in (0.01, 0.02, 0.03)
    ]
    deadline = time.monotonic() + 180
    while not (running := [t.run_id for t in store.sweep_trials(nid) if t.run_status == "running"]):
        assert time.monotonic() < deadline, store.sweep_trials(nid)
        time.sleep(0.05)
    at.button(key=f"sw_stop_{nid}").click().run()  # shown since the launch (the sweep was active)
    while store.get_sweep(nid).status in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert store.get_sweep(nid).status == "stopped"
    states = [t.status for t in store.sweep_trials(nid)]
    assert states[2] == "cancelled" and set(states[:2]) <= {"stopped", "finished"} and "stopped" in states, states
    # the trial seen running stopped with a checkpoint (resumable like any run); the other one may
    # still have been waiting for its slot ('stopped while queued')
    assert store.get(running[0]).status == "stopped" and store.checkpoint_path(running[0]).exists()
    # the form's default: no end-of-run Hessian analysis (minutes per trial on a CPU)
    cfg = store.get(running[0]).config
    assert cfg["final_top_k"] == 0 and cfg["final_density"] is False
    at.run()
    assert not at.exception and not at.error
