"""Datasets of the training lab: CIFAR-10/100, MNIST, FashionMNIST and scikit-learn's digits as uint8
tensors, and two loaders.

`digits` (1 797 real 8×8 handwritten digits, `sklearn.datasets.load_digits`) ships inside the
scikit-learn wheel, so the lab trains on a fresh offline machine: it is split once, stratified by
class with a fixed seed, into 1 437 training and 360 test images (`digits_split`), never downloaded.

On disk we read torchvision's layout ourselves (no checksum: checksums guard downloads, not a user's
own files, so a subset or a tiny test set in the official format is read as it is):

    <data_dir>/cifar-10-batches-py/data_batch_1 … data_batch_5, test_batch     (pickled dicts)
    <data_dir>/cifar-100-python/train, test                                   (pickled dicts)
    <data_dir>/MNIST/raw/train-images-idx3-ubyte, train-labels-idx1-ubyte,
                         t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte      (IDX, optionally .gz)
    <data_dir>/FashionMNIST/raw/…                                            (same names)

Missing data is downloaded through torchvision when the host answers within a few seconds;
otherwise `DatasetMissingError` says exactly which files to put where. Nothing here can hang.

The data order of an epoch (indices, flips and crop offsets) is a pure function of (seed, epoch):
`epoch_plan`. Both loaders follow that plan, so variants launched with the same seed see the same
batches, a resumed run continues mid-epoch exactly, and the twin run of the uniform-stability mode
sees the same augmentations:
  * `ResidentLoader`: the whole dataset is one uint8 tensor on the device; crop/flip are batched ops.
  * `plan_dataloader`: the standard `torch.utils.data.DataLoader` with per-example transforms (CPU).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import os
import pickle
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


class DatasetMissingError(FileNotFoundError):
    """The dataset is not on disk and could not be downloaded; the message says what to put where."""


class DatasetFormatError(ValueError):
    """A dataset file exists but is not in the expected format."""


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    label: str
    channels: int
    size: int
    num_classes: int
    n_train: int
    n_test: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    folder: str  # sub-folder of data_dir in torchvision's layout
    files: tuple[str, ...]  # the files a user must provide inside `folder`
    url: str  # where the official files come from
    augment: bool  # flip + crop by default (not for digits)
    package: str = ""  # the dataset ships inside this Python package (nothing on disk, no download)

    @property
    def bundled(self) -> bool:
        return bool(self.package)


_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec(
        "cifar10",
        "CIFAR-10",
        3,
        32,
        10,
        50000,
        10000,
        (0.4914, 0.4822, 0.4465),
        (0.2470, 0.2435, 0.2616),
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",),
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        True,
    ),
    "cifar100": DatasetSpec(
        "cifar100",
        "CIFAR-100",
        3,
        32,
        100,
        50000,
        10000,
        (0.5071, 0.4865, 0.4409),
        (0.2673, 0.2564, 0.2762),
        "cifar-100-python",
        ("train", "test"),
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        True,
    ),
    "mnist": DatasetSpec(
        "mnist",
        "MNIST",
        1,
        28,
        10,
        60000,
        10000,
        (0.1307,),
        (0.3081,),
        "MNIST/raw",
        _MNIST_FILES,
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        False,
    ),
    "fashionmnist": DatasetSpec(
        "fashionmnist",
        "FashionMNIST",
        1,
        28,
        10,
        60000,
        10000,
        (0.2860,),
        (0.3530,),
        "FashionMNIST/raw",
        _MNIST_FILES,
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        False,
    ),
    # mean/std: of the 1 437 training images scaled to [0, 1] (tests/test_digits.py recomputes them)
    "digits": DatasetSpec(
        "digits",
        "Digits (scikit-learn, 8×8)",
        1,
        8,
        10,
        1437,
        360,
        (0.3056,),
        (0.3760,),
        "",
        (),
        "https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
        False,
        "scikit-learn",
    ),
}

DIGITS_TEST = 360  # test images of the digits split (20 %); the rest (1 437) is the training set
DIGITS_SEED = 0  # the split's seed: fixed, so every run, variant and machine sees the same split


def get_dataset_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"dataset: unknown dataset {name!r}; choose one of {list(DATASETS)}") from None


@dataclass
class RawData:
    """The full dataset as uint8 images (N, C, H, W) and int64 labels (N,)."""

    spec: DatasetSpec
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str  # the folder it was read from
    note: str = ""  # e.g. "read 1 of 5 training batches"


# ------------------------------------------------------------------------------------------- readers
class _SafeUnpickler(pickle.Unpickler):
    """Unpickle CIFAR batches without running arbitrary code: only numpy arrays and plain containers."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
    } | {
        (mod, t)
        for mod in ("__builtin__", "builtins")
        for t in ("object", "bytes", "bytearray", "str", "list", "dict", "tuple", "int", "float", "set")
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise DatasetFormatError(f"refusing to unpickle {module}.{name}: a CIFAR batch holds only arrays and lists")


def _get(d: dict, key: str):
    for k in (key, key.encode()):
        if k in d:
            return d[k]
    return None


def _read_cifar_pickle(path: Path, label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        with open(path, "rb") as f:
            d = _SafeUnpickler(f, encoding="bytes").load()
    except DatasetFormatError:
        raise
    except Exception as exc:  # truncated, not a pickle, …
        raise DatasetFormatError(f"{path}: not a CIFAR python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(d, dict) or _get(d, "data") is None or _get(d, label_key) is None:
        raise DatasetFormatError(f"{path}: expected a dict with keys 'data' and '{label_key}'")
    data = np.asarray(_get(d, "data"))
    labels = np.asarray(_get(d, label_key), dtype=np.int64).reshape(-1)
    if data.dtype != np.uint8:
        raise DatasetFormatError(f"{path}: 'data' must be uint8 pixels, got {data.dtype}")
    if data.ndim == 2 and data.shape[1] == 3072:
        data = data.reshape(-1, 3, 32, 32)  # the official row layout: R plane, G plane, B plane
    elif data.ndim == 4 and data.shape[1:] == (32, 32, 3):
        data = data.transpose(0, 3, 1, 2)
    elif not (data.ndim == 4 and data.shape[1:] == (3, 32, 32)):
        raise DatasetFormatError(f"{path}: 'data' must have shape (N, 3072) or (N, 32, 32, 3), got {data.shape}")
    if len(labels) != len(data):
        raise DatasetFormatError(f"{path}: {len(data)} images but {len(labels)} labels")
    return torch.from_numpy(np.ascontiguousarray(data)), torch.from_numpy(labels)


def _read_idx(path: Path, expect_dims: int) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise DatasetFormatError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetFormatError(f"{path}: not an IDX file of unsigned bytes (bad magic number)")
    ndim = raw[3]
    if ndim != expect_dims:
        raise DatasetFormatError(f"{path}: expected {expect_dims} dimensions, the header says {ndim}")
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4).astype(np.int64)
    n = int(np.prod(dims))
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != n:
        raise DatasetFormatError(f"{path}: header promises {n} bytes of data, found {body.size}")
    return body.reshape(tuple(dims))


def _find(folder: Path, name: str) -> Path | None:
    for cand in (folder / name, folder / (name + ".gz")):
        if cand.is_file():
            return cand
    return None


def _folder_candidates(spec: DatasetSpec, data_dir: Path) -> list[Path]:
    """data_dir may be the root (torchvision's `root`) or the dataset folder itself."""
    last = spec.folder.split("/")[-1]
    out = [data_dir / spec.folder]
    if spec.name in ("mnist", "fashionmnist"):
        out += [data_dir / spec.folder.split("/")[0]]
    if data_dir.name == last or data_dir.name == spec.folder.split("/")[0]:
        out.append(data_dir)
    out.append(data_dir)
    return list(dict.fromkeys(out))


def _try_read(spec: DatasetSpec, data_dir: Path) -> RawData | None:
    for folder in _folder_candidates(spec, data_dir):
        if spec.name == "cifar10":
            if not (folder / "test_batch").is_file():
                continue
            present = [folder / f for f in spec.files[:5] if (folder / f).is_file()]
            if not present:
                continue
            parts = [_read_cifar_pickle(p, "labels") for p in present]
            xt, yt = _read_cifar_pickle(folder / "test_batch", "labels")
            note = "" if len(present) == 5 else f"read {len(present)} of 5 training batches"
            return RawData(
                spec, torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), xt, yt, str(folder), note
            )
        if spec.name == "cifar100":
            if not ((folder / "train").is_file() and (folder / "test").is_file()):
                continue
            x, y = _read_cifar_pickle(folder / "train", "fine_labels")
            xt, yt = _read_cifar_pickle(folder / "test", "fine_labels")
            return RawData(spec, x, y, xt, yt, str(folder))
        paths = [_find(folder, f) for f in spec.files]
        if any(p is None for p in paths):
            continue
        arrays = [_read_idx(p, 3 if "images" in p.name else 1) for p in paths]
        for img, lab, p in ((arrays[0], arrays[1], paths[0]), (arrays[2], arrays[3], paths[2])):
            if img.shape[0] != lab.shape[0]:
                raise DatasetFormatError(f"{p}: {img.shape[0]} images but {lab.shape[0]} labels")
            if img.shape[1:] != (28, 28):
                raise DatasetFormatError(f"{p}: images must be 28×28, got {img.shape[1:]}")
        xs = [torch.from_numpy(a.copy()).unsqueeze(1) for a in arrays[0::2]]
        ys = [torch.from_numpy(a.astype(np.int64)) for a in arrays[1::2]]
        return RawData(spec, xs[0], ys[0], xs[1], ys[1], str(folder))
    return None


def _check_labels(raw: RawData) -> RawData:
    for y, which in ((raw.y_train, "training"), (raw.y_test, "test")):
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= raw.spec.num_classes):
            raise DatasetFormatError(
                f"{raw.source}: {which} labels must lie in [0, {raw.spec.num_classes - 1}], "
                f"found [{int(y.min())}, {int(y.max())}]"
            )
    if raw.y_train.numel() == 0 or raw.y_test.numel() == 0:
        raise DatasetFormatError(f"{raw.source}: the training or the test set is empty")
    return raw


