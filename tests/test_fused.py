"""The fast paths of simulate against what they must reproduce: the compiled (torch.compile) sweep
step against the eager loop, and the batched after-the-loop diagnostics against a step-by-step loop.

The eager ``simulate`` is itself checked against hand-written loops and closed forms (test_rules_functional,
test_lr_sweep); here every stateless rule runs both ways on the same batch in float64, where the fused
loop's rounding differences stay ~1e-12 over a few dozen steps, and the divergence bookkeeping must
agree trajectory for trajectory (normalised ascents near g = 0 amplify last-bit differences,
hence 1e-6 after 25 steps rather than 1e-12). Compiling costs ~0.5-2 s per configuration (the first one in a
process ~4 s, ~15 s on a machine whose inductor cache is empty).
"""

import threading
import warnings

import numpy as np
import pytest
import torch
from torch._dynamo.utils import counters

from sam_core import rules
from sam_core.landscape.expr import custom_landscape
from sam_core.landscape.functions import make_landscape
from sam_core.landscape.lr_sweep import (
    COMPILE_MIN_WORK,
    Execution,
    Success,
    SweepSetup,
    prewarm,
    run_batch,
    start_points,
    sweep_grid,
    sweep_lr,
    use_compile,
)
from sam_core.registry import VARIANTS, resolve_hparams
from sam_core.simulate import STATEFUL, simulate

Q = make_landscape("quartic")
HP = {"sgd": {}, "asam": {"rho": 0.5}, "unified_sam": {"rho": 0.1, "lam": "1/t"}}


def _batch(n=600, dtype=torch.float64):
    w0 = start_points(Q, n, "domain", seed=1).to(dtype)
    lr = torch.linspace(0.02, 1.2, n, dtype=dtype)  # the upper half blows up on the quartic
    return w0, lr


