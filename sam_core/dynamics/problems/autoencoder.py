"""Linear autoencoder saddle problem (Stable SAM paper, Fig. 1), batched over independent runs.

Approximate the d x d identity by a product ``W2 @ W1`` of two square matrices. On a batch of
inputs ``x`` the loss is ``1/|B| sum_x ½‖(W2 W1 − I) x‖²  =  ½ tr(E S Eᵀ)`` with ``E = W2 W1 − I`` and
``S = XᵀX/|B|`` the batch second-moment matrix, so the gradients have the closed form

    ∇_{W1} L = W2ᵀ E S,        ∇_{W2} L = E S W1ᵀ.

With ``S = I`` this is the population loss ``½‖W2 W1 − I‖²_F`` (inputs ``x ~ N(0, I)``). The origin
is a strict saddle: small initialisations (entries ``N(0, σ²)``, σ² = 1e-4) sit on a loss plateau
before gradient descent escapes it.

Every tensor here carries a leading *run* dimension ``R`` (variants are run one call each, and each
call is batched over ρ x seeds), so ``W1, W2`` have shape ``(R, d, d)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "AutoencoderData",
    "ae_loss",
    "ae_loss_grad",
    "batch_second_moment",
    "init_autoencoder",
    "make_autoencoder_data",
]


_EYE: dict = {}


def _eye(d, dtype, device) -> torch.Tensor:
    key = (d, dtype, str(device))
    if key not in _EYE:
        _EYE[key] = torch.eye(d, dtype=dtype, device=device)
    return _EYE[key]


def ae_loss(params: list[torch.Tensor], S: torch.Tensor | None = None) -> torch.Tensor:
    """The loss ``½ tr(E S Eᵀ)`` alone (see :func:`ae_loss_grad`)."""
    W1, W2 = params
    E = W2 @ W1 - _eye(W1.shape[-1], W1.dtype, W1.device)
    ES = E if S is None else E @ S
    return 0.5 * (E * ES).sum(dim=(-2, -1))


def ae_loss_grad(params: list[torch.Tensor], S: torch.Tensor | None = None, with_loss: bool = True):
    """Loss and closed-form gradients of ``½ tr(E S Eᵀ)``, ``E = W2 W1 − I``.

    params: ``[W1, W2]`` each ``(..., d, d)``; S: ``(..., d, d)`` symmetric second-moment matrix of the
    batch (broadcast against the params' leading dims), or ``None`` for the population loss (``S = I``).
    Returns ``(loss (...,), [grad_W1, grad_W2])``; with ``with_loss=False`` the loss is not computed
    (NaN placeholder), which saves a little when only the gradients are used.
    """
    W1, W2 = params
    eye = _eye(W1.shape[-1], W1.dtype, W1.device)
    if W1.dim() == 3 and W2.dim() == 3:
        E = torch.baddbmm(eye, W2, W1, beta=-1.0)  # (R, d, d) = W2 W1 − I, one kernel
    else:
        E = W2 @ W1 - eye
    ES = E if S is None else E @ S  # (..., d, d)
    if with_loss:
        loss = 0.5 * (E * ES).sum(dim=(-2, -1))  # (...,)
    else:
        loss = torch.full(E.shape[:-2], float("nan"), dtype=E.dtype, device=E.device)
    g1 = W2.transpose(-2, -1) @ ES
    g2 = ES @ W1.transpose(-2, -1)
    return loss, [g1, g2]


@dataclass(frozen=True)
class AutoencoderData:
    """A fixed synthetic data set ``X`` of shape ``(n, d)``, rows ``x ~ N(0, I)``, and its ``XᵀX/n``."""

    X: torch.Tensor  # (n, d)
    S_full: torch.Tensor  # (d, d)

    @property
    def n(self) -> int:
        return self.X.shape[0]


def make_autoencoder_data(n: int, d: int, seed: int = 0, device="cpu", dtype=torch.float32) -> AutoencoderData:
    """Draw ``n`` synthetic inputs ``x ~ N(0, I_d)`` (seeded, so every run sees the same data)."""
    if n < 1:
        raise ValueError(f"n_samples must be >= 1, got {n}")
    if d < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    gen = torch.Generator().manual_seed(int(seed))
    X = torch.randn(n, d, generator=gen, dtype=torch.float64)
    S = X.T @ X / n
    return AutoencoderData(X=X.to(device=device, dtype=dtype), S_full=S.to(device=device, dtype=dtype))


def batch_second_moment(X: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``S_r = X[idx_r]ᵀ X[idx_r] / b`` for each row ``idx_r`` of ``idx`` (shape ``(K, b)``) -> ``(K, d, d)``."""
    Xb = X[idx]  # (K, b, d)
    return Xb.transpose(-2, -1) @ Xb / idx.shape[-1]


def init_autoencoder(seeds, d: int, init_var: float = 1e-4, device="cpu", dtype=torch.float32):
    """``[W1, W2]`` of shape ``(len(seeds), d, d)``, entries ``N(0, init_var)``; run ``r`` is drawn from ``seeds[r]``.

    Equal seeds give equal initialisations, so runs that differ only in the optimizer or ρ start from
    the same point (common random numbers make the comparison sharper).
    """
    if not init_var > 0:
        raise ValueError(f"init_var must be > 0, got {init_var}")
    std = float(init_var) ** 0.5
    w1, w2 = [], []
    for s in seeds:
        gen = torch.Generator().manual_seed(int(s))
        w1.append(torch.randn(d, d, generator=gen, dtype=torch.float64) * std)
        w2.append(torch.randn(d, d, generator=gen, dtype=torch.float64) * std)
    return [torch.stack(w).to(device=device, dtype=dtype) for w in (w1, w2)]
