"""sam_core.dynamics.problems: closed-form gradients vs autograd, sampling estimators vs exact expectations,
theory constants at hand-computed points, the MLP vs torch.nn."""

import itertools
import math

import pytest
import torch

from sam_core.dynamics.problems import (
    Logistic,
    Quadratic,
    Ridge,
    Sampling,
    ae_loss,
    ae_loss_grad,
    batch_second_moment,
    init_autoencoder,
    init_mlp,
    make_autoencoder_data,
    make_eos_data,
    make_problem,
    mlp_loss,
    mlp_loss_grad,
    theory_stepsizes,
)
from sam_core.dynamics.problems.mlp import flatten, unflatten

D64 = torch.float64


# ------------------------------------------------------------------------------ linear autoencoder
def _ae_reference(W1, W2, X):
    """½ mean_x ‖W2 W1 x − x‖², one run, by autograd over an explicit per-sample sum."""
    W1 = W1.clone().requires_grad_(True)
    W2 = W2.clone().requires_grad_(True)
    r = X @ (W2 @ W1).T - X  # (n, d)
    loss = 0.5 * (r * r).sum(1).mean()
    g1, g2 = torch.autograd.grad(loss, [W1, W2])
    return loss.detach(), g1, g2


def test_autoencoder_gradients_match_autograd_on_data():
    gen = torch.Generator().manual_seed(0)
    R, d, n = 3, 5, 40
    W1 = torch.randn(R, d, d, generator=gen, dtype=D64)
    W2 = torch.randn(R, d, d, generator=gen, dtype=D64)
    X = torch.randn(n, d, generator=gen, dtype=D64)
    idx = torch.stack([torch.randperm(n, generator=gen)[:7] for _ in range(R)])  # a batch per run
    S = batch_second_moment(X, idx)
    loss, (g1, g2) = ae_loss_grad([W1, W2], S)
    for r in range(R):
        ref_l, ref_g1, ref_g2 = _ae_reference(W1[r], W2[r], X[idx[r]])
        torch.testing.assert_close(loss[r], ref_l)
        torch.testing.assert_close(g1[r], ref_g1)
        torch.testing.assert_close(g2[r], ref_g2)
    torch.testing.assert_close(ae_loss([W1, W2], S), loss)
    no_loss, (h1, h2) = ae_loss_grad([W1, W2], S, with_loss=False)
    assert torch.isnan(no_loss).all() and torch.equal(h1, g1) and torch.equal(h2, g2)


def test_autoencoder_population_loss_matches_autograd():
    gen = torch.Generator().manual_seed(1)
    W1 = torch.randn(2, 4, 4, generator=gen, dtype=D64)
    W2 = torch.randn(2, 4, 4, generator=gen, dtype=D64)
    loss, (g1, g2) = ae_loss_grad([W1, W2], None)
    a, b = W1.clone().requires_grad_(True), W2.clone().requires_grad_(True)
    ref = 0.5 * ((b @ a - torch.eye(4, dtype=D64)) ** 2).sum(dim=(1, 2))
    r1, r2 = torch.autograd.grad(ref.sum(), [a, b])
    torch.testing.assert_close(loss, ref.detach())
    torch.testing.assert_close(g1, r1)
    torch.testing.assert_close(g2, r2)


def test_autoencoder_origin_is_a_saddle_with_zero_gradient():
    W = [torch.zeros(1, 3, 3), torch.zeros(1, 3, 3)]
    loss, g = ae_loss_grad(W, None)
    assert float(loss) == pytest.approx(1.5)
    assert all(float(x.abs().max()) == 0 for x in g)


def test_autoencoder_init_and_data():
    W = init_autoencoder([0, 1, 0], d=30, init_var=1e-4)
    assert W[0].shape == (3, 30, 30)
    torch.testing.assert_close(W[0][0], W[0][2])  # same seed, same init
    assert not torch.equal(W[0][0], W[0][1])
    assert float(W[0].var()) == pytest.approx(1e-4, rel=0.1)
    data = make_autoencoder_data(500, 4, seed=3)
    torch.testing.assert_close(data.S_full, data.X.T @ data.X / 500, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="init_var"):
        init_autoencoder([0], 3, init_var=0.0)


