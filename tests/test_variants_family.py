"""The wider SAM family (gsam, wsam, fsam, looksam) against their peers in pytorch-optimizer (a test-only
oracle, requirements-dev.txt): several steps in float64, SGD with momentum and weight decay, a fresh
mini-batch every step; and every new variant runs in the landscape lab's simulate."""

from __future__ import annotations

import warnings

import pytest
import torch

import sam_core
from sam_core.landscape.functions import make_landscape
from sam_core.simulate import _FUSED

po = pytest.importorskip("pytorch_optimizer")  # noqa: F841 - the oracle; a dev requirement

STEPS = 8


@pytest.fixture(autouse=True)
def float64_oracle_norm(monkeypatch):
    """pytorch-optimizer casts its global gradient norm to float32 (`.float()` in
    `get_global_gradient_norm`), which alone moves float64 weights by ~1e-10. The oracle runs with the
    same function minus that cast, so the comparison can be at float64 precision."""
    import pytorch_optimizer.optimizer.sam as po_sam

    def norm64(param_groups, device=None, *, weight_adaptive=False):
        grads = []
        for group in param_groups or []:
            adaptive = weight_adaptive and group.get("adaptive", False)
            for p in group["params"]:
                if p.grad is not None:
                    grads.append(p.grad * p.abs() if adaptive else p.grad)
        norms = torch._foreach_norm(grads)
        return torch.stack(norms).square_().sum().reshape(1)

    monkeypatch.setattr(po_sam, "get_global_gradient_norm", norm64)


BASE = dict(lr=0.05, momentum=0.9, weight_decay=1e-3)


def _model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3)).double()


def _batches():
    gen = torch.Generator().manual_seed(1)
    return [
        (torch.randn(16, 6, generator=gen, dtype=torch.float64), torch.randint(0, 3, (16,), generator=gen))
        for _ in range(STEPS)
    ]


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _ours(variant: str, hp: dict) -> list[torch.Tensor]:
    model = _model()
    opt = sam_core.make_optimizer(variant, model.parameters(), torch.optim.SGD, **BASE, **hp)
    out = []
    for x, y in _batches():

        def closure(x=x, y=y):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        opt.step(closure)
        out.append(_flat(model))
    return out


def _peer(make, first_closure: bool = True) -> list[torch.Tensor]:
    model = _model()
    opt = make(model)
    out = []
    for x, y in _batches():

        def closure(x=x, y=y):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        if first_closure:  # pytorch-optimizer's LookSAM / FriendlySAM: the caller computes the first gradient
            closure()
        opt.step(closure)
        out.append(_flat(model))
    return out


def _close(ours, peer):
    assert len(ours) == len(peer) == STEPS
    w0 = _flat(_model())
    for t, (a, b) in enumerate(zip(ours, peer)):
        assert (b - w0).abs().max() > 1e-6  # the oracle moved
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=f"step {t + 1}")


def test_gsam_matches_pytorch_optimizer():
    class Const:  # GSAM's rho_scheduler: a constant ρ
        def step(self):
            return 0.1

    def make(model):
        base = torch.optim.SGD(model.parameters(), **BASE)
        gsam = po.GSAM(model.parameters(), base, model, Const(), alpha=0.3)
        return _GSAMAdapter(gsam, model)

    _close(_ours("gsam", dict(rho=0.1, alpha=0.3)), _peer(make, first_closure=False))


class _GSAMAdapter:
    """GSAM's closure returns (outputs, loss) and runs the first pass itself."""

    def __init__(self, opt, model):
        self.opt, self.model = opt, model

    def zero_grad(self):
        self.opt.base_optimizer.zero_grad()

    def step(self, closure):
        grad_closure = torch.enable_grad()(closure)
        self.opt.step(lambda: (None, grad_closure().detach()))


@pytest.mark.parametrize("gamma", [0.9, 0.5])
def test_wsam_matches_pytorch_optimizer_coupled(gamma):
    ours = _ours("wsam", dict(rho=0.08, gamma=gamma))
    peer = _peer(
        lambda m: po.WSAM(m, m.parameters(), torch.optim.SGD, rho=0.08, gamma=gamma, decouple=False, **BASE),
        first_closure=False,
    )
    _close(ours, peer)


def test_wsam_at_gamma_half_is_sam():
    _close(_ours("wsam", dict(rho=0.08, gamma=0.5)), _ours("sam", dict(rho=0.08)))


