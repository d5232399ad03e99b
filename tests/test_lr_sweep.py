"""Sweeps: the GD stability bound shows up where theory puts it, batches equal plain loops, success rules."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from sam_core.landscape.functions import make_landscape
from sam_core.landscape.lr_sweep import (
    BASIN_SETUP,
    COLUMNS,
    Execution,
    Success,
    SweepSetup,
    basin_map,
    iter_sweep_lr,
    parse_range,
    run_batch,
    start_points,
    sweep_grid,
    sweep_lr,
)
from sam_core.landscape.race import race, tracks_frame
from sam_core.registry import resolve_hparams
from sam_core.simulate import simulate


# ----------------------------------------------------------------------------- the acceptance criteria
def test_gd_success_switches_off_above_2_over_lambda_on_a_quadratic():
    Q = make_landscape("quadratic", lam=4.0, kappa=4.0)  # f = ½·4x² + ½·1y²
    bound = 2 / 4.0
    assert Q.gd_bound == pytest.approx(bound)
    factors = np.array([0.8, 0.9, 0.99, 1.01, 1.1, 1.5])
    df = sweep_lr(
        Q,
        ["sgd"],
        bound * factors,
        setup=SweepSetup(starts=100, steps=2000, success=Success(tol=0.01), start_mode="domain"),
    )
    below, above = df[df.lr < bound], df[df.lr > bound]
    assert (below.success_rate == 1.0).all()
    assert (above.success_rate == 0.0).all()
    assert df.set_index("lr").loc[bound * 1.5, "diverged_rate"] == 1.0


def test_sgd_success_falls_at_the_quartic_gd_bound_0586():
    L = make_landscape("quartic")
    bound = L.gd_bound
    assert bound == pytest.approx(0.5858, abs=1e-4)
    lrs = bound * np.array([0.8, 0.9, 0.99, 1.01, 1.05, 1.2])
    df = sweep_lr(L, ["sgd"], lrs, setup=SweepSetup(starts=200, steps=1000, success=Success(tol=0.05)))
    rate = df.success_rate.to_numpy()
    assert np.all(rate[:3] == 1.0)  # below the bound every start near the saddle converges
    assert np.all(rate[3:] <= 0.1)  # just above it GD settles on a period-2 orbit, not the minimum
    # the largest lr that still succeeds is right below 2/λ_max
    assert df.lr[rate > 0.5].max() == pytest.approx(bound * 0.99)


# ----------------------------------------------------------------------------- batch == plain loops
def _numpy_reference(variant, w0, lrs, rho, steps):
    """Independent plain numpy loop over the quartic (one start at a time)."""

    def grad(w):
        x, y = w
        return np.array([x**3 - y, y - x])

    out = []
    for w, lr in zip(w0, lrs):
        w = np.array(w, dtype=np.float64)
        for _ in range(steps):
            g = grad(w)
            if variant == "sgd":
                d = g
            elif variant == "sam":
                d = grad(w + rho * g / (np.linalg.norm(g) + 1e-12))
            elif variant == "ssam":  # USAM ascent, descent renormalised to ‖g‖
                ga = grad(w + rho * g)
                d = ga * np.linalg.norm(g) / (np.linalg.norm(ga) + 1e-12)
            w = w - lr * d
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize("variant", ["sgd", "sam", "ssam"])
def test_one_batch_with_per_trajectory_lr_equals_plain_loops(variant):
    L = make_landscape("quartic")
    w0 = start_points(L, 6, "saddle", spread=0.3, seed=3)
    lrs = np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5])
    end, div = run_batch(
        L,
        variant,
        w0,
        torch.as_tensor(lrs),
        {} if variant == "sgd" else {"rho": 0.1},
        SweepSetup(steps=40, dtype=torch.float64),
    )
    ref = _numpy_reference(variant, w0.numpy(), lrs, 0.1, 40)  # short: normalised SAM near a minimum amplifies rounding
    assert not div.any()
    assert np.allclose(end, ref, rtol=1e-9, atol=1e-9)


def test_average_of_last_k_iterates():
    L = make_landscape("quartic")
    w0 = start_points(L, 5, "saddle", seed=1)
    res = simulate("sam", L.grad_fn, w0.double(), 60, 0.3, hp={"rho": 0.2}, record=True)
    end, _ = run_batch(
        L, "sam", w0, 0.3, {"rho": 0.2}, SweepSetup(steps=60, success=Success(last_k=7), dtype=torch.float64)
    )
    assert np.allclose(end, res.w[-7:].mean(0).numpy(), atol=1e-12)


def test_chunked_batch_equals_one_batch():
    L = make_landscape("himmelblau")
    w0 = start_points(L, 50, "domain", seed=2)
    setup = SweepSetup(steps=100, dtype=torch.float64)
    a, da = run_batch(L, "usam", w0, 0.01, {"rho": 0.05}, setup)
    b, db = run_batch(L, "usam", w0, 0.01, {"rho": 0.05}, setup, Execution(max_batch=7))
    assert np.array_equal(da, db) and np.allclose(a, b, atol=1e-12)


@pytest.mark.parametrize("variant", ["sgd", "sam", "ssam", "bsam"])
def test_column_major_batches_give_the_same_ends(variant):
    L = make_landscape("himmelblau")
    w0 = start_points(L, 40, "domain", seed=5)
    hp = {} if variant == "sgd" else {"rho": 0.05}
    setup = SweepSetup(steps=80, dtype=torch.float64)
    a, da = run_batch(L, variant, w0, 0.01, hp, setup, Execution(layout="row"))
    b, db = run_batch(L, variant, w0, 0.01, hp, setup, Execution(layout="col"))
    assert np.array_equal(da, db) and np.allclose(a, b, rtol=1e-12, atol=1e-12)


def test_sam_with_rho_zero_in_the_grid_equals_the_sgd_sweep():
    L = make_landscape("quartic")
    lrs = [0.1, 0.4, 0.7]
    grid = sweep_grid(L, "sam", lrs, "rho", [0.0, 0.2], setup=SweepSetup(starts=50, steps=300))
    sgd = sweep_lr(L, ["sgd"], lrs, setup=SweepSetup(starts=50, steps=300))
    g0 = grid[grid.rho == 0.0].reset_index(drop=True)
    cols = ["success_rate", "diverged_rate", "median_distance"]
    assert np.allclose(g0[cols].to_numpy(), sgd[cols].to_numpy())
    assert len(grid) == 6 and list(grid.columns) == ["variant", "lr", "rho", *cols]


def test_lam_grid_for_unified_sam_ends_match_sam_and_usam():
    L = make_landscape("quartic")
    w0 = start_points(L, 20, "saddle", seed=4)
    lam = torch.tensor([0.0] * 20 + [1.0] * 20, dtype=torch.float64)
    setup = SweepSetup(steps=100, dtype=torch.float64)
    end, _ = run_batch(L, "unified_sam", w0.repeat(2, 1), 0.2, {"rho": 0.1, "lam": lam}, setup)
    usam, _ = run_batch(L, "usam", w0, 0.2, {"rho": 0.1}, setup)
    sam, _ = run_batch(L, "sam", w0, 0.2, {"rho": 0.1}, setup)
    assert np.allclose(end[:20], usam, atol=1e-10) and np.allclose(end[20:], sam, atol=1e-10)
    df = sweep_grid(L, "unified_sam", [0.1, 0.3], "lam", [0.0, 0.5, 1.0], setup=SweepSetup(starts=20, steps=100))
    assert list(df["lam"]) == [0.0, 0.5, 1.0] * 2


# ----------------------------------------------------------------------------- tables and success
def test_sweep_table_columns_rates_and_rho():
    L = make_landscape("quartic")
    df = sweep_lr(
        L, ["sgd", "sam", "ssam"], [0.1, 0.5], hp={"sam": {"rho": 0.3}}, setup=SweepSetup(starts=30, steps=200)
    )
    assert list(df.columns) == COLUMNS and len(df) == 6
    assert df[df.variant == "sgd"].rho.isna().all()
    assert (df[df.variant == "sam"].rho == 0.3).all()
    assert ((df.success_rate >= 0) & (df.success_rate <= 1) & (df.diverged_rate <= 1)).all()


def test_median_distance_counts_diverged_as_infinite():
    Q = make_landscape("quadratic", lam=4.0, kappa=1.0)
    df = sweep_lr(Q, ["sgd"], [0.3, 1.0], setup=SweepSetup(starts=20, steps=500, start_mode="domain"))
    assert df.diverged_rate.tolist() == [0.0, 1.0]
    assert df.median_distance.iloc[0] < 1e-6 and math.isinf(df.median_distance.iloc[1])


def test_averaging_rescues_normalised_sam_bouncing():
    """Normalised SAM with a big ρ orbits the minimum; averaging the last iterates brings it back."""
    L = make_landscape("quadratic", lam=1.0, kappa=1.0)
    kw = dict(starts=50, steps=400, start_mode="domain")
    final = sweep_lr(L, ["sam"], [0.5], {"sam": {"rho": 0.5}}, SweepSetup(success=Success(tol=0.05), **kw))
    avg = sweep_lr(L, ["sam"], [0.5], {"sam": {"rho": 0.5}}, SweepSetup(success=Success(tol=0.05, last_k=50), **kw))
    assert final.success_rate.iloc[0] == 0.0
    assert avg.success_rate.iloc[0] == 1.0
    assert avg.median_distance.iloc[0] < final.median_distance.iloc[0]


def test_equal_evaluations_gives_sam_half_the_steps():
    L = make_landscape("quadratic", lam=1.0, kappa=1.0)
    w0 = start_points(L, 1, "point", spread=0.0)
    a = sweep_lr(
        L,
        ["usam"],
        [0.1],
        hp={"usam": {"rho": 0.01}},
        setup=SweepSetup(
            starts=1, steps=40, start_mode="point", spread=0.0, equal_evals=True, success=Success(tol=1e-9)
        ),
    )
    end, _ = run_batch(L, "usam", w0, 0.1, {"rho": 0.01}, SweepSetup(steps=20, dtype=torch.float32))
    assert a.median_distance.iloc[0] == pytest.approx(float(np.linalg.norm(end)), rel=1e-6)


def test_iter_sweep_reports_progress_per_variant():
    L = make_landscape("quartic")
    parts = list(iter_sweep_lr(L, ["sgd", "sam"], [0.1], setup=SweepSetup(starts=5, steps=20)))
    assert [p for p, _ in parts] == [0.5, 1.0] and len(parts[-1][1]) == 2


@pytest.mark.parametrize(
    "kw, msg",
    [
        (dict(success=Success(tol=0)), "tol"),
        (dict(success=Success(last_k=0)), "last_k"),
        (dict(success=Success(target="nearest")), "target"),
        (dict(starts=0), "starts"),
        (dict(steps=-1), "steps"),
        (dict(start_mode="corner"), "start mode"),
    ],
)
def test_bad_settings_name_the_field(kw, msg):
    with pytest.raises(ValueError, match=msg):
        sweep_lr(make_landscape("quartic"), ["sgd"], [0.1], setup=SweepSetup(**kw))


def test_bad_lrs_and_hparams_and_missing_minimum():
    L = make_landscape("quartic")
    with pytest.raises(ValueError, match="lrs"):
        sweep_lr(L, ["sgd"], [0.1, -1.0])
    with pytest.raises(ValueError, match="rho"):
        sweep_lr(L, ["sam"], [0.1], hp={"sam": {"rho": -1.0}})
    with pytest.raises(ValueError, match="rho"):
        sweep_grid(L, "sam", [0.1], "rho", [0.1, -2.0])
    with pytest.raises(ValueError, match="cannot sweep 'stable'"):
        sweep_grid(L, "sam", [0.1], "stable", [0, 1])
    with pytest.raises(ValueError, match="no minimum"):
        sweep_lr(make_landscape("saddle"), ["sgd"], [0.1])


def test_parse_range():
    assert np.allclose(parse_range("0.01:1.0:3"), [0.01, 0.1, 1.0])
    assert np.allclose(parse_range("0:1:3", log=False), [0, 0.5, 1])
    assert np.allclose(parse_range("0.1, 0.2"), [0.1, 0.2])
    for bad in ("0:1:3", "1:0.1:3", "a:b:c", "0.1:1"):
        with pytest.raises(ValueError, match="low:high:count"):
            parse_range(bad)


# ----------------------------------------------------------------------------- basins and race
def test_basin_map_respects_the_quartic_symmetry():
    L = make_landscape("quartic")  # f(-w) = f(w): the basin of (1, 1) mirrors that of (-1, -1)
    m = basin_map(L, "sgd", 0.1, setup=BASIN_SETUP.replace(steps=400), n=21)
    i_pos = int(np.argmin(np.linalg.norm(L.minima - [1, 1], axis=1)))
    lab = m.label
    assert lab[-1, -1] == i_pos and lab[0, 0] == 1 - i_pos
    mirrored = np.where(lab[::-1, ::-1] >= 0, 1 - lab[::-1, ::-1], lab[::-1, ::-1])
    assert (mirrored == lab).mean() > 0.97  # only the saddle's stable manifold may differ (float rounding)
    assert sum(m.fractions().values()) == pytest.approx(1.0)


def test_race_tracks_and_divergence_label():
    S = make_landscape("saddle")
    tracks = race(S, ["sgd", "sam"], lr=0.3, steps=1500, start=(1.0, 1e-3))
    sgd = tracks[0]
    assert sgd.diverged_step is not None and "diverged at step" in sgd.label
    assert np.isfinite(sgd.w).all() and len(sgd.w) == sgd.diverged_step
    df = tracks_frame(tracks)
    assert set(df.variant) == {"sgd", "sam"} and isinstance(df, pd.DataFrame)
    L = make_landscape("quartic")
    t = race(L, ["sgd", "bsam"], lr=0.1, steps=30, equal_evals=True)
    assert t[0].steps == 30 and t[1].steps == 10 and t[1].evals[-1] == 30


def test_rhos_give_one_block_per_rho_and_sgd_once():
    L = make_landscape("quartic")
    df = sweep_lr(L, ["sgd", "sam"], [0.1, 0.3], setup=SweepSetup(starts=20, steps=100), rhos=[0.05, 0.2])
    assert len(df) == 2 + 2 * 2
    assert df[df.variant == "sgd"].rho.isna().all()
    assert sorted(df[df.variant == "sam"].rho.unique()) == [0.05, 0.2]
    one = sweep_lr(L, ["sam"], [0.1, 0.3], hp={"sam": {"rho": 0.2}}, setup=SweepSetup(starts=20, steps=100))
    both = df[(df.variant == "sam") & (df.rho == 0.2)].reset_index(drop=True)
    assert np.allclose(both.success_rate, one.success_rate) and np.allclose(both.median_distance, one.median_distance)


def test_stability_sweep_cli_writes_the_issue_columns(tmp_path, capsys):
    from demos import stability_sweep

    out = tmp_path / "out.csv"
    html = tmp_path / "fig.html"
    rc = stability_sweep.main(
        [
            "--function",
            "quartic",
            "--variants",
            "sgd,sam,ssam",
            "--rho",
            "0.1",
            "--lrs",
            "0.01:1.0:4",
            "--starts",
            "20",
            "--steps",
            "50",
            "--tol",
            "0.2",
            "--seed",
            "0",
            "--csv",
            str(out),
            "--html",
            str(html),
        ]
    )
    assert rc == 0
    df = pd.read_csv(out)
    assert list(df.columns) == ["variant", "lr", "rho", "success_rate", "diverged_rate", "median_distance"]
    assert len(df) == 3 * 4 and list(df.variant.unique()) == ["sgd", "sam", "ssam"]
    text = html.read_text(encoding="utf-8")
    assert "<html>" in text and "GD bound 2" in text and "_max = 0.586" in text  # the bound is marked
    with pytest.raises(SystemExit):
        stability_sweep.main(["--variants", "sgd,nope"])
    assert "unknown variant 'nope'" in capsys.readouterr().err


def test_landscape_cli_draws_a_race(tmp_path, capsys):
    from demos import landscape

    html, csv = tmp_path / "race.html", tmp_path / "race.csv"
    assert (
        landscape.main(
            [
                "--function",
                "rosenbrock",
                "--variants",
                "sam,ssam",
                "--lr",
                "0.001",
                "--steps",
                "50",
                "--html",
                str(html),
                "--csv",
                str(csv),
            ]
        )
        == 0
    )
    assert "Stable SAM (SSAM)" in capsys.readouterr().out
    assert html.stat().st_size > 1000 and set(pd.read_csv(csv).variant) == {"sam", "ssam"}


class _StopAfter:
    """A stop event that becomes set after ``n`` polls (a Stop pressed in the middle of a variant)."""

    def __init__(self, n):
        self.n, self.polls = n, 0

    def is_set(self):
        self.polls += 1
        return self.polls > self.n


def test_a_stop_inside_a_variant_keeps_the_finished_variants_only():
    from sam_core.landscape.lr_sweep import iter_basin_maps, iter_sweep_lr

    L = make_landscape("quartic")
    ev = _StopAfter(10**9)
    gen = iter_sweep_lr(L, ["sgd", "sam"], [0.1, 0.3], setup=SweepSetup(starts=20, steps=400), stop_event=ev)
    _, first = next(gen)
    assert set(first.variant) == {"sgd"}
    polls_for_a_variant = ev.polls  # one poll per step, plus the check after the batch
    assert polls_for_a_variant >= 400
    ev.n = ev.polls + 50  # Stop arrives 50 steps into SAM
    assert list(gen) == []  # the half-done SAM batch is not reported as a result
    assert ev.polls < polls_for_a_variant + 60  # it ended within a step of the Stop, not after 400 steps
    ev = _StopAfter(30)
    assert list(iter_basin_maps(L, ["sgd"], 0.1, setup=BASIN_SETUP.replace(steps=300), n=5, stop_event=ev)) == []
    assert ev.polls < 40


# ----------------------------------------------------------------------------- the setup object
@pytest.mark.parametrize(
    "kw, field, allowed",
    [
        (dict(starts=0), "starts", "[1, 10000000]"),
        (dict(starts=2.0), "starts", "integer"),
        (dict(steps=10**7), "steps", "[1, 1000000]"),
        (dict(steps=True), "steps", "integer"),
        (dict(spread=-0.1), "spread", "≥ 0"),
        (dict(spread=float("nan")), "spread", "≥ 0"),
        (dict(center=(1.0,)), "center", "two finite numbers"),
        (dict(center=(float("inf"), 0.0)), "center", "two finite numbers"),
        (dict(center="ab"), "center", "two finite numbers"),
        (dict(momentum=1.0), "momentum", "[0, 1)"),
        (dict(momentum=-0.1), "momentum", "[0, 1)"),
        (dict(noise=-1.0), "noise", "≥ 0"),
        (dict(noise=float("inf")), "noise", "≥ 0"),
        (dict(seed=1.5), "seed", "integer"),
        (dict(seed=2**64), "seed", "integer"),
        (dict(equal_evals="yes"), "equal_evals", "True or False"),
        (dict(dtype=torch.int64), "dtype", "floating"),
        (dict(success="tol=0.1"), "success", "Success"),
        (dict(steps=5, success=Success(last_k=6)), "last_k", "[1, steps=5]"),
        (dict(start_mode="corner"), "start mode", "'saddle', 'point' or 'domain'"),
    ],
)
def test_a_bad_setup_is_refused_at_once_naming_the_field_and_its_range(kw, field, allowed):
    with pytest.raises(ValueError) as info:
        SweepSetup(**kw)
    msg = str(info.value)
    assert msg.startswith(f"{field}:") and allowed in msg, msg


def test_a_setup_is_normalised_frozen_picklable_and_replace_checks_again():
    import dataclasses
    import pickle

    s = SweepSetup(starts=np.int64(7), center=[0.5, np.float32(-1.0)], equal_evals=np.bool_(True), spread=0)
    assert type(s.starts) is int and s.center == (0.5, -1.0) and s.equal_evals is True and s.spread == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.steps = 3
    t = pickle.loads(pickle.dumps(s))  # a sweep job pickles its arguments to a worker process
    assert t == s and hash(t) == hash(s) and t.dtype is torch.float32
    assert s.replace(starts=3).starts == 3 and s.starts == 7
    with pytest.raises(ValueError, match="^starts:"):
        s.replace(starts=-3)
    ex = pickle.loads(pickle.dumps(Execution(max_batch=7.0, layout="row")))
    assert ex == Execution(max_batch=7, layout="row")
    with pytest.raises(ValueError, match="^layout:"):
        Execution(layout="diagonal")


def test_start_points_are_the_setups_starts():
    L = make_landscape("quartic")
    s = SweepSetup(starts=9, start_mode="point", spread=0.3, seed=5, center=(0.2, -0.4))
    w = start_points(L, 9, "point", spread=0.3, seed=5, center=(0.2, -0.4))
    gen = torch.Generator().manual_seed(5)  # the documented draw: N(center, spread²)
    want = torch.tensor([0.2, -0.4], dtype=torch.float64) + 0.3 * torch.randn(9, 2, generator=gen, dtype=torch.float64)
    assert torch.equal(w, want)
    one = sweep_lr(L, ["sgd"], [0.1], setup=s.replace(steps=30))
    end, div = run_batch(L, "sgd", w, 0.1, {}, SweepSetup(steps=30))
    _, dist = L.nearest(end, L.global_minima)
    assert one.median_distance.iloc[0] == pytest.approx(float(np.median(np.where(div, np.inf, dist))))
    with pytest.raises(ValueError, match="^spread:"):
        start_points(L, 3, "saddle", spread=-1.0)


@pytest.mark.parametrize("variant, passes", [("usam", 2), ("bsam", 3)])
def test_equal_evals_in_the_setup_runs_steps_over_passes(variant, passes):
    # the rule of sam_core.landscape.race.race_steps, now the only copy: steps // passes
    L = make_landscape("himmelblau")
    w0 = start_points(L, 12, "domain", seed=3)
    hp = {"rho": 0.05}
    eq, _ = run_batch(L, variant, w0, 0.01, hp, SweepSetup(steps=40, equal_evals=True, dtype=torch.float64))
    ref = simulate(variant, L.grad_fn, w0.double(), 40 // passes, 0.01, hp=hp, record=False)
    assert np.allclose(eq, ref.final.numpy(), rtol=1e-12, atol=1e-12)
    sgd_eq, _ = run_batch(L, "sgd", w0, 0.01, {}, SweepSetup(steps=40, equal_evals=True, dtype=torch.float64))
    sgd = simulate("sgd", L.grad_fn, w0.double(), 40, 0.01, record=False)
    assert np.allclose(sgd_eq, sgd.final.numpy(), rtol=1e-12, atol=1e-12)  # one pass: all the steps


def test_sweep_grid_checks_its_hyperparameters_once(monkeypatch):
    import sam_core.landscape.lr_sweep as sw

    calls = []
    real = sw.resolve_hparams

    def counting(variant, **values):
        calls.append(sorted(values))
        return real(variant, **values)

    monkeypatch.setattr(sw, "resolve_hparams", counting)
    L = make_landscape("quartic")
    df = sw.sweep_grid(L, "sam", [0.1, 0.3], "rho", [0.05, 0.2], {"stable": True}, SweepSetup(starts=4, steps=10))
    assert len(df) == 4 and calls == [["rho", "stable"]]  # one check of every value, not two
    calls.clear()
    with pytest.raises(ValueError, match="rho"):
        sw.sweep_grid(L, "sam", [0.1], "rho", [0.1, -2.0], setup=SweepSetup(starts=4, steps=10))
    assert len(calls) == 1


def test_basin_map_takes_its_settings_from_the_setup():
    L = make_landscape("quartic")
    s = BASIN_SETUP.replace(steps=200, momentum=0.5, success=Success(tol=0.05, target="any"))
    m = basin_map(L, "sgd", 0.05, setup=s, n=6)
    xs = np.linspace(*L.domain[0], 6)
    ys = np.linspace(*L.domain[1], 6)
    X, Y = np.meshgrid(xs, ys)
    w0 = torch.as_tensor(np.stack((X.ravel(), Y.ravel()), -1))
    ref = simulate("sgd", L.grad_fn, w0.float(), 200, 0.05, momentum=0.5, record=False)
    idx, dist = L.nearest(ref.final.double().numpy(), L.minima)
    div = (ref.diverged_step >= 0).numpy()
    want = np.where(div, -2, np.where(dist <= 0.05, idx, -1)).reshape(6, 6)
    assert np.array_equal(m.label, want) and m.tol == 0.05


def test_run_batch_checks_raw_hyperparameters_and_takes_resolved_ones_as_they_are():
    L = make_landscape("quartic")
    w0 = start_points(L, 8, "saddle", spread=0.3, seed=1)
    setup = SweepSetup(steps=30, dtype=torch.float64)
    with pytest.raises(ValueError, match="rho"):
        run_batch(L, "sam", w0, 0.1, {"rho": -1.0}, setup)  # a caller's raw dict: checked, the field named
    raw, _ = run_batch(L, "ssam", w0, 0.1, {"rho": 0.1}, setup)  # defaults completed (normalized, …)
    pre, _ = run_batch(L, "ssam", w0, 0.1, resolve_hparams("ssam", rho=0.1), setup, resolved=True)
    ref = simulate("ssam", L.grad_fn, w0.double(), 30, 0.1, hp={"rho": 0.1}, record=False)
    assert np.array_equal(raw, pre) and np.allclose(raw, ref.final.numpy(), rtol=1e-12, atol=1e-12)
