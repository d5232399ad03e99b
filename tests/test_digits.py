"""The `digits` dataset (scikit-learn's load_digits, no files, no network) in the training lab:

* the split is deterministic, disjoint, covers every image, is stratified by class, and its images are
  scikit-learn's own (checked against load_digits directly); the normalised batches have the right shape;
* the models fit 1×8×8 inputs; RunConfig, the CLI parser and the sweep spec accept `digits`;
* a run launched through the CLI (`--detach`: a real worker process) with no dataset folder and
  downloads switched off trains on it and logs γ_t and λ_max, and its test accuracy is far above
  chance and agrees with an independent evaluation of the saved weights on scikit-learn's test images;
* the Training lab page defaults to digits when no dataset is on disk, and says what is available.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import fakes
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from streamlit.testing.v1 import AppTest

from sam_core.training import RunConfig, RunStore
from sam_core.training import data as D
from sam_core.training.config import dataset_defaults
from sam_core.training.models import build_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sk():
    d = load_digits()
    return np.asarray(d.images), np.asarray(d.target)


# ------------------------------------------------------------------------------------------ the split
def test_split_is_deterministic_disjoint_stratified_and_real(sk):
    images, labels = sk
    tr, te = D.stratified_split(labels, D.DIGITS_TEST, D.DIGITS_SEED)
    tr2, te2 = D.stratified_split(labels, D.DIGITS_TEST, D.DIGITS_SEED)
    assert np.array_equal(tr, tr2) and np.array_equal(te, te2)  # deterministic
    assert len(tr) == 1437 and len(te) == 360
    assert np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(1797))  # disjoint, covers all
    # stratified: every class's test share is its quota 360·n_c/1797 rounded up or down
    for c in range(10):
        n_c, t_c = int((labels == c).sum()), int((labels[te] == c).sum())
        assert abs(t_c - 360 * n_c / 1797) < 1, (c, t_c, n_c)
    other = D.stratified_split(labels, D.DIGITS_TEST, D.DIGITS_SEED + 1)[1]
    assert not np.array_equal(np.sort(other), np.sort(te))  # the seed chooses the split

    D._digits_arrays.cache_clear()  # read again from scikit-learn: the same tensors
    raw, raw2 = D.load_raw("digits", "/nonexistent/folder", download=False), D.digits_split()
    assert torch.equal(raw.x_train, raw2.x_train) and torch.equal(raw.y_test, raw2.y_test)
    assert raw.x_train.shape == (1437, 1, 8, 8) and raw.x_test.shape == (360, 1, 8, 8)
    assert raw.x_train.dtype == torch.uint8 and raw.y_train.dtype == torch.int64
    assert int(raw.x_train.min()) == 0 and int(raw.x_train.max()) == 255
    assert set(raw.y_train.tolist()) == set(range(10)) and "scikit-learn" in raw.source
    # the images are scikit-learn's at those indices (0…16 → 0…255)
    assert np.array_equal(raw.x_test[:, 0].numpy(), np.rint(images[te] * 255 / 16).astype(np.uint8))
    assert np.array_equal(raw.y_test.numpy(), labels[te]) and np.array_equal(raw.y_train.numpy(), labels[tr])


def test_normalisation_and_loader_batches(sk):
    raw = D.digits_split()
    spec = raw.spec
    f = raw.x_train.double() / 255
    assert spec.mean[0] == pytest.approx(float(f.mean()), abs=1e-4)
    assert spec.std[0] == pytest.approx(float(f.std(unbiased=False)), abs=1e-4)
    xs = torch.cat([x for x, _ in D.eval_batches(raw.x_train, raw.y_train, spec, 500, "cpu")])
    assert xs.shape == (1437, 1, 8, 8) and abs(float(xs.mean())) < 1e-3 and abs(float(xs.std()) - 1) < 1e-3
    loader = D.PlanDataLoader(raw.x_train, raw.y_train, spec, 64, seed=0, augment=spec.augment)
    batches = list(loader.batches(0))
    assert len(batches) == len(loader) == 1437 // 64
    xb, yb = batches[0]
    assert xb.shape == (64, 1, 8, 8) and xb.dtype == torch.float32 and yb.shape == (64,)
    plan = D.epoch_plan(1437, 64, 0, 0, spec.augment)
    ref = (raw.x_train[plan.idx[0]].float() / 255 - spec.mean[0]) / spec.std[0]  # no augmentation on digits
    assert torch.allclose(xb, ref, atol=1e-6) and torch.equal(yb, raw.y_train[plan.idx[0]])


def test_availability_and_default(tmp_path):
    assert D.available_datasets(tmp_path) == ["digits"] and D.default_dataset(tmp_path) == "digits"
    fakes.write_fake_mnist(tmp_path, n_train=20, n_test=10)
    assert D.available_datasets(tmp_path) == ["mnist", "digits"] and D.default_dataset(tmp_path) == "mnist"
    assert D.on_disk("mnist", tmp_path) and not D.on_disk("cifar10", tmp_path) and not D.on_disk("digits", tmp_path)


# ------------------------------------------------------------------------------------------ models, configs
@pytest.mark.parametrize("name", ["mlp", "lenet5", "cnn8", "resnet20"])
def test_models_fit_8x8(name):
    out = build_model(name, 1, 8, 10)(torch.randn(4, 1, 8, 8))
    assert out.shape == (4, 10) and torch.isfinite(out).all()


def test_config_cli_and_sweep_accept_digits():
    from sam_core.cli.train import build_parser, config_from_args
    from sam_core.training.sweeps.spec import SweepSpec

    d = dataset_defaults("digits")
    cfg = RunConfig.from_dict(d)
    assert cfg.errors() == [] and cfg.train_size() == 1437 and cfg.steps_per_epoch() == 22
    assert (cfg.model, cfg.batch_size, cfg.epochs) == ("cnn8", 64, 5)
    assert dataset_defaults("cifar10") == dict(RunConfig().to_dict(), dataset="cifar10")
    assert "batch_size 2000 is larger than the training set (1437 examples" in " ".join(
        RunConfig(dataset="digits", batch_size=2000).errors()
    )
    parse = build_parser().parse_args
    c = config_from_args(parse(["--dataset", "digits", "--model", "cnn8", "--epochs", "2"]))
    assert (c.dataset, c.model, c.epochs, c.batch_size, c.hessian_every) == ("digits", "cnn8", 2, 64, 10)
    c = config_from_args(parse(["--dataset", "digits"]))  # the digits defaults, as on the page
    assert c == cfg
    assert config_from_args(parse(["--dataset", "mnist"])).model == RunConfig.model  # the others: unchanged
    trials = SweepSpec(
        base={"dataset": "digits", "model": "mlp", "batch_size": 64}, params={"lr": [0.05, 0.1]}
    ).trials()
    assert [t.config["dataset"] for t in trials] == ["digits", "digits"]


# ------------------------------------------------------------------------------------------ end to end
@pytest.mark.slow  # two processes (the CLI, then its worker); `make test` runs it
def test_cli_worker_trains_digits_offline_with_gamma_and_eigenvalues(tmp_path, sk):
    empty = tmp_path / "no-data"
    empty.mkdir()
    env = dict(
        os.environ,
        SAMLAB_DATA=str(empty),
        SAMLAB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        SAMLAB_RUNS_DIR=str(tmp_path / "runs"),
    )
    cmd = [
        sys.executable,
        "-m",
        "sam_core.cli.train",
        "--dataset",
        "digits",
        "--model",
        "mlp",
        "--optimizer",
        "sam",
        "--rho",
        "0.05",
        "--lr",
        "0.05",
        "--batch-size",
        "64",
        "--epochs",
        "2",
        "--hessian-every",
        "5",
        "--log-every",
        "1",
        "--final-top-k",
        "0",
        "--final-density",
        "false",
        "--detach",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert out.returncode == 0, out.stderr + out.stdout
    run_id = out.stdout.strip().splitlines()[-1]
    store = RunStore(tmp_path / "runs")
    deadline = time.monotonic() + 120
    while store.get(run_id).status in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(0.1)
    info = store.get(run_id)
    assert info.status == "finished", f"{info.status} {info.message}\n{info.traceback}"
    m = store.metrics(run_id)
    assert info.step == info.total_steps == 44  # 2 epochs × (1437 // 64)
    gamma = m["gamma"].dropna()
    assert len(gamma) == 44 and np.isfinite(gamma).all() and (gamma > 0).all()
    eig = m["top_eig"].dropna()
    assert list(eig.index) == list(range(0, 44, 5)) and np.isfinite(eig).all() and (eig > 0).all()
    acc = m["test_acc"].dropna()
    assert len(acc) == 2 and acc.iloc[-1] > 0.8  # chance is 0.1 (measured: 0.93; shuffled labels: 0.08)

    # an independent evaluation of the saved weights on scikit-learn's own test images (0…16, not uint8)
    images, labels = sk
    te = D.stratified_split(labels, D.DIGITS_TEST, D.DIGITS_SEED)[1]
    spec = D.DATASETS["digits"]
    x = torch.tensor((images[te] / 16.0 - spec.mean[0]) / spec.std[0], dtype=torch.float32).unsqueeze(1)
    model = build_model("mlp", 1, 8, 10)
    model.load_state_dict(torch.load(store.checkpoint_path(run_id), weights_only=False)["replicas"][0]["model"])
    with torch.no_grad():
        mine = float((model.eval()(x).argmax(1).numpy() == labels[te]).mean())
    assert abs(mine - acc.iloc[-1]) <= 0.02, (mine, acc.iloc[-1])


# ------------------------------------------------------------------------------------------ the page
def test_training_page_defaults_to_digits_without_a_dataset_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SAMLAB_DATA", str(tmp_path / "data-not-created"))
    monkeypatch.setenv("SAMLAB_OFFLINE", "1")
    monkeypatch.delenv("SAMLAB_READ_ONLY", raising=False)
    at = AppTest.from_file(str(ROOT / "pages/training.py"), default_timeout=60)
    at.run()
    assert not at.exception
    assert at.selectbox(key="tl_dataset").value == "digits"
    assert at.selectbox(key="tl_model").value == "cnn8"
    assert at.number_input(key="tl_epochs").value == 5 and at.number_input(key="tl_bs").value == 64
    line = " ".join(c.value for c in at.caption if c.value.startswith("Datasets here"))
    assert "Datasets here: Digits (scikit-learn, 8×8). To add CIFAR-10, CIFAR-100, MNIST, FashionMNIST" in line
    assert "Data folder" in line and "downloads" in line
    assert "--dataset digits" in " ".join(i.value for i in at.info)

    # with MNIST's files in the data folder, it is the default and listed as available
    fakes.write_fake_mnist(tmp_path / "data-not-created", n_train=20, n_test=10)
    at = AppTest.from_file(str(ROOT / "pages/training.py"), default_timeout=60)
    at.run()
    assert not at.exception and at.selectbox(key="tl_dataset").value == "mnist"
    assert "Datasets here: MNIST, Digits" in " ".join(c.value for c in at.caption)


def test_a_digits_run_on_cpu_trains_on_one_thread_and_restores_the_setting(tmp_path):
    """Tiny inputs: intra-op threads only add overhead (and OpenMP spinning on busy cores)."""
    from sam_core.training.loop import Trainer
    from sam_core.training.worker import create

    store = RunStore(tmp_path / "runs")
    cfg = RunConfig(
        dataset="digits",
        model="cnn8",
        optimizer="sgd",
        epochs=1,
        batch_size=128,
        hessian_every=0,
        final_top_k=0,
        final_density=False,
        device="cpu",
    )
    rid = create(store, cfg)
    store.claim_slot(rid, 1)
    seen: list[int] = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        status = Trainer(cfg, store, rid, on_epoch=lambda *a: seen.append(torch.get_num_threads())).run()
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert status == "finished" and seen == [1] and after == 2