def test_fsam_matches_pytorch_optimizer():
    ours = _ours("fsam", dict(rho=0.1, sigma=0.7, lmbda=0.8))
    peer = _peer(lambda m: po.FriendlySAM(m.parameters(), torch.optim.SGD, rho=0.1, sigma=0.7, lmbda=0.8, **BASE))
    _close(ours, peer)


def test_looksam_matches_pytorch_optimizer():
    ours = _ours("looksam", dict(rho=0.1, k=3, alpha=0.6))
    peer = _peer(lambda m: po.LookSAM(m.parameters(), torch.optim.SGD, rho=0.1, k=3, alpha=0.6, **BASE))
    _close(ours, peer)


def test_looksam_with_k_1_is_sam():
    _close(_ours("looksam", dict(rho=0.1, k=1, alpha=0.6)), _ours("sam", dict(rho=0.1)))


def _msam_paper(rho: float) -> list[torch.Tensor]:
    """Becker et al. (2024), Algorithm 1, transcribed: the weights are kept at the perturbed point w̃,
    v accumulates the gradient at w̃ plus weight decay at w (as torch's SGD accumulates it)."""
    model = _model()
    mu, lr, wd = BASE["momentum"], BASE["lr"], BASE["weight_decay"]
    params = list(model.parameters())
    v = [torch.zeros_like(p) for p in params]
    out = []
    for x, y in _batches():
        vn = torch.sqrt(sum((vi * vi).sum() for vi in v))
        unit = [vi / vn if vn > 0 else torch.zeros_like(vi) for vi in v]
        for p in params:
            p.grad = None
        loss = torch.nn.functional.cross_entropy(model(x), y)  # the model's weights are w̃_t
        g = torch.autograd.grad(loss, params)
        with torch.no_grad():
            w = [p + rho * u for p, u in zip(params, unit)]  # remove the last perturbation
            v = [mu * vi + gi + wd * wi for vi, gi, wi in zip(v, g, w)]
            w = [wi - lr * vi for wi, vi in zip(w, v)]
            vn = torch.sqrt(sum((vi * vi).sum() for vi in v))
            for p, wi, vi in zip(params, w, v):
                p.copy_(wi - rho * vi / vn)  # perturb for the next step
        out.append(torch.cat([wi.reshape(-1) for wi in w]))
    return out


def test_msam_matches_the_papers_update():
    _close(_ours("msam", dict(rho=0.2)), _msam_paper(0.2))


def test_msam_uses_one_gradient_evaluation_per_step():
    model = _model()
    opt = sam_core.make_optimizer("msam", model.parameters(), torch.optim.SGD, rho=0.2, **BASE)
    calls = []
    for x, y in _batches()[:3]:

        def closure(x=x, y=y):
            calls.append(1)
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        opt.step(closure)
    assert len(calls) == 3
    assert abs(float(opt.stats["perturbation_norm"]) - 0.2) < 1e-12  # after step 1, ‖e‖ = ρ


@pytest.mark.parametrize("variant", ["gsam", "wsam", "fsam", "looksam", "msam"])
def test_new_variants_run_in_simulate_eager_and_compiled_where_allowed(variant):
    spec = sam_core.VARIANTS[variant]
    L = make_landscape("quartic")
    w0 = torch.tensor(
        [[1.0, 0.5], [-0.7, 0.3], [0.2, -1.1]], dtype=torch.float64
    )  # wsam: d = 9 g_adv − 8 g amplifies float32 rounding
    rec = sam_core.simulate(variant, L.grad_fn, w0, 30, 0.05, hp={"rho": 0.1}, record=True)
    assert torch.isfinite(rec.w).all() and (rec.final - w0).abs().max() > 1e-3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast = sam_core.simulate(variant, L.grad_fn, w0, 30, 0.05, hp={"rho": 0.1}, record=False, compile=True)
    assert not [c for c in caught if "compil" in str(c.message)]  # compiled, no fallback
    assert any(k[0] == variant for k in _FUSED) == (not spec.stateful)  # the stateful ones run eagerly
    torch.testing.assert_close(fast.final, rec.final, rtol=1e-9, atol=1e-10)
    # a single trajectory equals one row of the batch (per-trajectory norms and state)
    one = sam_core.simulate(variant, L.grad_fn, w0[1:2], 30, 0.05, hp={"rho": 0.1}, record=False)
    torch.testing.assert_close(one.final[0], rec.final[1], rtol=1e-9, atol=1e-10)
    assert spec.stateful == (variant in ("fsam", "looksam", "msam"))


