"""Hessian diagnostics by Hessian-vector products: top eigenvalues, trace, spectral density.

Standard setting (docs/ALGORITHMS.md, "Hessian diagnostics"): eval mode, a *fixed* batch, the loss without weight
decay, HVPs by double backward with the gradient graph built once. Vectors are flat `(P,)` tensors.

- `top_eigenvalues`: Lanczos with full reorthogonalisation (default) or power iteration with
  deflation; both stop when the top-k Ritz values change by < `tol` relatively, or at `max_iter`.
  `which="algebraic"` (what the labs plot as λ_max, the number the edge of stability compares with 2/η)
  finds the largest λ; `which="magnitude"` (PyHessian's convention, the default) the largest |λ| with its
  sign, which early in training can be a negative eigenvalue. `v0` warm-starts from a previous eigenvector.
- `hutchinson_trace`: mean of vᵀHv over Rademacher vectors.
- `spectral_density`: stochastic Lanczos quadrature with Gaussian smoothing (σ² = 1e-5 · width).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch


class HessianOperator:
    """H of `loss_fn(model(inputs), targets)` w.r.t. the trainable parameters, as a matvec."""

    def __init__(
        self,
        model: torch.nn.Module,
        loss_fn: Callable,
        inputs: torch.Tensor,
        targets: torch.Tensor,
        params: list[torch.Tensor] | None = None,
    ):
        self.params = params if params is not None else [p for p in model.parameters() if p.requires_grad]
        was_training = model.training
        model.eval()
        try:
            with torch.enable_grad():
                self.loss = loss_fn(model(inputs), targets)
                self._grads = torch.autograd.grad(self.loss, self.params, create_graph=True)
        finally:
            model.train(was_training)
        self.grad = torch.cat([g.detach().reshape(-1) for g in self._grads])  # the clean gradient, flat
        self.dim = self.grad.numel()
        self.n_hvp = 0
        self.dtype, self.device = self.grad.dtype, self.grad.device

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        self.n_hvp += 1
        vs, i = [], 0
        for p in self.params:
            vs.append(v[i : i + p.numel()].view_as(p))
            i += p.numel()
        with torch.enable_grad():
            hv = torch.autograd.grad(self._grads, self.params, grad_outputs=vs, retain_graph=True, allow_unused=True)
        return torch.cat([(h if h is not None else torch.zeros_like(p)).reshape(-1) for h, p in zip(hv, self.params)])


class FunctionOperator:
    """H of a scalar function `fn(w)` of a flat tensor `w`, as a matvec (graph built once)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor], w: torch.Tensor):
        self._w = w.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            self.loss = fn(self._w)
            (self._g,) = torch.autograd.grad(self.loss, self._w, create_graph=True)
        self.grad = self._g.detach()
        self.dim = self._w.numel()
        self.n_hvp = 0
        self.dtype, self.device = self._w.dtype, self._w.device

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        self.n_hvp += 1
        with torch.enable_grad():
            (hv,) = torch.autograd.grad(
                self._g, self._w, grad_outputs=v.view_as(self._w), retain_graph=True, allow_unused=True
            )
        return torch.zeros_like(v) if hv is None else hv.reshape(-1)


class MatrixOperator:
    """A dense symmetric matrix as an operator (tests, small problems)."""

    def __init__(self, H: torch.Tensor):
        self.H = H
        self.dim = H.shape[0]
        self.n_hvp = 0
        self.dtype, self.device = H.dtype, H.device

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        self.n_hvp += 1
        return self.H @ v


@dataclass
class EigResult:
    values: torch.Tensor  # (k,) sorted descending by |λ| (sign kept) or by λ, as `which` asked
    vectors: torch.Tensor  # (k, P), unit norm
    n_hvp: int
    converged: bool


def _start(op, v0: torch.Tensor | None, seed: int) -> torch.Tensor:
    if v0 is not None and v0.numel() == op.dim and float(v0.norm()) > 0:
        v = v0.detach().reshape(-1).to(device=op.device, dtype=op.dtype).clone()
    else:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        v = torch.randn(op.dim, generator=gen, dtype=torch.float64).to(device=op.device, dtype=op.dtype)
    return v / v.norm()


def _top_by_abs(vals: torch.Tensor, k: int) -> torch.Tensor:
    return torch.argsort(vals.abs(), descending=True)[:k]


def _top_idx(vals: torch.Tensor, k: int, which: str) -> torch.Tensor:
    return _top_by_abs(vals, k) if which == "magnitude" else torch.argsort(vals, descending=True)[:k]


class _Shifted:
    """H + s·I as an operator (power iteration for the algebraic top: with s ≥ |λ_min| every eigenvalue
    is ≥ 0, so the largest magnitude of H + sI is the largest algebraic λ of H plus s)."""

    def __init__(self, op, s: float):
        self.op, self.s = op, s
        self.dim, self.device, self.dtype = op.dim, op.device, op.dtype

    @property
    def n_hvp(self) -> int:
        return self.op.n_hvp

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        return self.op.matvec(v) + self.s * v


