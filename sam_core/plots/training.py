"""Figures of the training lab: metric curves with TensorBoard-style smoothing, run overlays, γ_t,
the top Hessian eigenvalue against the GD and SAM edges, per-epoch train/test curves, the final
spectrum. Pure functions: DataFrames (one row per step, as `RunStore.metrics` returns) in, figures out.

A series is `Series(label, color, df)`; several series overlay runs. Smoothing draws the raw curve
faintly and the smoothed one on top, like TensorBoard.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sam_core.plots.style import legend_below, log_axis_range, short_labels

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


@dataclass
class Series:
    label: str
    color: str
    df: pd.DataFrame  # index: step; columns: metric names
    dash: str = "solid"


# One line per panel for a student: what it shows and what to look for
CAPTIONS = {
    "loss": "**Training loss**, mean over each logging window: it should fall; a sudden climb means the run "
    "became unstable (check λ_max against its edge).",
    "gamma": "**γ_t = ‖g‖/‖g_adv‖**: SGD's is 1 (no ascent); for SAM, below 1 the ascent point is steeper than "
    "where it stands, above 1 flatter. Stable SAM multiplies its step by γ_t: look for where it leaves 1.",
    "eigen": "**λ_max**, the top Hessian eigenvalue (sharpness), against the GD edge 2(1+β)/η (dashed) and the SAM "
    "edge (dotted): GD's sharpness climbs to its edge and hovers there; SAM's hovers at its own, lower edge.",
    "grad_norm": "**‖g‖**, the clean mini-batch gradient's norm: it shrinks as training converges; spikes are "
    "instabilities (often when λ_max crosses its edge).",
    "epoch": "**Per epoch**: train (solid) and test (dashed) loss and accuracy; the gap between them is the "
    "generalisation gap that flat minima are meant to shrink.",
    "accuracy": "**Batch accuracy** on the training mini-batches: noisy, rising; the per-epoch test accuracy is the "
    "number to compare.",
}


def ema_smooth(values: Sequence[float], weight: float) -> np.ndarray:
    """TensorBoard's scalar smoothing: a debiased exponential moving average.

        last ← weight·last + (1 − weight)·v ;  smoothed = last / (1 − weight^n)

    with n the number of finite values seen so far. Non-finite values are passed through unchanged
    and do not enter the average; weight 0 returns the input. A constant series stays constant.
    """
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    v = np.asarray(values, dtype=float)
    out = v.copy()
    if weight == 0.0 or v.size == 0:
        return out
    last, n = 0.0, 0
    for i, x in enumerate(v):
        if not math.isfinite(x):
            continue
        last = last * weight + (1.0 - weight) * x
        n += 1
        out[i] = last / (1.0 - weight**n)
    return out


def _column(s: Series, metric: str) -> tuple[np.ndarray, np.ndarray]:
    if metric not in s.df.columns:
        return np.array([]), np.array([])
    col = s.df[metric].dropna()
    return col.index.to_numpy(dtype=float), col.to_numpy(dtype=float)


def has_metric(series: Sequence[Series], metric: str) -> bool:
    """Whether any run logged a finite value of ``metric`` (e.g. ``top_eig``: Hessian tracking was on)."""
    return any(np.isfinite(_column(s, metric)[1]).any() for s in series)


EIGEN_OFF = (
    "Hessian tracking is off for these runs: launch with **Hessian every m steps** > 0 to see λ_max "
    "against 2/η and the SAM edge."
)


def _axes(
    fig: go.Figure, log_x: bool, log_y: bool, x_title: str, y_title: str, title: str | None = None, common: str = ""
) -> go.Figure:
    fig.update_xaxes(type="log" if log_x else "linear", title=x_title)
    fig.update_yaxes(type="log" if log_y else "linear", title=y_title)
    fig.update_layout(template="plotly_white", hovermode="x unified")
    legend_below(fig, title)
    if common:  # what every run shares, said once instead of in every entry
        fig.update_layout(legend_title=dict(text=f"{common}:", font=dict(size=11, color="grey")))
    return fig


def _names(series: Sequence[Series]) -> tuple[list[str], str]:
    """Legend names (the parts that tell the runs apart, long ones cut in the middle) and the shared part."""
    if len(series) == 1:  # one run: its whole name fits in a legend of one entry
        return [series[0].label], ""
    return short_labels([s.label for s in series])


def _hover(full: str, what: str = "") -> str:
    """The full run name in the hover label (the legend may show it shortened)."""
    return f"{full}{' · ' + what if what else ''}: %{{y:.4g}}<extra></extra>"


def per_step(series: Sequence[Series], metric: str) -> bool:
    """Whether ``metric`` is logged at (about) every logging step, as the training loss is: only such series
    are smoothed. Per-epoch points (train/test loss and accuracy) and Hessian measurements are few: an EMA
    over ten epoch points drags each one towards the earlier ones (a raw 0.64 showed as 0.47)."""
    for s in series:
        if metric not in s.df.columns:
            continue
        n = int(s.df[metric].notna().sum())
        ref = int(s.df["loss"].notna().sum()) if "loss" in s.df.columns else n
        if n < 0.75 * ref:
            return False
    return True


def _positive(x: np.ndarray, y: np.ndarray, log_y: bool) -> tuple[np.ndarray, np.ndarray]:
    if not log_y:
        return x, y
    keep = y > 0
    return x[keep], y[keep]


def metric_figure(
    series: Sequence[Series],
    metric: str,
    title: str | None = None,
    smoothing: float = 0.0,
    log_x: bool = False,
    log_y: bool = False,
    x_title: str = "step",
    y_title: str | None = None,
    hline: float | None = None,
) -> go.Figure:
    """One metric of several runs; the raw curve faint behind its smoothed version when smoothing > 0.

    Only per-step series are smoothed (:func:`per_step`): per-epoch and Hessian points are drawn raw."""
    if smoothing > 0 and not per_step(series, metric):
        smoothing = 0.0
    fig = go.Figure()
    names, common = _names(series)
    for s, name in zip(series, names):
        x, y = _column(s, metric)
        x, y = _positive(x, y, log_y)
        if x.size == 0:
            continue
        if smoothing > 0:
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    name=f"{name} (raw)",
                    legendgroup=s.label,
                    showlegend=False,
                    hoverinfo="skip",
                    opacity=0.25,
                    line=dict(color=s.color, width=1, dash=s.dash),
                )
            )
        ys = ema_smooth(y, smoothing) if smoothing > 0 else y
        fig.add_trace(
            go.Scatter(
                x=x,
                y=ys,
                mode="lines+markers" if x.size < 3 else "lines",
                name=name,
                legendgroup=s.label,
                line=dict(color=s.color, width=2, dash=s.dash),
                hovertemplate=_hover(s.label),
            )
        )
    if hline is not None:
        fig.add_hline(y=hline, line=dict(color="gray", dash="dot", width=1))
    return _axes(fig, log_x, log_y, x_title, y_title or metric, title or metric, common)


def gamma_figure(series: Sequence[Series], smoothing: float = 0.0, log_y: bool = False) -> go.Figure:
    """γ_t = ‖g‖/‖g_adv‖ over training (Stable SAM, Fig. 3); 1 marks no renormalisation."""
    return metric_figure(
        series, "gamma", "γ<sub>t</sub> = ‖g‖ / ‖g<sub>adv</sub>‖", smoothing, log_y=log_y, y_title="γ_t", hline=1.0
    )


def eigen_figure(series: Sequence[Series], log_y: bool = False, show_edges: bool = True) -> go.Figure:
    """Top Hessian eigenvalue (markers) with the GD edge 2(1+β)/η (dashed) and the SAM edge (dotted)."""
    fig = go.Figure()
    names, common = _names(series)
    for s, short in zip(series, names):
        for metric, name, dash, mode in (
            ("top_eig", "λ_max", s.dash, "lines+markers"),
            ("gd_edge", "2(1+β)/η", "dash", "lines"),
            ("sam_edge", "SAM edge", "dot", "lines"),
        ):
            if metric != "top_eig" and not show_edges:
                continue
            x, y = _positive(*_column(s, metric), log_y)
            if x.size == 0:
                continue
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    mode=mode,
                    name=f"{short} · {name}",
                    legendgroup=s.label,
                    line=dict(color=s.color, dash=dash, width=2 if metric == "top_eig" else 1.5),
                    marker=dict(size=5),
                    hovertemplate=_hover(s.label, name),
                )
            )
    return _axes(fig, False, log_y, "step", "eigenvalue", "Top Hessian eigenvalue and the edges of stability", common)


def epoch_figure(series: Sequence[Series], log_y: bool = False) -> go.Figure:
    """Per-epoch train (solid) and test (dashed) loss and accuracy, side by side."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"), horizontal_spacing=0.1)
    names, common = _names(series)
    for s, short in zip(series, names):
        for col, (tr, te) in enumerate((("train_loss", "test_loss"), ("train_acc", "test_acc")), start=1):
            for metric, dash, which in ((tr, "solid", "train"), (te, "dash", "test")):
                x, y = _column(s, metric)
                if col == 1:
                    x, y = _positive(x, y, log_y)
                if x.size == 0:
                    continue
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=y,
                        mode="lines+markers",
                        name=f"{short} · {which}",
                        legendgroup=s.label,
                        showlegend=col == 1,
                        line=dict(color=s.color, dash=dash),
                        hovertemplate=_hover(s.label, which),
                    ),
                    row=1,
                    col=col,
                )
    fig.update_xaxes(title="step")
    fig.update_yaxes(type="log" if log_y else "linear", row=1, col=1)
    fig.update_layout(template="plotly_white", height=420)
    legend_below(fig, "Train (solid) and test (dashed) per epoch", top=70)
    if common:
        fig.update_layout(legend_title=dict(text=f"{common}:", font=dict(size=11, color="grey")))
    return fig


