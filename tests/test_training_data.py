"""Datasets of the training lab: the real on-disk formats (CIFAR pickles, MNIST IDX), subsets, label
noise, the deterministic epoch plan, and the two loaders (GPU-resident batched ops vs DataLoader)."""

import gzip
import os
import pickle
import time

import fakes
import numpy as np
import pytest
import torch

from sam_core.training import data as D


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    fakes.write_fake_cifar10(root, n_train=300, n_test=60, seed=1)
    return root


def _pickle_arrays(folder, names, key="labels"):
    xs, ys = [], []
    for n in names:
        with open(folder / n, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        xs.append(np.asarray(d[b"data"]))
        ys.append(np.asarray(d[key.encode()]))
    return np.concatenate(xs), np.concatenate(ys)


def test_reads_cifar10_pickles_exactly(cifar_root):
    raw = D.load_raw("cifar10", cifar_root, download=False)
    folder = cifar_root / "cifar-10-batches-py"
    x_ref, y_ref = _pickle_arrays(folder, [f"data_batch_{i}" for i in range(1, 6)])
    assert raw.x_train.shape == (300, 3, 32, 32) and raw.x_train.dtype == torch.uint8
    # the official row layout: 1024 red values, then green, then blue, each row-major 32×32
    assert np.array_equal(raw.x_train.numpy().reshape(300, -1), x_ref)
    assert np.array_equal(raw.x_train[5, 1].numpy(), x_ref[5, 1024:2048].reshape(32, 32))
    assert np.array_equal(raw.y_train.numpy(), y_ref)
    xt_ref, yt_ref = _pickle_arrays(folder, ["test_batch"])
    assert np.array_equal(raw.x_test.numpy().reshape(60, -1), xt_ref)
    assert np.array_equal(raw.y_test.numpy(), yt_ref)
    assert raw.note == ""
    # the directory itself may be given too
    raw2 = D.load_raw("cifar10", folder, download=False)
    assert torch.equal(raw2.y_train, raw.y_train)


def test_users_subset_of_batches_is_read_and_noted(tmp_path):
    folder = fakes.write_fake_cifar10(tmp_path, n_train=100, n_test=20, batches=1)
    assert sorted(os.listdir(folder)) == ["batches.meta", "data_batch_1", "test_batch"]
    raw = D.load_raw("cifar10", tmp_path, download=False)
    assert raw.x_train.shape[0] == 100 and "1 of 5" in raw.note


def test_hwc_layout_and_str_keys_are_accepted(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    for name in ("data_batch_1", "test_batch"):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x, "labels": [1, 2, 3, 4, 5, 6, 7]}, f)
    raw = D.load_raw("cifar10", tmp_path, download=False)
    assert torch.equal(raw.x_train, torch.from_numpy(x).permute(0, 3, 1, 2))


def test_malicious_pickle_is_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    for name in ("data_batch_1", "test_batch"):
        with open(folder / name, "wb") as f:
            pickle.dump({"data": Evil(), "labels": [0]}, f)
    with pytest.raises(D.DatasetFormatError, match="refusing to unpickle"):
        D.load_raw("cifar10", tmp_path, download=False)
    assert not (tmp_path / "pwned").exists()


def test_bad_labels_are_reported(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    x = np.zeros((2, 3072), dtype=np.uint8)
    for name in ("data_batch_1", "test_batch"):
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x, b"labels": [0, 12]}, f)
    with pytest.raises(D.DatasetFormatError, match=r"labels must lie in \[0, 9\]"):
        D.load_raw("cifar10", tmp_path, download=False)


def test_cifar100_layout(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    x = np.arange(4 * 3072, dtype=np.int64).astype(np.uint8).reshape(4, 3072)
    for name in ("train", "test"):
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x, b"fine_labels": [0, 50, 99, 3], b"coarse_labels": [0, 1, 2, 3]}, f, protocol=2)
    raw = D.load_raw("cifar100", tmp_path, download=False)
    assert raw.y_train.tolist() == [0, 50, 99, 3] and raw.spec.num_classes == 100


