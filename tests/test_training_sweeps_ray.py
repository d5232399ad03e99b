"""The Ray executor on a local Ray instance (`ray.init` on this machine, started by the sweep command):
4 Tune trials of a tiny LeNet write to the same run store through the store actor; the trials whose
batch is larger than the data on disk are failed (with their traceback) while the others finish or
are stopped early by ASHA (with a message saying so). Ray is an optional extra (requirements-ray.txt,
installed by requirements-dev.txt, so `make test` runs this)."""

import json
import os
import subprocess
import sys

import pytest
from fakes import write_fake_cifar10

from sam_core.training import RunStore
from sam_core.training.sweeps import sweep_frame

pytest.importorskip("ray", reason="Ray is optional: pip install -r requirements-ray.txt")
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_ray_trials_write_to_the_store(tmp_path):
    write_fake_cifar10(tmp_path / "data", n_train=96, n_test=32, seed=0)
    spec = {
        "name": "ray4",
        "executor": "ray",
        "base": {
            "dataset": "cifar10",
            "data_dir": str(tmp_path / "data"),
            "download": False,
            "model": "lenet5",
            "optimizer": "sam",
            "epochs": 2,
            "log_every": 1,
            "hessian_every": 3,
            "hessian_batch": 16,
            "final_top_k": 1,
            "final_density": False,
            "eval_train_size": 32,
            "device": "cpu",
        },
        "params": {"rho": [0.02, 0.1], "batch_size": [32, 4096]},
        "ray": {"cpus_per_trial": 1, "asha": True, "asha_grace": 1},
    }
    (tmp_path / "sweep.json").write_text(json.dumps(spec))
    env = dict(os.environ, OMP_NUM_THREADS="1", SAMLAB_OFFLINE="1", RAY_AUTH_MODE="disabled")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "sam_core.cli.sweep",
            "--config",
            str(tmp_path / "sweep.json"),
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=env,
    )
    assert out.returncode == 1, out.stderr[-4000:] + out.stdout[-2000:]  # 1: some trials failed, as intended
    sid = out.stdout.strip().splitlines()[-1]
    store = RunStore(tmp_path / "runs")
    info = store.get_sweep(sid)
    assert info.executor == "ray" and info.status == "finished", info.message
    trials = store.sweep_trials(sid)
    assert [t.params["batch_size"] for t in trials] == [32, 4096, 32, 4096]
    for t in trials:
        run = store.get(t.run_id)
        assert run.group == sid and run.pid  # written through the store actor by the trial process
        if t.params["batch_size"] == 4096:
            assert run.status == "failed" and "larger than the training set read from disk" in run.message
            assert "Traceback" in run.traceback
        else:
            assert run.status in ("finished", "stopped"), run.message + run.traceback
            m = store.metrics(t.run_id)
            assert m["test_acc"].notna().sum() >= 1 and m["gamma"].notna().sum() >= 3
            if run.status == "finished":
                assert run.step == 6 and m["test_acc"].notna().sum() == 2
            else:
                assert run.message.startswith("stopped early by ASHA after epoch 1") and run.step == 3
    assert any(store.get(t.run_id).status == "finished" for t in trials)  # ASHA keeps the best going
    df = sweep_frame(store, sid)
    assert df["test_acc"].notna().sum() == 2 and df["status"].tolist().count("failed") == 2