# ------------------------------------------------------------------------------------------- digits
def stratified_split(y: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index arrays: `n_test` test examples, each class in proportion to its size
    (largest remainder), chosen by `seed`; both in a seeded random order, disjoint, covering all of y."""
    y = np.asarray(y)
    if not 0 < n_test < len(y):
        raise ValueError(f"n_test must be in [1, {len(y) - 1}], got {n_test}")
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * n_test / len(y)
    take = np.floor(quota).astype(np.int64)
    take[np.argsort(-(quota - take), kind="stable")[: n_test - int(take.sum())]] += 1
    rng = np.random.default_rng(seed)
    test = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take)])
    train = np.setdiff1d(np.arange(len(y)), test)
    return rng.permutation(train), rng.permutation(test)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray, str]:
    """load_digits as uint8 images (N, 8, 8), 0…16 scaled to 0…255 (exact: 17 levels), and labels."""
    try:
        import sklearn
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DatasetMissingError(
            "digits ships with scikit-learn, which is not installed here: pip install 'scikit-learn>=1.3'"
        ) from exc
    d = load_digits()
    images = np.asarray(d.images, dtype=np.float64)
    if images.shape[1:] != (8, 8) or images.min() < 0 or images.max() > 16:
        raise DatasetFormatError(
            f"load_digits returned images of shape {images.shape} in "
            f"[{images.min()}, {images.max()}]; expected (N, 8, 8) in [0, 16]"
        )
    images = np.rint(images * (255.0 / 16.0)).astype(np.uint8)
    return images, np.asarray(d.target, dtype=np.int64), f"scikit-learn {sklearn.__version__} (load_digits)"


def digits_split(seed: int = DIGITS_SEED) -> RawData:
    """scikit-learn's digits split into 1 437 training and 360 test images, stratified, fixed seed."""
    images, labels, source = _digits_arrays()
    tr, te = stratified_split(labels, DIGITS_TEST, seed)
    x = torch.from_numpy(images).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.from_numpy(labels)
    return RawData(DATASETS["digits"], x[tr].contiguous(), y[tr].clone(), x[te].contiguous(), y[te].clone(), source)


# ------------------------------------------------------------------------------------------- what is here
_MODULES = {"scikit-learn": "sklearn"}  # package (pip name) → the module that provides it


def _present(spec: DatasetSpec, folder: Path) -> bool:
    """The files `_try_read` needs are in `folder` (existence only: nothing is read)."""
    if spec.name == "cifar10":
        return (folder / "test_batch").is_file() and any((folder / f).is_file() for f in spec.files[:5])
    if spec.name == "cifar100":
        return (folder / "train").is_file() and (folder / "test").is_file()
    return all(_find(folder, f) is not None for f in spec.files)


def on_disk(name: str, data_dir: str | os.PathLike) -> bool:
    """The dataset's files lie under `data_dir` (bundled datasets: False, they need no files)."""
    spec = get_dataset_spec(name)
    if spec.bundled:
        return False
    data_dir = Path(data_dir).expanduser()
    return any(_present(spec, f) for f in _folder_candidates(spec, data_dir))


def available_datasets(data_dir: str | os.PathLike) -> list[str]:
    """The datasets a run can use here without downloading: on disk under `data_dir`, or shipped with
    an installed package (digits with scikit-learn)."""
    out = []
    for name, spec in DATASETS.items():
        if spec.bundled:
            if importlib.util.find_spec(_MODULES.get(spec.package, spec.package)) is not None:
                out.append(name)
        elif on_disk(name, data_dir):
            out.append(name)
    return out


def default_dataset(data_dir: str | os.PathLike) -> str:
    """The first torchvision dataset on disk under `data_dir` (CIFAR-10 first), else `digits`."""
    for name in available_datasets(data_dir):
        if not DATASETS[name].bundled:
            return name
    return "digits"


# ------------------------------------------------------------------------------------------- download
def _host_reachable(url: str, timeout: float = 3.0) -> bool:
    """True if a TCP connection to the URL's host opens within `timeout` s (DNS included: a thread)."""
    from urllib.parse import urlparse

    u = urlparse(url)
    port = u.port or (443 if u.scheme == "https" else 80)
    ok: list[bool] = []

    def probe():
        try:
            with socket.create_connection((u.hostname, port), timeout=timeout):
                ok.append(True)
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.5)
    return bool(ok)


