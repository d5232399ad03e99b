"""Quadratics / ridge / logistic runs: closed forms, the GD stability limit, batching, the lab generator."""

import math

import numpy as np
import pytest
import torch

from sam_core.dynamics import run_to_end
from sam_core.dynamics.problems import Quadratic, Ridge, Sampling
from sam_core.dynamics.quadratics import QuadraticLabConfig, run_finite_sum, run_quadratic_lab, theory_for
from sam_core.plots import dynamics as dplots


def test_gd_on_a_quadratic_matches_the_closed_form():
    p = Quadratic(dim=5, cond=20.0, lam_max=1.0, seed=3)
    lr, T = 0.7, 40
    cs = run_finite_sum(p, "sgd", lr=lr, steps=T, n_records=T)
    M = torch.eye(5, dtype=torch.float64) - lr * p.A
    w = p.w0.clone()
    expected = [1.0]
    f0 = float(0.5 * p.w0 @ p.A @ p.w0)
    for _ in range(T):
        w = M @ w
        expected.append(float(0.5 * w @ p.A @ w) / f0)
    np.testing.assert_allclose(cs.steps, np.arange(T + 1))
    np.testing.assert_allclose(cs.rel_error[:, 0], expected, rtol=1e-9)
    np.testing.assert_allclose(cs.grad_evals, cs.steps)  # 1 pass x 1 "example"


def test_gd_diverges_above_two_over_lambda_max():
    p = Quadratic(dim=8, cond=10.0, lam_max=4.0, seed=0)
    lr = torch.tensor([1.9, 1.99, 2.01, 2.1]) / 4.0  # 2/λ_max = 0.5
    cs = run_finite_sum(p, "sgd", lr=lr.double(), steps=3000)
    assert (cs.diverged_step[:2] == -1).all() and (cs.final[:2] < 1e-6).all()
    assert (cs.diverged_step[2:] > 0).all() and np.isnan(cs.final[2:]).all()
    assert cs.diverged_step[3] < cs.diverged_step[2]  # further above the edge blows up sooner


def test_per_run_tensors_equal_separate_runs_and_unified_sam_endpoints():
    p = Ridge(n=20, dim=4, seed=1)
    s = Sampling("nice", 4)
    lr = torch.tensor([0.01, 0.05], dtype=torch.float64)
    rho = torch.tensor([0.02, 0.2], dtype=torch.float64)
    both = run_finite_sum(p, "unified_sam", lr=lr, hp={"rho": rho, "lam": 1.0}, steps=60, sampling=s, seed=5)
    # the same draws (one generator, R = 2) -> run 0 of `both` equals run 0 of a SAM run with the same tensors
    sam = run_finite_sum(p, "sam", lr=lr, hp={"rho": rho}, steps=60, sampling=s, seed=5)
    np.testing.assert_allclose(both.rel_error, sam.rel_error, rtol=1e-10)
    usam = run_finite_sum(p, "usam", lr=lr, hp={"rho": rho}, steps=60, sampling=s, seed=5)
    uni0 = run_finite_sum(p, "unified_sam", lr=lr, hp={"rho": rho, "lam": 0.0}, steps=60, sampling=s, seed=5)
    np.testing.assert_allclose(uni0.rel_error, usam.rel_error, rtol=1e-10)
    assert both.lr.tolist() == pytest.approx([0.01, 0.05]) and both.rho.tolist() == pytest.approx([0.02, 0.2])


def test_full_batch_ridge_converges_and_noise_gives_a_floor():
    p = Ridge(n=30, dim=4, cond=5.0, seed=2)
    th = theory_for(p, Sampling("full"))
    assert th["gamma"] == pytest.approx(1 / (8 * p.L)) and th["rho"] == pytest.approx(1 / (4 * p.L))
    # USAM's fixed point on a quadratic is w* itself; normalised SAM with a constant ρ keeps bouncing
    # around it (its perturbation never shrinks), so it stalls at a floor
    usam = run_finite_sum(p, "usam", lr=0.5 / p.L, hp={"rho": 0.1 / p.L}, steps=1500)
    sam = run_finite_sum(p, "sam", lr=1.0 / p.L, hp={"rho": 0.01}, steps=1500)
    assert usam.final[0] < 1e-8 < 1e-6 < sam.final[0] < 1e-2
    noisy = run_finite_sum(p, "sgd", lr=1.0 / p.L, steps=1500, noise=0.1, n_runs=2, seed=1)
    assert (noisy.final > 1e-4).all() and noisy.final[0] != noisy.final[1]
    again = run_finite_sum(p, "sgd", lr=1.0 / p.L, steps=1500, noise=0.1, n_runs=2, seed=1)
    np.testing.assert_array_equal(noisy.rel_error, again.rel_error)


