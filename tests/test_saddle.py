"""Saddle escape on the linear autoencoder: the paper's ordering, batched == looped, references."""

import numpy as np
import pytest
import torch

from sam_core.dynamics import SaddleConfig, escape_epochs, run_saddle, run_to_end
from sam_core.dynamics.problems import ae_loss_grad, init_autoencoder
from sam_core.plots import dynamics as dplots

SMALL = SaddleConfig(d=6, lr=0.05, epochs=250, population=True)


@pytest.fixture(scope="module")
def small_run():
    return run_to_end(run_saddle(["sgd", "sam", "usam", "ssam"], [0.02, 0.1, 0.3], [0, 1, 2], SMALL))


def _mean_escape(res, v, i, frac=0.5):
    e = res.escape_epochs(frac)[v][i]
    return np.inf if np.isnan(e).any() else float(e.mean())


def test_sam_lingers_longer_for_larger_rho_while_sgd_and_ssam_escape(small_run):
    res = small_run
    sgd = _mean_escape(res, "sgd", 0)
    assert np.isfinite(sgd)
    for v in ("sam", "usam"):  # normalised SAM and the paper's (unnormalised) SAM
        times = [_mean_escape(res, v, i) for i in range(3)]
        assert sgd <= times[0] < times[1] <= times[2], (v, times)
        assert times[2] > 1.2 * sgd  # a visible plateau at ρ = 0.3
    ssam = [_mean_escape(res, "ssam", i) for i in range(3)]
    assert all(np.isfinite(ssam)) and max(ssam) < 1.1 * sgd  # SSAM escapes about as fast as SGD
    assert max(ssam) < _mean_escape(res, "usam", 2)


def test_result_arrays_and_tables(small_run):
    res = small_run
    assert res.epochs_done == SMALL.epochs
    assert res.loss["sam"].shape == (3, 3, SMALL.epochs + 1) and res.loss["sgd"].shape == (1, 3, SMALL.epochs + 1)
    assert res.rhos["sgd"] == [0.0]
    # same seed -> same initial point for every variant and ρ
    np.testing.assert_allclose(res.loss["sam"][:, :, 0], np.broadcast_to(res.loss["sgd"][:, :, 0], (3, 3)))
    assert np.all(res.gamma["sgd"][..., 1:] == 1.0)
    df = res.to_frame()
    assert list(df.columns[:5]) == ["variant", "rho", "seed", "epoch", "loss"]
    assert len(df) == (1 + 3 + 3 + 3) * 3 * (SMALL.epochs + 1)
    table = res.escape_table(0.5)
    assert set(table.variant) == {"sgd", "sam", "usam", "ssam"} and len(table) == 10
    figs = [
        dplots.saddle_loss_figure(res),
        dplots.escape_time_figure(res),
        dplots.saddle_metric_figure(res, "w_norm"),
        dplots.saddle_metric_figure(res, "gamma"),
    ]
    curves = [t for t in figs[0].data if t.mode == "lines" and not (t.name or "").startswith("escape")]
    assert len(curves) == 10  # one mean curve per (variant, ρ)
    thr = [t for t in figs[0].data if (t.name or "").startswith("escape")][0]  # the escape threshold, in data units
    np.testing.assert_allclose(thr.y, 0.5 * np.mean([np.nanmean(res.loss[v][..., 0]) for v in res.variants]))
    assert all(len(f.data) > 0 for f in figs)


def test_sgd_matches_a_plain_gradient_descent_loop():
    cfg = SaddleConfig(d=4, lr=0.1, epochs=30, population=True)
    res = run_to_end(run_saddle(["sgd"], [0.1], [7], cfg, dtype=torch.float64))
    W1, W2 = (w[0] for w in init_autoencoder([7], 4, cfg.init_var, dtype=torch.float64))
    eye = torch.eye(4, dtype=torch.float64)
    losses = []
    for _ in range(31):
        a, b = W1.clone().requires_grad_(True), W2.clone().requires_grad_(True)
        loss = 0.5 * ((b @ a - eye) ** 2).sum()
        g1, g2 = torch.autograd.grad(loss, [a, b])
        losses.append(float(loss.detach()))
        W1, W2 = W1 - 0.1 * g1, W2 - 0.1 * g2
    np.testing.assert_allclose(res.loss["sgd"][0, 0], losses, rtol=1e-10)