def _download(spec: DatasetSpec, data_dir: Path) -> None:
    import torchvision.datasets as tvd

    cls = {"cifar10": tvd.CIFAR10, "cifar100": tvd.CIFAR100, "mnist": tvd.MNIST, "fashionmnist": tvd.FashionMNIST}[
        spec.name
    ]
    data_dir.mkdir(parents=True, exist_ok=True)
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30.0)  # a stalled transfer raises instead of hanging
    try:
        with open(os.devnull, "w") as devnull:
            import contextlib

            with contextlib.redirect_stdout(devnull):
                cls(str(data_dir), train=True, download=True)
    finally:
        socket.setdefaulttimeout(old)


def missing_message(spec: DatasetSpec, data_dir: Path, why: str) -> str:
    target = data_dir / spec.folder
    files = ", ".join(spec.files)
    extra = (
        " (each may also be gzipped: name.gz)"
        if spec.name in ("mnist", "fashionmnist")
        else f" — they are the contents of {spec.url.rsplit('/', 1)[-1]}, extracted"
    )
    return (
        f"{spec.label} was not found under {data_dir} and {why}. Put the files {files} in "
        f"{target}/{extra}; official source: {spec.url}. Or point --data-dir / SAMLAB_DATA at the folder "
        f"that contains {spec.folder.split('/')[0]}. (The dataset digits needs no files: it ships with "
        f"scikit-learn.)"
    )