def spectrum_figure(density: dict | None, top_eigs: dict | None, label: str = "", color: str = "#0072B2") -> go.Figure:
    """The Hessian's spectral density at the end (log scale, SLQ) with the top-k eigenvalues marked."""
    fig = go.Figure()
    if density and density.get("grid"):
        g = np.asarray(density["grid"], dtype=float)
        d = np.asarray(density["density"], dtype=float)
        # SLQ's Gaussian tails reach 1e-304 far from every eigenvalue: show ten decades below the peak
        rng, note = log_axis_range([d], decades=10.0)
        keep = d > (10.0 ** rng[0] if rng else 0.0)
        fig.add_trace(
            go.Scatter(x=g[keep], y=d[keep], mode="lines", name=f"{label} density".strip(), line=dict(color=color))
        )
        if rng:
            fig.update_yaxes(range=rng)
        if note:
            fig.add_annotation(
                text=f"density: {note}",
                showarrow=False,
                xref="paper",
                yref="paper",
                x=0.0,
                y=1.0,
                xanchor="left",
                yanchor="bottom",
                font=dict(size=10, color="grey"),
            )
    if top_eigs and top_eigs.get("values"):
        for i, v in enumerate(top_eigs["values"]):
            # λ1 only: the neighbours' labels ran into each other (and a label-less annotation shows "new text")
            label = dict(annotation_text="λ1") if i == 0 else {}
            fig.add_vline(x=float(v), line=dict(color=color, dash="dot", width=1), **label)
    return _axes(
        fig,
        False,
        True,
        "eigenvalue",
        "density",
        "Hessian spectrum at the end of training (dotted: the top-k eigenvalues)",
    )


