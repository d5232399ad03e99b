"""The torch.optim shell against independent transcriptions of each rule (float64, tiny MLP, no BN)."""

import copy

import pytest
import torch

import sam_core

torch.set_num_threads(1)


def make_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3)).double()


def make_data(seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(32, 5, generator=g, dtype=torch.float64), torch.randint(0, 3, (32,), generator=g)


def loss_of(model, x, y):
    return torch.nn.functional.cross_entropy(model(x), y)


def plain_closure(opt, model, x, y):
    """The usual closure: zero_grad, forward, backward, return the loss (called once per pass)."""

    def closure():
        opt.zero_grad()
        loss = loss_of(model, x, y)
        loss.backward()
        return loss

    return closure


def grads_at(model, params_values, x, y):
    """Gradient at given parameter values, computed on a deep copy (independent of the optimizer)."""
    m = copy.deepcopy(model)
    with torch.no_grad():
        for p, v in zip(m.parameters(), params_values):
            p.copy_(v)
    loss = loss_of(m, x, y)
    return list(torch.autograd.grad(loss, list(m.parameters()))), loss.detach()


def norm(ts):
    return torch.sqrt(sum((t * t).sum() for t in ts))


def run_shell(variant, steps=4, base=torch.optim.SGD, base_kw=None, **hp):
    model = make_model()
    x, y = make_data()
    opt = sam_core.make_optimizer(variant, model.parameters(), base_optimizer=base, **(base_kw or {}), **hp)

    closure = plain_closure(opt, model, x, y)

    for _ in range(steps):
        opt.step(closure)
    return [p.detach().clone() for p in model.parameters()], opt


def run_reference(direction, steps=4, lr=0.1, momentum=0.9, weight_decay=1e-3):
    """SGD(momentum, coupled weight decay) written out, following `direction(w, t) -> d`."""
    model = make_model()
    w = [p.detach().clone() for p in model.parameters()]
    buf = None
    for t in range(1, steps + 1):
        d = direction(model, w, t)
        d = [di + weight_decay * wi for di, wi in zip(d, w)]
        buf = d if buf is None else [momentum * b + di for b, di in zip(buf, d)]
        w = [wi - lr * b for wi, b in zip(w, buf)]
    return w


BASE = dict(lr=0.1, momentum=0.9, weight_decay=1e-3)


def assert_close(a, b, tol=1e-10):
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=tol, atol=tol)


def test_sam_equals_davda54_loop():
    x, y = make_data()
    rho = 0.07

    def direction(model, w, t):
        g, _ = grads_at(model, w, x, y)
        scale = rho / (norm(g) + 1e-12)
        return grads_at(model, [wi + gi * scale for wi, gi in zip(w, g)], x, y)[0]

    ours, _ = run_shell("sam", base_kw=BASE, rho=rho)
    assert_close(ours, run_reference(direction))


def test_sam_compat_class_matches_davda54_usage():
    x, y = make_data()
    model = make_model()
    opt = sam_core.SAM(model.parameters(), torch.optim.SGD, rho=0.07, **BASE)
    for _ in range(4):
        loss_of(model, x, y).backward()
        opt.step(lambda: loss_of(model, x, y).backward())
        opt.zero_grad()
    ours, _ = run_shell("sam", base_kw=BASE, rho=0.07)
    assert_close([p.detach() for p in model.parameters()], ours)
    assert opt.param_groups[0]["rho"] == 0.07 and opt.param_groups[0]["adaptive"] is False


def test_manual_two_step_form_equals_closure_form():
    x, y = make_data()
    model = make_model()
    opt = sam_core.make_optimizer("ssam", model.parameters(), rho=0.1, **BASE)
    for _ in range(4):
        loss_of(model, x, y).backward()
        opt.first_step(zero_grad=True)
        loss_of(model, x, y).backward()
        opt.second_step(zero_grad=True)
    ours, _ = run_shell("ssam", base_kw=BASE, rho=0.1)
    assert_close([p.detach() for p in model.parameters()], ours)


