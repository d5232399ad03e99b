"""Edge of stability: tracked eigenvalues vs known/dense ones, the edges, the live run's bookkeeping."""

import math

import numpy as np
import pytest
import torch

from sam_core import gd_edge, sam_edge
from sam_core.dynamics.eos import CSV_COLUMNS, EoSConfig, run_eos, sam_edge_curve, track_top_eigenvalue
from sam_core.dynamics.problems import Quadratic, init_mlp, make_eos_data, mlp_loss
from sam_core.dynamics.problems.mlp import flatten, unflatten
from sam_core.dynamics.quadratics import run_finite_sum
from sam_core.plots import dynamics as dplots


def test_tracked_eigenvalue_matches_a_known_quadratic_and_warm_start_is_cheaper():
    p = Quadratic(dim=60, cond=30.0, lam_max=7.0, seed=1)
    A = p.A

    def f(w):
        return 0.5 * w @ A @ w

    w = torch.randn(60, dtype=torch.float64)
    lam, v, align, g, n_cold = track_top_eigenvalue(f, w, None, tol=1e-8, max_iter=60)
    assert lam == pytest.approx(7.0, rel=1e-6)
    torch.testing.assert_close(g, A @ w)
    assert align == pytest.approx(float((A @ w) @ v).__abs__() / float((A @ w).norm()), rel=1e-9)
    # a slightly moved point: warm start from the previous eigenvector needs fewer products
    lam2, _, _, _, n_warm = track_top_eigenvalue(f, w + 0.01, v, tol=1e-8, max_iter=60)
    assert lam2 == pytest.approx(7.0, rel=1e-6)
    assert n_warm < n_cold


def test_gd_on_the_known_quadratic_diverges_exactly_above_two_over_lambda_max():
    p = Quadratic(dim=10, cond=5.0, lam_max=7.0, seed=2)
    edge = float(gd_edge(1.0)) / 7.0  # lr at which 2/lr = λ_max
    cs = run_finite_sum(p, "sgd", lr=torch.tensor([0.98 * edge, 1.02 * edge], dtype=torch.float64), steps=4000)
    assert cs.diverged_step[0] == -1 and cs.diverged_step[1] > 0


def test_tracked_eigenvalue_of_a_tiny_mlp_matches_the_dense_hessian():
    X, Y = make_eos_data(n=40, in_dim=3, classes=2, seed=0, dtype=torch.float64)
    params = init_mlp([3, 5, 2], seed=1, dtype=torch.float64)
    w = flatten(params)

    def f(v):
        return mlp_loss(unflatten(v, params), X, Y)

    H = torch.autograd.functional.hessian(f, w)
    ev = torch.linalg.eigvalsh(H)
    top = ev[ev.abs().argmax()]
    lam, v, _, _, _ = track_top_eigenvalue(f, w, None, tol=1e-10, max_iter=w.numel())
    assert lam == pytest.approx(float(top), rel=1e-6)
    torch.testing.assert_close(H @ v, lam * v, atol=1e-6, rtol=1e-6)


def test_sam_edge_at_hand_computed_points_and_the_theory_curve():
    # α = η‖g‖/(2ρ) = 0.05 -> λ_SAM/(2/η) = 0.2; α = 10 -> 0.916
    assert float(sam_edge(1.0, 0.01, 0.1)) == pytest.approx(0.2 * 200, rel=1e-9)
    assert float(sam_edge(20.0, 1.0, 1.0)) == pytest.approx((math.sqrt(140) - 10) / 2 * 2, rel=1e-9)
    r = sam_edge_curve(np.array([0.05, 10.0]))
    np.testing.assert_allclose(r, [0.2, (math.sqrt(140) - 10) / 2], rtol=1e-9)
    # the edge is the root of η λ (1 + ρ λ/‖g‖) = 2
    lam = float(sam_edge(0.3, 0.05, 0.2))
    assert 0.05 * lam * (1 + 0.2 * lam / 0.3) == pytest.approx(2.0, rel=1e-9)
    fig = dplots.sam_edge_ratio_figure(np.logspace(-3, 3, 50), sam_edge_curve(np.logspace(-3, 3, 50)), current=0.5)
    assert len(fig.data) == 4


