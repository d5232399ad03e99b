"""The functional rules: closed-form one-step results on a quadratic, and vectorised == looped."""

import math

import numpy as np
import pytest
import torch

import sam_core
from sam_core import rules

A = np.array([[3.0, 0.5], [0.5, 1.0]])


def quad_grad(w):  # f(w) = ½ wᵀAw, batched w: (N, 2)
    At = torch.tensor(A, dtype=w.dtype)
    g = w @ At
    return 0.5 * (g * w).sum(1), g


def np_grad(w):
    return A @ w


def one_step_numpy(variant, w, lr, hp):
    """Independent numpy transcription of docs/ALGORITHMS.md, "Update rules at a glance", at one point."""
    g = np_grad(w)
    n = np.linalg.norm(g)
    rho = hp.get("rho", 0.0)
    if variant == "sgd":
        d = g
    elif variant == "sam":
        d = np_grad(w + rho * g / (n + 1e-12))
    elif variant == "usam":
        d = np_grad(w + rho * g)
    elif variant == "unified_sam":
        lam = hp["lam"]
        d = np_grad(w + rho * (1 - lam + lam / (n + 1e-12)) * g)
    elif variant == "asam":
        T = np.abs(w) + hp["eta"]
        d = np_grad(w + rho * T * T * g / (np.linalg.norm(T * g) + 1e-12))
    elif variant == "ssam":
        ga = np_grad(w + rho * g)
        d = n / (np.linalg.norm(ga) + 1e-12) * ga
    elif variant == "bsam":
        u = g / (n + 1e-12)
        gmax, gmin = np_grad(w + rho * u), np_grad(w - hp["rho_min"] * u)
        d = gmax + g - np.linalg.norm(gmax) / (np.linalg.norm(gmin) + 1e-12) * gmin
    elif variant == "presam":
        Dinv = 1.0 / hp["precond_np"]
        d = np_grad(w + rho * Dinv * g / (math.sqrt(g @ (Dinv * g)) + 1e-12))
    elif variant == "infosam":  # first step: warm-up, plain SAM
        d = np_grad(w + rho * g / (n + 1e-12))
    return w - lr * d


CASES = {
    "sgd": {},
    "sam": {"rho": 0.3},
    "usam": {"rho": 0.3},
    "unified_sam": {"rho": 0.3, "lam": 0.35},
    "asam": {"rho": 0.3, "eta": 0.01, "flavour": "davda54"},
    "ssam": {"rho": 0.3},
    "bsam": {"rho": 0.3, "rho_min": 0.1, "rho_min_schedule": "constant"},
    "presam": {"rho": 0.3},
    "infosam": {"rho": 0.3},
}


@pytest.mark.parametrize("variant", list(CASES))
def test_closed_form_one_step_on_quadratic(variant):
    w0 = np.array([0.7, -1.3])
    hp = dict(CASES[variant])
    expect_hp = dict(hp)
    if variant == "presam":
        expect_hp["precond_np"] = np.array([2.0, 0.5])
        hp["precond"] = [torch.tensor([[2.0, 0.5]], dtype=torch.float64)]
    res = sam_core.simulate(variant, quad_grad, torch.tensor(w0[None]), steps=1, lr=0.1, hp=hp)
    np.testing.assert_allclose(res.final[0].numpy(), one_step_numpy(variant, w0, 0.1, expect_hp), rtol=1e-12)


