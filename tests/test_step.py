"""The shared base step (sam_core.step) against plain loops written here, and its use by simulate."""

from __future__ import annotations

import importlib
import math

import pytest
import torch

from sam_core.landscape.functions import make_landscape
from sam_core.landscape.race import run_tracks
from sam_core.simulate import simulate, simulate_resolved
from sam_core.step import base_step, freeze

# the modules themselves (the package exports functions of the same names)
sim_mod = importlib.import_module("sam_core.simulate")
race_mod = importlib.import_module("sam_core.landscape.race")


def _plain(w0: list[float], grad, lr: list[float], beta: float, steps: int):
    """Heavy ball on Python floats, one row at a time: v ← βv + g(w), w ← w − lr·v (v = g when β = 0).
    A row whose iterate stops being finite keeps its last finite value (and stops). Returns (w, v, died)."""
    out_w, out_v, died = [], [], []
    for x, a in zip(w0, lr):
        v, d = 0.0, -1
        for t in range(1, steps + 1):
            g = grad(x)
            v_new = beta * v + g if beta else g
            x_new = x - a * v_new
            if not math.isfinite(x_new):
                d, v = t, 0.0
                break
            x, v = x_new, v_new
        out_w.append(x)
        out_v.append(v)
        died.append(d)
    return out_w, out_v, died


def _grad(x: float) -> float:  # f(x) = x⁴/4 + x²: blows up for a large lr
    return x * x * x + 2.0 * x


W0 = [1.5, -0.7, 0.2, 2.0]
LR = [0.01, 0.1, 0.3, 0.9]  # the last row diverges


def _batched(beta: float, steps: int, compiled: bool = False):
    """The same runs through base_step + freeze, as a (4,) batch in float64."""

    def one(w, buf, alive, lr):
        d = [w[0] ** 3 + 2.0 * w[0]]
        new, new_buf = base_step(w, d, lr, buf, beta)
        keep = alive & torch.isfinite(new[0])
        w, buf = freeze(keep, new, w, new_buf)
        return w, buf, keep

    fn = torch.compile(one, backend="eager", fullgraph=True) if compiled else one
    w = [torch.tensor(W0, dtype=torch.float64)]
    buf = [torch.zeros(4, dtype=torch.float64)] if beta else None
    alive = torch.ones(4, dtype=torch.bool)
    lr = torch.tensor(LR, dtype=torch.float64)
    died = torch.full((4,), -1)
    for t in range(1, steps + 1):
        w, buf, keep = fn(w, buf, alive, lr)
        died = torch.where(alive & ~keep, t, died)
        alive = keep
    return w[0], (buf[0] if buf is not None else None), died


@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_base_step_matches_a_plain_loop_and_a_diverged_row_stays_frozen(beta):
    steps = 40
    w, buf, died = _batched(beta, steps)
    ref_w, ref_v, ref_died = _plain(W0, _grad, LR, beta, steps)
    assert died.tolist() == ref_died and ref_died[-1] > 0 and all(d < 0 for d in ref_died[:-1])
    assert w.tolist() == ref_w  # bit for bit: the same multiply-then-subtract order as the plain loop
    assert math.isfinite(w[-1].item())  # the diverged row holds its last finite point
    if beta:
        assert buf.tolist()[:-1] == ref_v[:-1] and buf[-1].item() == 0.0  # its buffer restarts at zero
    else:
        assert buf is None
    # more steps move the live rows but not the frozen one
    w2, _, _ = _batched(beta, steps + 5)
    assert w2[-1].item() == w[-1].item() and w2[0].item() != w[0].item()


@pytest.mark.parametrize("beta", [0.0, 0.9])
def test_base_step_traces_whole_under_torch_compile(beta):
    """No .item() or Python branch on a tensor: dynamo captures one graph (fullgraph) with the same result."""
    eager = _batched(beta, 12)
    comp = _batched(beta, 12, compiled=True)
    assert torch.equal(eager[0], comp[0]) and torch.equal(eager[2], comp[2])


def test_freeze_broadcasts_over_a_points_coordinates():
    old = [torch.zeros(3, 2)]
    new = [torch.ones(3, 2)]
    buf = [torch.full((3, 2), 5.0)]
    (w,), (b,) = freeze(torch.tensor([True, False, True]), new, old, buf)
    assert w.tolist() == [[1, 1], [0, 0], [1, 1]] and b.tolist() == [[5, 5], [0, 0], [5, 5]]


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_simulate_sgd_is_the_plain_heavy_ball_loop(momentum):
    """simulate's eager loop (recorded and not) on f(x, y) = (x⁴/4 + x²) + (y⁴/4 + y²), per coordinate the
    plain loop above; the row with the large lr diverges and is reported at the plain loop's step."""

    def grad_fn(w):
        return (w**4 / 4 + w**2).sum(-1), w**3 + 2.0 * w

    w0 = torch.tensor([[x, x] for x in W0], dtype=torch.float64)
    lr = torch.tensor(LR, dtype=torch.float64)
    ref_w, _, ref_died = _plain(W0, _grad, LR, momentum, 30)
    for record in (True, False):
        res = simulate("sgd", grad_fn, w0, 30, lr, momentum=momentum, record=record)
        assert res.final[:, 0].tolist() == ref_w and res.final[:, 1].tolist() == ref_w
        assert res.diverged_step.tolist() == ref_died


def test_simulate_resolved_is_simulate_and_the_race_resolves_once(monkeypatch):
    L = make_landscape("quartic")
    w0 = torch.tensor([[1.0, -0.5], [0.3, 0.8]], dtype=torch.float64)
    a = simulate("ssam", L.grad_fn, w0, 25, 0.1, hp={"rho": 0.2}, momentum=0.3, noise=0.05, seed=4)
    hpv = sim_mod.resolve_hparams("ssam", rho=0.2)
    b = simulate_resolved("ssam", L.grad_fn, w0, 25, 0.1, hpv, momentum=0.3, noise=0.05, seed=4)
    assert torch.equal(a.w, b.w) and torch.equal(a.gamma, b.gamma) and torch.equal(a.ascent, b.ascent)
    with pytest.raises(TypeError, match="hp"):
        simulate_resolved("ssam", L.grad_fn, w0, 25, 0.1, hpv, hp={"rho": 0.2})
    with pytest.raises(ValueError, match="momentum"):  # the other arguments are still checked
        simulate_resolved("ssam", L.grad_fn, w0, 25, 0.1, hpv, momentum=1.5)
    with pytest.raises(ValueError, match="lr"):
        simulate_resolved("ssam", L.grad_fn, w0, 25, float("nan"), hpv)

    calls = []

    def counting(real):
        def f(*a, **k):
            calls.append(a[0])
            return real(*a, **k)

        return f

    monkeypatch.setattr(race_mod, "resolve_hparams", counting(race_mod.resolve_hparams))
    monkeypatch.setattr(sim_mod, "resolve_hparams", counting(sim_mod.resolve_hparams))
    tracks = run_tracks(L, "sam", {"rho": 0.1}, (1.0, -0.5), [0.05, 0.1], 20)
    assert calls == ["sam"] and len(tracks) == 2
    one = torch.tensor([[1.0, -0.5]], dtype=torch.float64)
    ref = simulate("sam", L.grad_fn, one, 20, 0.1, hp={"rho": 0.1})
    assert tracks[1].w.tolist() == ref.w[:, 0].tolist()