@pytest.mark.parametrize("lam,other", [(1.0, "sam"), (0.0, "usam")])
def test_unified_sam_endpoints(lam, other):
    a, _ = run_shell("unified_sam", base_kw=BASE, rho=0.2, lam=lam)
    b, _ = run_shell(other, base_kw=BASE, rho=0.2)
    assert_close(a, b, 1e-12)


def test_unified_sam_schedule_1_over_t_starts_as_sam():
    a, _ = run_shell("unified_sam", steps=1, base_kw=BASE, rho=0.2, lam="1/t")
    b, _ = run_shell("sam", steps=1, base_kw=BASE, rho=0.2)
    assert_close(a, b, 1e-12)
    c, _ = run_shell("unified_sam", steps=1, base_kw=BASE, rho=0.2, lam="1-1/t")
    d, _ = run_shell("usam", steps=1, base_kw=BASE, rho=0.2)
    assert_close(c, d, 1e-12)


def test_ssam_renormalises_to_clean_gradient_norm():
    x, y = make_data()
    model = make_model()
    w0 = [p.detach().clone() for p in model.parameters()]
    opt = sam_core.make_optimizer("ssam", model.parameters(), rho=0.3, lr=1.0)  # plain SGD, lr 1: w1 = w0 - d

    closure = plain_closure(opt, model, x, y)

    opt.step(closure)
    d = [a - p.detach() for a, p in zip(w0, model.parameters())]
    g, _ = grads_at(model, w0, x, y)
    g_adv, _ = grads_at(model, [wi + 0.3 * gi for wi, gi in zip(w0, g)], x, y)
    torch.testing.assert_close(norm(d), norm(g), rtol=1e-10, atol=0)
    torch.testing.assert_close(opt.stats["gamma"], norm(g) / norm(g_adv), rtol=1e-10, atol=0)
    torch.testing.assert_close(opt.stats["grad_norm"], norm(g), rtol=1e-12, atol=0)
    assert not torch.allclose(norm(g), norm(g_adv))  # the check is not vacuous


def test_bsam_equals_formula():
    x, y = make_data()
    rho, rho_min = 0.1, 0.03

    def direction(model, w, t):
        g, _ = grads_at(model, w, x, y)
        u = [gi / (norm(g) + 1e-12) for gi in g]
        g_max, _ = grads_at(model, [wi + rho * ui for wi, ui in zip(w, u)], x, y)
        g_min, _ = grads_at(model, [wi - rho_min * ui for wi, ui in zip(w, u)], x, y)
        s = norm(g_max) / (norm(g_min) + 1e-12)
        return [a + b - s * c for a, b, c in zip(g_max, g, g_min)]

    ours, _ = run_shell("bsam", base_kw=BASE, rho=rho, rho_min=rho_min, rho_min_schedule="constant")
    assert_close(ours, run_reference(direction))


def test_bsam_rho_min_follows_the_learning_rate():
    model = make_model()
    x, y = make_data()
    opt = sam_core.make_optimizer("bsam", model.parameters(), rho=0.1, rho_min=0.04, lr=0.2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 0.5)  # lr 0.1 = half the initial lr
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    assert sam_core.rules.bsam_rho_min(
        opt._current_hp(), opt.param_groups[0]["lr"], opt.param_groups[0]["initial_lr"]
    ) == pytest.approx(0.02)
    del sched, x, y


@pytest.mark.parametrize("variant", [v for v in sam_core.VARIANTS if v != "sgd"])
def test_rho_zero_reduces_to_base_optimizer(variant):
    hp = {"rho": 0.0}
    if variant == "bsam":
        hp["rho_min"] = 0.0
    if variant == "asam":
        hp["eta"] = 0.01
    ours, _ = run_shell(variant, base_kw=BASE, **hp)
    base, _ = run_shell("sgd", base_kw=BASE)
    plain_model = make_model()
    x, y = make_data()
    plain = torch.optim.SGD(plain_model.parameters(), **BASE)
    for _ in range(4):
        plain.zero_grad()
        loss_of(plain_model, x, y).backward()
        plain.step()
    assert_close(ours, [p.detach() for p in plain_model.parameters()], 1e-12)
    assert_close(base, ours, 1e-12)