# ------------------------------------------------------------------------------ quadratic / ridge / logistic
def _autograd(fn, w):
    w = w.clone().requires_grad_(True)
    out = fn(w)
    (g,) = torch.autograd.grad(out.sum(), w)
    return out.detach(), g


def test_quadratic_gradient_and_spectrum():
    p = Quadratic(dim=6, cond=50.0, lam_max=2.0, seed=0)
    ev = torch.linalg.eigvalsh(p.A)
    assert float(ev[-1]) == pytest.approx(2.0, rel=1e-9) and float(ev[0]) == pytest.approx(2.0 / 50, rel=1e-9)
    assert p.L == 2.0 and p.mu == pytest.approx(0.04)
    w = torch.randn(4, 6, dtype=D64)
    loss, g = p.loss_grad(w)
    ref_l, ref_g = _autograd(lambda v: 0.5 * torch.einsum("ri,ij,rj->r", v, p.A, v), w)
    torch.testing.assert_close(loss, ref_l)
    torch.testing.assert_close(g, ref_g)
    assert float(p.w0.norm()) == pytest.approx(1.0)


def _ridge_ref(p, w):
    r = w @ p.A.T - p.y
    return 0.5 * (r * r).mean(-1) + 0.5 * p.reg * (w * w).sum(-1)


def _logistic_ref(p, w):
    m = p.y * (w @ p.A.T)
    return torch.log1p(torch.exp(-m)).mean(-1) + 0.5 * p.reg * (w * w).sum(-1)


@pytest.mark.parametrize("cls,ref", [(Ridge, _ridge_ref), (Logistic, _logistic_ref)])
def test_finite_sum_full_gradient_optimum_and_constants(cls, ref):
    p = cls(n=30, dim=4, cond=5.0, row_norm_ratio=4.0, reg=0.05, seed=1)
    w = torch.randn(3, 4, dtype=D64)
    loss, g = p.loss_grad(w)
    ref_l, ref_g = _autograd(lambda v: ref(p, v), w)
    torch.testing.assert_close(loss, ref_l)
    torch.testing.assert_close(g, ref_g)
    # w* is the minimiser, f* its value
    _, g_star = p.loss_grad(p.w_star[None])
    assert float(g_star.norm()) < 1e-9
    assert p.f_star == pytest.approx(float(ref(p, p.w_star[None])[0]), rel=1e-12)
    # per-example smoothness and L, mu against the Hessians
    norms2 = (p.A * p.A).sum(1)
    scale = 1.0 if cls is Ridge else 0.25
    torch.testing.assert_close(p.L_i, scale * norms2 + p.reg)
    assert float(p.L_i.max() / p.L_i.min()) > 3  # unequal rows
    H = torch.autograd.functional.hessian(lambda v: ref(p, v[None])[0], torch.zeros(4, dtype=D64))
    ev = torch.linalg.eigvalsh(H)
    if cls is Ridge:  # quadratic: exact
        assert p.L == pytest.approx(float(ev[-1]), rel=1e-9) and p.mu == pytest.approx(float(ev[0]), rel=1e-9)
    else:  # sigmoid' <= 1/4, attained at w = 0 (margins 0)
        assert p.L == pytest.approx(float(ev[-1]), rel=1e-9)
        assert p.mu == pytest.approx(p.reg)


@pytest.mark.parametrize("cls,ref", [(Ridge, _ridge_ref), (Logistic, _logistic_ref)])
def test_minibatch_estimator_is_the_weighted_sum_of_example_gradients(cls, ref):
    p = cls(n=12, dim=3, reg=0.1, seed=2)
    w = torch.randn(2, 3, dtype=D64)
    idx = torch.tensor([[0, 5, 5], [11, 2, 7]])
    coef = torch.tensor([[0.2, 0.3, 0.5], [1.0, 2.0, 0.1]], dtype=D64)
    loss, g = p.loss_grad(w, (idx, coef))
    for r in range(2):

        def f(v, r=r):
            tot = 0.0
            for j in range(3):
                i = int(idx[r, j])
                if cls is Ridge:
                    fi = 0.5 * (p.A[i] @ v - p.y[i]) ** 2
                else:
                    fi = torch.log1p(torch.exp(-p.y[i] * (p.A[i] @ v)))
                tot = tot + coef[r, j] * (fi + 0.5 * p.reg * (v @ v))
            return tot

        ref_l, ref_g = _autograd(f, w[r])
        torch.testing.assert_close(loss[r], ref_l)
        torch.testing.assert_close(g[r], ref_g)