def _compiled(*args, **kw):
    """simulate(compile=True) that must really compile (the eager fallback would pass every comparison)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = simulate(*args, record=False, compile=True, **kw)
    failed = [str(w.message) for w in caught if "ran it eagerly" in str(w.message)]
    assert not failed, f"torch.compile could not build the step (is a C++ compiler installed?): {failed}"
    return res


def _both(variant, hp, steps=25, **kw):
    w0, lr = _batch()
    a = _compiled(variant, Q.grad_fn, w0, steps, lr, hp, grad_parts=Q.grad_parts, **kw)
    b = simulate(variant, Q.grad_fn, w0, steps, lr, hp, record=False, **kw)
    return a, b


def _assert_same(a, b):
    assert torch.equal(a.diverged_step, b.diverged_step)
    ok = a.diverged_step < 0
    assert 0 < int(ok.sum()) < len(ok), "the batch should hold both finite and diverged trajectories"
    torch.testing.assert_close(a.final[ok], b.final[ok], rtol=1e-6, atol=1e-6)
    assert a.n_evals == b.n_evals


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v not in STATEFUL])
def test_compiled_step_reproduces_the_eager_loop(variant):
    a, b = _both(variant, HP.get(variant, {"rho": 0.1}))
    _assert_same(a, b)


def test_compiled_step_with_momentum_noise_and_tail_mean():
    a, b = _both("ssam", {"rho": 0.1}, momentum=0.6, noise=0.2, seed=5, tail=7)
    _assert_same(a, b)
    ok = a.diverged_step < 0
    torch.testing.assert_close(a.tail_mean[ok], b.tail_mean[ok], rtol=1e-6, atol=1e-6)


def test_per_trajectory_rho_and_a_new_rho_reuse_the_compiled_step():
    w0, lr = _batch()
    rho = torch.linspace(0.0, 0.5, len(lr), dtype=torch.float64)
    a = _compiled("sam", Q.grad_fn, w0, 30, lr, {"rho": rho}, grad_parts=Q.grad_parts)
    b = simulate("sam", Q.grad_fn, w0, 30, lr, {"rho": rho}, record=False)
    _assert_same(a, b)
    _compiled("sam", Q.grad_fn, w0, 3, lr, {"rho": 0.05}, grad_parts=Q.grad_parts)
    graphs = counters["stats"]["unique_graphs"]
    for r in (0.1, 0.2):  # numbers are inputs of the compiled step, not constants baked into it
        c = _compiled("sam", Q.grad_fn, w0, 3, lr, {"rho": r}, grad_parts=Q.grad_parts)
        e = simulate("sam", Q.grad_fn, w0, 3, lr, {"rho": r}, record=False)
        torch.testing.assert_close(c.final, e.final, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert counters["stats"]["unique_graphs"] == graphs


def test_an_uncompilable_gradient_falls_back_to_the_eager_loop_with_a_warning():
    # a custom function has no closed form: its gradient comes from autograd, which a full graph cannot hold
    C = custom_landscape("x**2 + 3*y**2 + 0.1*x*y", find_points=False)
    w0 = start_points(C, 50, "domain").double()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = simulate("sam", C.grad_fn, w0, 20, 0.05, {"rho": 0.1}, record=False, compile=True, grad_parts=C.grad_parts)
    assert any("ran it eagerly" in str(w.message) for w in caught)
    b = simulate("sam", C.grad_fn, w0, 20, 0.05, {"rho": 0.1}, record=False)
    assert torch.equal(a.final, b.final)


def test_compiling_from_a_background_thread():
    # the page runs sweeps in job threads, never in the script thread
    out = {}

    def work():
        out["res"] = _both("bsam", {"rho": 0.1}, steps=25)

    th = threading.Thread(target=work)
    th.start()
    th.join(300)
    _assert_same(*out["res"])


def test_sweep_tables_agree_compiled_and_eager(monkeypatch):
    kw = dict(setup=SweepSetup(starts=300, steps=300, success=Success(tol=0.2)))
    lrs = np.geomspace(0.05, 1.0, 8)
    monkeypatch.setenv("SAMLAB_COMPILE", "on")
    on = sweep_lr(Q, ["sgd", "ssam"], lrs, {"ssam": {"rho": 0.1}}, **kw)
    monkeypatch.setenv("SAMLAB_COMPILE", "off")
    off = sweep_lr(Q, ["sgd", "ssam"], lrs, {"ssam": {"rho": 0.1}}, **kw)
    # float32: rounding may tip a chaotic start either way, so rates agree closely rather than exactly
    np.testing.assert_allclose(on.success_rate, off.success_rate, atol=0.02)
    np.testing.assert_allclose(on.diverged_rate, off.diverged_rate, atol=0.02)
    assert on.success_rate.max() > 0.5 and on.diverged_rate.max() > 0.5  # the sweep shows both regimes
    monkeypatch.setenv("SAMLAB_COMPILE", "on")
    g_on = sweep_grid(Q, "sam", lrs[:4], "rho", [0.05, 0.3], setup=SweepSetup(starts=100, steps=200))
    monkeypatch.setenv("SAMLAB_COMPILE", "off")
    g_off = sweep_grid(Q, "sam", lrs[:4], "rho", [0.05, 0.3], setup=SweepSetup(starts=100, steps=200))
    np.testing.assert_allclose(g_on.success_rate, g_off.success_rate, atol=0.03)


def test_use_compile_follows_the_setting_and_the_work(monkeypatch):
    C = custom_landscape("x**2 + y**2", find_points=False)
    monkeypatch.delenv("SAMLAB_COMPILE", raising=False)
    assert use_compile(Q, COMPILE_MIN_WORK) and not use_compile(Q, COMPILE_MIN_WORK / 2)
    assert not use_compile(C, 10 * COMPILE_MIN_WORK)  # autograd gradient: stays eager
    monkeypatch.setenv("SAMLAB_COMPILE", "off")
    assert not use_compile(Q, 10 * COMPILE_MIN_WORK)
    monkeypatch.setenv("SAMLAB_COMPILE", "on")
    assert use_compile(Q, 1)
    monkeypatch.setenv("SAMLAB_COMPILE", "sometimes")
    with pytest.raises(ValueError, match="SAMLAB_COMPILE"):
        use_compile(Q, 1)


def test_run_batch_compiled_keeps_the_eager_results_for_a_stateful_rule():
    # infoSAM keeps moments between steps: simulate ignores compile=True and runs it eagerly
    w0, lr = _batch(200, torch.float32)
    a = run_batch(Q, "infosam", w0, lr, {"rho": 0.1}, SweepSetup(steps=30), Execution(compile=True))
    b = run_batch(Q, "infosam", w0, lr, {"rho": 0.1}, SweepSetup(steps=30), Execution(compile=False))
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize(
    "variant,hp",
    [
        ("sgd", {}),
        ("sam", {"rho": 0.1}),
        ("ssam", {"rho": 0.2}),
        ("unified_sam", {"rho": 0.1, "lam": "1/t"}),
        ("bsam", {"rho": 0.1}),
    ],
)
def test_recorded_diagnostics_equal_a_step_by_step_loop(variant, hp):
    # simulate(record=True) computes loss, ‖g‖, γ_t and the ascent point after the loop in one batch;
    # here they are recomputed one step at a time, drawing the noise the way simulate documents it
    w0 = torch.tensor([[0.3, -0.2], [1.5, 0.4]], dtype=torch.float64)
    lr, noise, seed, steps = 0.2, 0.3, 7, 30
    res = simulate(variant, Q.grad_fn, w0, steps, lr, hp, noise=noise, seed=seed, record=True)
    hpv = resolve_hparams(variant, **hp)
    gen = torch.Generator().manual_seed(seed)
    w = w0.clone()
    for t in range(1, steps + 1):
        xi = noise * torch.randn(w.shape, generator=gen, dtype=w.dtype)

        def gf(ps, xi=xi):
            loss, g = Q.grad_fn(ps[0])
            return loss, [g + xi]

        d, st, _ = rules.sam_direction(variant, [w], gf, hpv, {}, t, batch_dims=1, keep_e=True)
        torch.testing.assert_close(res.loss[t - 1], st["loss"], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(res.grad_norm[t - 1], st["grad_norm"], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(res.gamma[t - 1], st["gamma"], rtol=1e-12, atol=1e-12)
        asc = w + st["e"][0][0] if st["e"] else w
        torch.testing.assert_close(res.ascent[t - 1], asc, rtol=1e-12, atol=1e-12)
        w = w - lr * d[0]
        torch.testing.assert_close(res.w[t], w, rtol=1e-12, atol=1e-12)


def test_prewarm_compiles_in_the_background_once(monkeypatch):
    monkeypatch.setenv("SAMLAB_COMPILE", "auto")
    R = make_landscape("rosenbrock")
    graphs = counters["stats"]["unique_graphs"]
    th = prewarm(R, ["sgd", "usam"], {"usam": {"rho": 0.02}})
    assert th is not None and th.daemon
    th.join(300)
    assert counters["stats"]["unique_graphs"] >= graphs + 2  # both steps compiled (errors are swallowed there)
    assert prewarm(R, ["sgd", "usam"], {"usam": {"rho": 0.02}}) is None  # already done in this process
    graphs = counters["stats"]["unique_graphs"]
    w0 = start_points(R, 500, "domain").float()
    lr = torch.full((500,), 1e-4)
    run_batch(
        R, "usam", w0, lr, {"rho": 0.05}, SweepSetup(steps=20), Execution(compile=True)
    )  # another ρ, another batch size
    assert counters["stats"]["unique_graphs"] == graphs  # nothing left to compile
    monkeypatch.setenv("SAMLAB_COMPILE", "off")
    assert prewarm(R, ["sam"], {}) is None
    C = custom_landscape("x**2 + y**2", find_points=False)
    monkeypatch.setenv("SAMLAB_COMPILE", "auto")
    assert prewarm(C, ["sam"], {}) is None  # autograd gradient: the sweep stays eager, nothing to warm


def test_a_lambda_map_compiles_and_matches_the_eager_loop():
    # λ as a per-trajectory tensor (the lr × λ map): the rule must not compare it with the '1/t' schedule names
    w0, lr = _batch()
    lam = torch.linspace(0.0, 1.0, len(lr), dtype=torch.float64)
    a = _compiled("unified_sam", Q.grad_fn, w0, 25, lr, {"rho": 0.1, "lam": lam}, grad_parts=Q.grad_parts)
    b = simulate("unified_sam", Q.grad_fn, w0, 25, lr, {"rho": 0.1, "lam": lam}, record=False)
    _assert_same(a, b)


def test_presam_with_a_preconditioner_runs_eagerly_in_both_paths():
    # presam's D is a list of tensors shaped like the parameters: neither the compiled step nor the batched
    # diagnostics can take it, so both fall back to the step-by-step loop (and D is really used)
    w0, lr = _batch(50)
    D = [torch.tensor([4.0, 0.25], dtype=torch.float64)]
    a = simulate(
        "presam", Q.grad_fn, w0, 20, lr, {"rho": 0.1, "precond": D}, record=False, compile=True, grad_parts=Q.grad_parts
    )
    b = simulate("presam", Q.grad_fn, w0, 20, lr, {"rho": 0.1, "precond": D}, record=False)
    sam = simulate("sam", Q.grad_fn, w0, 20, lr, {"rho": 0.1}, record=False)
    assert torch.equal(a.final, b.final) and not torch.allclose(a.final, sam.final)
    r = simulate("presam", Q.grad_fn, w0[:3], 10, 0.1, {"rho": 0.1, "precond": D}, record=True)
    e = r.ascent[0] - r.w[0]  # first ascent: ρ D⁻¹g / √(gᵀD⁻¹g)
    _, g = Q.grad_fn(r.w[0])
    want = 0.1 * (g / D[0]) / ((g * g / D[0]).sum(-1, keepdim=True).sqrt() + 1e-12)
    torch.testing.assert_close(e, want, rtol=1e-9, atol=1e-12)


def test_a_bad_input_is_the_callers_error_not_a_compile_failure():
    w0, lr = _batch(40)
    with pytest.raises(RuntimeError, match="size of tensor"):  # ρ of the wrong length: eager fails the same way
        simulate(
            "sam",
            Q.grad_fn,
            w0,
            5,
            lr,
            {"rho": torch.ones(7, dtype=torch.float64)},
            record=False,
            compile=True,
            grad_parts=Q.grad_parts,
        )
    _compiled(
        "sam", Q.grad_fn, w0, 5, lr, {"rho": torch.full((40,), 0.1, dtype=torch.float64)}, grad_parts=Q.grad_parts
    )  # the same configuration still compiles afterwards


def test_a_noisy_sweep_draws_the_same_noise_compiled_or_not():
    # run_batch seeds each chunk with seed + offset: compiled, the chunks must stay the eager ones
    from sam_core.landscape.lr_sweep import CHUNK

    n = CHUNK + 500
    w0 = start_points(Q, n, "domain", seed=2)
    lr = torch.full((n,), 0.05)
    setup = SweepSetup(steps=5, noise=0.5, seed=3)
    a = run_batch(Q, "sgd", w0, lr, {}, setup, Execution(compile=True))
    b = run_batch(Q, "sgd", w0, lr, {}, setup, Execution(compile=False))
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_allclose(a[0], b[0], rtol=1e-5, atol=1e-5)
