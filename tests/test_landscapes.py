"""2-D landscapes: closed-form gradients against autograd, critical points, Hessians and GD bounds."""

import math

import numpy as np
import pytest
import torch

from sam_core.landscape.functions import (
    LANDSCAPE_PARAMS,
    NAMES,
    autograd_grad_fn,
    classify,
    critical_points,
    make_landscape,
)


def _points(L, n=257, seed=0):
    (x0, x1), (y0, y1) = L.domain
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return torch.stack((x0 + (x1 - x0) * u[:, 0], y0 + (y1 - y0) * u[:, 1]), -1)


@pytest.mark.parametrize("name", NAMES)
def test_closed_form_gradient_matches_autograd(name):
    L = make_landscape(name)
    w = _points(L)
    loss, g = L.grad_fn(w)
    ref_loss, ref_g = autograd_grad_fn(L.f, w)  # autograd of the separately written f
    assert loss.shape == (len(w),) and g.shape == w.shape
    scale = 1.0 + ref_g.abs()
    assert torch.allclose(loss, ref_loss, rtol=1e-10, atol=1e-10)
    assert torch.all((g - ref_g).abs() <= 1e-9 * scale)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_alone_is_the_closed_forms_partials_bit_for_bit(name):
    """`grad_only` drops f's own operations from the traced closed form; the partials it returns must be
    `fg`'s, bit for bit, and must not be computed by running `fg` (the point of it)."""
    L = make_landscape(name)
    w = _points(L)
    _, gx, gy = L.fg(w[:, 0], w[:, 1])
    ox, oy = L.grad_only([w[:, 0], w[:, 1]])
    assert torch.equal(ox, gx) and torch.equal(oy, gy)
    calls = []
    L.fg = lambda x, y, fg=L.fg: (calls.append(1), fg(x, y))[1]  # noqa: B023 - counts fg's calls from now on
    L.grad_only([w[:, 0], w[:, 1]])
    assert not calls

    def n_ops(graph):
        return sum(n.op == "call_function" for n in graph.nodes)

    assert n_ops(L._g_only.__self__.graph) < n_ops(torch.fx.symbolic_trace(make_landscape(name).fg).graph)


