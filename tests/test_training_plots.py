"""Figures of the training lab: TensorBoard smoothing against its closed form, overlays, log axes."""

import math

import numpy as np
import pandas as pd
import pytest

from sam_core.plots import training as T


def test_ema_matches_closed_form():
    rng = np.random.default_rng(0)
    x = rng.normal(size=50)
    w = 0.8
    n = np.arange(1, 51)
    # s_n = Σ_i w^(n−i) (1−w) x_i / (1 − w^n): a weighted mean with weights summing to one
    ref = np.array([np.sum(w ** (k - n[:k]) * (1 - w) * x[:k]) / (1 - w**k) for k in n])
    assert np.allclose(T.ema_smooth(x, w), ref)
    assert T.ema_smooth([3.0, 5.0], 0.5)[1] == pytest.approx((0.5 * 3 + 5) / 1.5)


def test_ema_edge_cases():
    assert np.array_equal(T.ema_smooth([1.0, 2.0, 4.0], 0.0), [1.0, 2.0, 4.0])
    assert np.allclose(T.ema_smooth([2.0] * 10, 0.95), 2.0)  # debiased: a constant stays constant
    out = T.ema_smooth([1.0, math.nan, 3.0, math.inf], 0.5)
    assert math.isnan(out[1]) and out[3] == math.inf  # passed through …
    assert out[2] == pytest.approx((0.5 * 1 + 3) / 1.5)  # … and left out of the average
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        T.ema_smooth([1.0], 1.0)


def _series(label="a", color="#000000", **cols):
    return T.Series(
        label, color, pd.DataFrame(cols, index=pd.Index(range(1, 1 + len(next(iter(cols.values())))), name="step"))
    )


def test_metric_figure_raw_and_smoothed_and_log_axis():
    s = _series(loss=[1.0, 0.5, -0.1, 0.2])
    fig = T.metric_figure([s], "loss", smoothing=0.6)
    assert [t.name for t in fig.data] == ["a (raw)", "a"] and fig.data[0].opacity == 0.25
    assert np.allclose(fig.data[1].y, T.ema_smooth([1.0, 0.5, -0.1, 0.2], 0.6))
    flog = T.metric_figure([s], "loss", log_y=True)
    assert list(flog.data[0].y) == [1.0, 0.5, 0.2] and flog.layout.yaxis.type == "log"  # ≤ 0 cannot be drawn
    assert len(T.metric_figure([s], "missing").data) == 0


def test_eigen_figure_overlays_runs_with_edges():
    a = _series("sam", "#0072B2", top_eig=[5.0, 6.0], gd_edge=[76.0, 76.0], sam_edge=[40.0, 41.0])
    b = _series("sgd", "#000000", top_eig=[7.0, math.nan], gd_edge=[76.0, 76.0])
    fig = T.eigen_figure([a, b])
    names = [t.name for t in fig.data]
    assert names == ["sam · λ_max", "sam · 2(1+β)/η", "sam · SAM edge", "sgd · λ_max", "sgd · 2(1+β)/η"]
    assert list(fig.data[3].y) == [7.0]  # NaN rows (not measured) are dropped
    assert len(T.eigen_figure([a], show_edges=False).data) == 1


def test_epoch_and_spectrum_figures():
    s = _series(train_loss=[1.0, 0.8], test_loss=[1.1, 0.9], train_acc=[0.5, 0.6], test_acc=[0.4, 0.5])
    fig = T.epoch_figure([s])
    assert len(fig.data) == 4 and {t.line.dash for t in fig.data} == {"solid", "dash"}
    sp = T.spectrum_figure({"grid": [-1.0, 0.0, 1.0], "density": [0.0, 2.0, 1.0]}, {"values": [1.0, 0.5]})
    assert list(sp.data[0].x) == [0.0, 1.0] and len(sp.layout.shapes) == 2
    assert len(T.spectrum_figure(None, None).data) == 0


def test_dashes_distinguish_runs_of_one_variant():
    assert T.dashes_for(["a", "b", "c"], ["#1", "#1", "#2"]) == ["solid", "dash", "solid"]