def test_grad_evals_count_passes_and_examples():
    p = Ridge(n=30, dim=3, seed=0)
    cs = run_finite_sum(p, "ssam", lr=0.01, hp={"rho": 0.01}, steps=20, sampling=Sampling("nice", 5), n_records=20)
    np.testing.assert_array_equal(cs.grad_evals, cs.steps * 2 * 5)


def test_bad_inputs_raise_clear_errors():
    p = Quadratic(dim=3)
    with pytest.raises(ValueError, match="lr"):
        run_finite_sum(p, "sgd", lr=-1.0, steps=5)
    with pytest.raises(ValueError, match="steps"):
        run_finite_sum(p, "sgd", lr=0.1, steps=0)
    with pytest.raises(ValueError, match="rho"):
        run_finite_sum(p, "sam", lr=0.1, hp={"rho": -1.0}, steps=5)
    with pytest.raises(ValueError, match="steps"):
        QuadraticLabConfig(steps=0).validate()


def test_lab_generator_produces_every_part():
    cfg = QuadraticLabConfig(
        problem="ridge",
        n=20,
        dim=4,
        variants=("sgd", "unified_sam"),
        lams=(0.0, 1.0, "1/t"),
        steps=60,
        seeds=2,
        heat_lams=(0.0, 0.5, 1.0),
        heat_lr_mults=(1.0, 4.0),
        budget_epochs=6,
    )
    items = list(run_quadratic_lab(cfg))
    progress = [p for p, _ in items]
    assert progress == sorted(progress) and progress[-1] == 1.0
    res = items[-1][1]
    assert [c.label for c in res.curves] == ["SGD", "Unified SAM λ=0.0", "Unified SAM λ=1.0", "Unified SAM λ=1/t"]
    assert res.heatmap["final"].shape == (3, 2)
    assert res.heatmap["theory_lr"] == pytest.approx(res.theory["gamma"])
    # sampling strategies at equal per-example gradient evaluations (budget = 6 passes over n = 20)
    assert len(res.sampling_curves) == 5
    for c in res.sampling_curves:
        assert abs(int(c.grad_evals[-1]) - 120) <= 2 * 20
    df = res.curves_frame()
    assert {"label", "variant", "lam", "sampling", "seed", "step", "grad_evals", "rel_error"} <= set(df.columns)
    figs = [
        dplots.relative_error_figure(res.curves),
        dplots.relative_error_figure(res.curves, x="grad_evals"),
        dplots.lam_lr_heatmap(res.heatmap),
        dplots.sampling_figure(res.sampling_curves, res.sampling_theory),
    ]
    assert all(len(f.data) > 0 for f in figs)
    assert any("theory" in (t.name or "") for t in figs[2].data)  # the ★ marker


def test_lab_on_a_plain_quadratic_skips_sampling_and_marks_divergence():
    cfg = QuadraticLabConfig(
        problem="quadratic",
        dim=4,
        cond=10.0,
        variants=("sgd",),
        steps=200,
        seeds=1,
        heat_lams=(0.0, 1.0),
        heat_lr_mults=(1.0, 100.0),
    )
    res = list(run_quadratic_lab(cfg))[-1][1]
    assert res.sampling_curves == []
    final = res.heatmap["final"]
    assert np.isfinite(final[:, 0]).all()
    assert not np.isfinite(final[:, 1]).any()  # 100 x theory γ = 12.5/L: diverged
    fig = dplots.lam_lr_heatmap(res.heatmap)
    assert any(t.name == "diverged" for t in fig.data)
    assert math.isfinite(res.theory["gamma"])