def load_raw(name: str, data_dir: str | os.PathLike, download: bool = True) -> RawData:
    """Read the dataset from `data_dir`, downloading it first if allowed and the host answers.
    A bundled dataset (digits) comes from its package: `data_dir` and `download` do not apply."""
    spec = get_dataset_spec(name)
    if spec.bundled:
        return _check_labels(digits_split())
    data_dir = Path(data_dir).expanduser().resolve()
    raw = _try_read(spec, data_dir)
    if raw is not None:
        return _check_labels(raw)
    if not download or os.environ.get("SAMLAB_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise DatasetMissingError(missing_message(spec, data_dir, "downloading is switched off"))
    if not _host_reachable(spec.url):
        raise DatasetMissingError(missing_message(spec, data_dir, f"its host ({spec.url}) cannot be reached"))
    try:
        _download(spec, data_dir)
    except Exception as exc:  # network error, disk full, bad archive …
        raise DatasetMissingError(
            missing_message(spec, data_dir, f"the download failed ({type(exc).__name__}: {exc})")
        ) from exc
    raw = _try_read(spec, data_dir)
    if raw is None:
        raise DatasetMissingError(missing_message(spec, data_dir, "the download did not produce the files"))
    return _check_labels(raw)


# ------------------------------------------------------------------------------------------- preparation
@dataclass
class TrainData:
    """The training set actually used (subset, label noise applied), the test set, and the Hessian batch."""

    spec: DatasetSpec
    x_train: torch.Tensor  # (N, C, H, W) uint8
    y_train: torch.Tensor  # (N,) int64, noisy labels if label_noise > 0
    y_clean: torch.Tensor  # (N,) the original labels
    x_test: torch.Tensor
    y_test: torch.Tensor
    note: str = ""

    @property
    def noisy(self) -> torch.Tensor:
        return self.y_train != self.y_clean


def symmetric_label_noise(y: torch.Tensor, rate: float, num_classes: int, seed: int) -> torch.Tensor:
    """Replace the labels of exactly round(rate·N) examples (chosen by `seed`) by a different class,
    uniform over the other C − 1 classes (so `rate` is exactly the fraction of wrong labels)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"label_noise must be in [0, 1], got {rate}")
    n = y.numel()
    k = int(round(rate * n))
    if k == 0:
        return y.clone()
    g = torch.Generator().manual_seed(seed * 7919 + 17)
    which = torch.randperm(n, generator=g)[:k]
    shift = torch.randint(1, num_classes, (k,), generator=g)  # 1 … C−1: never the true class
    out = y.clone()
    out[which] = (y[which] + shift) % num_classes
    return out


def prepare(
    raw: RawData, subset: int | None = None, label_noise: float = 0.0, seed: int = 0, test_subset: int | None = None
) -> TrainData:
    """A seeded subset of the training set (all of it if `subset` is None/0), then symmetric label noise."""
    n = raw.y_train.numel()
    if subset:
        if subset < 1:
            raise ValueError(f"subset must be ≥ 1, got {subset}")
        g = torch.Generator().manual_seed(seed * 104729 + 3)
        idx = torch.randperm(n, generator=g)[: min(subset, n)].sort().values
        x, y = raw.x_train[idx], raw.y_train[idx]
    else:
        x, y = raw.x_train, raw.y_train
    xt, yt = raw.x_test, raw.y_test
    if test_subset:
        xt, yt = xt[:test_subset], yt[:test_subset]
    y_noisy = symmetric_label_noise(y, label_noise, raw.spec.num_classes, seed)
    return TrainData(raw.spec, x.contiguous(), y_noisy, y.clone(), xt.contiguous(), yt.clone(), raw.note)


def replace_one(data: TrainData, index: int, raw: RawData, seed: int = 0) -> tuple[TrainData, int]:
    """The uniform-stability twin: the same training set with example `index` replaced by an example
    it does not contain (a training example outside the subset if there is one, else a test example)."""
    x, y = data.x_train.clone(), data.y_train.clone()
    # a training example not in the subset: compare images (cheap enough for a one-off at launch)
    flat = data.x_train.reshape(len(data.x_train), -1)
    g = torch.Generator().manual_seed(seed * 31 + 5)
    repl_x, repl_y = None, None
    for j in torch.randperm(raw.y_train.numel(), generator=g)[:64].tolist():
        cand = raw.x_train[j].reshape(-1)
        if not bool((flat == cand).all(dim=1).any()):
            repl_x, repl_y = raw.x_train[j], raw.y_train[j]
            break
    if repl_x is None:
        repl_x, repl_y = raw.x_test[0], raw.y_test[0]
    x[index], y[index] = repl_x, repl_y
    twin = TrainData(data.spec, x, y, y.clone(), data.x_test, data.y_test, data.note)
    return twin, index


# ------------------------------------------------------------------------------------------- data order
@dataclass
class EpochPlan:
    """What one epoch feeds the network, step by step: (steps, B) indices, flips and crop offsets."""

    idx: torch.Tensor  # (S, B) long
    flip: torch.Tensor  # (S, B) bool
    dx: torch.Tensor  # (S, B) long in [0, 2·pad]
    dy: torch.Tensor  # (S, B) long in [0, 2·pad]
    pad: int

    @property
    def steps(self) -> int:
        return self.idx.shape[0]


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Full batches only (drop_last): every SAM pass of a step sees a full batch."""
    return n // batch_size


def epoch_plan(n: int, batch_size: int, seed: int, epoch: int, augment: bool, pad: int = 4) -> EpochPlan:
    """A pure function of (seed, epoch): the same batches for every variant, and after a resume."""
    g = torch.Generator().manual_seed((seed + 1) * 1_000_003 + epoch * 7_919)
    s = steps_per_epoch(n, batch_size)
    perm = torch.randperm(n, generator=g)[: s * batch_size].view(s, batch_size)
    if augment:
        flip = torch.rand(s, batch_size, generator=g) < 0.5
        dx = torch.randint(0, 2 * pad + 1, (s, batch_size), generator=g)
        dy = torch.randint(0, 2 * pad + 1, (s, batch_size), generator=g)
    else:
        flip = torch.zeros(s, batch_size, dtype=torch.bool)
        dx = torch.full((s, batch_size), pad, dtype=torch.long)
        dy = torch.full((s, batch_size), pad, dtype=torch.long)
    return EpochPlan(perm, flip, dx, dy, pad)


def shard_plan(plan: EpochPlan, rank: int, world: int) -> EpochPlan:
    """Rank `rank`'s share of every batch of `plan` (data-parallel training): columns
    [rank·B/world, (rank+1)·B/world) of each step, so the ranks together see exactly the batches of the
    single-process plan and every rank keeps the same number of steps."""
    if world == 1:
        return plan
    b = plan.idx.shape[1] // world
    cols = slice(rank * b, (rank + 1) * b)
    return EpochPlan(plan.idx[:, cols], plan.flip[:, cols], plan.dx[:, cols], plan.dy[:, cols], plan.pad)


def _norm_consts(spec: DatasetSpec, device, dtype=torch.float32):
    mean = torch.tensor(spec.mean, device=device, dtype=dtype).view(1, -1, 1, 1)
    std = torch.tensor(spec.std, device=device, dtype=dtype).view(1, -1, 1, 1)
    return mean, std


def augment_batch(x: torch.Tensor, flip: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, pad: int) -> torch.Tensor:
    """Random crop (zero padding `pad`, offsets dx, dy) and horizontal flip of a uint8 batch, as batched ops.

    x: (B, C, H, W); flip, dx, dy: (B,). Returns (B, C, H, W), same dtype.
    """
    B, C, H, W = x.shape  # no data-dependent branches: no GPU sync
    if pad > 0:
        xp = F.pad(x, (pad, pad, pad, pad))  # (B, C, H+2p, W+2p)
        rows = dy.view(B, 1) + torch.arange(H, device=x.device)  # (B, H)
        cols = dx.view(B, 1) + torch.arange(W, device=x.device)  # (B, W)
        b = torch.arange(B, device=x.device).view(B, 1, 1, 1)
        c = torch.arange(C, device=x.device).view(1, C, 1, 1)
        x = xp[b, c, rows.view(B, 1, H, 1), cols.view(B, 1, 1, W)]  # (B, C, H, W)
    return torch.where(flip.view(B, 1, 1, 1), x.flip(3), x)


def augment_one(x: torch.Tensor, flip: bool, dx: int, dy: int, pad: int) -> torch.Tensor:
    """The per-example reference of `augment_batch` (the DataLoader path): x (C, H, W)."""
    C, H, W = x.shape
    if pad > 0 and (dx != pad or dy != pad):
        xp = F.pad(x, (pad, pad, pad, pad))
        x = xp[:, dy : dy + H, dx : dx + W]
    if flip:
        x = x.flip(2)
    return x


class ResidentLoader:
    """The whole dataset as one tensor on the device; a batch is a gather + batched crop/flip."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        spec: DatasetSpec,
        batch_size: int,
        seed: int,
        augment: bool,
        device,
        channels_last: bool = False,
        pad: int = 4,
        shard: tuple[int, int] = (0, 1),
    ):
        self.shard = shard  # (rank, world): this process's columns of every batch (data-parallel)
        self.x = x.to(device)  # (N, C, H, W) uint8
        self.y = y.to(device)
        self.spec, self.batch_size, self.seed, self.augment, self.pad = spec, batch_size, seed, augment, pad
        self.device = torch.device(device)
        self.mean, self.std = _norm_consts(spec, self.device)
        self.channels_last = channels_last

    def __len__(self) -> int:
        return steps_per_epoch(len(self.y), self.batch_size)

    def batches(self, epoch: int, start_step: int = 0):
        plan = shard_plan(
            epoch_plan(len(self.y), self.batch_size, self.seed, epoch, self.augment, self.pad), *self.shard
        )
        dev = self.device
        idx, flip, dx, dy = (t.to(dev, non_blocking=True) for t in (plan.idx, plan.flip, plan.dx, plan.dy))
        for s in range(start_step, plan.steps):
            xb = augment_batch(self.x[idx[s]], flip[s], dx[s], dy[s], self.pad) if self.augment else self.x[idx[s]]
            xb = (xb.float().div_(255.0) - self.mean) / self.std
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, self.y[idx[s]]


class _PlanDataset(torch.utils.data.Dataset):
    def __init__(self, x, y, spec, pad):
        self.x, self.y, self.pad = x, y, pad
        self.mean, self.std = _norm_consts(spec, "cpu")
        self.mean, self.std = self.mean[0], self.std[0]

    def __len__(self):
        return len(self.y)

    def __getitem__(self, item):
        i, flip, dx, dy = item
        x = augment_one(self.x[i], flip, dx, dy, self.pad)
        return (x.float().div_(255.0) - self.mean) / self.std, self.y[i]


class _PlanBatchSampler(torch.utils.data.Sampler):
    def __init__(self, plan: EpochPlan, start_step: int):
        self.plan, self.start = plan, start_step

    def __len__(self):
        return self.plan.steps - self.start

    def __iter__(self):
        p = self.plan
        for s in range(self.start, p.steps):
            yield list(zip(p.idx[s].tolist(), p.flip[s].tolist(), p.dx[s].tolist(), p.dy[s].tolist()))


class PlanDataLoader:
    """The standard DataLoader path (per-example transforms, optional worker processes), same plan."""

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        spec: DatasetSpec,
        batch_size: int,
        seed: int,
        augment: bool,
        num_workers: int = 0,
        pad: int = 4,
        shard: tuple[int, int] = (0, 1),
    ):
        self.shard = shard  # (rank, world): this process's columns of every batch (data-parallel)
        self.ds = _PlanDataset(x, y, spec, pad)
        self.n, self.batch_size, self.seed, self.augment, self.pad = len(y), batch_size, seed, augment, pad
        self.num_workers = num_workers

    def __len__(self) -> int:
        return steps_per_epoch(self.n, self.batch_size)

    def batches(self, epoch: int, start_step: int = 0):
        plan = shard_plan(epoch_plan(self.n, self.batch_size, self.seed, epoch, self.augment, self.pad), *self.shard)
        dl = torch.utils.data.DataLoader(
            self.ds, batch_sampler=_PlanBatchSampler(plan, start_step), num_workers=self.num_workers
        )
        yield from dl


def eval_batches(
    x: torch.Tensor, y: torch.Tensor, spec: DatasetSpec, batch_size: int, device, channels_last: bool = False
):
    """Sequential, un-augmented, normalised batches (the last one may be short)."""
    mean, std = _norm_consts(spec, device)
    for i in range(0, len(y), batch_size):
        xb = x[i : i + batch_size].to(device, non_blocking=True)
        xb = (xb.float().div_(255.0) - mean) / std
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        yield xb, y[i : i + batch_size].to(device, non_blocking=True)


__all__ = [
    "DATASETS",
    "DatasetSpec",
    "DatasetMissingError",
    "DatasetFormatError",
    "RawData",
    "TrainData",
    "EpochPlan",
    "get_dataset_spec",
    "load_raw",
    "prepare",
    "replace_one",
    "symmetric_label_noise",
    "epoch_plan",
    "shard_plan",
    "steps_per_epoch",
    "augment_batch",
    "augment_one",
    "ResidentLoader",
    "PlanDataLoader",
    "eval_batches",
    "missing_message",
    "digits_split",
    "stratified_split",
    "on_disk",
    "available_datasets",
    "default_dataset",
    "DIGITS_TEST",
    "DIGITS_SEED",
]