def overlay_frame(
    series: Sequence[Series], metrics: Sequence[str], ids: Sequence[str] | None = None, smoothing: float = 0.0
) -> pd.DataFrame:
    """The overlaid series as one long table (a CSV export): run, step, metric, value, and the smoothed
    value where the chart smooths it (per-step metrics only, as :func:`metric_figure`)."""
    rows = []
    for k, s in enumerate(series):
        for m in metrics:
            x, y = _column(s, m)
            if x.size == 0:
                continue
            w = smoothing if smoothing > 0 and per_step([s], m) else 0.0
            df = pd.DataFrame(
                {
                    "run_id": ids[k] if ids else "",
                    "run": s.label,
                    "step": x.astype(int),
                    "metric": m,
                    "value": y,
                    "shown": ema_smooth(y, w) if w else y,
                }
            )
            rows.append(df)
    cols = ["run_id", "run", "step", "metric", "value", "shown"]
    return pd.concat(rows, ignore_index=True)[cols] if rows else pd.DataFrame(columns=cols)


def dashes_for(labels: Sequence[str], colors: Sequence[str]) -> list[str]:
    """Distinct dash styles for runs that share a colour (same variant), so overlays stay readable."""
    seen: dict[str, int] = {}
    out = []
    for c in colors:
        out.append(DASHES[seen.get(c, 0) % len(DASHES)])
        seen[c] = seen.get(c, 0) + 1
    return out
