"""Hessian diagnostics against the dense Hessian of a small model (torch.autograd.functional.hessian)."""

import pytest
import torch
from torch.func import functional_call

from sam_core import hessian


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    x = torch.randn(40, 4, dtype=torch.float64)
    y = torch.randint(0, 3, (40,))
    loss_fn = torch.nn.functional.cross_entropy
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    flat0 = torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    def f(flat):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n] = flat[i : i + s.numel()].view(s)
            i += s.numel()
        return loss_fn(functional_call(model, params, (x,)), y)

    H = torch.autograd.functional.hessian(f, flat0)
    evals, evecs = torch.linalg.eigh(H)
    return model, x, y, loss_fn, H, evals, evecs


def top_abs(evals, k):
    return evals[torch.argsort(evals.abs(), descending=True)[:k]]


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_top_eigenvalue_matches_dense(setup, method):
    model, x, y, loss_fn, H, evals, _ = setup
    op = hessian.HessianOperator(model, loss_fn, x, y)
    res = hessian.top_eigenvalues(op, k=1, method=method, tol=1e-6, max_iter=500)
    assert float(res.values[0]) == pytest.approx(float(top_abs(evals, 1)[0]), rel=1e-3)
    v = res.vectors[0]
    assert float((H @ v - res.values[0] * v).norm()) < 0.05 * abs(float(res.values[0]))


def test_top_k_with_lanczos(setup):
    model, x, y, loss_fn, _, evals, _ = setup
    op = hessian.HessianOperator(model, loss_fn, x, y)
    res = hessian.top_eigenvalues(op, k=3, tol=1e-8, max_iter=60)
    torch.testing.assert_close(res.values, top_abs(evals, 3), rtol=1e-3, atol=1e-8)


def test_warm_start_needs_fewer_products(setup):
    model, x, y, loss_fn, _, _, _ = setup
    op = hessian.HessianOperator(model, loss_fn, x, y)
    cold = hessian.top_eigenvalues(op, tol=1e-4)
    warm = hessian.top_eigenvalues(op, tol=1e-4, v0=cold.vectors[0])
    assert warm.n_hvp < cold.n_hvp
    assert float(warm.values[0]) == pytest.approx(float(cold.values[0]), rel=1e-3)


def test_hvp_matches_dense(setup):
    model, x, y, loss_fn, H, _, _ = setup
    op = hessian.HessianOperator(model, loss_fn, x, y)
    v = torch.randn(op.dim, dtype=torch.float64)
    torch.testing.assert_close(op.matvec(v), H @ v, rtol=1e-10, atol=1e-12)


def test_hutchplusplus_trace_matches_dense(setup):
    model, x, y, loss_fn, H, _, _ = setup
    op = hessian.HessianOperator(model, loss_fn, x, y)
    est, _ = hessian.hutchinson_trace(op, n_samples=3 * op.dim, method="hutch++")
    assert est == pytest.approx(float(torch.trace(H)), rel=1e-3)


def test_plain_hutchinson_is_unbiased_within_its_error(setup):
    model, x, y, loss_fn, H, _, _ = setup
    op = hessian.HessianOperator(model, loss_fn, x, y)
    est, se = hessian.hutchinson_trace(op, n_samples=400, seed=1)
    assert abs(est - float(torch.trace(H))) < 4 * se + 1e-9
    assert se < 0.1 * abs(float(torch.trace(H)))


def test_spectral_density_puts_mass_at_the_eigenvalues():
    D = torch.diag(torch.tensor([-1.0, 0.5, 0.5, 2.0, 5.0], dtype=torch.float64))
    grid, dens = hessian.spectral_density(hessian.MatrixOperator(D), n_steps=5, n_runs=4)
    dx = float(grid[1] - grid[0])
    assert float(dens.sum() * dx) == pytest.approx(1.0, rel=0.05)
    peak = float(grid[torch.argmax(dens)])
    assert min(abs(peak - e) for e in (-1.0, 0.5, 2.0, 5.0)) < 0.05


def test_function_operator_on_a_quadratic():
    A = torch.tensor([[4.0, 1.0], [1.0, -7.0]], dtype=torch.float64)
    op = hessian.FunctionOperator(lambda w: 0.5 * w @ A @ w, torch.tensor([0.3, -0.2], dtype=torch.float64))
    res = hessian.top_eigenvalues(op, tol=1e-10)
    assert float(res.values[0]) == pytest.approx(float(top_abs(torch.linalg.eigvalsh(A), 1)[0]), rel=1e-8)
    assert float(res.values[0]) < 0  # the sign is kept


def test_bad_arguments():
    op = hessian.MatrixOperator(torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="k must be"):
        hessian.top_eigenvalues(op, k=5)
    with pytest.raises(ValueError, match="method"):
        hessian.top_eigenvalues(op, method="qr")


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_algebraic_top_is_lambda_max_when_a_negative_eigenvalue_dominates(method):
    """Early in training the largest-|λ| eigenvalue can be negative (−2.2, −2.7 on the Training lab's MLP);
    λ_max — what the edge of stability compares with 2/η — is the algebraically largest one."""
    gen = torch.Generator().manual_seed(3)
    Q, _ = torch.linalg.qr(torch.randn(12, 12, dtype=torch.float64, generator=gen))
    lam = torch.tensor([-5.0, 3.0, 2.0, 1.5, 1.0, 0.5, 0.2, 0.0, -0.1, -0.7, -1.0, -2.0], dtype=torch.float64)
    H = Q @ torch.diag(lam) @ Q.T
    op = hessian.MatrixOperator(H)
    mag = hessian.top_eigenvalues(op, k=1, method=method, tol=1e-10, max_iter=2000)
    alg = hessian.top_eigenvalues(op, k=1, method=method, tol=1e-10, max_iter=2000, which="algebraic")
    assert float(mag.values[0]) == pytest.approx(-5.0, rel=1e-4)
    assert float(alg.values[0]) == pytest.approx(3.0, rel=1e-4)
    v = alg.vectors[0]
    assert float((H @ v - 3.0 * v).norm()) < 1e-2
    top2 = hessian.top_eigenvalues(op, k=2, method=method, tol=1e-12, max_iter=2000, which="algebraic")
    torch.testing.assert_close(top2.values, torch.tensor([3.0, 2.0], dtype=torch.float64), rtol=1e-3, atol=1e-6)
    with pytest.raises(ValueError, match="which"):
        hessian.top_eigenvalues(op, which="largest")