@pytest.mark.parametrize("variant", list(CASES))
def test_vectorised_equals_python_loop(variant):
    gen = torch.Generator().manual_seed(0)
    N = 7
    w0 = torch.randn(N, 2, generator=gen, dtype=torch.float64)
    rho = torch.linspace(0.01, 0.5, N, dtype=torch.float64)
    lr = torch.linspace(0.02, 0.3, N, dtype=torch.float64)
    hp = {k: v for k, v in CASES[variant].items() if k != "rho"}
    if variant != "sgd":
        hp["rho"] = rho
    batched = sam_core.simulate(variant, quad_grad, w0, steps=25, lr=lr, hp=hp, momentum=0.5)
    for i in range(N):
        hpi = {k: (v[i].item() if isinstance(v, torch.Tensor) else v) for k, v in hp.items()}
        single = sam_core.simulate(variant, quad_grad, w0[i : i + 1], steps=25, lr=lr[i].item(), hp=hpi, momentum=0.5)
        torch.testing.assert_close(batched.w[:, i], single.w[:, 0], rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(batched.gamma[:, i], single.gamma[:, 0], rtol=1e-12, atol=1e-14)


def test_norms_are_per_trajectory_not_over_the_batch():
    """Scaling one trajectory's gradient must not change another's normalised ascent."""
    g = [torch.tensor([[3.0, 4.0], [300.0, 400.0]])]
    e = rules.perturbations("sam", g, [torch.zeros(2, 2)], {"rho": 1.0, "stable": False}, batch_dims=1)[0][0]
    torch.testing.assert_close(e, torch.tensor([[0.6, 0.8], [0.6, 0.8]]))


def test_divergence_is_reported_not_raised():
    w0 = torch.tensor([[1.0, 1.0], [0.1, 0.1]], dtype=torch.float64)
    res = sam_core.simulate("sgd", quad_grad, w0, steps=2000, lr=torch.tensor([1.0, 0.1], dtype=torch.float64))
    assert res.diverged_step[0] > 0 and res.diverged_step[1] == -1
    assert torch.isfinite(res.w).all()  # frozen at its last finite point
    assert res.final[1].abs().max() < 1e-6


def test_gd_stability_threshold_on_quadratic():
    """GD on ½λx² converges for lr < 2/λ and blows up above it."""
    lam = 4.0

    def gf(w):
        return 0.5 * lam * (w * w).sum(1), lam * w

    lrs = torch.tensor([0.45, 0.49, 0.51, 0.55], dtype=torch.float64)
    res = sam_core.simulate("sgd", gf, torch.ones(4, 1, dtype=torch.float64), steps=5000, lr=lrs, record=False)
    ok = (res.diverged_step == -1) & (res.final.abs()[:, 0] < 1e-6)
    assert ok.tolist() == [True, True, False, False]


def test_noise_is_shared_across_passes_and_seeded():
    w0 = torch.zeros(3, 2, dtype=torch.float64)
    a = sam_core.simulate("sam", quad_grad, w0, 10, 0.1, {"rho": 0.1}, noise=0.5, seed=3)
    b = sam_core.simulate("sam", quad_grad, w0, 10, 0.1, {"rho": 0.1}, noise=0.5, seed=3)
    c = sam_core.simulate("sam", quad_grad, w0, 10, 0.1, {"rho": 0.1}, noise=0.5, seed=4)
    torch.testing.assert_close(a.w, b.w, rtol=0, atol=0)
    assert not torch.allclose(a.w, c.w)


def test_infosam_uses_noise_aware_metric_after_warmup():
    """After 1/(1-β) steps infoSAM's ascent differs from SAM's and follows D from the moments."""
    gen = torch.Generator().manual_seed(0)
    gs = [torch.randn(4, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 1.0, 10.0, 0.1]) for _ in range(12)]
    hp = sam_core.resolve_hparams("infosam", rho=0.2, beta=0.5)
    state = {}
    m = torch.zeros(4, dtype=torch.float64)
    s = torch.zeros(4, dtype=torch.float64)
    for t, g in enumerate(gs, start=1):
        e = rules.perturbations("infosam", [g], [torch.zeros(4)], hp, state, t)[0][0]
        s = 0.5 * s + 0.5 * (g - m) ** 2
        m = 0.5 * m + 0.5 * g
        if t >= 2:
            D = (s + hp["delta"]) / (s + hp["delta"]).mean()
            D = D.clamp(1 / hp["d0"], hp["d0"])
            expect = 0.2 * g / D / (torch.sqrt((g * g / D).sum()) + 1e-12)
        else:
            expect = 0.2 * g / (g.norm() + 1e-12)
        torch.testing.assert_close(e, expect, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ γ_t near a minimum (closed form)
@pytest.mark.parametrize("dtype,smallest", [(torch.float64, 1e-30), (torch.float32, 1e-30)])
@pytest.mark.parametrize("rho", [0.05, 0.5])
def test_ssam_gamma_closed_form_down_to_tiny_gradients(dtype, smallest, rho):
    """On f = x² + y² the USAM ascent gives g_adv = (1 + 2ρ) g, so γ_t = 1/(1 + 2ρ) at every point,
    however close to the minimum; the renormalised step keeps ‖d‖ = ‖g‖. An ε added to ‖g_adv‖ drove
    γ_t to 0 once ‖g‖ came near it (0.012 instead of 0.748 at ‖g‖ ≈ 1e-12)."""
    scales = [10.0**-k for k in range(0, 31, 3) if 10.0**-k >= smallest]
    w = torch.tensor([[0.6 * s, -0.8 * s] for s in scales], dtype=dtype)  # ‖w‖ = s, ‖g‖ = 2s

    def grad_fn(ps):
        (p,) = ps
        return (p * p).sum(-1), [2.0 * p]

    d, stats, _ = rules.sam_direction("ssam", [w], grad_fn, sam_core.resolve_hparams("ssam", rho=rho), batch_dims=1)
    want = 1.0 / (1.0 + 2.0 * rho)
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(stats["gamma"].double().numpy(), want, rtol=tol)
    dn = d[0].double().norm(dim=1)
    np.testing.assert_allclose((dn / (2.0 * w.double().norm(dim=1))).numpy(), 1.0, rtol=tol)
    # the same through the torch.optim shell, one point at a time
    for s in (1.0, 1e-12, smallest):
        p = torch.nn.Parameter(torch.tensor([0.6 * s, -0.8 * s], dtype=dtype))
        opt = sam_core.make_optimizer("ssam", [p], base_optimizer=torch.optim.SGD, rho=rho, lr=0.1)

        def closure(opt=opt, p=p):
            opt.zero_grad()
            loss = (p * p).sum()
            loss.backward()
            return loss

        opt.step(closure)
        np.testing.assert_allclose(float(opt.stats["gamma"]), want, rtol=tol)


def test_gamma_is_one_at_an_exact_stationary_point():
    """At g = 0 every pass sees 0: γ_t is 1 (not 0/ε = 0 and not NaN) and the step is 0."""
    w = torch.zeros(3, 2, dtype=torch.float64)
    d, stats, _ = rules.sam_direction(
        "ssam",
        [w],
        lambda ps: ((ps[0] ** 2).sum(-1), [2 * ps[0]]),
        sam_core.resolve_hparams("ssam", rho=0.1),
        batch_dims=1,
    )
    assert torch.equal(stats["gamma"], torch.ones(3, dtype=torch.float64))
    assert torch.equal(d[0], torch.zeros_like(w))


def test_ssam_keeps_converging_where_the_epsilon_stalled_it():
    """SSAM on x² + y² from (1, 1): lr·2·(…) contracts every step; ‖w‖ after 400 steps follows the
    closed form |1 − 2·lr|ⁿ (γ_t·(1 + 2ρ) = 1 makes the step exactly lr·g), down to ~1e-100."""
    lr, rho, n = 0.25, 0.3, 400
    w0 = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    res = sam_core.simulate("ssam", lambda w: ((w * w).sum(1), 2.0 * w), w0, n, lr, {"rho": rho})
    final = res.w[-1].norm().item()
    np.testing.assert_allclose(final, math.sqrt(2.0) * abs(1 - 2 * lr) ** n, rtol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_blown_up_ssam_run_is_reported_diverged_not_frozen(dtype):
    """SSAM at η = 1 on the quartic: about two thirds of the starts blow up. Once ‖g_adv‖² overflows, γ_t
    is NaN (the run is marked diverged) — not 0, which froze it at a huge finite point (d = 0·g_adv) and
    counted it as alive; and the γ_t of the runs that stay is exact in float32 as in float64."""
    from sam_core.landscape.functions import make_landscape

    Q = make_landscape("quartic")
    gen = torch.Generator().manual_seed(0)
    (x0, x1), (y0, y1) = Q.domain
    w0 = torch.rand(300, 2, generator=gen, dtype=torch.float64) * torch.tensor([x1 - x0, y1 - y0], dtype=torch.float64)
    w0 = (w0 + torch.tensor([x0, y0], dtype=torch.float64)).to(dtype)
    res = sam_core.simulate("ssam", Q.grad_fn, w0, 300, 1.0, {"rho": 0.1}, record=False)
    far = res.w.abs().amax(1) > 1e3
    diverged = res.diverged_step >= 0
    assert not bool((far & ~diverged).any()), "a run far outside the domain is still counted as alive"
    # the reference: the same starts in float64, escapes counted by distance (float64 has more headroom)
    ref = sam_core.simulate("ssam", Q.grad_fn, w0.double(), 300, 1.0, {"rho": 0.1}, record=False)
    ref_out = (ref.diverged_step >= 0) | (ref.w.abs().amax(1) > 1e3)
    assert 0.4 < float(ref_out.double().mean()) < 0.9
    assert abs(float(diverged.double().mean()) - float(ref_out.double().mean())) <= 0.03