@pytest.mark.parametrize("gz", [True, False])
def test_reads_mnist_idx(tmp_path, gz):
    fakes.write_fake_mnist(tmp_path, n_train=50, n_test=20, seed=3, gz=gz)
    raw = D.load_raw("mnist", tmp_path, download=False)
    assert raw.x_train.shape == (50, 1, 28, 28) and raw.x_test.shape == (20, 1, 28, 28)
    # independent parse of the IDX header/body
    path = tmp_path / "MNIST" / "raw" / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    blob = gzip.open(path).read() if gz else path.read_bytes()
    assert blob[:4] == b"\x00\x00\x08\x03"
    n, h, w = np.frombuffer(blob[4:16], dtype=">i4")
    ref = np.frombuffer(blob[16:], dtype=np.uint8).reshape(n, h, w)
    assert np.array_equal(raw.x_train[:, 0].numpy(), ref)


def test_fashion_mnist_folder(tmp_path):
    fakes.write_fake_mnist(tmp_path, n_train=10, n_test=10, folder="FashionMNIST/raw")
    assert D.load_raw("fashionmnist", tmp_path, download=False).spec.label == "FashionMNIST"
    with pytest.raises(D.DatasetMissingError):
        D.load_raw("mnist", tmp_path, download=False)  # a different dataset's folder does not count


def test_missing_dataset_says_which_files_where(tmp_path):
    with pytest.raises(D.DatasetMissingError) as ei:
        D.load_raw("cifar10", tmp_path, download=False)
    msg = str(ei.value)
    assert str(tmp_path / "cifar-10-batches-py") in msg
    for f in ("data_batch_1", "data_batch_5", "test_batch", "cifar-10-python.tar.gz"):
        assert f in msg
    with pytest.raises(D.DatasetMissingError) as ei:
        D.load_raw("mnist", tmp_path, download=False)
    assert str(tmp_path / "MNIST" / "raw") in str(ei.value) and "t10k-labels-idx1-ubyte" in str(ei.value)


def test_offline_download_fails_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLAB_OFFLINE", "1")
    t0 = time.monotonic()
    with pytest.raises(D.DatasetMissingError, match="switched off"):
        D.load_raw("cifar100", tmp_path, download=True)
    assert time.monotonic() - t0 < 5


def test_unreachable_host_is_detected_without_hanging():
    # a closed local port: refused at once; the probe itself is bounded by its timeout
    assert D._host_reachable("http://127.0.0.1:9/", timeout=1.0) is False


def test_subset_is_seeded_and_label_noise_exact(cifar_root):
    raw = D.load_raw("cifar10", cifar_root, download=False)
    a = D.prepare(raw, subset=200, label_noise=0.3, seed=5)
    b = D.prepare(raw, subset=200, label_noise=0.3, seed=5)
    c = D.prepare(raw, subset=200, label_noise=0.3, seed=6)
    assert len(a.y_train) == 200 and torch.equal(a.x_train, b.x_train) and torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.x_train, c.x_train)
    wrong = a.y_train != a.y_clean
    assert int(wrong.sum()) == 60  # exactly round(0.3 · 200), and never the true class
    assert a.y_train.min() >= 0 and a.y_train.max() <= 9
    # the clean labels are the originals of the chosen images
    flat = raw.x_train.reshape(len(raw.x_train), -1)
    for i in range(0, 200, 37):
        j = int((flat == a.x_train[i].reshape(-1)).all(1).nonzero()[0, 0])
        assert int(raw.y_train[j]) == int(a.y_clean[i])
    assert torch.equal(D.prepare(raw, label_noise=0.0).y_train, raw.y_train)


def test_symmetric_noise_spreads_over_other_classes():
    y = torch.zeros(20000, dtype=torch.long)
    noisy = D.symmetric_label_noise(y, 0.5, 10, seed=0)
    counts = torch.bincount(noisy, minlength=10)
    assert counts[0] == 10000
    assert (counts[1:] - 10000 / 9).abs().max() < 200  # uniform over the 9 other classes