def test_gradient_alone_falls_back_to_the_whole_closed_form_and_to_autograd():
    """An `fg` that branches on a tensor's value cannot be traced: `grad_only` runs it whole. An expression
    has no closed form: its gradient comes from autograd, as `grad_parts`'."""
    from sam_core.landscape.expr import custom_landscape

    L = make_landscape("quartic")
    fg = L.fg

    def branchy(x, y):
        if bool((x > 10).any()):  # a Python branch on a value: symbolic tracing refuses it
            raise AssertionError
        return fg(x, y)

    L.fg = branchy
    w = _points(L, 33)
    ox, oy = L.grad_only([w[:, 0], w[:, 1]])
    assert getattr(L._g_only, "__self__", None) is None  # not a traced graph's forward: fg itself, run whole
    _, gx, gy = fg(w[:, 0], w[:, 1])
    assert torch.equal(ox, gx) and torch.equal(oy, gy)
    C = custom_landscape("x**4/4 - x*y + y**2/2", ((-2, 2), (-2, 2)), find_points=False)
    cx, cy = C.grad_only([w[:, 0], w[:, 1]])
    _, (px, py) = C.grad_parts([w[:, 0], w[:, 1]])
    assert torch.equal(cx, px) and torch.equal(cy, py)
    assert torch.allclose(cx, gx, rtol=1e-12) and torch.allclose(cy, gy, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_same_in_column_major_layout(name):
    L = make_landscape(name)
    w = _points(L, 64).float()
    w_col = w.T.contiguous().T  # x and y each contiguous, as the sweeps lay out the batch
    assert w_col.stride() == (1, 64)
    l1, g1 = L.grad_fn(w)
    l2, g2 = L.grad_fn(w_col)
    assert torch.equal(l1, l2) and torch.equal(g1, g2)
    assert g2.stride(0) == 1  # the gradient keeps the layout


@pytest.mark.parametrize("name", NAMES)
def test_listed_critical_points_are_critical_and_of_their_kind(name):
    L = make_landscape(name)
    for pts, kind in ((L.minima, "min"), (L.saddles, "saddle"), (L.maxima, "max")):
        if not len(pts):
            continue
        _, g = autograd_grad_fn(L.f, torch.as_tensor(pts))
        assert g.abs().max() < 1e-6, f"{name}: gradient at listed {kind} points"
        assert set(classify(L.f, pts)) == {kind}
    for p in L.minima:
        assert L.in_domain(*p)


def test_quartic_matches_the_paper():
    L = make_landscape("quartic")
    assert np.allclose(sorted(map(tuple, L.minima)), [(-1, -1), (1, 1)])
    assert np.allclose(L.minima_values, -0.25)
    eig = np.linalg.eigvalsh(L.hessian(L.minima))
    assert np.allclose(eig, [[2 - math.sqrt(2), 2 + math.sqrt(2)]] * 2)
    assert L.gd_bound == pytest.approx(2 / (2 + math.sqrt(2)), rel=1e-12)
    assert L.gd_bound == pytest.approx(0.5858, abs=1e-4)
    assert L.gd_bounds == pytest.approx([L.gd_bound])


def test_quadratic_curvatures_and_bound():
    L = make_landscape("quadratic", lam=5.0, kappa=20.0)
    assert L.lam_max == pytest.approx(5.0)
    assert np.allclose(np.linalg.eigvalsh(L.hessian(np.zeros((1, 2))))[0], [0.25, 5.0])
    assert L.gd_bound == pytest.approx(0.4)


def test_rosenbrock_and_rastrigin_top_eigenvalues():
    R = make_landscape("rosenbrock")
    tr, det = 1002.0, 802.0 * 200.0 - 400.0**2  # Hessian [[802, -400], [-400, 200]] at (1, 1)
    assert R.lam_max == pytest.approx((tr + math.sqrt(tr * tr - 4 * det)) / 2, rel=1e-10)
    Q = make_landscape("rastrigin")
    assert Q.lam_max == pytest.approx(2 + 4 * math.pi**2 * 10, rel=1e-10)
    assert len(Q.minima) == 121 and np.allclose(Q.global_minima, [[0.0, 0.0]])


def test_valley_is_asymmetric():
    V = make_landscape("valley", k=4.0)
    assert V.lam_max == pytest.approx(4.0)
    # same distance from the minimum: the wall side (x > 0) is much higher than the flat side
    assert V.value(np.array([[1.0, 0.0]]))[0] > 5 * V.value(np.array([[-1.0, 0.0]]))[0]
    _, g = V.grad_fn(torch.tensor([[-50.0, 0.0]], dtype=torch.float64))
    assert g[0, 0].item() == pytest.approx(-1.0, abs=1e-12)  # the flat side's slope tends to 1


@pytest.mark.parametrize("name", ["quartic", "himmelblau", "beale", "rosenbrock", "valley"])
def test_numerical_search_finds_the_listed_points(name):
    L = make_landscape(name)
    found = critical_points(L.f, L.domain, n=24)
    for kind, listed in (("minima", L.minima), ("saddles", L.saddles), ("maxima", L.maxima)):
        assert len(found[kind]) == len(listed), kind
        for p in listed:
            assert np.min(np.linalg.norm(found[kind] - p, axis=1)) < 1e-6


def test_himmelblau_has_four_distinct_gd_bounds():
    L = make_landscape("himmelblau")
    assert len(L.global_minima) == 4
    assert len(L.gd_bounds) == 4 and L.gd_bound == pytest.approx(min(L.gd_bounds))


def test_nearest_handles_non_finite_and_no_minima():
    L = make_landscape("quartic")
    idx, dist = L.nearest(np.array([[0.9, 1.1], [np.nan, 0.0], [np.inf, 1.0]]))
    assert idx[0] >= 0 and dist[0] == pytest.approx(math.hypot(0.1, 0.1))
    assert list(idx[1:]) == [-1, -1] and np.all(np.isinf(dist[1:]))
    S = make_landscape("saddle")
    assert S.lam_max is None and S.gd_bounds == [] and np.isinf(S.nearest(np.zeros((2, 2)))[1]).all()


def test_bad_names_and_parameters_are_clear_errors():
    with pytest.raises(ValueError, match="unknown landscape 'nope'"):
        make_landscape("nope")
    hi = LANDSCAPE_PARAMS["quadratic"]["kappa"].high
    with pytest.raises(ValueError, match=r"'kappa' must be in \[1.0, "):
        make_landscape("quadratic", kappa=hi * 10)
    with pytest.raises(ValueError, match="unknown parameter 'b'"):
        make_landscape("rosenbrock", b=3)
    with pytest.raises(ValueError, match="must be a number"):
        make_landscape("valley", k="sharp")


def test_grid_layout_matches_plotly_convention():
    L = make_landscape("quadratic", lam=2.0, kappa=2.0)
    xs, ys, Z = L.grid(5)
    assert Z[0, 4] == pytest.approx(L.value(np.array([[xs[4], ys[0]]]))[0])