def test_make_problem_validates():
    with pytest.raises(ValueError, match="problem must be one of"):
        make_problem("cubic")
    with pytest.raises(ValueError, match="cond"):
        Ridge(cond=0.5)
    with pytest.raises(ValueError, match="reg"):
        Logistic(reg=0.0)


# ------------------------------------------------------------------------------ sampling
def _outcomes(s: Sampling, n: int, p: torch.Tensor):
    """Every outcome of one draw with its probability, enumerated independently of the sampler."""
    b = s.batch_size
    if s.kind == "uniform":
        for i in range(n):
            yield [i], 1.0 / n
    elif s.kind == "nice":
        subsets = list(itertools.combinations(range(n), b))
        for c in subsets:
            yield list(c), 1.0 / len(subsets)
    elif s.kind == "importance":
        for c in itertools.product(range(n), repeat=b):
            yield list(c), math.prod(float(p[i]) for i in c)


@pytest.mark.parametrize("cls", [Ridge, Logistic])
@pytest.mark.parametrize(
    "sampling",
    [
        Sampling("uniform"),
        Sampling("nice", 2),
        Sampling("nice", 5),
        Sampling("importance", 1),
        Sampling("importance", 2),
    ],
)
def test_sampling_estimators_are_unbiased_by_exact_expectation(cls, sampling):
    p = cls(n=5, dim=3, row_norm_ratio=6.0, reg=0.05, seed=4)
    w = torch.randn(1, 3, dtype=D64)
    _, full = p.loss_grad(w)
    probs = p.L_i / p.L_i.sum()
    expect = torch.zeros_like(full)
    total = 0.0
    for idx, prob in _outcomes(sampling, 5, probs):
        it = torch.tensor([idx])
        _, g = p.loss_grad(w, (it, sampling.coefficients(it, p.L_i)))
        expect += prob * g
        total += prob
    assert total == pytest.approx(1.0)
    torch.testing.assert_close(expect, full, rtol=1e-10, atol=1e-12)


def test_importance_sampling_without_reweighting_is_biased():
    p = Ridge(n=5, dim=3, row_norm_ratio=6.0, reg=0.05, seed=4)
    s = Sampling("importance", 1, reweight=False)
    w = torch.randn(1, 3, dtype=D64)
    _, full = p.loss_grad(w)
    probs = p.L_i / p.L_i.sum()
    expect = sum(
        float(probs[i]) * p.loss_grad(w, (torch.tensor([[i]]), s.coefficients(torch.tensor([[i]]), p.L_i)))[1]
        for i in range(5)
    )
    # it estimates Σ p_i ∇f_i, not ∇f
    ref = sum(float(probs[i]) * p.loss_grad(w, (torch.tensor([[i]]), torch.ones(1, 1, dtype=D64)))[1] for i in range(5))
    torch.testing.assert_close(expect, ref)
    assert float((expect - full).norm()) > 1e-3 * float(full.norm())


@pytest.mark.parametrize("sampling", [Sampling("uniform"), Sampling("nice", 3), Sampling("importance", 2)])
def test_sampler_draws_follow_the_distribution(sampling):
    L_i = torch.tensor([1.0, 2.0, 3.0, 10.0, 4.0], dtype=D64)
    gen = torch.Generator().manual_seed(0)
    idx, coef = sampling.draw(40_000, L_i, gen)
    assert idx.shape == (40_000, sampling.batch_size)
    freq = torch.bincount(idx.reshape(-1), minlength=5).to(D64) / idx.numel()
    expected = L_i / L_i.sum() if sampling.kind == "importance" else torch.full((5,), 0.2, dtype=D64)
    torch.testing.assert_close(freq, expected, atol=0.01, rtol=0)
    torch.testing.assert_close(coef, sampling.coefficients(idx, L_i))
    if sampling.kind == "nice":  # a subset: distinct indices in every row
        assert bool((idx.sort(1).values.diff(dim=1) > 0).all())
    assert Sampling("full").draw(3, L_i) is None