# ------------------------------------------------------------------ batched configurations (the page's extras)
def _per_config_loop(cfg):
    """The lab's curves and sampling comparison the old way: one run_finite_sum call per configuration."""
    from sam_core.dynamics.quadratics import _variant_runs

    p = cfg.build_problem()
    smp = cfg.build_sampling()

    def th(lam):
        return theory_for(p, smp, lam)

    curves = []
    for v in cfg.variants:
        for lam in cfg.lams if v == "unified_sam" else (None,):
            lr, hp, label = _variant_runs(v, lam, th, cfg, cfg.seeds)
            curves.append(
                run_finite_sum(
                    p,
                    v,
                    lr=lr,
                    hp=hp,
                    steps=cfg.steps,
                    sampling=smp,
                    n_runs=cfg.seeds,
                    seed=1,
                    noise=cfg.noise,
                    label=label,
                )
            )
    lam = next((x for x in cfg.lams if not isinstance(x, str)), 1.0)
    budget = int(cfg.budget_epochs * p.n)
    strategies = [
        Sampling("full"),
        Sampling("uniform"),
        Sampling("nice", cfg.batch_size),
        Sampling("importance", 1),
        Sampling("importance", 1, reweight=False),
    ]
    smp_curves = []
    for s in strategies:
        t = theory_for(p, s, lam)
        smp_curves.append(
            run_finite_sum(
                p,
                "unified_sam",
                lr=cfg.lr_mult * t["gamma"],
                hp={"rho": cfg.rho_mult * t["rho"], "lam": lam},
                steps=max(1, budget // (2 * s.examples_per_eval(p.n))),
                sampling=s,
                n_runs=cfg.seeds,
                seed=3,
                noise=cfg.noise,
                label=s.label,
            )
        )
    return curves, smp_curves


@pytest.mark.parametrize(
    "kw",
    [
        dict(lams=(0.0, 0.5, 1.0, "1/t"), noise=0.0),
        dict(lams=(1.0, "1-1/t", 0.25), noise=0.05, problem="logistic", sampling="importance", batch_size=2),
        dict(lams=(0.0, 0.75), noise=0.0, sampling="uniform", rho_mult=3.0),
    ],
    ids=["defaults", "logistic-noise-importance", "uniform"],
)
def test_batched_lab_equals_the_per_config_loop(kw):
    cfg = QuadraticLabConfig(variants=("sgd", "unified_sam"), steps=150, seeds=2, heatmap=False, budget_epochs=5, **kw)
    res = run_to_end(run_quadratic_lab(cfg))
    curves, smp_curves = _per_config_loop(cfg)
    got = [*res.curves, *res.sampling_curves]
    want = [*curves, *smp_curves]
    assert [c.label for c in got] == [c.label for c in want]
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.steps, w.steps)
        np.testing.assert_allclose(g.rel_error, w.rel_error, rtol=1e-10, atol=1e-300, err_msg=g.label)
        np.testing.assert_array_equal(g.diverged_step, w.diverged_step)
        np.testing.assert_allclose(g.lr, w.lr, rtol=1e-15)
        np.testing.assert_allclose(g.rho, w.rho, rtol=1e-15)
        assert g.extra.keys() == w.extra.keys()
        if "lam" in w.extra:
            np.testing.assert_array_equal(g.extra["lam"], w.extra["lam"])


def test_batched_run_keeps_configurations_apart_and_refuses_what_cannot_share_draws():
    from sam_core.dynamics.quadratics import run_finite_sum_batched

    p = Ridge(n=30, dim=4, cond=5.0, seed=1)
    s = Sampling("nice", 5)
    confs = [
        dict(lr=0.2, hp={"rho": 0.05, "lam": 0.0}, sampling=s),
        dict(lr=0.05, hp={"rho": 0.3, "lam": 1.0}, sampling=s),
    ]
    a, b = run_finite_sum_batched(p, "unified_sam", confs, steps=80, n_runs=3, seed=2)
    assert a.rel_error.shape == b.rel_error.shape == (81, 3)
    assert not np.allclose(a.final, b.final)  # different settings, different curves
    assert list(a.lr) == [0.2] * 3 and list(b.extra["lam"]) == [1.0] * 3
    with pytest.raises(ValueError, match="same number of examples"):
        run_finite_sum_batched(p, "unified_sam", [confs[0], {**confs[1], "sampling": Sampling("uniform")}], steps=5)
    with pytest.raises(ValueError, match="same number of examples"):
        run_finite_sum_batched(p, "unified_sam", [confs[0], {**confs[1], "sampling": Sampling("full")}], steps=5)
    with pytest.raises(ValueError, match="schedule"):
        run_finite_sum_batched(p, "unified_sam", [confs[0], {**confs[1], "hp": {"rho": 0.1, "lam": "1/t"}}], steps=5)


