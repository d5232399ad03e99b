"""Arbitrary sampling for finite sums ``f = (1/n) Σ f_i`` and the Unified SAM paper's step sizes.

A sampling draws, for each run, a multiset of indices ``i_1..i_b`` and coefficients ``c_j``; the
stochastic gradient is ``g = Σ_j c_j ∇f_{i_j}(w)`` (and the batch loss ``Σ_j c_j f_{i_j}(w)``).

- ``full``:        every example, ``c = 1/n`` (deterministic gradient).
- ``uniform``:     one example drawn uniformly, ``c = 1`` (this is 1-nice sampling).
- ``nice``:        b-nice: a subset of ``b`` distinct examples, uniformly at random, ``c = 1/b``.
- ``importance``:  ``b`` independent draws with ``p_i ∝ L_i`` (per-example smoothness), reweighted by
                   ``c = 1/(b n p_i)`` so that ``E[g] = ∇f``. With ``reweight=False`` the plain
                   mini-batch mean ``c = 1/b`` is used instead (what the authors' released numpy
                   experiments do): then ``E[g] = Σ_i p_i ∇f_i``, the gradient of a *different*
                   objective that over-weights the large-``L_i`` examples, so the iterates converge to
                   the wrong point and ``f(w_t) − f*`` stalls at a bias floor. Default: reweighted.

Expected-smoothness ("ABC") constants ``E‖g‖² ≤ 2A(f − f^inf) + B‖∇f‖² + C`` (Khaled & Richtárik 2020,
Prop. 2-3, the assumption Unified SAM's analysis uses):
b-nice ``A = (n − b) L_max / (b (n − 1))``, ``B = n (b − 1) / (b (n − 1))``; sampling with
replacement with probabilities ``p_i``: ``A = max_i L_i / (b n p_i)``, ``B = 1 − 1/b`` (so ``p_i ∝ L_i``
gives ``A = mean(L_i)/b`` instead of ``L_max``); full batch ``A = 0``, ``B = 1``.

Unified SAM constants (Oikonomou & Loizou 2025; docs/ALGORITHMS.md, "Arbitrary sampling and step sizes"):
``γ = min(2, μ / (8 (B μ + A))) / L``; ``ρ = 1/(4L)`` for ``λ = 1``, else
``ρ = min(1, μ / (2 (B μ + A) (1 − λ)²)) / (4L)``. For a λ *schedule* we return the most conservative
value over λ ∈ [0, 1] (that of λ = 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["SAMPLING_KINDS", "Sampling", "theory_stepsizes"]

SAMPLING_KINDS = ("full", "uniform", "nice", "importance")


@dataclass(frozen=True)
class Sampling:
    """How examples are drawn each step (see the module docstring)."""

    kind: str = "full"
    batch_size: int = 1
    reweight: bool = True

    def __post_init__(self):
        if self.kind not in SAMPLING_KINDS:
            raise ValueError(f"sampling kind must be one of {SAMPLING_KINDS}, got {self.kind!r}")
        if self.kind == "uniform" and self.batch_size != 1:
            object.__setattr__(self, "batch_size", 1)
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    # ------------------------------------------------------------------ description
    @property
    def label(self) -> str:
        if self.kind == "full":
            return "full batch"
        if self.kind == "uniform":
            return "uniform (1 example)"
        if self.kind == "nice":
            return f"{self.batch_size}-nice"
        rw = "" if self.reweight else ", no reweighting"
        return f"importance p∝L_i (b={self.batch_size}{rw})"

    def check(self, n: int) -> None:
        """Raise ValueError if this sampling cannot be used on ``n`` examples."""
        if self.kind == "nice" and self.batch_size > n:
            raise ValueError(f"batch_size must be in [1, n={n}] for b-nice sampling, got {self.batch_size}")

    def examples_per_eval(self, n: int) -> int:
        """Per-example gradients one gradient evaluation costs (``n`` for full batch, else ``b``)."""
        return n if self.kind == "full" else int(self.batch_size)

    # ------------------------------------------------------------------ distribution
    def probabilities(self, L_i: torch.Tensor) -> torch.Tensor:
        """Probability of each example per draw: ``p_i ∝ L_i`` for importance sampling, else ``1/n``."""
        n = L_i.shape[0]
        if self.kind == "importance":
            if not bool((L_i > 0).all()):
                raise ValueError("importance sampling needs every per-example smoothness L_i > 0")
            return L_i / L_i.sum()
        return torch.full((n,), 1.0 / n, dtype=L_i.dtype, device=L_i.device)

    def coefficients(self, idx: torch.Tensor, L_i: torch.Tensor) -> torch.Tensor:
        """Weights ``c_j`` of the sampled examples ``idx`` (shape ``(R, b)``) in ``g = Σ_j c_j ∇f_{i_j}``."""
        n = L_i.shape[0]
        b = idx.shape[-1]
        if self.kind == "importance" and self.reweight:
            p = self.probabilities(L_i)
            return 1.0 / (b * n * p[idx])
        return torch.full(idx.shape, 1.0 / b, dtype=L_i.dtype, device=L_i.device)

    def sampler(self, L_i: torch.Tensor):
        """A fast ``draw(n_runs, generator) -> (idx (R, b), coef (R, b)) | None`` for these ``L_i``.

        Probabilities and coefficients are computed once; indices are drawn on the CPU (generators are
        device-bound) and moved to ``L_i``'s device.
        """
        if self.kind == "full":
            return lambda n_runs, generator=None: None
        n = int(L_i.shape[0])
        self.check(n)
        b = int(self.batch_size)
        dev = L_i.device
        if self.kind == "importance":
            p = self.probabilities(L_i).detach().to("cpu", torch.float64)
            cdf = torch.cumsum(p, 0)
            cdf[-1] = 1.0
            table = (1.0 / (b * n * p) if self.reweight else torch.full_like(p, 1.0 / b)).to(dev, L_i.dtype)

            def draw(n_runs, generator=None):
                u = torch.rand(n_runs, b, generator=generator, dtype=torch.float64)
                idx = torch.searchsorted(cdf, u, right=True).clamp_(max=n - 1).to(dev)  # P(i) = p_i
                return idx, table[idx]
        else:
            coef = torch.full((1, b), 1.0 / b, dtype=L_i.dtype, device=dev)

            def draw(n_runs, generator=None):
                if b == 1:
                    idx = torch.randint(0, n, (n_runs, 1), generator=generator)
                else:  # a uniformly random b-subset: the b smallest of n i.i.d. uniforms
                    idx = torch.rand(n_runs, n, generator=generator).topk(b, dim=1, largest=False).indices
                return idx.to(dev), coef.expand(n_runs, b)

        return draw

    def draw(self, n_runs: int, L_i: torch.Tensor, generator: torch.Generator | None = None):
        """Indices ``(R, b)`` and coefficients ``(R, b)`` for one step of ``n_runs`` independent runs.

        Returns ``None`` for full batch (callers then use the full gradient).
        """
        return self.sampler(L_i)(n_runs, generator)

    # ------------------------------------------------------------------ theory
    def abc(self, L_i: torch.Tensor) -> tuple[float, float]:
        """Expected-smoothness constants ``(A, B)`` of this sampling (Khaled & Richtárik 2020)."""
        n = int(L_i.shape[0])
        L_max = float(L_i.max())
        if self.kind == "full" or n == 1:
            return 0.0, 1.0
        b = int(self.batch_size)
        if self.kind in ("uniform", "nice"):
            A = (n - b) * L_max / (b * (n - 1))
            B = n * (b - 1) / (b * (n - 1))
            return float(A), float(B)
        p = self.probabilities(L_i)
        A = float((L_i / (b * n * p)).max())
        return A, 1.0 - 1.0 / b


def theory_stepsizes(L: float, mu: float, A: float, B: float, lam=1.0) -> dict:
    """Unified SAM's theoretical step size ``γ`` and radius ``ρ`` (see the module docstring).

    ``lam`` is λ ∈ [0, 1] or a schedule name (``"1/t"``, ``"1-1/t"``: the λ = 0 value, the smallest ρ).
    """
    if not (L > 0 and math.isfinite(L)):
        raise ValueError(f"L must be a positive finite number, got {L}")
    if not (mu > 0 and mu <= L):
        raise ValueError(f"mu must be in (0, L={L}], got {mu}")
    if isinstance(lam, str):
        lam_v = 0.0
    else:
        lam_v = float(lam)
        if not 0.0 <= lam_v <= 1.0:
            raise ValueError(f"lam must be in [0, 1] or a schedule, got {lam}")
    denom = B * mu + A
    gamma = min(2.0, mu / (8.0 * denom)) / L
    if lam_v == 1.0:
        rho = 1.0 / (4.0 * L)
    else:
        rho = min(1.0, mu / (2.0 * denom * (1.0 - lam_v) ** 2)) / (4.0 * L)
    return {"gamma": gamma, "rho": rho, "A": A, "B": B, "L": L, "mu": mu}
