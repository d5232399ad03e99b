"""Convex test problems for the Unified SAM experiments: a quadratic, ridge and logistic regression.

All work on a batch of runs: ``w`` has shape ``(R, D)``; losses come back as ``(R,)``.

- :class:`Quadratic`: ``f(w) = ½ wᵀ A w`` with ``A = Q diag(λ) Qᵀ``, eigenvalues log-spaced in
  ``[λ_max/κ, λ_max]`` (κ the condition number), ``f* = 0``. Deterministic gradient; stochasticity comes
  from additive Gaussian gradient noise (added by the runner).
- :class:`Ridge`: ``f(w) = (1/n) Σ_i [½ (a_iᵀ w − y_i)² + (reg/2) ‖w‖²]``, per-example smoothness
  ``L_i = ‖a_i‖² + reg``.
- :class:`Logistic`: ``f(w) = (1/n) Σ_i [log(1 + exp(−y_i a_iᵀ w)) + (reg/2) ‖w‖²]``, ``y_i ∈ {±1}``,
  ``L_i = ‖a_i‖²/4 + reg``.

The rows ``a_i`` are generated with unequal norms (log-uniform in ``[1, row_norm_ratio]``) so the ``L_i``
differ and importance sampling matters; the features have a covariance of condition number ``cond``
before that row scaling (the realised ``κ = L/μ`` is reported in :attr:`kappa`). ``f*`` and ``w*`` are
computed exactly (normal equations) or by Newton's method (logistic), in float64.

Mini-batch estimators take ``batch = (idx (R, b), coef (R, b))`` from :mod:`sam_core.dynamics.problems.sampling`:
``loss = Σ_j c_j f_{i_j}(w)``, ``grad = Σ_j c_j ∇f_{i_j}(w)``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["PROBLEM_KINDS", "Logistic", "Quadratic", "Ridge", "make_problem"]

PROBLEM_KINDS = ("quadratic", "ridge", "logistic")


def _check(name, value, low, high, *, low_open=False, integer=False):
    ok = (low < value if low_open else low <= value) and value <= high
    if integer and int(value) != value:
        ok = False
    if not ok or (isinstance(value, float) and not math.isfinite(value)):
        lo = "(" if low_open else "["
        raise ValueError(f"{name} must be in {lo}{low}, {high}], got {value}")


def _orthogonal(D, gen):
    q, r = torch.linalg.qr(torch.randn(D, D, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


class _Base:
    name = "problem"
    n: int
    dim: int
    L: float
    mu: float
    f_star: float
    L_i: torch.Tensor
    w_star: torch.Tensor
    w0: torch.Tensor

    @property
    def kappa(self) -> float:
        return self.L / self.mu

    def to(self, device):
        """Move every tensor attribute to ``device`` (returns self)."""
        for k, v in list(vars(self).items()):
            if isinstance(v, torch.Tensor):
                setattr(self, k, v.to(device))
        return self

    def init(self, n_runs: int) -> torch.Tensor:
        """``w0`` repeated for ``n_runs`` runs: ``(R, D)``."""
        return self.w0.expand(n_runs, -1).clone()

    def rel_error(self, w: torch.Tensor) -> torch.Tensor:
        """``(f(w) − f*) / (f(w0) − f*)`` per run."""
        f0 = float(self.loss(self.w0[None])[0])
        return (self.loss(w) - self.f_star) / (f0 - self.f_star)

    def describe(self) -> dict:
        return {
            "problem": self.name,
            "n": self.n,
            "dim": self.dim,
            "L": self.L,
            "mu": self.mu,
            "kappa": self.kappa,
            "L_max": float(self.L_i.max()),
            "L_mean": float(self.L_i.mean()),
            "f_star": self.f_star,
        }


class Quadratic(_Base):
    """``f(w) = ½ wᵀ A w``; ``n = 1`` (no finite sum), ``L = λ_max``, ``μ = λ_max/κ``, ``w* = 0``."""

    name = "quadratic"

    def __init__(self, dim: int = 20, cond: float = 100.0, lam_max: float = 1.0, seed: int = 0, dtype=torch.float64):
        _check("dim", dim, 1, 10_000, integer=True)
        _check("cond", cond, 1.0, 1e8)
        _check("lam_max", lam_max, 0.0, 1e6, low_open=True)
        gen = torch.Generator().manual_seed(int(seed))
        self.dim, self.n = int(dim), 1
        self.eigenvalues = torch.logspace(
            math.log10(lam_max / cond), math.log10(lam_max), int(dim), dtype=torch.float64
        )
        Q = _orthogonal(self.dim, gen)
        self.Q = Q.to(dtype)
        self.A = ((Q * self.eigenvalues) @ Q.T).to(dtype)
        self.A = 0.5 * (self.A + self.A.T)
        self.L, self.mu = float(lam_max), float(lam_max / cond)
        self.L_i = torch.tensor([self.L], dtype=dtype)
        self.f_star = 0.0
        self.w_star = torch.zeros(self.dim, dtype=dtype)
        # equal weight on every eigendirection, norm 1
        self.w0 = (Q @ torch.ones(self.dim, dtype=torch.float64) / math.sqrt(self.dim)).to(dtype)

    def loss(self, w):
        return 0.5 * ((w @ self.A) * w).sum(-1)

    def loss_grad(self, w, batch=None):
        Aw = w @ self.A  # (R, D)
        return 0.5 * (Aw * w).sum(-1), Aw


class _Data(_Base):
    A: torch.Tensor  # (n, D)
    y: torch.Tensor  # (n,)
    reg: float

    @staticmethod
    def _features(n, dim, cond, row_norm_ratio, gen):
        col = torch.logspace(0.0, -0.5 * math.log10(cond), dim, dtype=torch.float64)  # cov spread κ
        X = torch.randn(n, dim, generator=gen, dtype=torch.float64) * col
        X = X @ _orthogonal(dim, gen).T
        X = X / X.norm(dim=1, keepdim=True)  # unit rows ...
        scale = row_norm_ratio ** torch.rand(n, generator=gen, dtype=torch.float64)
        return X * scale[:, None]  # ... rescaled: norms log-uniform in [1, row_norm_ratio]

    def _margins(self, w, idx=None):
        A = self.A if idx is None else self.A[idx]  # (n, D) or (R, b, D)
        if idx is None:
            return w @ A.T  # (R, n)
        return (A @ w[:, :, None]).squeeze(-1)  # (R, b)

    def _finish(self, per_loss, dz, w, idx, coef):
        """Combine per-example losses ``(R, m)`` and derivatives w.r.t. the margin ``(R, m)``."""
        reg_term = 0.5 * self.reg * (w * w).sum(-1)
        if idx is None:
            loss = per_loss.mean(-1) + reg_term
            grad = dz @ self.A / self.n + self.reg * w
            return loss, grad
        csum = coef.sum(-1)
        loss = (coef * per_loss).sum(-1) + csum * reg_term
        grad = ((coef * dz)[:, None, :] @ self.A[idx]).squeeze(1) + csum[:, None] * self.reg * w
        return loss, grad

    def loss(self, w):
        return self.loss_grad(w)[0]


class Ridge(_Data):
    """Least squares with an L2 penalty on generated data (see the module docstring)."""

    name = "ridge"

    def __init__(
        self,
        n: int = 200,
        dim: int = 20,
        cond: float = 100.0,
        row_norm_ratio: float = 10.0,
        reg: float = 1e-3,
        label_noise: float = 0.1,
        seed: int = 0,
        dtype=torch.float64,
    ):
        _check("n", n, 2, 1_000_000, integer=True)
        _check("dim", dim, 1, 10_000, integer=True)
        _check("cond", cond, 1.0, 1e8)
        _check("row_norm_ratio", row_norm_ratio, 1.0, 1e4)
        _check("reg", reg, 0.0, 1e6)
        _check("label_noise", label_noise, 0.0, 1e6)
        gen = torch.Generator().manual_seed(int(seed))
        self.n, self.dim, self.reg = int(n), int(dim), float(reg)
        A = self._features(self.n, self.dim, cond, row_norm_ratio, gen)
        w_true = torch.randn(self.dim, generator=gen, dtype=torch.float64) / math.sqrt(self.dim)
        y = A @ w_true + label_noise * torch.randn(self.n, generator=gen, dtype=torch.float64)
        H = A.T @ A / self.n + self.reg * torch.eye(self.dim, dtype=torch.float64)
        ev = torch.linalg.eigvalsh(H)
        if float(ev[0]) <= 0:
            raise ValueError("ridge problem is not strongly convex: raise reg above 0 or use n >= dim")
        self.L, self.mu = float(ev[-1]), float(ev[0])
        w_star = torch.linalg.solve(H, A.T @ y / self.n)
        self.A, self.y = A.to(dtype), y.to(dtype)
        self.L_i = ((A * A).sum(1) + self.reg).to(dtype)
        self.w_star = w_star.to(dtype)
        self.w0 = torch.zeros(self.dim, dtype=dtype)
        # f* in float64 from the float64 data
        r = A @ w_star - y
        self.f_star = float(0.5 * (r * r).mean() + 0.5 * self.reg * (w_star @ w_star))

    def loss_grad(self, w, batch=None):
        idx, coef = (None, None) if batch is None else batch
        y = self.y if idx is None else self.y[idx]
        r = self._margins(w, idx) - y
        return self._finish(0.5 * r * r, r, w, idx, coef)


class Logistic(_Data):
    """L2-regularised logistic regression on generated, noisy linearly-separable-ish labels."""

    name = "logistic"

    def __init__(
        self,
        n: int = 200,
        dim: int = 20,
        cond: float = 100.0,
        row_norm_ratio: float = 10.0,
        reg: float = 1e-2,
        label_noise: float = 0.1,
        seed: int = 0,
        dtype=torch.float64,
    ):
        _check("n", n, 2, 1_000_000, integer=True)
        _check("dim", dim, 1, 10_000, integer=True)
        _check("cond", cond, 1.0, 1e8)
        _check("row_norm_ratio", row_norm_ratio, 1.0, 1e4)
        _check("reg", reg, 0.0, 1e6, low_open=True)
        _check("label_noise", label_noise, 0.0, 1e6)
        gen = torch.Generator().manual_seed(int(seed))
        self.n, self.dim, self.reg = int(n), int(dim), float(reg)
        A = self._features(self.n, self.dim, cond, row_norm_ratio, gen)
        w_true = torch.randn(self.dim, generator=gen, dtype=torch.float64) * 3 / math.sqrt(self.dim)
        z = A @ w_true + label_noise * torch.randn(self.n, generator=gen, dtype=torch.float64)
        y = torch.where(z >= 0, 1.0, -1.0).to(torch.float64)
        self.A, self.y = A, y
        ev = torch.linalg.eigvalsh(A.T @ A / self.n)
        self.L, self.mu = float(ev[-1]) / 4 + self.reg, self.reg
        self.L_i = (A * A).sum(1) / 4 + self.reg
        # Newton's method for w* (strongly convex since reg > 0)
        w = torch.zeros(1, self.dim, dtype=torch.float64)
        eye = torch.eye(self.dim, dtype=torch.float64)
        for _ in range(100):
            _, g = self.loss_grad(w)
            s = torch.sigmoid(y * (w @ A.T))[0]  # (n,)
            H = (A.T * (s * (1 - s))) @ A / self.n + self.reg * eye
            w = w - torch.linalg.solve(H, g[0])[None]
            if float(g.norm()) < 1e-13:
                break
        self.f_star = float(self.loss(w)[0])
        self.A, self.y = A.to(dtype), y.to(dtype)
        self.L_i = self.L_i.to(dtype)
        self.w_star = w[0].to(dtype)
        self.w0 = torch.zeros(self.dim, dtype=dtype)

    def loss_grad(self, w, batch=None):
        idx, coef = (None, None) if batch is None else batch
        y = self.y if idx is None else self.y[idx]
        m = y * self._margins(w, idx)
        per = torch.nn.functional.softplus(-m)
        dz = -y * torch.sigmoid(-m)
        return self._finish(per, dz, w, idx, coef)


def make_problem(kind: str, **kw):
    """Build a problem by name (``quadratic``, ``ridge``, ``logistic``); unknown keywords are an error."""
    classes = {"quadratic": Quadratic, "ridge": Ridge, "logistic": Logistic}
    if kind not in classes:
        raise ValueError(f"problem must be one of {PROBLEM_KINDS}, got {kind!r}")
    return classes[kind](**kw)