def lanczos(
    op,
    n_steps: int,
    v0: torch.Tensor | None = None,
    seed: int = 0,
    on_step: Callable[[torch.Tensor, torch.Tensor, int], bool] | None = None,
):
    """Lanczos with full reorthogonalisation. Returns (alphas, betas, Q) with Q of shape (m, P).

    `on_step(alphas, betas, j)` may return True to stop early.
    """
    q = _start(op, v0, seed)
    # the Krylov basis in one (capacity, P) buffer, doubled when full: stacking a list of rows every step copied
    # O(j·P) per step (on a 300k-parameter MLP, 100 steps: more time in torch.stack than in the HVPs), and a
    # buffer of n_steps rows up front would hold max_iter rows of a large model for a run that stops early
    Q = torch.empty((min(max(1, n_steps), 16), q.numel()), dtype=q.dtype, device=q.device)
    Q[0] = q
    alphas: list[float] = []
    betas: list[float] = []
    for j in range(n_steps):
        w = op.matvec(Q[j])
        a = torch.dot(w, Q[j])
        alphas.append(float(a))
        w = w - a * Q[j] - (betas[-1] * Q[j - 1] if betas else 0.0)
        Qm = Q[: j + 1]
        for _ in range(2):  # full reorthogonalisation, twice is enough
            w = w - Qm.T @ (Qm @ w)
        b = float(w.norm())
        if on_step is not None and on_step(
            torch.tensor(alphas, dtype=torch.float64), torch.tensor(betas, dtype=torch.float64), j + 1
        ):
            break
        if b < 1e-10 * max(1.0, abs(alphas[-1])) or j == n_steps - 1:
            break
        betas.append(b)
        if j + 1 == Q.shape[0]:
            grown = torch.empty((min(2 * Q.shape[0], n_steps), Q.shape[1]), dtype=Q.dtype, device=Q.device)
            grown[: j + 1] = Q
            Q = grown
        Q[j + 1] = w / b
    m = len(alphas)
    return (
        torch.tensor(alphas, dtype=torch.float64),
        torch.tensor(betas[: m - 1], dtype=torch.float64),
        Q[:m].clone() if m < Q.shape[0] else Q,
    )