def test_epoch_plan_is_deterministic_and_changes_per_epoch():
    p0 = D.epoch_plan(103, 10, seed=1, epoch=0, augment=True)
    assert p0.idx.shape == (10, 10) and p0.steps == 10  # drop_last: 10 full batches
    assert torch.equal(p0.idx, D.epoch_plan(103, 10, seed=1, epoch=0, augment=True).idx)
    assert not torch.equal(p0.idx, D.epoch_plan(103, 10, seed=1, epoch=1, augment=True).idx)
    assert len(set(p0.idx.reshape(-1).tolist())) == 100  # no repeats within an epoch
    assert int(p0.dx.min()) >= 0 and int(p0.dx.max()) <= 8
    plain = D.epoch_plan(103, 10, seed=1, epoch=0, augment=False)
    assert not plain.flip.any() and (plain.dx == 4).all()


def test_batched_augmentation_equals_per_example_reference():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 8, 8), generator=g, dtype=torch.uint8)
    flip = torch.rand(16, generator=g) < 0.5
    dx = torch.randint(0, 5, (16,), generator=g)
    dy = torch.randint(0, 5, (16,), generator=g)
    out = D.augment_batch(x, flip, dx, dy, pad=2)
    for i in range(16):  # an independent reference with numpy padding and slicing
        ref = np.pad(x[i].numpy(), ((0, 0), (2, 2), (2, 2)))[
            :, int(dy[i]) : int(dy[i]) + 8, int(dx[i]) : int(dx[i]) + 8
        ]
        if flip[i]:
            ref = ref[:, :, ::-1]
        assert np.array_equal(out[i].numpy(), ref)
        assert torch.equal(D.augment_one(x[i], bool(flip[i]), int(dx[i]), int(dy[i]), 2), out[i])


def test_resident_loader_equals_dataloader_path(cifar_root):
    raw = D.load_raw("cifar10", cifar_root, download=False)
    tr = D.prepare(raw, subset=100, seed=0)
    res = D.ResidentLoader(tr.x_train, tr.y_train, tr.spec, 32, seed=3, augment=True, device="cpu")
    dl = D.PlanDataLoader(tr.x_train, tr.y_train, tr.spec, 32, seed=3, augment=True)
    a, b = list(res.batches(epoch=2)), list(dl.batches(epoch=2))
    assert len(a) == len(b) == 3 == len(res)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert xa.dtype == torch.float32 and xa.shape == (32, 3, 32, 32)
        assert torch.equal(ya, yb) and torch.allclose(xa, xb, atol=1e-6)
    # normalisation: the mean of an un-augmented pass over the data matches the definition
    plain = D.ResidentLoader(tr.x_train, tr.y_train, tr.spec, 100, seed=0, augment=False, device="cpu")
    ((x0, _),) = list(plain.batches(0))
    mean = torch.tensor(tr.spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(tr.spec.std).view(1, 3, 1, 1)
    ref = (tr.x_train.float() / 255 - mean) / std
    order = D.epoch_plan(100, 100, 0, 0, False).idx[0]
    assert torch.allclose(x0, ref[order], atol=1e-6)
    # resuming mid-epoch yields the remaining batches exactly
    rest = list(res.batches(epoch=2, start_step=1))
    assert len(rest) == 2 and torch.equal(rest[0][0], a[1][0])


def test_twin_differs_in_exactly_one_example(cifar_root):
    raw = D.load_raw("cifar10", cifar_root, download=False)
    tr = D.prepare(raw, subset=100, seed=0)
    twin, idx = D.replace_one(tr, 7, raw, seed=0)
    diff = (twin.x_train != tr.x_train).reshape(100, -1).any(1)
    assert diff.nonzero().flatten().tolist() == [7] and idx == 7