# ------------------------------------------------------------------------------------------ per-group ρ
def _davda54_per_group(rhos, adaptive=False, steps=4):
    """davda54/sam's SAM.first_step transcribed: one global ‖(|w|·) g‖, then e = ρ_group (w²·) g / (‖·‖ + 1e-12)
    for each param group; SGD(momentum, weight decay) on the gradient at w + e."""
    model = _model()
    groups = [list(model[0].parameters()), list(model[2].parameters())]
    base = torch.optim.SGD([{"params": groups[0]}, {"params": groups[1]}], **BASE)
    for x, y in _batches()[:steps]:
        base.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            ps = [p for gr in groups for p in gr]
            gn = torch.norm(torch.stack([((p.abs() if adaptive else 1.0) * p.grad).norm(p=2) for p in ps]), p=2)
            saved = [p.clone() for p in ps]
            for gr, rho in zip(groups, rhos):
                scale = rho / (gn + 1e-12)
                for p in gr:
                    p.add_((torch.pow(p, 2) if adaptive else 1.0) * p.grad * scale)
        base.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for p, s in zip(ps, saved):
                p.copy_(s)
        base.step()
    return _flat(model)


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_per_param_group_rho_matches_davda54(adaptive):
    model = _model()
    opt = sam_core.SAM(
        [{"params": model[0].parameters(), "rho": 0.02}, {"params": model[2].parameters()}],
        torch.optim.SGD,
        rho=0.3,
        adaptive=adaptive,
        **BASE,
    )
    for x, y in _batches()[:4]:
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step(lambda x=x, y=y: torch.nn.functional.cross_entropy(model(x), y).backward())
        opt.zero_grad()
    ref = _davda54_per_group([0.02, 0.3], adaptive)
    torch.testing.assert_close(_flat(model), ref, rtol=1e-10, atol=1e-12)
    # and it is not what one global ρ would give
    assert (_davda54_per_group([0.3, 0.3], adaptive) - ref).abs().max() > 1e-6


def test_per_group_rho_is_refused_clearly_for_a_stateful_rule_and_out_of_range():
    model = _model()
    x, y = _batches()[0]
    for variant, rho0, msg in (("fsam", 0.02, "not supported for a stateful rule"), ("sam", -1.0, "param group 0")):
        opt = sam_core.make_optimizer(
            variant,
            [{"params": model[0].parameters(), "rho": rho0}, {"params": model[2].parameters()}],
            torch.optim.SGD,
            rho=0.1,
            lr=0.1,
        )

        def closure(opt=opt):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            return loss

        with pytest.raises(ValueError, match=msg):
            opt.step(closure)


def test_ssam_adaptive_matches_a_transcription_of_the_update():
    """Stable SAM's adaptive=True: e = ρ T²g with T = |w| (every parameter, η = 0), γ_t from the weighted
    norms ‖|w| ⊙ g‖ / ‖|w + e| ⊙ g_adv‖, then SGD with momentum and weight decay; against a plain loop."""
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(32, 5, generator=gen, dtype=torch.float64)
    y = torch.randn(32, generator=gen, dtype=torch.float64)
    w0 = torch.randn(5, generator=gen, dtype=torch.float64)
    rho, lr, mom, wd = 0.05, 0.05, 0.9, 5e-4

    def loss(w):
        return ((X @ w - y) ** 2).mean() + 0.1 * (w**4).sum()

    def grad(w):
        w = w.detach().requires_grad_(True)
        return torch.autograd.grad(loss(w), w)[0]

    w, buf, gammas = w0.clone(), None, []
    for _ in range(6):
        g = grad(w)
        e = rho * w.abs() ** 2 * g
        g_adv = grad(w + e)
        gamma = (w.abs() * g).norm() / ((w + e).abs() * g_adv).norm()
        d = gamma * g_adv + wd * w
        buf = d if buf is None else mom * buf + d
        w = w - lr * buf
        gammas.append(float(gamma))
    p = torch.nn.Parameter(w0.clone())
    opt = sam_core.make_optimizer(
        "ssam", [p], base_optimizer=torch.optim.SGD, rho=rho, adaptive=True, lr=lr, momentum=mom, weight_decay=wd
    )
    got = []
    for _ in range(6):

        def closure():
            opt.zero_grad()
            out = loss(p)
            out.backward()
            return out

        opt.step(closure)
        got.append(float(opt.stats["gamma"]))
    torch.testing.assert_close(p.detach(), w, rtol=1e-12, atol=1e-12)
    assert got == pytest.approx(gammas, rel=1e-12)
    assert min(gammas) < 0.999  # the weighted renormalisation is doing something here