def test_a_long_curve_streams_as_it_grows_and_each_report_is_a_prefix_of_the_finished_curve(monkeypatch):
    """The lab reports a curve while it computes (REPORT_EVERY_S; 0 here: at every recorded step): the bar
    moves inside the first curve's share, and every partial curve is the finished curve cut short."""
    import sam_core.dynamics.quadratics as q

    monkeypatch.setattr(q, "REPORT_EVERY_S", 0.0)
    cfg = QuadraticLabConfig(variants=("sgd", "sam"), steps=600, seeds=2, heatmap=False, compare_sampling=False)
    items = list(run_quadratic_lab(cfg))
    final = items[-1][1]
    first_share = [(p, r) for p, r in items if 0 < p < 0.5]  # two parts: the SGD curve, then SAM's
    assert len(first_share) >= 100  # ~300 records, one report each (the last one is the finished curve)
    progress = [p for p, _ in first_share]
    assert progress == sorted(progress) and len(set(progress)) == len(progress)
    for p, r in first_share:
        (part,) = r.curves
        k = len(part.steps)
        assert part.steps[-1] == round(p * 2 * cfg.steps) and k < len(final.curves[0].steps)
        np.testing.assert_array_equal(part.steps, final.curves[0].steps[:k])
        np.testing.assert_array_equal(part.rel_error, final.curves[0].rel_error[:k])
    # and the finished curves are run_finite_sum's (common random numbers: seed 1, as the page's loop)
    p = cfg.build_problem()
    lr, hp, _ = q._variant_runs("sam", None, lambda lam: theory_for(p, cfg.build_sampling(), lam), cfg, cfg.seeds)
    alone = run_finite_sum(
        p, "sam", lr=lr, hp=hp, steps=cfg.steps, sampling=cfg.build_sampling(), n_runs=cfg.seeds, seed=1
    )
    np.testing.assert_allclose(final.curves[1].rel_error, alone.rel_error, rtol=1e-12)


def test_the_heatmap_reports_its_progress_and_equals_one_run_per_cell(monkeypatch):
    """The λ × lr heatmap's bar moves while it runs, and each cell is the final relative error of its own
    run_finite_sum call (a full-batch, noise-free problem: every seed is the same run)."""
    import sam_core.dynamics.quadratics as q

    monkeypatch.setattr(q, "REPORT_EVERY_S", 0.0)
    cfg = QuadraticLabConfig(
        problem="quadratic", dim=4, cond=10.0, variants=("sgd",), steps=300, seeds=2, heat_lams=(0.0, 1.0),
        heat_lr_mults=(0.5, 1.0, 100.0),
    )  # fmt: skip
    items = list(run_quadratic_lab(cfg))
    res = items[-1][1]
    in_heatmap = [p for p, r in items if r.phase == "λ × lr heatmap" and 0.5 < p < 1.0]  # curves, then heatmap
    assert len(in_heatmap) >= 100 and in_heatmap == sorted(in_heatmap)
    p = cfg.build_problem()
    gamma = theory_for(p, Sampling("full"), 1.0)["gamma"]
    for i, lam in enumerate(cfg.heat_lams):
        rho = cfg.rho_mult * theory_for(p, Sampling("full"), lam)["rho"]
        for j, m in enumerate(cfg.heat_lr_mults):
            alone = run_finite_sum(p, "unified_sam", lr=m * gamma, hp={"rho": rho, "lam": lam}, steps=cfg.steps)
            want = alone.final[0] if np.isfinite(alone.final[0]) else np.inf
            np.testing.assert_allclose(res.heatmap["final"][i, j], want, rtol=1e-10)
