"""Deployment settings from the environment, and path confinement for paths typed in the browser."""

from pathlib import Path

import pytest

from sam_core.settings import confine, get_settings


def test_defaults(monkeypatch):
    for k in ("SAMLAB_RUNS_DIR", "SAMLAB_DATA", "SAMLAB_MAX_RUNS", "SAMLAB_DEVICE", "SAMLAB_READ_ONLY",
              "SAMLAB_MAX_EPOCHS"):
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


@pytest.mark.parametrize("var,value", [("SAMLAB_MAX_RUNS", "0"), ("SAMLAB_MAX_RUNS", "x"),
                                       ("SAMLAB_DEVICE", "tpu"), ("SAMLAB_MAX_EPOCHS", "-1")])
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
