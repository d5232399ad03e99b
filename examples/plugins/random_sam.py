"""Random-direction SAM: a worked SAM Lab plug-in (docs/VARIANTS.md).

The ascent goes a distance ρ along a random Gaussian direction instead of the gradient,

    e = ρ u / ‖u‖,   u ~ N(0, I) drawn afresh every step,   d = ∇L(w + e),

the "random perturbation" baseline that SAM papers compare against (it costs the same two passes but
does not look for the worst point of the ball). Load it with

    SAMLAB_PLUGINS=examples/plugins/random_sam.py streamlit run app.py
    SAMLAB_PLUGINS=examples/plugins/random_sam.py python -m sam_core.cli.train --optimizer random_sam ...

or `sam_core.load_plugins("examples/plugins/random_sam.py")` in code.

Why u is not drawn with `torch.randn(generator=…)`: a generator is state (the compiled landscape step
cannot carry it, and the after-the-loop diagnostics recompute each step's ascent, which must give the
same u again). Instead u is a pure function of (seed, step t, element index): a counter-based integer
hash gives two uniforms per element and Box–Muller turns them into a Gaussian. The rule is therefore
stateless, reproducible, and fuses into the compiled sweep step. Every trajectory of a batch sees the
same direction at a given step (like `simulate(shared_noise=True)`); elements are numbered within one
trajectory, so a network's parameters and the columns of a 2-D sweep number them the same way.
"""

from __future__ import annotations

import math

import torch

from sam_core.registry import HParam, VariantSpec, rho_param
from sam_core.rules import global_norm, scale

_MASK = 0xFFFFFFFF


def _hash32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer mixer (int64 tensors holding values < 2³², products stay < 2⁶³: no overflow)."""
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK
    x = ((x >> 16) ^ x) * 0x45D9F3B & _MASK
    return (x >> 16) ^ x


def _as_int(v, like: torch.Tensor) -> torch.Tensor:
    """Step or seed as an int64 tensor broadcastable against `like` (a tensor per trajectory is reshaped)."""
    if isinstance(v, torch.Tensor):
        v = v.to(device=like.device).round().to(torch.int64)
        return v.reshape(v.shape + (1,) * (like.dim() - v.dim())) if v.dim() else v
    return torch.tensor(int(round(float(v))), dtype=torch.int64, device=like.device)


def gaussian_direction(g: list[torch.Tensor], seed, step, bd: int) -> list[torch.Tensor]:
    """u ~ N(0, I) like `g` (batch dimensions share it): a function of (seed, step, element index) only."""
    out, offset = [], 0
    for x in g:
        inner = x.shape[bd:]
        n = math.prod(inner)
        idx = (
            (torch.arange(n, device=x.device, dtype=torch.int64) + offset).reshape(inner)
            if inner
            else torch.tensor(offset, dtype=torch.int64, device=x.device)
        )
        key = (_as_int(seed, x) * 0x9E3779B1 + _as_int(step, x) * 0x85EBCA77) & _MASK
        h1 = _hash32((idx * 2 + key) & _MASK)
        h2 = _hash32((idx * 2 + 1 + key * 3) & _MASK)
        u1 = (h1.to(x.dtype) + 0.5) / 4294967296.0  # in (0, 1): log never sees 0
        u2 = h2.to(x.dtype) / 4294967296.0
        z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)
        out.append(z.expand(x.shape) if z.shape != x.shape else z)
        offset += n
    return out


def ascent(s):
    """e = ρ u/‖u‖ with the step's Gaussian direction u (the contract: a list of one perturbation)."""
    u = gaussian_direction(s.g, s.hp["dir_seed"], s.step, s.bd)
    return [scale(u, s.hp["rho"] / global_norm(u, s.bd), s.bd)]


SPEC = VariantSpec(
    name="random_sam",
    label="Random-direction SAM",
    passes=2,
    summary="Perturb by ρ along a fresh random Gaussian direction, then step with the gradient there.",
    formula=r"u \sim \mathcal{N}(0, I),\quad e = \rho\,\frac{u}{\|u\|},\quad d = \nabla L(w + e)",
    reference=(
        "Foret et al. (ICLR 2021), Sec. 4 / Andriushchenko & Flammarion (ICML 2022): the random-perturbation baseline"
    ),
    hparams={
        "rho": rho_param(0.05),
        "dir_seed": HParam("dir_seed", 0, low=0, high=2**31 - 1, help="seed of the random directions"),
    },
    note="Plug-in example from examples/plugins/random_sam.py.",
    ascent=ascent,
)