def _tridiag(alphas: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
    T = torch.diag(alphas)
    if betas.numel():
        T = T + torch.diag(betas, 1) + torch.diag(betas, -1)
    return T


def top_eigenvalues(
    op,
    k: int = 1,
    method: str = "lanczos",
    v0: torch.Tensor | None = None,
    tol: float = 1e-3,
    max_iter: int = 100,
    seed: int = 0,
    which: str = "magnitude",
) -> EigResult:
    """The k largest eigenvalues and their eigenvectors: by magnitude, sign kept (`which="magnitude"`,
    PyHessian's convention), or the k algebraically largest (`which="algebraic"`: λ_max, λ_2, …)."""
    if k < 1 or k > op.dim:
        raise ValueError(f"k must be in [1, {op.dim}], got {k}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if which not in ("magnitude", "algebraic"):
        raise ValueError(f"which must be 'magnitude' or 'algebraic', got {which!r}")
    if method == "power":
        if which == "magnitude":
            return _power(op, k, v0, tol, max_iter, seed)
        first = _power(op, 1, v0, tol, max_iter, seed)
        lam = float(first.values[0])
        if lam >= 0 and k == 1:
            return first
        s = abs(lam) * (1.0 + 1e-6)
        shifted = _power(_Shifted(op, s), k, v0 if lam >= 0 else None, tol, max_iter, seed + 1)
        return EigResult(
            (shifted.values - s).to(op.dtype),
            shifted.vectors,
            first.n_hvp + shifted.n_hvp,
            first.converged and shifted.converged,
        )
    if method != "lanczos":
        raise ValueError(f"method must be 'lanczos' or 'power', got {method!r}")
    start = op.n_hvp
    prev: list[torch.Tensor | None] = [None]
    done = [False]

    def check(alphas, betas, j):
        if j < k:
            return False
        ev = torch.linalg.eigvalsh(_tridiag(alphas, betas))
        top = ev[_top_idx(ev, k, which)]
        p = prev[0]
        prev[0] = top
        if p is not None and p.numel() == top.numel():
            if bool(((top - p).abs() <= tol * top.abs().clamp_min(1e-30)).all()):
                done[0] = True
                return True
        return False

    alphas, betas, Q = lanczos(op, min(max_iter, op.dim), v0, seed, on_step=check)
    evals, evecs = torch.linalg.eigh(_tridiag(alphas, betas))
    idx = _top_idx(evals, min(k, evals.numel()), which)
    vecs = evecs[:, idx].T.to(Q.dtype) @ Q  # (k, P)
    vecs = vecs / vecs.norm(dim=1, keepdim=True)
    converged = done[0] or alphas.numel() == op.dim or alphas.numel() < min(max_iter, op.dim)
    return EigResult(evals[idx].to(op.dtype), vecs, op.n_hvp - start, converged)


def _power(op, k, v0, tol, max_iter, seed) -> EigResult:
    start = op.n_hvp
    vals, vecs = [], []
    converged = True
    for i in range(k):
        v = _start(op, v0 if i == 0 else None, seed + i)
        lam_old = None
        ok = False
        for _ in range(max_iter):
            for u in vecs:  # deflation by Gram–Schmidt
                v = v - torch.dot(u, v) * u
            v = v / v.norm()
            hv = op.matvec(v)
            lam = float(torch.dot(v, hv))
            for u in vecs:
                hv = hv - torch.dot(u, hv) * u
            nrm = hv.norm()
            if float(nrm) == 0:
                ok = True
                break
            v = hv / nrm
            if lam_old is not None and abs(lam - lam_old) <= tol * max(abs(lam), 1e-30):
                ok = True
                break
            lam_old = lam
        converged &= ok
        vals.append(lam)
        vecs.append(v)
    return EigResult(torch.tensor(vals, dtype=op.dtype), torch.stack(vecs), op.n_hvp - start, converged)


def _rademacher(n: int, gen: torch.Generator, op) -> torch.Tensor:
    return (torch.randint(0, 2, (n,), generator=gen) * 2 - 1).to(device=op.device, dtype=op.dtype)


def hutchinson_trace(op, n_samples: int = 50, seed: int = 0, method: str = "plain") -> tuple[float, float]:
    """Estimate tr(H) from `n_samples` HVPs: (estimate, standard error of its stochastic part).

    method="plain": Hutchinson, mean of vᵀHv over Rademacher v.
    method="hutch++": Meyer et al. 2021 — a third of the HVPs find the dominant subspace Q (traced
    exactly), the rest estimate the remainder; far lower variance, and exact when n_samples ≥ 3·dim.
    """
    if n_samples < 1:
        raise ValueError(f"n_samples must be ≥ 1, got {n_samples}")
    if method not in ("plain", "hutch++"):
        raise ValueError(f"method must be 'plain' or 'hutch++', got {method!r}")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    exact_part = 0.0
    Q = None
    m = n_samples
    if method == "hutch++" and n_samples >= 3:
        k = min(n_samples // 3, op.dim)
        Y = torch.stack([op.matvec(_rademacher(op.dim, gen, op)) for _ in range(k)], dim=1)  # (P, k)
        Q, _ = torch.linalg.qr(Y)
        exact_part = float(sum(torch.dot(Q[:, i], op.matvec(Q[:, i])) for i in range(Q.shape[1])))
        m = n_samples - 2 * k
        if Q.shape[1] >= op.dim or m <= 0:
            return exact_part, 0.0
    samples = []
    for _ in range(m):
        v = _rademacher(op.dim, gen, op)
        if Q is not None:
            v = v - Q @ (Q.T @ v)
        samples.append(float(torch.dot(v, op.matvec(v))))
    t = torch.tensor(samples, dtype=torch.float64)
    se = float(t.std(unbiased=True) / math.sqrt(m)) if m > 1 else float("nan")
    return exact_part + float(t.mean()), se


def spectral_density(
    op, n_steps: int = 100, n_runs: int = 1, n_grid: int = 400, seed: int = 0, sigma2_rel: float = 1e-5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stochastic Lanczos quadrature: (grid, density) of the Hessian's eigenvalues (integrates to ≈ 1)."""
    nodes, weights = [], []
    for r in range(n_runs):
        alphas, betas, _ = lanczos(op, min(n_steps, op.dim), None, seed + r)
        ev, evec = torch.linalg.eigh(_tridiag(alphas, betas))
        nodes.append(ev)
        weights.append(evec[0, :] ** 2)
    lo = min(float(x.min()) for x in nodes)
    hi = max(float(x.max()) for x in nodes)
    width = max(hi - lo, 1e-12)
    sigma2 = sigma2_rel * width
    pad = 3.0 * math.sqrt(sigma2) + 0.01 * width
    grid = torch.linspace(lo - pad, hi + pad, n_grid, dtype=torch.float64)
    dens = torch.zeros_like(grid)
    for ev, w in zip(nodes, weights):
        dens += (w[None, :] * torch.exp(-((grid[:, None] - ev[None, :]) ** 2) / (2 * sigma2))).sum(1)
    dens /= n_runs * math.sqrt(2 * math.pi * sigma2)
    return grid, dens