def test_sampling_constants_and_validation():
    L_i = torch.tensor([1.0, 2.0, 3.0, 6.0])
    n = 4
    A, B = Sampling("nice", 2).abc(L_i)
    assert A == pytest.approx((n - 2) * 6.0 / (2 * (n - 1))) and B == pytest.approx(n * 1 / (2 * (n - 1)))
    assert Sampling("uniform").abc(L_i) == pytest.approx((6.0, 0.0))  # 1-nice: A = L_max, B = 0
    assert Sampling("nice", 4).abc(L_i) == pytest.approx((0.0, 1.0))  # n-nice = full batch
    A, B = Sampling("importance", 2).abc(L_i)
    assert A == pytest.approx(float(L_i.mean()) / 2) and B == pytest.approx(0.5)
    assert Sampling("full").abc(L_i) == (0.0, 1.0)
    with pytest.raises(ValueError, match="sampling kind"):
        Sampling("stratified")
    with pytest.raises(ValueError, match="batch_size"):
        Sampling("nice", 9).draw(1, L_i)
    assert Sampling("uniform", batch_size=7).batch_size == 1


def test_theory_stepsizes_at_hand_computed_points():
    # L = 2, μ = 0.5, A = 1, B = 0.5: Bμ + A = 1.25
    t = theory_stepsizes(2.0, 0.5, 1.0, 0.5, lam=1.0)
    assert t["gamma"] == pytest.approx(min(2, 0.5 / 10) / 2)  # 0.025
    assert t["rho"] == pytest.approx(1 / 8)
    assert theory_stepsizes(2.0, 0.5, 1.0, 0.5, lam=0.5)["rho"] == pytest.approx(0.8 / 8)
    assert theory_stepsizes(2.0, 0.5, 1.0, 0.5, lam=0.0)["rho"] == pytest.approx(0.2 / 8)
    assert theory_stepsizes(2.0, 0.5, 1.0, 0.5, lam="1/t")["rho"] == pytest.approx(0.2 / 8)  # most conservative
    assert theory_stepsizes(1.0, 1.0, 0.0, 1.0)["gamma"] == pytest.approx(1 / 8)  # full batch
    with pytest.raises(ValueError, match="mu"):
        theory_stepsizes(1.0, 2.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="lam"):
        theory_stepsizes(1.0, 0.5, 0.0, 1.0, lam=1.5)


# ------------------------------------------------------------------------------ MLP
def test_mlp_matches_torch_nn():
    torch.manual_seed(0)
    X, Y = make_eos_data("synthetic", n=50, in_dim=6, classes=3, seed=1)
    assert X.shape == (50, 6) and Y.shape == (50, 3) and bool((Y.sum(1) == 1).all())
    params = init_mlp([6, 8, 8, 3], seed=2)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)
    )
    with torch.no_grad():
        for p, q in zip(net.parameters(), params):
            p.copy_(q)
    ref = 0.5 * ((net(X) - Y) ** 2).sum(1).mean()
    ref.backward()
    loss, grads = mlp_loss_grad(params, X, Y)
    torch.testing.assert_close(loss, ref.detach())
    for g, p in zip(grads, net.parameters()):
        torch.testing.assert_close(g, p.grad)
    flat = flatten(params)
    back = unflatten(flat, params)
    assert all(torch.equal(a, b) for a, b in zip(back, params))
    torch.testing.assert_close(mlp_loss(back, X, Y), loss)


def test_eos_data_is_deterministic_and_mnist_missing_says_where(tmp_path):
    a = make_eos_data(n=20, seed=5)
    b = make_eos_data(n=20, seed=5)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(FileNotFoundError, match="MNIST"):
        make_eos_data("mnist", n=20, data_dir=str(tmp_path))
    with pytest.raises(ValueError, match="dataset"):
        make_eos_data("cifar", n=20)
