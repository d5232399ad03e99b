"""The landscape race: one batched run over many learning rates equals the single runs it replaces."""

import math

import numpy as np
import pytest

from sam_core.landscape.functions import make_landscape
from sam_core.landscape.race import run_track, run_tracks
from sam_core.registry import VARIANTS

LRS = [1e-3, 0.05, 0.3, 0.9, 3.0]  # the last ones diverge on the quartic from this start


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("noise,momentum", [(0.0, 0.0), (0.3, 0.5)])
def test_tracks_over_lrs_equal_single_tracks(variant, noise, momentum):
    L = make_landscape("quartic")
    batch = run_tracks(L, variant, {}, (-1.5, 1.0), LRS, 200, momentum, noise, seed=4)
    assert [t.lr for t in batch] == LRS
    assert any(t.diverged_step is not None for t in batch) and any(t.diverged_step is None for t in batch)
    for lr, b in zip(LRS, batch):
        s = run_track(L, variant, {}, (-1.5, 1.0), lr, 200, momentum, noise, seed=4)
        assert b.diverged_step == s.diverged_step
        for name in ("w", "ascent", "loss", "grad_norm", "gamma", "dist"):
            np.testing.assert_array_equal(getattr(b, name), getattr(s, name), err_msg=f"{variant} lr={lr} {name}")


def test_an_expressions_batched_tracks_equal_its_single_tracks():
    """A typed expression (autograd, torch.pow with a tensor exponent for `**`, whose results depend on the
    memory layout): each track of the batch still equals run_track at its lr, f along the path included."""
    from sam_core.landscape.expr import custom_landscape

    C = custom_landscape("sin(3*x)*exp(y/3) + x**2/4 + cos(y)**2", ((-2, 2), (-2, 2)), find_points=False)
    lrs = [*np.geomspace(1e-4, 1.0, 13), 3.0, 30.0]
    start = (0.3 * C.start[0] + 0.2, 0.3 * C.start[1] - 0.1)
    batch = run_tracks(C, "usam", {}, start, lrs, 150)
    assert any(t.diverged_step is not None for t in batch) and any(t.diverged_step is None for t in batch)
    for lr, b in zip(lrs, batch):
        s = run_track(C, "usam", {}, start, lr, 150)
        assert b.diverged_step == s.diverged_step
        for name in ("w", "ascent", "loss", "grad_norm", "gamma", "dist"):
            np.testing.assert_array_equal(getattr(b, name), getattr(s, name), err_msg=f"lr={lr} {name}")


def test_noise_is_shared_by_the_lrs_of_a_batch():
    # at a tiny lr the iterate barely moves, so the gradient seen is the same and the noise decides ‖g‖:
    # two lrs of one batch must see the same draws (not one independent draw per row)
    L = make_landscape("quartic")
    a, b = run_tracks(L, "sgd", {}, (0.3, 0.2), [1e-9, 2e-9], 50, noise=1.0, seed=1)
    np.testing.assert_allclose(a.grad_norm, b.grad_norm, rtol=1e-6)
    c = run_track(L, "sgd", {}, (0.3, 0.2), 1e-9, 50, noise=1.0, seed=2)
    assert not np.allclose(a.grad_norm, c.grad_norm, rtol=1e-3)


def test_a_diverged_run_does_not_flatten_the_metric_axes():
    """GD at 1.6× its stability bound on the quadratic grows ‖g‖ geometrically (past 1e30); SAM converges. The log
    panels stop at 1e4 × the start, so SAM's curve stays readable, and the figure says what it clipped."""
    from sam_core.plots.landscape import metrics_figure

    L = make_landscape("quadratic")
    bound = L.gd_bounds[0]
    gd = run_track(L, "sgd", None, (1.0, 1.0), 1.6 * bound, 300)
    sam = run_track(L, "sam", {"rho": 0.05}, (1.0, 1.0), 0.5 * bound, 300)
    assert np.nanmax(gd.grad_norm) > 1e30  # the divergence is real
    fig = metrics_figure([gd, sam], f_star=0.0)
    g_axis = fig.layout.yaxis2  # (1, 2): ‖g‖
    top = 10 ** g_axis.range[1]
    assert top <= 1e4 * max(gd.grad_norm[0], sam.grad_norm[0]) * 1.2
    assert 10 ** g_axis.range[0] <= np.nanmin(sam.grad_norm)  # all of SAM's descent stays in view
    notes = " ".join(fig.layout.meta["clipped"])
    assert "not shown" in notes and "diverged" in notes
    assert any("clipped" in a.text for a in fig.layout.annotations)  # marked on the panel itself
    clean = metrics_figure([sam], f_star=0.0)
    assert not clean.layout.meta["clipped"] and not any("clipped" in a.text for a in clean.layout.annotations)