def test_usam_matches_a_reference_loop_with_minibatches_and_rho_zero_is_sgd():
    cfg = SaddleConfig(d=3, lr=0.2, epochs=6, n_samples=20, batch_size=6)
    res = run_to_end(run_saddle(["sgd", "usam"], [0.0, 0.3], [1], cfg, dtype=torch.float64))
    # ρ = 0 reduces USAM to SGD exactly: same init and the same mini-batch order (common random numbers)
    np.testing.assert_allclose(res.loss["usam"][0, 0], res.loss["sgd"][0, 0], rtol=1e-12)
    assert not np.allclose(res.loss["usam"][1, 0], res.loss["sgd"][0, 0])
    assert cfg.steps_per_epoch == 4  # 6 + 6 + 6 + 2


def test_batched_runs_equal_separate_runs():
    cfg = SaddleConfig(d=5, lr=0.02, epochs=8, n_samples=40, batch_size=10)
    both = run_to_end(run_saddle(["ssam"], [0.05, 0.5], [0, 3], cfg, dtype=torch.float64))
    for i, rho in enumerate([0.05, 0.5]):
        for j, seed in enumerate([0, 3]):
            one = run_to_end(run_saddle(["ssam"], [rho], [seed], cfg, dtype=torch.float64))
            np.testing.assert_allclose(both.loss["ssam"][i, j], one.loss["ssam"][0, 0], rtol=1e-10)
            np.testing.assert_allclose(both.gamma["ssam"][i, j, 1:], one.gamma["ssam"][0, 0, 1:], rtol=1e-10)


def test_recorded_loss_is_the_full_data_loss():
    cfg = SaddleConfig(d=3, lr=0.05, epochs=2, n_samples=30, batch_size=7, data_seed=2)
    res = run_to_end(run_saddle(["sgd"], [0.1], [0], cfg, dtype=torch.float64))
    from sam_core.dynamics.problems import make_autoencoder_data

    data = make_autoencoder_data(30, 3, seed=2, dtype=torch.float64)
    W = init_autoencoder([0], 3, cfg.init_var, dtype=torch.float64)
    loss0, _ = ae_loss_grad(W, data.S_full)
    assert res.loss["sgd"][0, 0, 0] == pytest.approx(float(loss0[0]), rel=1e-12)


def test_escape_epochs_function():
    loss = np.array([[10.0, 9.0, 4.0, 3.0], [10.0, 9.0, 8.0, 7.0], [1.0, np.nan, np.nan, np.nan]])
    e = escape_epochs(loss, 0.5)
    assert e[0] == 2 and np.isnan(e[1]) and np.isnan(e[2])
    with pytest.raises(ValueError, match="fraction"):
        escape_epochs(loss, 1.5)


def test_divergence_is_a_result_and_stopping_keeps_partial_results():
    cfg = SaddleConfig(d=4, init_var=1.0, lr=5.0, epochs=50, population=True)
    res = run_to_end(run_saddle(["sgd", "sam"], [0.1], [0], cfg))
    assert res.diverged["sgd"].all()
    assert not np.isfinite(res.loss["sgd"][0, 0, -1])
    gen = run_saddle(["sgd"], [0.1], [0], SaddleConfig(d=4, epochs=100_000, population=True), yield_every_s=0.0)
    for _, partial in gen:
        if partial.epochs_done >= 3:
            break
    gen.close()
    assert 3 <= partial.epochs_done < 100_000
    assert np.isfinite(partial.loss["sgd"][0, 0, : partial.epochs_done + 1]).all()
    assert np.isnan(partial.loss["sgd"][0, 0, partial.epochs_done + 1 :]).all()


@pytest.mark.parametrize(
    "field,value", [("d", 0), ("lr", -1.0), ("epochs", 0), ("batch_size", 5000), ("momentum", 1.0), ("init_var", 0.0)]
)
def test_config_errors_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SaddleConfig(**{field: value}).validate()


def test_bad_variant_and_empty_lists():
    with pytest.raises(ValueError, match="unknown variant"):
        run_to_end(run_saddle(["adamw"], [0.1], [0], SMALL))
    with pytest.raises(ValueError, match="rho"):
        run_to_end(run_saddle(["sam"], [], [0], SMALL))
