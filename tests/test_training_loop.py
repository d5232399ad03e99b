"""The training loop in-process: the uniform-stability twin, divergence as a result, crashes recorded with
their traceback, label noise, the squared loss, and the SAM-edge radius of unnormalised ascents."""

import math

import pytest
import torch
from fakes import write_fake_cifar10

from sam_core.theory import effective_rho
from sam_core.training import RunConfig, RunStore
from sam_core.training.data import epoch_plan
from sam_core.training.loop import Trainer, lr_at
from sam_core.training.worker import create, execute


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("loopdata")
    write_fake_cifar10(root, n_train=128, n_test=32, seed=2)
    return root


@pytest.fixture(autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cfg(data_dir, **kw):
    base = dict(
        dataset="cifar10",
        data_dir=str(data_dir),
        download=False,
        model="lenet5",
        optimizer="sam",
        subset=64,
        batch_size=16,
        epochs=1,
        log_every=1,
        hessian_every=0,
        final_top_k=0,
        final_density=False,
        eval_train_size=32,
        test_subset=16,
    )
    base.update(kw)
    return RunConfig(**base)


def _run(tmp_path, cfg):
    store = RunStore(tmp_path / "runs")
    rid = create(store, cfg)
    status = execute(store, rid, max_concurrent=1)
    return store, rid, status


def test_stability_twin_is_identical_until_the_replaced_example_is_seen(tmp_path, data_dir):
    cfg = _cfg(data_dir, stability=True, epochs=2, seed=0, augment=False)
    store, rid, status = _run(tmp_path, cfg)
    assert status == "finished", store.get(rid).traceback
    d = store.metrics(rid)["twin_distance"].dropna()
    replaced = cfg.seed % 64  # the twin's training example that differs
    plan = epoch_plan(64, 16, cfg.seed, 0, augment=False)
    first = int((plan.idx == replaced).any(1).nonzero()[0, 0]) + 1  # the step whose batch contains it
    before, after = d[d.index < first], d[d.index >= first]
    assert (before == 0).all()  # same init, same batches: bit-identical networks
    assert (after > 0).all() and len(after) > 0


def test_divergence_is_a_result_not_a_crash(tmp_path, data_dir):
    store, rid, status = _run(
        tmp_path,
        _cfg(data_dir, optimizer="usam", hparams={"rho": 5.0}, lr=90.0, momentum=0.99, weight_decay=0.0, epochs=3),
    )
    info = store.get(rid)
    assert status == "finished" and "diverged" in info.message, info.traceback
    step = store.get_artifact(rid, "diverged_step")
    assert 1 <= step <= 12 and info.step == step
    m = store.metrics(rid)
    assert math.isnan(m["loss"].iloc[-1]) or math.isinf(m["loss"].iloc[-1])


def test_crash_marks_failed_with_traceback(tmp_path):
    cfg = _cfg(tmp_path / "nodata")  # no dataset there, downloading switched off
    store, rid, status = _run(tmp_path, cfg)
    info = store.get(rid)
    assert status == info.status == "failed"
    assert "DatasetMissingError" in info.message and "cifar-10-batches-py" in info.message
    assert "Traceback (most recent call last)" in info.traceback


def test_label_noise_mse_and_adam_run(tmp_path, data_dir):
    store, rid, status = _run(
        tmp_path,
        _cfg(
            data_dir,
            label_noise=0.5,
            loss="mse",
            base="adamw",
            lr=1e-3,
            optimizer="ssam",
            hessian_every=2,
            hessian_batch=8,
            hutchinson=3,
        ),
    )
    assert status == "finished", store.get(rid).traceback
    m = store.metrics(rid)
    assert m["hessian_trace"].notna().sum() == 3 and m["hessian_trace_se"].notna().sum() == 3
    assert m["gamma"].notna().sum() == 4 and m["top_eig"].notna().sum() == 3  # steps 0, 2, 4
    assert "gd_edge" not in m.columns  # the GD/SAM edges are for SGD-type steps, not Adam


def test_trainer_validates_the_batch_against_the_data_read(tmp_path, data_dir):
    store = RunStore(tmp_path / "runs")
    cfg = _cfg(data_dir, subset=None, batch_size=200)  # the nominal CIFAR-10 has 50000; the files 128
    rid = store.create_run(cfg.to_dict())
    with pytest.raises(ValueError, match="larger than the training set read from disk"):
        Trainer(cfg, store, rid).run()


def test_effective_rho_and_schedules():
    assert effective_rho("sam", {"rho": 0.1}, 3.0, 1) == 0.1
    assert effective_rho("usam", {"rho": 0.1}, 3.0, 1) == pytest.approx(0.3)  # ‖e‖ = ρ‖g‖
    assert effective_rho("ssam", {"rho": 0.1, "normalized": False}, 3.0, 1) == pytest.approx(0.3)
    assert effective_rho("ssam", {"rho": 0.1, "normalized": True}, 3.0, 1) == 0.1
    assert effective_rho("unified_sam", {"rho": 0.1, "lam": 0.25}, 3.0, 1) == pytest.approx(0.1 * (0.75 * 3 + 0.25))
    assert effective_rho("sgd", {}, 3.0, 1) is None
    c = RunConfig(lr=0.2, lr_schedule="cosine")
    assert lr_at(c, 0, 100) == pytest.approx(0.2) and lr_at(c, 50, 100) == pytest.approx(0.1)
    s = RunConfig(lr=1.0, lr_schedule="step")
    assert [lr_at(s, t, 100) for t in (0, 49, 50, 75)] == pytest.approx([1.0, 1.0, 0.1, 0.01])


def test_config_errors_name_the_field_and_range():
    errs = RunConfig(epochs=0, lr=-1, label_noise=1.5, model="vgg", optimizer="sam", hparams={"rho": -1}).errors()
    text = "\n".join(errs)
    assert "epochs must be an integer in [1, 100000], got 0" in text
    assert "lr must be a number in (0, 100], got -1" in text
    assert "label_noise must be a number in [0, 1], got 1.5" in text
    assert "model: unknown model 'vgg'" in text and "'rho'" in text
    assert "batch_size 128 is larger" in "".join(RunConfig(dataset="mnist", subset=100).errors())
    with pytest.raises(ValueError, match="unknown field"):
        RunConfig.from_dict({"epochs": 1, "epoch": 2})


def test_cli_config_file_and_overrides(tmp_path):
    from sam_core.cli.train import build_parser, config_from_args
    from sam_core.training.config import ConfigError

    f = tmp_path / "run.json"
    f.write_text(RunConfig(model="resnet20", optimizer="ssam", hparams={"rho": 0.1}, epochs=3).to_json())
    cfg = config_from_args(build_parser().parse_args(["--config", str(f), "--epochs", "5", "--clip-gamma", "true"]))
    assert (cfg.model, cfg.epochs, cfg.hparams) == ("resnet20", 5, {"rho": 0.1, "clip_gamma": True})
    cfg = config_from_args(build_parser().parse_args(["--optimizer", "unified_sam", "--lam", "1/t"]))
    assert cfg.hparams == {"lam": "1/t"}
    with pytest.raises(ConfigError, match="--lam does not apply to --optimizer ssam"):
        config_from_args(build_parser().parse_args(["--optimizer", "ssam", "--lam", "0.5"]))
    with pytest.raises(ConfigError, match="cannot read a JSON object"):
        config_from_args(build_parser().parse_args(["--config", str(tmp_path / "missing.json")]))