@pytest.fixture(scope="module")
def short_run():
    cfg = EoSConfig(n=200, width=16, depth=2, lr=0.4, rho=0.05, steps=60, eig_every=20)
    return cfg, list(run_eos(["sgd", "sam", "ssam"], cfg, yield_every_s=0.0))


def test_live_run_bookkeeping(short_run):
    cfg, items = short_run
    res = items[-1][1]
    assert items[-1][0] == 1.0 and res.steps_done == cfg.steps
    df = res.to_frame()
    assert list(df.columns[: len(CSV_COLUMNS)]) == CSV_COLUMNS
    for v in ("sgd", "sam", "ssam"):
        d = df[df.variant == v]
        assert d.step.tolist() == list(range(cfg.steps + 1))
        assert d.dropna(subset=["top_eig"]).step.tolist() == [0, 20, 40, 60]
        assert (d.gd_edge == 2 / cfg.lr).all()
        a = d.alignment.dropna()
        assert ((a >= 0) & (a <= 1 + 1e-6)).all()
    sam = df[df.variant == "sam"]
    expected = [float(sam_edge(g, cfg.lr, cfg.rho)) for g in sam.grad_norm]
    np.testing.assert_allclose(sam.sam_edge, expected, rtol=1e-9)
    assert df[df.variant == "sgd"].sam_edge.isna().all()
    # every variant starts from the same weights: same loss and eigenvalue at step 0
    first = df[df.step == 0]
    assert first.loss.nunique() == 1 and first.top_eig.round(6).nunique() == 1
    assert res.train_s > 0 and res.track_s > 0
    fig = dplots.eos_figure(res)
    assert len(fig.data) >= 1 + 3 * 3


def test_gd_sharpness_rises_to_the_edge_and_hovers_there():
    cfg = EoSConfig(lr=0.4, steps=600, eig_every=50)
    res = list(run_eos(["sgd"], cfg))[-1][1]
    eig = np.asarray(res.top_eig["sgd"])
    edge = 2 / cfg.lr
    assert eig[0] < 0.6 * edge  # starts well below 2/η
    late = eig[len(eig) // 2 :]
    assert (late > 0.85 * edge).all() and (late < 1.3 * edge).all()  # rises to the edge and stays near it


def test_divergence_is_reported_not_raised():
    cfg = EoSConfig(n=100, width=8, depth=1, lr=80.0, steps=30, eig_every=10)
    res = list(run_eos(["sgd"], cfg))[-1][1]
    assert "sgd" in res.diverged_step
    assert res.to_frame().step.max() <= res.diverged_step["sgd"]


@pytest.mark.parametrize("field,value", [("lr", 0.0), ("eig_every", 0), ("activation", "gelu"), ("depth", 0)])
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        EoSConfig(**{field: value}).validate()


def test_usam_edge_uses_the_effective_radius_and_matches_its_quadratic_stability():
    """On ½λw², USAM (e = ρ g) is stable iff ηλ(1 + ρλ) < 2: the SAM edge at radius ρ‖g‖ is that λ."""
    from sam_core.theory import effective_rho

    lr, rho, g = 0.1, 0.05, 3.0
    from sam_core import simulate

    lam = sam_edge(g, lr, effective_rho("usam", {"rho": rho}, g))
    assert lr * lam * (1 + rho * lam) == pytest.approx(2.0, rel=1e-10)
    # and the simulated USAM iteration on that quadratic is on the edge: just below converges, just above blows up
    for factor, stable in ((0.99, True), (1.01, False)):
        curv = lam * factor

        def gf(w, curv=curv):
            return 0.5 * curv * (w * w).sum(1), curv * w

        res = simulate("usam", gf, torch.ones(1, 1, dtype=torch.float64), 4000, lr, {"rho": rho}, record=False)
        assert (res.diverged_step[0] == -1 and abs(float(res.final[0, 0])) < 1e-3) == stable