def test_spectrum_log_axis_stops_ten_decades_below_the_peak():
    """SLQ's Gaussian tails reach 1e-304 far from the eigenvalues; the axis shows ten decades and says so."""
    grid = np.linspace(-1.0, 5.0, 400)
    dens = np.exp(-((grid - 2.0) ** 2) / 2e-3) + 1e-304
    sp = T.spectrum_figure({"grid": grid.tolist(), "density": dens.tolist()}, None)
    lo, hi = sp.layout.yaxis.range
    assert hi == pytest.approx(np.log10(dens.max()), abs=0.1)
    assert lo == pytest.approx(np.log10(dens.max()) - 10.0, abs=0.1)
    assert min(sp.data[0].y) >= dens.max() * 1e-10
    assert any("not shown" in a.text for a in sp.layout.annotations)


def test_per_epoch_series_are_drawn_raw_and_per_step_ones_smoothed():
    # 40 logged steps, a test accuracy every 10: the EMA would drag the 0.64 at step 40 towards the earlier points
    idx = pd.Index(range(1, 41), name="step")
    acc = [math.nan] * 40
    for k, v in zip((9, 19, 29, 39), (0.1, 0.2, 0.3, 0.64)):
        acc[k] = v
    s = T.Series("a", "#000000", pd.DataFrame({"loss": np.linspace(2.0, 1.0, 40), "test_acc": acc}, index=idx))
    assert T.per_step([s], "loss") and not T.per_step([s], "test_acc")
    fig = T.metric_figure([s], "test_acc", smoothing=0.6)
    assert [t.name for t in fig.data] == ["a"] and list(fig.data[0].y) == [0.1, 0.2, 0.3, 0.64]
    fig = T.metric_figure([s], "loss", smoothing=0.6)
    assert np.allclose(fig.data[1].y, T.ema_smooth(np.linspace(2.0, 1.0, 40), 0.6))
    table = T.overlay_frame([s], ["loss", "test_acc"], ["run-1"], smoothing=0.6)
    accs = table[table.metric == "test_acc"]
    assert list(accs.step) == [10, 20, 30, 40] and list(accs.shown) == list(accs.value) == [0.1, 0.2, 0.3, 0.64]
    loss = table[table.metric == "loss"]
    assert len(loss) == 40 and set(loss.run_id) == {"run-1"}
    assert (
        np.allclose(loss.shown, T.ema_smooth(loss.value.to_numpy(), 0.6)) and loss.shown.iloc[-1] != loss.value.iloc[-1]
    )


def test_legend_names_keep_what_tells_runs_apart():
    from sam_core.plots.style import short_labels

    labels = [
        "ssam ρ=0.05 · lenet5 · cifar10 · seed 0",
        "sam ρ=0.05 · lenet5 · cifar10 · seed 0",
        "sgd · lenet5 · cifar10 · seed 0",
    ]
    names, common = short_labels(labels)
    assert names == ["ssam ρ=0.05", "sam ρ=0.05", "sgd"] and common == "lenet5 · cifar10 · seed 0"
    long = ["a-very-long-run-name-that-ends-in-lr-0.1", "a-very-long-run-name-that-ends-in-lr-0.3"]
    names, common = short_labels(long, max_len=20)
    assert all(len(n) == 20 and "…" in n for n in names) and names[0].endswith("lr-0.1") and names[1].endswith("lr-0.3")
    assert short_labels(["same", "same"]) == (["same", "same"], "")  # nothing to drop: names stay whole
    fig = T.eigen_figure(
        [T.Series(lb, "#000000", pd.DataFrame({"top_eig": [1.0]}, index=pd.Index([1], name="step"))) for lb in labels]
    )
    assert [t.name for t in fig.data] == ["ssam ρ=0.05 · λ_max", "sam ρ=0.05 · λ_max", "sgd · λ_max"]
    assert labels[0] in fig.data[0].hovertemplate  # the full name on hover
    assert fig.layout.legend.y == 0 and fig.layout.legend.yref == "container"  # under the plot, off the title