@pytest.mark.parametrize("variant", list(sam_core.VARIANTS))
def test_zero_gradient_gives_no_nan(variant):
    model = make_model()
    x, _ = make_data()
    w0 = [p.detach().clone() for p in model.parameters()]
    opt = sam_core.make_optimizer(variant, model.parameters(), lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (model(x) * 0.0).sum()
        loss.backward()
        return loss

    for _ in range(12):  # past infoSAM's warm-up
        opt.step(closure)
    for k, v in opt.stats.items():
        assert torch.isfinite(v).all(), (variant, k)
    assert_close([p.detach() for p in model.parameters()], w0, 0)


@pytest.mark.parametrize("variant", list(sam_core.VARIANTS))
def test_stats_are_tensors_and_complete(variant):
    _, opt = run_shell(variant, steps=2, base_kw={"lr": 0.05})
    for k in sam_core.optim.STAT_KEYS:
        assert isinstance(opt.stats[k], torch.Tensor) and opt.stats[k].dim() == 0, k


def test_asam_official_scales_only_weights():
    """Official ASAM: T = |w| + η on '*weight*' tensors, T = 1 on the rest (biases still move)."""
    model = make_model()
    x, y = make_data()
    rho, eta = 0.5, 0.01
    opt = sam_core.make_optimizer("asam", model.named_parameters(), rho=rho, eta=eta, lr=0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    g, _ = grads_at(model, list(before.values()), x, y)
    T = [w.abs() + eta if "weight" in n else torch.ones_like(w) for n, w in before.items()]
    tg_norm = norm([t * gi for t, gi in zip(T, g)])
    loss_of(model, x, y).backward()
    opt.first_step(zero_grad=True)
    for (n, p), t, gi in zip(model.named_parameters(), T, g):
        torch.testing.assert_close(p.detach() - before[n], rho * t * t * gi / (tg_norm + 1e-12))
    loss_of(model, x, y).backward()
    opt.second_step(zero_grad=True)


def test_asam_davda54_flavour_matches_formula():
    x, y = make_data()
    rho = 0.5

    def direction(model, w, t):
        g, _ = grads_at(model, w, x, y)
        tg = [wi.abs() * gi for wi, gi in zip(w, g)]
        e = [wi.abs() * t_ * rho / (norm(tg) + 1e-12) for wi, t_ in zip(w, tg)]
        return grads_at(model, [wi + ei for wi, ei in zip(w, e)], x, y)[0]

    ours, _ = run_shell("sam", base_kw=dict(BASE, adaptive=True), rho=rho)
    assert_close(ours, run_reference(direction))


def test_state_dict_round_trip_continues_identically():
    x, y = make_data()

    def train(model, opt, steps):
        for _ in range(steps):
            closure = plain_closure(opt, model, x, y)
            opt.step(closure)

    m1 = make_model()
    o1 = sam_core.make_optimizer("infosam", m1.parameters(), rho=0.1, lr=0.1, momentum=0.9)
    train(m1, o1, 5)
    m2 = copy.deepcopy(m1)
    o2 = sam_core.make_optimizer("infosam", m2.parameters(), rho=0.1, lr=0.1, momentum=0.9)
    o2.load_state_dict(copy.deepcopy(o1.state_dict()))
    assert o2.param_groups is o2.base_optimizer.param_groups
    train(m1, o1, 8)
    train(m2, o2, 8)
    assert_close([p.detach() for p in m1.parameters()], [p.detach() for p in m2.parameters()], 0)


def test_lr_scheduler_on_the_wrapper_reaches_the_base_optimizer():
    model = make_model()
    opt = sam_core.make_optimizer("sam", model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    x, y = make_data()
    loss_of(model, x, y).backward()
    opt.first_step(zero_grad=True)
    loss_of(model, x, y).backward()
    opt.second_step(zero_grad=True)
    sched.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == 0.5


def test_frozen_bn_keeps_running_stats_out_of_extra_passes():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
    ref = copy.deepcopy(model)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    opt = sam_core.make_optimizer("bsam", model.parameters(), lr=0.0)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    opt.step(closure, bn_model=model)
    ref(x)  # one forward: what the running stats should have seen
    bn, bn_ref = model[1], ref[1]
    torch.testing.assert_close(bn.running_mean, bn_ref.running_mean)
    torch.testing.assert_close(bn.running_var, bn_ref.running_var)
    assert int(bn.num_batches_tracked) == 1 and bn.momentum == bn_ref.momentum


def test_adam_base_optimizer():
    x, y = make_data()
    rho = 0.05

    def direction(model, w, t):
        g, _ = grads_at(model, w, x, y)
        return grads_at(model, [wi + rho * gi / (norm(g) + 1e-12) for wi, gi in zip(w, g)], x, y)[0]

    ours, _ = run_shell("sam", base=torch.optim.Adam, base_kw={"lr": 0.01}, rho=rho)
    model = make_model()
    ref = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(4):
        d = direction(model, [p.detach().clone() for p in model.parameters()], 0)
        for p, di in zip(model.parameters(), d):
            p.grad = di
        ref.step()
    assert_close(ours, [p.detach() for p in model.parameters()])


@pytest.mark.parametrize(
    "kw,field",
    [
        (dict(variant="sam", rho=-0.1), "rho"),
        (dict(variant="sam", lr=-1.0), "lr"),
        (dict(variant="unified_sam", lam=1.5), "lam"),
        (dict(variant="unified_sam", lam="sqrt"), "lam"),
        (dict(variant="nope"), "variant"),
        (dict(variant="sgd", rho=0.1), "rho"),
    ],
)
def test_bad_hyperparameters_raise_clear_errors(kw, field):
    model = make_model()
    variant = kw.pop("variant")
    with pytest.raises(ValueError) as exc:
        sam_core.make_optimizer(variant, model.parameters(), **{"lr": 0.1, **kw})
    msg = str(exc.value)
    assert field in msg or (field == "variant" and "unknown variant" in msg)
    if field in ("rho", "lam") and variant != "sgd":
        assert "[" in msg and "]" in msg  # names the allowed range


def test_fp16_grad_scaler_skips_overflowing_step_and_matches_otherwise():
    x, y = make_data()
    model = make_model().float()
    xs = x.float()
    w0 = [p.detach().clone() for p in model.parameters()]
    opt = sam_core.make_optimizer("sam", model.parameters(), rho=0.05, lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)

    def closure(big=False):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16):
            loss = loss_of(model, xs, y)
        (scaler.scale(loss) * (1e38 if big else 1.0)).backward()
        return loss

    opt.step(lambda: closure(big=True), scaler=scaler)  # overflow in every pass -> skip
    scaler.update()
    assert_close([p.detach() for p in model.parameters()], w0, 0)
    assert scaler.get_scale() < 2.0**16
    opt.step(closure, scaler=scaler)
    scaler.update()
    moved = [p.detach() for p in model.parameters()]
    # same step without amp and scaler, in float32
    ref = make_model().float()
    ropt = sam_core.make_optimizer("sam", ref.parameters(), rho=0.05, lr=0.1)

    def rclosure():
        ropt.zero_grad()
        loss = loss_of(ref, xs, y)
        loss.backward()
        return loss

    ropt.step(rclosure)
    for a, b in zip(moved, ref.parameters()):
        torch.testing.assert_close(a, b.detach(), rtol=2e-2, atol=2e-3)
    assert not all(torch.equal(a, b) for a, b in zip(moved, w0))


@pytest.mark.parametrize("variant,bad_pass", [("ssam", 1), ("sam", 2), ("bsam", 1), ("bsam", 2), ("bsam", 3)])
def test_fp16_overflow_in_any_single_pass_skips_the_whole_step(variant, bad_pass):
    """An inf in one pass only (the clean one, BSAM's g_max pass, or the last) skips the step and backs off."""
    x, y = make_data()
    model = make_model().float()
    w0 = [p.detach().clone() for p in model.parameters()]
    opt = sam_core.make_optimizer(variant, model.parameters(), rho=0.05, lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    calls = [0]

    def closure():
        calls[0] += 1
        opt.zero_grad()
        loss = loss_of(model, x.float(), y)
        (scaler.scale(loss) * (float("inf") if calls[0] == bad_pass else 1.0)).backward()
        return loss

    opt.step(closure, scaler=scaler)
    scaler.update()
    assert calls[0] == sam_core.VARIANTS[variant].passes
    assert_close([p.detach() for p in model.parameters()], w0, 0)
    assert scaler.get_scale() < 1024.0


@pytest.mark.parametrize("big", [False, True])
def test_fp16_scaler_with_one_pass_sgd(big):
    x, y = make_data()
    model, ref = make_model().float(), make_model().float()
    opt = sam_core.make_optimizer("sgd", model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)

    def closure():
        opt.zero_grad()
        loss = loss_of(model, x.float(), y)
        (scaler.scale(loss) * (float("inf") if big else 1.0)).backward()
        return loss

    opt.step(closure, scaler=scaler)
    scaler.update()
    plain = torch.optim.SGD(ref.parameters(), lr=0.1)
    if not big:
        loss_of(ref, x.float(), y).backward()
        # the logged norm is that of the unscaled gradient
        torch.testing.assert_close(opt.stats["grad_norm"], norm([p.grad for p in ref.parameters()]), rtol=1e-5, atol=0)
        plain.step()
    for a, b in zip(model.parameters(), ref.parameters()):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-5, atol=1e-6)
    assert (scaler.get_scale() < 1024.0) == big


def test_bf16_autocast_runs():
    x, y = make_data()
    model = make_model().float()
    opt = sam_core.make_optimizer("ssam", model.parameters(), rho=0.05, lr=0.1)

    def closure():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = loss_of(model, x.float(), y)
        loss.backward()
        return loss

    l0 = float(closure().detach())
    for _ in range(20):
        opt.step(closure)
    assert all(torch.isfinite(v) for v in opt.stats.values())
    assert float(opt.stats["loss"]) < l0


def test_frozen_bn_survives_a_nan_pass():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6))
    before = (model[1].running_mean.clone(), model[1].running_var.clone())
    with sam_core.frozen_bn(model):
        model(torch.full((8, 4), float("nan")))
    torch.testing.assert_close(model[1].running_mean, before[0])
    torch.testing.assert_close(model[1].running_var, before[1])


def test_bsam_rho_min_under_warmup_never_exceeds_its_value():
    model = make_model()
    opt = sam_core.make_optimizer("bsam", model.parameters(), rho=0.1, rho_min=0.04, lr=0.2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.2, total_steps=20)  # starts at 0.2/25
    x, y = make_data()
    seen = []
    for _ in range(20):
        closure = plain_closure(opt, model, x, y)
        opt.step(closure)
        g0 = opt.param_groups[0]
        seen.append(sam_core.rules.bsam_rho_min(opt._current_hp(), g0["lr"], opt._lr_max))
        sched.step()
    assert max(seen) <= 0.04 + 1e-12
    assert min(seen) < 0.01  # follows the LR down at the end of the cycle


def test_official_asam_without_names_warns():
    model = make_model()
    opt = sam_core.make_optimizer("asam", model.parameters(), lr=0.1)
    x, y = make_data()

    closure = plain_closure(opt, model, x, y)

    with pytest.warns(UserWarning, match="named_parameters"):
        opt.step(closure)