@pytest.mark.parametrize("variant", ["sam", "ssam", "bsam"])
def test_closed_form_races_skip_autograd_and_expressions_keep_it(variant, monkeypatch):
    """A built-in function's race runs without autograd's bookkeeping and must equal the same `simulate` run
    with it, bit for bit; a typed expression's gradient comes from autograd, which must still work there and
    give the same path up to rounding."""
    import torch

    from sam_core.landscape.expr import custom_landscape
    from sam_core.simulate import simulate

    L = make_landscape("quartic")
    t = run_track(L, variant, {}, (-1.5, 1.0), 0.05, 120, noise=0.2, seed=3)
    ref = simulate(
        variant,
        L.grad_fn,
        torch.tensor([[-1.5, 1.0]], dtype=torch.float64),
        120,
        0.05,
        noise=0.2,
        seed=3,
        record=True,
        shared_noise=True,
    )
    assert not torch.is_inference_mode_enabled()
    np.testing.assert_array_equal(t.w, ref.w[:, 0].numpy())
    for name in ("ascent", "grad_norm", "gamma"):  # the after-the-loop diagnostics, run in inference mode too
        np.testing.assert_array_equal(getattr(t, name), getattr(ref, name)[:, 0].numpy(), err_msg=name)
    modes = []

    def spy(landscape):  # records, per gradient call, whether inference mode was on
        inner = landscape.grad_fn
        monkeypatch.setattr(
            landscape, "grad_fn", lambda w: (modes.append(torch.is_inference_mode_enabled()), inner(w))[1]
        )

    spy(L)
    run_track(L, variant, {}, (-1.5, 1.0), 0.05, 5)
    assert modes and all(modes)  # the closed form runs without autograd's bookkeeping
    C = custom_landscape("x**4/4 - x*y + y**2/2", ((-2, 2), (-2, 2)), find_points=False)
    assert C.fg is None  # autograd
    spy(C)
    modes.clear()
    c = run_track(C, variant, {}, (-1.5, 1.0), 0.05, 120, noise=0.2, seed=3)
    assert modes and not any(modes)  # ... and an expression with it
    np.testing.assert_allclose(c.w, t.w, rtol=1e-9, atol=1e-12)


def _plain_sam(start, lr, rho, steps):
    """SAM on the quartic on Python floats: e = ρg/(‖g‖ + 1e-12), w ← w − lr·∇f(w + e). The run stops where
    f(w_{t-1}) + x_t + y_t is not finite (`simulate`'s test), keeping w_{t-1}. Returns (iterates, step or None)."""

    def fg(x, y):
        return x * x * x * x / 4 - x * y + y * y / 2, x * x * x - y, y - x

    x, y = start
    ws = [(x, y)]
    for t in range(1, steps + 1):
        f, gx, gy = fg(x, y)
        n = math.sqrt(gx * gx + gy * gy) + 1e-12
        _, ax, ay = fg(x + rho * gx / n, y + rho * gy / n)
        nx, ny = x - lr * ax, y - lr * ay
        if not math.isfinite(f + (nx + ny)):
            return ws, t
        x, y = nx, ny
        ws.append((x, y))
    return ws, None


def test_a_race_row_is_the_plain_sam_loop_and_stops_where_it_blows_up():
    """The race's recorded loop tests for divergence only after the loop, on the recorded iterates: every
    row, those that blow up included, must still be the plain loop's run, cut at the plain loop's step."""
    L = make_landscape("quartic")
    lrs = [0.01, 0.2, 0.9, 2.5, 6.0]
    tracks = run_tracks(L, "sam", {"rho": 0.1}, (1.8, -1.6), lrs, 150)
    assert sum(t.diverged_step is not None for t in tracks) >= 2 and tracks[0].diverged_step is None
    for lr, t in zip(lrs, tracks):
        ws, died = _plain_sam((1.8, -1.6), lr, 0.1, 150)
        assert t.diverged_step == died, lr
        np.testing.assert_allclose(t.w, np.array(ws), rtol=1e-12, atol=1e-12, err_msg=f"lr={lr}")
        assert np.isfinite(t.w).all()  # (its last loss may be inf: f overflows first, then the run stops)


@pytest.mark.parametrize("variant", [v for v, s in VARIANTS.items() if not s.stateful])
@pytest.mark.parametrize("columns", ["", "grad_parts", "grad_only"])
def test_the_recorded_loop_freezes_rows_as_the_step_by_step_test_does(variant, columns):
    """`simulate(record=True)` of a stateless rule skips the per-step divergence test (and, given
    `grad_parts` or `grad_only`, runs on coordinate columns); `record=False` keeps the test in every step.
    Both must end at the same points, bit for bit, and report the same steps, momentum and noise included."""
    import torch

    from sam_core.simulate import simulate

    L = make_landscape("quartic")
    lrs = torch.tensor([0.003, 0.05, 0.3, 1.5, 4.0], dtype=torch.float64)
    w0 = torch.tensor([[1.4, -1.1]], dtype=torch.float64).repeat(5, 1)
    kw = {"momentum": 0.4, "noise": 0.3, "seed": 7}
    if columns:
        kw[columns] = getattr(L, columns)
    rec = simulate(variant, L.grad_fn, w0, 120, lrs, record=True, **kw)
    ref = simulate(variant, L.grad_fn, w0, 120, lrs, record=False, **kw)
    assert (ref.diverged_step >= 0).any() and (ref.diverged_step < 0).any()
    assert torch.equal(rec.diverged_step, ref.diverged_step)
    assert torch.equal(rec.final, ref.final) and torch.isfinite(rec.w).all()
    for i, d in enumerate(rec.diverged_step.tolist()):  # frozen from its last finite iterate on
        if d > 0:
            assert (rec.w[d - 1 :, i] == rec.w[d - 1, i]).all()
