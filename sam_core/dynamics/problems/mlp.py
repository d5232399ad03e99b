"""A small fully connected network on a fixed small data set, for the edge-of-stability lab.

Functional form (parameters are a plain list of tensors, no ``nn.Module``) so that the SAM rules of
``sam_core.rules`` and the Hessian tools of ``sam_core.hessian`` act on the same tensors:
``params = [W_1, b_1, ..., W_L, b_L]`` with ``W_k`` of shape ``(out, in)``.
Loss: squared loss on one-hot labels, ``L = (1/n) Σ_i ½ ‖f(x_i) − y_i‖²`` (Long & Bartlett's setting),
always full batch.

Data: ``synthetic`` (default: Gaussian clusters with a random teacher relabelling, a few thousand
points, no download) or ``mnist`` (a subset of torchvision's MNIST when it is already on disk under
``data_dir``; it is never downloaded here).
"""

from __future__ import annotations

import math
import os

import torch

__all__ = [
    "ACTIVATIONS",
    "EOS_DATASETS",
    "flatten",
    "init_mlp",
    "make_eos_data",
    "mlp_forward",
    "mlp_loss",
    "mlp_loss_grad",
    "unflatten",
]

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu, "elu": torch.nn.functional.elu}
EOS_DATASETS = ("synthetic", "mnist")


def make_eos_data(
    dataset: str = "synthetic",
    n: int = 1000,
    in_dim: int = 20,
    classes: int = 4,
    seed: int = 0,
    data_dir: str | None = None,
    device="cpu",
    dtype=torch.float32,
):
    """``(X (n, in_dim), Y (n, classes))`` with one-hot ``Y``; MNIST images are flattened to 784."""
    if dataset not in EOS_DATASETS:
        raise ValueError(f"dataset must be one of {EOS_DATASETS}, got {dataset!r}")
    if not 10 <= int(n) <= 60_000:
        raise ValueError(f"n must be in [10, 60000], got {n}")
    gen = torch.Generator().manual_seed(int(seed))
    if dataset == "mnist":
        X, labels = _mnist_subset(int(n), gen, data_dir)
        classes = 10
    else:
        if not 2 <= int(classes) <= 100:
            raise ValueError(f"classes must be in [2, 100], got {classes}")
        if not 1 <= int(in_dim) <= 10_000:
            raise ValueError(f"in_dim must be in [1, 10000], got {in_dim}")
        # inputs x ~ N(0, I); labels from a random tanh teacher network (a non-linear boundary that the
        # student fits slowly, so the sharpness keeps rising over training)
        X = torch.randn(int(n), int(in_dim), generator=gen)
        T1 = torch.randn(int(in_dim), 32, generator=gen) / math.sqrt(in_dim)
        T2 = torch.randn(32, int(classes), generator=gen)
        labels = (torch.tanh(2.0 * X @ T1) @ T2).argmax(1)
    Y = torch.nn.functional.one_hot(labels, int(classes)).to(torch.float32)
    return X.to(device=device, dtype=dtype), Y.to(device=device, dtype=dtype)


def _mnist_subset(n, gen, data_dir):
    root = data_dir or os.environ.get("SAMLAB_DATA") or "data"
    try:
        import torchvision

        ds = torchvision.datasets.MNIST(root, train=True, download=False)
    except Exception as exc:  # missing files: say where they go
        raise FileNotFoundError(
            f"MNIST not found under {os.path.abspath(root)!r}: put the raw files in "
            f"{os.path.join(os.path.abspath(root), 'MNIST', 'raw')} (train-images-idx3-ubyte, "
            "train-labels-idx1-ubyte) or choose the synthetic data set"
        ) from exc
    pick = torch.randperm(len(ds.targets), generator=gen)[:n]
    X = ds.data[pick].reshape(n, -1).to(torch.float32) / 255.0
    X = (X - 0.1307) / 0.3081
    return X, ds.targets[pick].long()


def init_mlp(sizes, seed: int = 0, device="cpu", dtype=torch.float32):
    """Parameters ``[W_1, b_1, ...]`` for layer widths ``sizes = (in, h_1, ..., out)``.

    PyTorch's ``nn.Linear`` default initialisation (uniform in ``±1/sqrt(fan_in)``), seeded.
    """
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"sizes must list at least an input and an output width >= 1, got {sizes}")
    gen = torch.Generator().manual_seed(int(seed))
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        W = (torch.rand(fan_out, fan_in, generator=gen) * 2 - 1) * bound
        b = (torch.rand(fan_out, generator=gen) * 2 - 1) * bound
        params += [W.to(device=device, dtype=dtype), b.to(device=device, dtype=dtype)]
    return params


def mlp_forward(params, X, activation: str = "tanh"):
    act = ACTIVATIONS[activation]
    h = X
    n_layers = len(params) // 2
    for k in range(n_layers):
        h = h @ params[2 * k].T + params[2 * k + 1]
        if k < n_layers - 1:
            h = act(h)
    return h


def mlp_loss(params, X, Y, activation: str = "tanh"):
    """``(1/n) Σ ½ ‖f(x_i) − y_i‖²`` (0-dim tensor)."""
    r = mlp_forward(params, X, activation) - Y
    return 0.5 * (r * r).sum() / X.shape[0]


def mlp_loss_grad(params, X, Y, activation: str = "tanh"):
    """``(loss, grads)`` by autograd; ``params`` are not modified."""
    with torch.enable_grad():
        ps = [p.detach().requires_grad_(True) for p in params]
        loss = mlp_loss(ps, X, Y, activation)
        grads = torch.autograd.grad(loss, ps)
    return loss.detach(), list(grads)


def flatten(params) -> torch.Tensor:
    return torch.cat([p.reshape(-1) for p in params])


def unflatten(flat: torch.Tensor, like) -> list[torch.Tensor]:
    out, i = [], 0
    for p in like:
        out.append(flat[i : i + p.numel()].view_as(p))
        i += p.numel()
    return out
