"""Deployment settings from the environment, and path confinement for paths typed in the browser."""

from pathlib import Path

import pytest

from sam_core.settings import confine, get_settings


def test_defaults(monkeypatch):
    for k in (
        "SAMLAB_RUNS_DIR",
        "SAMLAB_DATA",
        "SAMLAB_MAX_RUNS",
        "SAMLAB_DEVICE",
        "SAMLAB_READ_ONLY",
        "SAMLAB_MAX_EPOCHS",
    ):
        monkeypatch.delenv(k, raising=False)
    s = get_settings()
    assert s.runs_dir == Path("runs").resolve() and s.data_dir == Path("data").resolve()
    assert (s.max_concurrent_runs, s.device, s.read_only, s.max_epochs) == (1, "auto", False, 200)


def test_values_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SAMLAB_RUNS_DIR", str(tmp_path / "r"))
    monkeypatch.setenv("SAMLAB_MAX_RUNS", "3")
    monkeypatch.setenv("SAMLAB_READ_ONLY", "yes")
    monkeypatch.setenv("SAMLAB_DEVICE", "cpu")
    s = get_settings()
    assert s.runs_dir == tmp_path / "r" and s.max_concurrent_runs == 3 and s.read_only and s.device == "cpu"
    assert str(s.torch_device()) == "cpu"


@pytest.mark.parametrize(
    "var,value",
    [("SAMLAB_MAX_RUNS", "0"), ("SAMLAB_MAX_RUNS", "x"), ("SAMLAB_DEVICE", "tpu"), ("SAMLAB_MAX_EPOCHS", "-1")],
)
def test_bad_values_name_the_variable(monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError, match=var):
        get_settings()


def test_confine(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    assert confine("a", root) == root / "a"
    assert confine(str(root / "a"), root) == root / "a"
    assert confine(".", root) == root
    for bad in ("..", "../x", "/etc", "a/../../x"):
        with pytest.raises(ValueError, match="must lie inside"):
            confine(bad, root, "Runs folder")


def test_device_setting_names_what_is_missing(monkeypatch):
    import torch

    from sam_core.settings import get_settings

    monkeypatch.setenv("SAMLAB_DEVICE", "cpu")
    assert get_settings().torch_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        monkeypatch.setenv("SAMLAB_DEVICE", "cuda:7")
        with pytest.raises(ValueError, match=r"SAMLAB_DEVICE=cuda:7: this machine has no CUDA device"):
            get_settings().torch_device()


def test_sweeps_run_on_the_device_of_the_setting(monkeypatch):
    # the 2-D sweeps take their device from SAMLAB_DEVICE (a GPU when there is one); on this CPU the same
    # code path with an explicit device gives the same numbers as the default
    import numpy as np
    import torch

    from sam_core.landscape.functions import make_landscape
    from sam_core.landscape.lr_sweep import Execution, SweepSetup, run_batch, start_points

    L = make_landscape("quartic")
    w0 = start_points(L, 64, "domain", seed=1)
    lr = torch.full((64,), 0.3)
    monkeypatch.setenv("SAMLAB_DEVICE", "cpu")
    setup = SweepSetup(steps=50)
    a = run_batch(L, "ssam", w0, lr, {"rho": 0.1}, setup, Execution(compile=False))
    b = run_batch(L, "ssam", w0, lr, {"rho": 0.1}, setup, Execution(compile=False, device="cpu"))
    np.testing.assert_array_equal(a[0], b[0])
    if not torch.cuda.is_available():
        monkeypatch.setenv("SAMLAB_DEVICE", "cuda")
        with pytest.raises(ValueError, match="SAMLAB_DEVICE"):
            run_batch(L, "ssam", w0, lr, {"rho": 0.1}, setup, Execution(compile=False))
