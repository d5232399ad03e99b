"""Test data: tiny datasets written in the real on-disk formats the training lab reads
(`sam_core.training.data.load_raw`), for the tests and the benchmarks (which put tests/ on sys.path).

    from fakes import write_fake_cifar10, write_fake_mnist
"""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np


def write_fake_cifar10(
    root: str | os.PathLike, n_train: int = 200, n_test: int = 100, seed: int = 0, batches: int = 5
) -> Path:
    """Write random images in the real `cifar-10-batches-py` pickle format (tests, demos, smoke runs).

    Labels are a deterministic function of the mean colour, so a network can learn them.
    """
    rng = np.random.default_rng(seed)
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def make(n):
        y = rng.integers(0, 10, n)
        base = (y[:, None] * 25 + 5).astype(np.int64)  # class-dependent brightness
        x = np.clip(base + rng.integers(-40, 41, (n, 3072)), 0, 255).astype(np.uint8)
        return x, y.tolist()

    per = [n_train // batches + (1 if i < n_train % batches else 0) for i in range(batches)]
    for i, n in enumerate(per, 1):
        x, y = make(n)
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"batch_label": b"fake", b"labels": y, b"data": x, b"filenames": [b""] * n}, f, protocol=2)
    x, y = make(n_test)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"batch_label": b"fake", b"labels": y, b"data": x, b"filenames": [b""] * n_test}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f, protocol=2)
    return folder


def write_fake_mnist(
    root: str | os.PathLike,
    n_train: int = 200,
    n_test: int = 100,
    seed: int = 0,
    folder: str = "MNIST/raw",
    gz: bool = True,
) -> Path:
    """Write random 28×28 digits in the IDX format torchvision downloads (`MNIST/raw/*-ubyte[.gz]`)."""
    rng = np.random.default_rng(seed)
    out = Path(root) / folder
    out.mkdir(parents=True, exist_ok=True)

    def write(name, arr):
        header = bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, dtype=">i4").tobytes()
        payload = header + arr.astype(np.uint8).tobytes()
        if gz:
            with gzip.open(out / (name + ".gz"), "wb") as f:
                f.write(payload)
        else:
            (out / name).write_bytes(payload)

    for prefix, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n)
        x = np.clip(y[:, None, None] * 25 + rng.integers(-30, 31, (n, 28, 28)), 0, 255)
        write(f"{prefix}-images-idx3-ubyte", x)
        write(f"{prefix}-labels-idx1-ubyte", y)
    return out
