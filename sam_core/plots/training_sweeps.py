"""Figures of a sweep: a heatmap of a result metric over two swept parameters (faceted by a third,
e.g. the variant), a parallel-coordinates plot of every trial, and a metric-against-one-parameter
plot. Pure functions: the table of `sam_core.training.sweeps.sweep_frame` in, `go.Figure` out.

Swept values become ordered categories: numbers ascending, then text, with "—" for a value that does
not apply to a trial (e.g. ρ of an SGD trial). Each heatmap cell and each line carries its trials'
run ids (hover), so the page can open the run behind a cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sam_core.plots.style import legend_below, variant_color

NA = "—"
AGGS = ("mean", "max", "min")


def _is_missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_value(v) -> str:
    """A swept value as an axis label."""
    if _is_missing(v):
        return NA
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def ordered_levels(values: Sequence) -> list[str]:
    """Distinct labels of `values`: numbers ascending, then strings, then '—'."""
    nums, texts, missing = {}, set(), False
    for v in values:
        if _is_missing(v):
            missing = True
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            nums[fmt_value(v)] = float(v)
        else:
            texts.add(fmt_value(v))
    out = sorted(nums, key=nums.get) + sorted(texts)
    return out + ([NA] if missing else [])


def _check(df: pd.DataFrame, *cols: str) -> None:
    missing = [c for c in cols if c is not None and c not in df.columns]
    if missing:
        raise ValueError(f"unknown column(s) {missing}; the table has {list(df.columns)}")


def _agg(values: np.ndarray, how: str) -> float:
    v = values[np.isfinite(values)]
    if not len(v):
        return math.nan
    return float({"mean": np.mean, "max": np.max, "min": np.min}[how](v))


def heatmap_grid(df: pd.DataFrame, x: str, y: str | None, metric: str, agg: str = "mean"):
    """(x labels, y labels, z[y][x], run ids[y][x]) — the data behind one heatmap panel."""
    if agg not in AGGS:
        raise ValueError(f"agg must be one of {AGGS}, got {agg!r}")
    xs = ordered_levels(df[x].tolist())
    ys = ordered_levels(df[y].tolist()) if y else [""]
    z = np.full((len(ys), len(xs)), math.nan)
    ids = [["" for _ in xs] for _ in ys]
    xl = df[x].map(fmt_value)
    yl = df[y].map(fmt_value) if y else pd.Series([""] * len(df), index=df.index)
    vals = pd.to_numeric(df[metric], errors="coerce").to_numpy(dtype=float)
    for i, yv in enumerate(ys):
        for j, xv in enumerate(xs):
            mask = ((xl == xv) & (yl == yv)).to_numpy()
            if mask.any():
                z[i, j] = _agg(vals[mask], agg)
                ids[i][j] = " ".join(r for r in df.loc[mask, "run_id"].astype(str) if r)
    return xs, ys, z, ids


def heatmap_figure(
    df: pd.DataFrame,
    x: str,
    y: str | None,
    metric: str,
    agg: str = "mean",
    facet: str | None = None,
    title: str | None = None,
    colorscale: str = "Viridis",
) -> go.Figure:
    """`metric` over the (x, y) grid of swept values; several trials in a cell are combined by `agg`
    (mean / max / min over the parameters not on an axis). `facet`: one panel per value (e.g. optimizer)."""
    _check(df, x, y, metric, facet)
    if y is not None and y == x:
        raise ValueError("choose two different parameters for the heatmap axes")
    if facet is not None and facet in (x, y):
        facet = None
    panels = ordered_levels(df[facet].tolist()) if facet else [None]
    fig = make_subplots(
        rows=1,
        cols=len(panels),
        subplot_titles=[f"{facet} = {p}" for p in panels] if facet else None,
        horizontal_spacing=0.06,
    )
    finite = pd.to_numeric(df[metric], errors="coerce")
    finite = finite[np.isfinite(finite)]
    zmin, zmax = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    for k, p in enumerate(panels):
        sub = df if p is None else df[df[facet].map(fmt_value) == p]
        xs, ys, z, ids = heatmap_grid(sub, x, y, metric, agg)
        text = [[("" if math.isnan(v) else f"{v:.3g}") for v in row] for row in z]
        fig.add_trace(
            go.Heatmap(
                x=xs,
                y=ys,
                z=z,
                text=text,
                texttemplate="%{text}",
                customdata=ids,
                coloraxis="coloraxis",
                hovertemplate=(
                    f"{x}=%{{x}}<br>" + (f"{y}=%{{y}}<br>" if y else "") + f"{metric} ({agg})=%{{z:.4g}}"
                    "<br>run(s): %{customdata}<extra></extra>"
                ),
                xgap=2,
                ygap=2,
            ),
            row=1,
            col=k + 1,
        )
        fig.update_xaxes(type="category", title_text=x, row=1, col=k + 1)
        fig.update_yaxes(type="category", title_text=y if (y and k == 0) else None, row=1, col=k + 1)
    fig.update_layout(
        title=title or f"{metric} ({agg} over the other parameters)",
        coloraxis=dict(colorscale=colorscale, cmin=zmin, cmax=zmax, colorbar=dict(title=metric)),
        height=max(320, 60 * (len(ordered_levels(df[y].tolist())) if y else 1) + 160),
        margin=dict(l=60, r=20, t=70, b=50),
    )
    return fig


def _dimension(values: pd.Series, label: str) -> dict:
    """A parcoords dimension: numbers as they are (log10 when they span ≥ 20×), anything else coded."""
    vals = values.tolist()
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) and not _is_missing(v) for v in vals)
    if numeric and vals:
        arr = np.asarray(vals, dtype=float)
        if (arr > 0).all() and arr.max() / arr.min() >= 20:
            levels = sorted(set(arr.tolist()))
            return dict(
                label=f"{label} (log)",
                values=np.log10(arr),
                tickvals=np.log10(levels).tolist(),
                ticktext=[fmt_value(v) for v in levels],
            )
        return dict(label=label, values=arr)
    levels = ordered_levels(vals)
    code = {lv: i for i, lv in enumerate(levels)}
    return dict(
        label=label,
        values=[code[fmt_value(v)] for v in vals],
        tickvals=list(range(len(levels))),
        ticktext=levels,
        range=[-0.5, len(levels) - 0.5] if len(levels) == 1 else None,
    )


def parallel_figure(
    df: pd.DataFrame,
    params: Sequence[str],
    metrics: Sequence[str],
    color: str,
    title: str | None = None,
    colorscale: str = "Viridis",
) -> go.Figure:
    """One line per trial through its swept values and its result metrics, coloured by `color`.
    Trials without a finite `color` value (failed, pending) are left out and counted in the title."""
    _check(df, *params, *metrics, color)
    c = pd.to_numeric(df[color], errors="coerce")
    keep = np.isfinite(c.to_numpy(dtype=float))
    sub = df[keep]
    dims = [_dimension(sub[p], p) for p in params]
    for m in metrics:
        v = pd.to_numeric(sub[m], errors="coerce").to_numpy(dtype=float)
        if np.isfinite(v).any():
            dims.append(dict(label=m, values=np.where(np.isfinite(v), v, np.nanmin(v[np.isfinite(v)])).tolist()))
    for d in dims:
        if d.get("range") is None:
            d.pop("range", None)
    left = int((~keep).sum())
    fig = go.Figure(
        go.Parcoords(
            line=dict(
                color=c[keep].to_numpy(dtype=float), colorscale=colorscale, showscale=True, colorbar=dict(title=color)
            ),
            dimensions=dims,
        )
    )
    note = f" — {left} trial(s) without {color} left out" if left else ""
    fig.update_layout(
        title=(title or f"Trials coloured by {color}") + note, height=420, margin=dict(l=70, r=40, t=80, b=30)
    )
    return fig


def metric_line_figure(
    df: pd.DataFrame, x: str, metric: str, group: str | None = None, title: str | None = None
) -> go.Figure:
    """`metric` against one swept parameter: a line (markers) per value of `group` (e.g. optimizer,
    in its variant colour), each point one trial (hover: its run id)."""
    _check(df, x, metric, group)
    levels = ordered_levels(df[x].tolist())
    pos = {lv: i for i, lv in enumerate(levels)}
    groups = ordered_levels(df[group].tolist()) if group else [None]
    fig = go.Figure()
    for g in groups:
        sub = df if g is None else df[df[group].map(fmt_value) == g]
        sub = sub.assign(_x=sub[x].map(fmt_value).map(pos)).sort_values("_x")
        y = pd.to_numeric(sub[metric], errors="coerce")
        color = variant_color(g) if (group == "optimizer" and g is not None) else None
        fig.add_trace(
            go.Scatter(
                x=sub[x].map(fmt_value),
                y=y,
                mode="lines+markers",
                name=str(g) if g is not None else metric,
                customdata=sub["run_id"],
                line=dict(color=color) if color else None,
                hovertemplate=f"{x}=%{{x}}<br>{metric}=%{{y:.4g}}<br>run %{{customdata}}<extra>{g or ''}</extra>",
            )
        )
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=levels, title_text=x)
    fig.update_yaxes(title_text=metric)
    fig.update_layout(height=380)
    return legend_below(fig, title or f"{metric} against {x}")  # a right-hand legend lay under the modebar
