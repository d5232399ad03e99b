"""2-D test functions for the landscape lab: value, closed-form gradient, domain, critical points.

Every landscape is a :class:`Landscape`: an elementwise torch function ``f(x, y)`` plus (for the
built-ins) a closed-form vectorised gradient, so ``landscape.grad_fn`` is exactly what
``sam_core.simulate`` expects::

    grad_fn(w: (N, 2)) -> (loss (N,), grad (N, 2))        # any leading batch shape works

Built-ins (``make_landscape(name, **params)``; parameters in ``LANDSCAPE_PARAMS``):

- ``quartic``     f = x₁⁴/4 − x₁x₂ + x₂²/2, the Stable SAM paper's Fig. 2 (default). Minima (1, 1)
                  and (−1, −1) with f = −1/4, saddle at the origin; Hessian eigenvalues at the minima
                  2 ∓ √2 = 0.586, 3.414, so GD is stable for η < 2/3.414 = 2 − √2 ≈ 0.586.
- ``quadratic``   f = ½ λ x² + ½ (λ/κ) y²: top curvature λ, condition number κ.
- ``saddle``      f = x² − y² (unbounded below: every non-degenerate run diverges; a saddle escape demo).
- ``monkey``      f = x³ − 3xy² (degenerate saddle at the origin, unbounded below).
- ``rosenbrock``  f = (1 − x)² + 100 (y − x²)²; minimum (1, 1), λ_max ≈ 1001.6.
- ``himmelblau``  f = (x² + y − 11)² + (x + y² − 7)²: four global minima, four saddles, one maximum.
- ``beale``       f = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²; minimum (3, 0.5).
- ``rastrigin``   f = 20 + Σ (xᵢ² − 10 cos 2πxᵢ): global minimum at the origin, 120 local ones.
- ``valley``      asymmetric valley f = (e^{kx} − kx − 1)/k + ½ μ y²: at the minimum (0, 0) the
                  curvature across is k, but the x > 0 side rises as a sharp exponential wall and the
                  x < 0 side as a flat linear slope (|f'| → 1).

Minima / saddles / maxima of the built-ins are known in closed form or polished here by Newton's
method (float64); custom functions (``sam_core.landscape.expr``) find theirs with :func:`critical_points`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

Tensor = torch.Tensor
FG = Callable[[Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]  # (x, y) -> (f, df/dx, df/dy)


@dataclass(frozen=True)
class LParam:
    """A numeric parameter of a built-in landscape (rendered as a slider by the page)."""

    name: str
    default: float
    low: float
    high: float
    log: bool = False
    help: str = ""


_TRACE_LOCK = threading.Lock()  # Landscape._g_only: one torch.fx trace at a time in this process


@dataclass(eq=False)
class Landscape:
    """A 2-D function with what the lab needs to draw it and to judge a run on it.

    ``f(x, y)`` is elementwise torch (any shapes that broadcast). ``fg`` is the closed-form
    ``(f, ∂f/∂x, ∂f/∂y)``; when ``None`` the gradient comes from autograd.
    """

    key: str
    label: str
    latex: str
    f: Callable[[Tensor, Tensor], Tensor]
    domain: tuple[tuple[float, float], tuple[float, float]]
    fg: FG | None = None
    minima: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    saddles: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    maxima: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    start: tuple[float, float] = (0.0, 0.0)
    lr: float = 0.1  # a learning rate that shows something sensible in the race
    rho: float = 0.05
    params: dict = field(default_factory=dict)
    note: str = ""

    def __reduce__(self):
        """Pickled as its recipe (name and parameters, or the expression and domain) plus its critical
        points, so a lab job can ship a landscape to a worker process (its functions are closures)."""
        return _rebuild_landscape, (self.key, dict(self.params), self.minima, self.saddles, self.maxima)

    def __post_init__(self) -> None:
        self.minima = np.asarray(self.minima, dtype=np.float64).reshape(-1, 2)
        self.saddles = np.asarray(self.saddles, dtype=np.float64).reshape(-1, 2)
        self.maxima = np.asarray(self.maxima, dtype=np.float64).reshape(-1, 2)

    # ------------------------------------------------------------------ evaluation
    def grad_fn(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """``w (..., 2) -> (loss (...), grad (..., 2))``: closed form when known, else autograd."""
        x, y = w[..., 0], w[..., 1]
        if self.fg is not None:
            f, gx, gy = self.fg(x, y)
            return f, stack_like(w, gx, gy)
        return autograd_grad_fn(self.f, w)

    def grad_parts(self, ps: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """The same on coordinate columns: ``[x, y] -> (loss, [∂f/∂x, ∂f/∂y])`` (the compiled sweeps' form)."""
        if self.fg is not None:
            f, gx, gy = self.fg(ps[0], ps[1])
            return f, [gx, gy]
        loss, g = autograd_grad_fn(self.f, torch.stack(ps, -1))
        return loss, [g[..., 0], g[..., 1]]

    def grad_only(self, ps: list[Tensor]) -> list[Tensor]:
        """The gradient alone on coordinate columns, ``[x, y] -> [∂f/∂x, ∂f/∂y]``: the closed form with f's own
        operations left out (the race's loop needs no loss: ~30 % of a race's ops), else autograd."""
        if self.fg is None:
            return self.grad_parts(ps)[1]
        return list(self._g_only(ps[0], ps[1]))

    @cached_property
    def _g_only(self) -> Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]:
        """``fg`` traced once (torch.fx) with the operations only f needs removed: the same operations in the
        same order for the two partial derivatives, so the same numbers. ``fg`` itself if it cannot be traced.
        The ``fg`` traced is the one this landscape had at its first call (the trace is kept).

        One trace at a time (``_TRACE_LOCK``): tracing swaps ``torch.nn.Module.__call__`` for the whole
        process while it runs (a few ms), and two traces at once could leave it swapped. An ``nn.Module``
        called from another thread during those milliseconds would fail; the dashboard's server runs none (the
        labs and training run in worker processes)."""
        import torch.fx

        fg = self.fg

        def g(x, y):
            _, gx, gy = fg(x, y)
            return gx, gy

        try:
            with _TRACE_LOCK:
                gm = torch.fx.symbolic_trace(g)
            gm.graph.eliminate_dead_code()
            gm.recompile()
            return gm.forward
        except Exception:  # noqa: BLE001 - e.g. a branch on a tensor's value: run fg whole
            return g

    def value(self, w: Tensor | np.ndarray) -> np.ndarray:
        """f at points ``w (..., 2)`` as float64 numpy (for plots and tables)."""
        w = torch.as_tensor(np.asarray(w, dtype=np.float64))
        with torch.no_grad():
            return self.f(w[..., 0], w[..., 1]).double().numpy()

    def grid(self, n: int = 200, domain=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(xs (n,), ys (n,), Z (n, n))`` on the domain, Z[i, j] = f(xs[j], ys[i]) (plotly's layout)."""
        (x0, x1), (y0, y1) = domain or self.domain
        xs = np.linspace(x0, x1, n)
        ys = np.linspace(y0, y1, n)
        X, Y = np.meshgrid(xs, ys)
        with torch.no_grad():
            Z = self.f(torch.from_numpy(X), torch.from_numpy(Y)).double().numpy()
        return xs, ys, np.broadcast_to(Z, X.shape).copy()

    def hessian(self, w: Tensor | np.ndarray) -> np.ndarray:
        """Hessian ``(..., 2, 2)`` at points ``w (..., 2)`` by double backward in float64."""
        return hessian_at(self.f, w)

    # ------------------------------------------------------------------ what the lab reports
    @cached_property
    def minima_values(self) -> np.ndarray:
        return self.value(self.minima) if len(self.minima) else np.zeros(0)

    @cached_property
    def global_minima(self) -> np.ndarray:
        """The minima whose value equals the lowest one (up to 1e-6 relative)."""
        if not len(self.minima):
            return self.minima
        v = self.minima_values
        return self.minima[v <= v.min() + 1e-6 * (1.0 + abs(v.min()))]

    @cached_property
    def lam_max_per_minimum(self) -> np.ndarray:
        """Top Hessian eigenvalue at each minimum (k,)."""
        if not len(self.minima):
            return np.zeros(0)
        return np.linalg.eigvalsh(self.hessian(self.minima))[:, -1]

    @cached_property
    def lam_max(self) -> float | None:
        """Largest top Hessian eigenvalue over the global minima (None when there is no minimum)."""
        if not len(self.global_minima):
            return None
        return float(np.linalg.eigvalsh(self.hessian(self.global_minima))[:, -1].max())

    @cached_property
    def gd_bounds(self) -> list[float]:
        """Distinct GD stability bounds 2/λ_max over the global minima (ascending)."""
        if not len(self.global_minima):
            return []
        lam = np.linalg.eigvalsh(self.hessian(self.global_minima))[:, -1]
        out: list[float] = []
        for b in sorted(2.0 / lam):
            if not out or abs(b - out[-1]) > 1e-3 * b:
                out.append(float(b))
        return out

    @property
    def gd_bound(self) -> float | None:
        """2/λ_max at the global minima: GD (no momentum) converges to them only for η below this."""
        return None if self.lam_max is None else 2.0 / self.lam_max

    def nearest(self, w: Tensor | np.ndarray, points: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Index and distance of the nearest of ``points`` (default: all minima) for each ``w (..., 2)``.

        Non-finite ``w`` get distance inf and index -1; no points at all gives index -1, distance inf.
        """
        pts = self.minima if points is None else np.asarray(points, dtype=np.float64).reshape(-1, 2)
        w = np.asarray(w, dtype=np.float64)
        if not len(pts):
            return np.full(w.shape[:-1], -1), np.full(w.shape[:-1], np.inf)
        d = np.linalg.norm(w[..., None, :] - pts, axis=-1)  # (..., k)
        idx = np.nanargmin(np.where(np.isfinite(d), d, np.inf), axis=-1)
        dist = np.take_along_axis(d, idx[..., None], axis=-1)[..., 0]
        bad = ~np.isfinite(dist)
        return np.where(bad, -1, idx), np.where(bad, np.inf, dist)

    def in_domain(self, x: float, y: float) -> bool:
        (x0, x1), (y0, y1) = self.domain
        return x0 <= x <= x1 and y0 <= y <= y1


# ---------------------------------------------------------------------- autograd helpers
def stack_like(w: Tensor, gx: Tensor, gy: Tensor) -> Tensor:
    """Stack the two gradient components in the memory layout of ``w``.

    A column-major ``(N, 2)`` batch (``w = W.T`` with ``W (2, N)`` contiguous, as the sweeps pass it)
    keeps x and y contiguous, which makes every elementwise op and the per-trajectory norms several
    times faster than the row-major layout on CPU; the gradient then comes back column-major too.
    """
    if w.dim() == 2 and w.shape[0] > 1 and w.stride(0) == 1:
        return torch.stack((gx, gy)).T
    return torch.stack((gx, gy), dim=-1)


def autograd_grad_fn(f: Callable[[Tensor, Tensor], Tensor], w: Tensor) -> tuple[Tensor, Tensor]:
    """Gradient of an elementwise ``f(x, y)`` at ``w (..., 2)`` by autograd (each point independent)."""
    if torch.is_inference_mode_enabled():  # autograd records nothing there: it would look like a constant f
        raise RuntimeError("autograd_grad_fn: called in torch.inference_mode(), where no gradient can be taken")
    with torch.enable_grad():
        wd = w.detach().requires_grad_(True)
        loss = torch.broadcast_to(f(wd[..., 0], wd[..., 1]), w.shape[:-1])
        if not loss.requires_grad:  # constant function
            return loss.detach().to(w.dtype), torch.zeros_like(w)
        (g,) = torch.autograd.grad(loss.sum(), wd, allow_unused=True)
    if g is None:
        g = torch.zeros_like(w)
    return loss.detach(), g


def hessian_at(f: Callable[[Tensor, Tensor], Tensor], w) -> np.ndarray:
    """Hessian ``(..., 2, 2)`` of an elementwise ``f`` at ``w (..., 2)``, float64, double backward."""
    w = torch.as_tensor(np.asarray(w, dtype=np.float64)).clone()
    shape = w.shape[:-1]
    with torch.enable_grad():
        wd = w.reshape(-1, 2).requires_grad_(True)
        loss = torch.broadcast_to(f(wd[:, 0], wd[:, 1]), wd.shape[:1])
        if not loss.requires_grad:
            return np.zeros((*shape, 2, 2))
        (g,) = torch.autograd.grad(loss.sum(), wd, create_graph=True, allow_unused=True)
        if g is None or not g.requires_grad:
            return np.zeros((*shape, 2, 2))
        rows = []
        for i in range(2):
            (h,) = torch.autograd.grad(g[:, i].sum(), wd, retain_graph=True, allow_unused=True)
            rows.append(torch.zeros_like(wd) if h is None else h)
    H = torch.stack(rows, dim=1).detach().numpy()  # (M, 2, 2)
    return H.reshape(*shape, 2, 2)


def _grad64(f, w: np.ndarray) -> np.ndarray:
    _, g = autograd_grad_fn(f, torch.as_tensor(w, dtype=torch.float64))
    return g.numpy()


def newton_polish(f, points, iters: int = 50) -> np.ndarray:
    """Refine approximate critical points ``(k, 2)`` by Newton's method on ∇f = 0 (float64)."""
    w = np.asarray(points, dtype=np.float64).reshape(-1, 2).copy()
    if not len(w):
        return w
    for _ in range(iters):
        g = _grad64(f, w)
        H = hessian_at(f, w)
        ok = np.abs(np.linalg.det(H)) > 1e-14
        step = np.zeros_like(w)
        if ok.any():
            step[ok] = np.linalg.solve(H[ok], g[ok][..., None])[..., 0]
        w = w - step
        if np.all(np.abs(step) < 1e-15):
            break
    return w


def classify(f, points: np.ndarray, radius: float = 1e-3) -> list[str]:
    """'min' | 'max' | 'saddle' | 'flat' for each critical point: by the Hessian's eigenvalues, and
    for a degenerate Hessian by the sign of f − f(p) on a small ring around p ('flat' when f does
    not change there: a plateau, not an isolated critical point)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if not len(points):
        return []
    eig = np.linalg.eigvalsh(hessian_at(f, points))  # (k, 2) ascending
    scale = np.maximum(1.0, np.abs(eig).max(axis=1))
    out = []
    theta = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    ring = radius * np.stack((np.cos(theta), np.sin(theta)), -1)
    for p, (lo, hi), s in zip(points, eig, scale):
        if lo > 1e-7 * s:
            out.append("min")
        elif hi < -1e-7 * s:
            out.append("max")
        elif lo < -1e-7 * s and hi > 1e-7 * s:
            out.append("saddle")
        else:  # degenerate: look around
            fp = _f64(f, p[None])[0]
            d = _f64(f, p + ring) - fp
            tiny = 1e-12 * max(1.0, abs(fp))
            if np.all(np.abs(d) <= tiny):
                out.append("flat")
            else:
                out.append("min" if np.all(d > -tiny) else "max" if np.all(d < tiny) else "saddle")
    return out


def _f64(f, w: np.ndarray) -> np.ndarray:
    w = torch.as_tensor(np.asarray(w, dtype=np.float64))
    with torch.no_grad():
        return torch.broadcast_to(f(w[..., 0], w[..., 1]), w.shape[:-1]).numpy()


def critical_points(f, domain, n: int = 16, iters: int = 60) -> dict[str, np.ndarray]:
    """Find the critical points of ``f`` inside ``domain`` numerically: Newton on ∇f = 0 from an
    n×n grid of starts (damped, float64), keep converged points (‖∇f‖ < 1e-7), merge duplicates,
    classify (plateau points are dropped). Returns ``{"minima", "saddles", "maxima"}``, each
    ``(k, 2)``. Not exhaustive for wiggly functions: the page says the points were found numerically."""
    (x0, x1), (y0, y1) = domain
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    w = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    size = max(x1 - x0, y1 - y0)
    for _ in range(iters):
        g = _grad64(f, w)
        H = hessian_at(f, w)
        good = np.isfinite(H).all(axis=(1, 2)) & np.isfinite(g).all(axis=1)
        good &= np.abs(np.nan_to_num(np.linalg.det(np.where(good[:, None, None], H, np.eye(2))))) > 1e-12
        step = np.zeros_like(w)
        if good.any():
            step[good] = np.linalg.solve(H[good], g[good][..., None])[..., 0]
        # damp: never jump more than a tenth of the domain in one step
        norm = np.linalg.norm(step, axis=1, keepdims=True)
        step = np.where(norm > 0.1 * size, step * (0.1 * size / np.maximum(norm, 1e-300)), step)
        w = w - np.nan_to_num(step)
    g = _grad64(f, w)
    gn = np.linalg.norm(g, axis=1)
    fval = _f64(f, w)
    ok = np.isfinite(gn) & (gn < 1e-7 * max(1.0, np.nanmax(np.abs(fval[np.isfinite(fval)]), initial=1.0)))
    ok &= (w[:, 0] >= x0) & (w[:, 0] <= x1) & (w[:, 1] >= y0) & (w[:, 1] <= y1)
    pts: list[np.ndarray] = []
    for p in w[ok]:
        if all(np.linalg.norm(p - q) > 1e-3 * size for q in pts):
            pts.append(p)
    pts_arr = np.array(pts).reshape(-1, 2)
    kinds = classify(f, pts_arr, radius=1e-3 * size)
    out = {"minima": [], "saddles": [], "maxima": []}
    for p, k in zip(pts_arr, kinds):
        if k == "flat":
            continue
        out[{"min": "minima", "saddle": "saddles", "max": "maxima"}[k]].append(p)
    return {k: np.array(v).reshape(-1, 2) for k, v in out.items()}


# ---------------------------------------------------------------------- the built-ins
def _quartic() -> Landscape:
    def f(x, y):
        return x**4 / 4 - x * y + y**2 / 2

    def fg(x, y):
        x2 = x * x
        return x2 * x2 / 4 - x * y + y * y / 2, x2 * x - y, y - x

    return Landscape(
        key="quartic",
        label="Stable SAM quartic",
        latex=r"f = \tfrac14 x_1^4 - x_1 x_2 + \tfrac12 x_2^2",
        f=f,
        fg=fg,
        domain=((-2.0, 2.0), (-2.0, 2.0)),
        minima=[(1.0, 1.0), (-1.0, -1.0)],
        saddles=[(0.0, 0.0)],
        start=(0.05, -0.02),
        lr=0.3,
        rho=0.1,
        note=(
            "Tan et al. (Stable SAM), Fig. 2. Hessian at the minima: eigenvalues 2 ∓ √2, "
            "so GD needs η < 2 − √2 ≈ 0.586."
        ),
    )


def _quadratic(lam: float = 4.0, kappa: float = 10.0) -> Landscape:
    a, b = float(lam), float(lam) / float(kappa)

    def f(x, y):
        return 0.5 * a * x**2 + 0.5 * b * y**2

    def fg(x, y):
        return 0.5 * a * x * x + 0.5 * b * y * y, a * x, b * y

    return Landscape(
        key="quadratic",
        label="Ill-conditioned quadratic",
        latex=(
            rf"f = \tfrac12 \lambda x^2 + \tfrac12 \tfrac{{\lambda}}{{\kappa}} y^2,"
            rf"\ \lambda={a:g},\ \kappa={kappa:g}"
        ),
        f=f,
        fg=fg,
        domain=((-2.0, 2.0), (-2.0, 2.0)),
        minima=[(0.0, 0.0)],
        start=(1.5, 1.5),
        lr=min(0.9 * 2 / a, 0.45),
        rho=0.05,
        params={"lam": a, "kappa": float(kappa)},
        note=f"Curvatures λ = {a:g} (x) and λ/κ = {b:g} (y): GD converges for η < 2/λ = {2 / a:g}.",
    )


def _saddle() -> Landscape:
    def fg(x, y):
        return x * x - y * y, 2 * x, -2 * y

    return Landscape(
        key="saddle",
        label="Saddle x² − y²",
        latex=r"f = x^2 - y^2",
        f=lambda x, y: x**2 - y**2,
        fg=fg,
        domain=((-2.0, 2.0), (-2.0, 2.0)),
        saddles=[(0.0, 0.0)],
        start=(1.5, 1e-3),
        lr=0.05,
        rho=0.1,
        note="Unbounded below: a run that escapes the saddle runs off to −∞ (shown as diverged).",
    )


def _monkey() -> Landscape:
    def f(x, y):
        return x**3 - 3 * x * y**2

    def fg(x, y):
        x2, y2 = x * x, y * y
        return x * (x2 - 3 * y2), 3 * (x2 - y2), -6 * x * y

    return Landscape(
        key="monkey",
        label="Monkey saddle",
        latex=r"f = x^3 - 3 x y^2",
        f=f,
        fg=fg,
        domain=((-1.5, 1.5), (-1.5, 1.5)),
        saddles=[(0.0, 0.0)],
        start=(0.8, 0.05),
        lr=0.02,
        rho=0.05,
        note="A degenerate saddle (zero Hessian) with three descending valleys; unbounded below.",
    )


def _rosenbrock() -> Landscape:
    a, b = 1.0, 100.0

    def f(x, y):
        return (a - x) ** 2 + b * (y - x**2) ** 2

    def fg(x, y):
        r = y - x * x
        u = a - x
        return u * u + b * r * r, -2 * u - 4 * b * x * r, 2 * b * r

    return Landscape(
        key="rosenbrock",
        label="Rosenbrock",
        latex=r"f = (1 - x)^2 + 100\,(y - x^2)^2",
        f=f,
        fg=fg,
        domain=((-2.0, 2.0), (-1.0, 3.0)),
        minima=[(1.0, 1.0)],
        start=(-1.5, 2.0),
        lr=1e-3,
        rho=0.05,
        note="A curved narrow valley; λ_max ≈ 1001.6 at the minimum, so GD needs η < 0.002.",
    )


_HIMMELBLAU_MINIMA = [(3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)]
_HIMMELBLAU_SADDLES = [(0.086678, 2.884255), (-3.073026, -0.081353), (3.385154, 0.073852), (-0.127961, -1.953715)]
_HIMMELBLAU_MAX = [(-0.270845, -0.923039)]


def _himmelblau() -> Landscape:
    def f(x, y):
        return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2

    def fg(x, y):
        u, v = x * x + y - 11, x + y * y - 7
        return u * u + v * v, 4 * x * u + 2 * v, 2 * u + 4 * y * v

    return Landscape(
        key="himmelblau",
        label="Himmelblau",
        latex=r"f = (x^2 + y - 11)^2 + (x + y^2 - 7)^2",
        f=f,
        fg=fg,
        domain=((-5.0, 5.0), (-5.0, 5.0)),
        minima=newton_polish(f, _HIMMELBLAU_MINIMA),
        saddles=newton_polish(f, _HIMMELBLAU_SADDLES),
        maxima=newton_polish(f, _HIMMELBLAU_MAX),
        start=(-0.3, -0.9),
        lr=0.01,
        rho=0.1,
        note="Four global minima (f = 0) with different curvatures: a basin map tells them apart.",
    )


def _beale() -> Landscape:
    def f(x, y):
        return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2

    def fg(x, y):
        y2 = y * y
        y3 = y2 * y
        t1, t2, t3 = 1.5 - x + x * y, 2.25 - x + x * y2, 2.625 - x + x * y3
        gx = 2 * (t1 * (y - 1) + t2 * (y2 - 1) + t3 * (y3 - 1))
        gy = 2 * x * (t1 + 2 * t2 * y + 3 * t3 * y2)
        return t1 * t1 + t2 * t2 + t3 * t3, gx, gy

    return Landscape(
        key="beale",
        label="Beale",
        latex=r"f = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
        f=f,
        fg=fg,
        domain=((-4.5, 4.5), (-4.5, 4.5)),
        minima=[(3.0, 0.5)],
        saddles=newton_polish(f, [(0.0, 1.0), (0.100538, -2.644514)]),
        start=(1.0, 1.5),
        lr=5e-3,
        rho=0.05,
        note="Sharp walls at large |y|; global minimum (3, 0.5), saddles at (0, 1) and (0.1005, −2.6445).",
    )


def _rastrigin_1d_points() -> tuple[np.ndarray, np.ndarray]:
    """Critical points of h(x) = x² − 10 cos 2πx on [-5.12, 5.12]: minima near integers, maxima near half-integers."""
    A = 10.0

    def newton(x):
        for _ in range(60):
            g = 2 * x + 2 * math.pi * A * np.sin(2 * math.pi * x)
            h = 2 + 4 * math.pi**2 * A * np.cos(2 * math.pi * x)
            x = x - g / h
        return x

    mins = newton(np.arange(-5.0, 6.0))
    maxs = newton(np.arange(-4.5, 5.0))
    return mins, maxs


def _rastrigin() -> Landscape:
    A = 10.0
    two_pi = 2 * math.pi

    def f(x, y):
        return 2 * A + x**2 - A * torch.cos(two_pi * x) + y**2 - A * torch.cos(two_pi * y)

    def fg(x, y):
        sx, sy = two_pi * x, two_pi * y
        val = 2 * A + x * x - A * torch.cos(sx) + y * y - A * torch.cos(sy)
        return val, 2 * x + two_pi * A * torch.sin(sx), 2 * y + two_pi * A * torch.sin(sy)

    mins, maxs = _rastrigin_1d_points()
    MX, MY = np.meshgrid(mins, mins)
    minima = np.stack((MX.ravel(), MY.ravel()), -1)
    minima = minima[np.argsort(np.linalg.norm(minima, axis=1), kind="stable")]  # global one first
    s1 = np.stack(np.meshgrid(mins, maxs), -1).reshape(-1, 2)
    s2 = np.stack(np.meshgrid(maxs, mins), -1).reshape(-1, 2)
    maxima = np.stack(np.meshgrid(maxs, maxs), -1).reshape(-1, 2)
    return Landscape(
        key="rastrigin",
        label="Rastrigin",
        latex=r"f = 20 + \sum_i \big(x_i^2 - 10\cos 2\pi x_i\big)",
        f=f,
        fg=fg,
        domain=((-5.12, 5.12), (-5.12, 5.12)),
        minima=minima,
        saddles=np.concatenate((s1, s2)),
        maxima=maxima,
        start=(2.3, -1.7),
        lr=1e-3,
        rho=0.3,
        note="121 minima on the domain; only the origin is global (success = reaching it).",
    )


def _valley(k: float = 4.0, mu: float = 0.5) -> Landscape:
    k, mu = float(k), float(mu)

    def f(x, y):
        return (torch.exp(k * x) - k * x - 1) / k + 0.5 * mu * y**2

    def fg(x, y):
        e = torch.exp(k * x)
        return (e - k * x - 1) / k + 0.5 * mu * y * y, e - 1, mu * y

    return Landscape(
        key="valley",
        label="Asymmetric valley",
        latex=rf"f = \frac{{e^{{kx}} - kx - 1}}{{k}} + \tfrac12 \mu y^2,\ k={k:g},\ \mu={mu:g}",
        f=f,
        fg=fg,
        domain=((-3.0, 1.0), (-2.0, 2.0)),
        minima=[(0.0, 0.0)],
        start=(-2.5, 1.5),
        lr=0.2,
        rho=0.2,
        params={"k": k, "mu": mu},
        note="A sharp exponential wall for x > 0, a flat linear slope for x < 0; curvature k across the "
        "minimum. SAM's ascent points at the wall, so it settles on the flat side.",
    )


_BUILDERS: dict[str, Callable[..., Landscape]] = {
    "quartic": _quartic,
    "quadratic": _quadratic,
    "saddle": _saddle,
    "monkey": _monkey,
    "rosenbrock": _rosenbrock,
    "himmelblau": _himmelblau,
    "beale": _beale,
    "rastrigin": _rastrigin,
    "valley": _valley,
}

LANDSCAPE_LABELS: dict[str, str] = {
    "quartic": "Stable SAM quartic x₁⁴/4 − x₁x₂ + x₂²/2",
    "quadratic": "Ill-conditioned quadratic",
    "saddle": "Saddle x² − y²",
    "monkey": "Monkey saddle x³ − 3xy²",
    "rosenbrock": "Rosenbrock",
    "himmelblau": "Himmelblau",
    "beale": "Beale",
    "rastrigin": "Rastrigin",
    "valley": "Asymmetric valley (sharp / flat)",
}

LANDSCAPE_PARAMS: dict[str, dict[str, LParam]] = {
    "quadratic": {
        "lam": LParam("lam", 4.0, 0.1, 1000.0, log=True, help="λ: the top curvature (x direction)"),
        "kappa": LParam("kappa", 10.0, 1.0, 1e4, log=True, help="κ: condition number λ_max/λ_min"),
    },
    "valley": {
        "k": LParam("k", 4.0, 0.5, 20.0, log=True, help="k: curvature across the valley / sharpness of the wall"),
        "mu": LParam("mu", 0.5, 0.01, 10.0, log=True, help="μ: curvature along y"),
    },
}

NAMES = tuple(_BUILDERS)


_REBUILT: dict[str, Landscape] = {}  # recipe -> landscape, in a worker: the same object for every job, so its
# compiled sweep steps (keyed by the landscape's gradient function) are reused instead of compiled again


def _rebuild_landscape(key: str, params: dict, minima, saddles, maxima) -> Landscape:
    """The inverse of ``Landscape.__reduce__`` (memoised per recipe)."""
    recipe = repr((key, sorted(params.items())))
    if recipe not in _REBUILT:
        if len(_REBUILT) >= 32:
            _REBUILT.pop(next(iter(_REBUILT)))
        _REBUILT[recipe] = _build_from_recipe(key, params, minima, saddles, maxima)
    return _REBUILT[recipe]


def _build_from_recipe(key: str, params: dict, minima, saddles, maxima) -> Landscape:
    if key == "custom":
        from sam_core.landscape.expr import custom_landscape

        L = custom_landscape(params["expr"], params["domain"], find_points=False)
        L.minima, L.saddles, L.maxima = (
            np.asarray(a, dtype=np.float64).reshape(-1, 2) for a in (minima, saddles, maxima)
        )
        return L
    return make_landscape(key, **params)


def make_landscape(name: str = "quartic", **params) -> Landscape:
    """Build a built-in landscape; unknown names or out-of-range parameters raise ValueError."""
    if name not in _BUILDERS:
        raise ValueError(f"function: unknown landscape {name!r}; choose one of {list(_BUILDERS)}")
    spec = LANDSCAPE_PARAMS.get(name, {})
    for k, v in params.items():
        if k not in spec:
            allowed = list(spec) or "none"
            raise ValueError(f"{name}: unknown parameter {k!r} (parameters: {allowed})")
        p = spec[k]
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: parameter '{k}' must be a number in [{p.low}, {p.high}], got {v!r}") from None
        if not (math.isfinite(v) and p.low <= v <= p.high):
            raise ValueError(f"{name}: parameter '{k}' must be in [{p.low}, {p.high}], got {v!r}")
        params[k] = v
    return _BUILDERS[name](**params)
