"""Plotly figures of the landscape lab (pure functions: landscape, tracks, tables in; go.Figure out).

- :func:`contour_figure`  log-spaced contours, minima/saddles, each variant's path in its fixed colour,
  the current iterate, its ascent point and the ρ-ball, play/pause/scrub animation, a click layer.
- :func:`surface_figure`  the 3-D surface with the paths lifted onto it.
- :func:`metrics_figure`  loss, ‖g‖, γ_t and distance to the nearest minimum vs step (shared x axis).
- :func:`sweep_figure`    success rate (or another column) vs lr, one panel per ρ, GD bound 2/λ_max marked.
- :func:`heatmap_figure`  lr × ρ (or λ) map of a sweep column.
- :func:`basin_figure`    which minimum each start reaches, one panel per variant.

No streamlit here. PNG/SVG come from the modebar's camera button (``MODEBAR_CONFIG``): kaleido is not
a dependency, so server-side static export is not offered; :func:`figure_html` gives a standalone HTML.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import struct
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import get_colorscale, sample_colorscale
from plotly.subplots import make_subplots

from sam_core.landscape.functions import Landscape
from sam_core.plots.style import (
    legend_below,
    legend_below_layout,
    legend_rows,
    log_axis_range,
    variant_color,
    variant_dash,
)

MODEBAR_CONFIG = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "svg", "filename": "sam_lab_landscape", "scale": 2},
    "modeBarButtonsToAdd": ["drawline", "eraseshape"],
}
BASIN_COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999"]
_CIRCLE = np.stack((np.cos(np.linspace(0, 2 * np.pi, 29)), np.sin(np.linspace(0, 2 * np.pi, 29))), -1)  # (29, 2): round
# enough at the size a ρ-ball is drawn, and these points are most of what every animation frame carries
_VIRIDIS = [[float(p), c] for p, c in get_colorscale("Viridis")]  # the form plotly.py validates "Viridis" to


def _variant_label(name: str) -> str:
    from sam_core.registry import VARIANTS

    return VARIANTS[name].label if name in VARIANTS else name


# ------------------------------------------------------------------------------------------- helpers
def log_levels(Z: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Map f to log10(f − min + δ) so evenly spaced contours of the result are log-spaced in f.

    Returns ``(Zt, zmin, delta)``; invert with ``10**t − delta + zmin``. δ = 1e-3 of the range.
    """
    finite = np.isfinite(Z)
    if not finite.any():
        return np.zeros_like(Z), 0.0, 1.0
    zmin, zmax = float(Z[finite].min()), float(Z[finite].max())
    delta = max((zmax - zmin) * 1e-3, 1e-12)
    Zt = np.log10(np.where(finite, Z, zmax) - zmin + delta)
    return Zt, zmin, delta


def _fmt(v: float) -> str:
    if v == 0 or not math.isfinite(v):
        return f"{v:g}"
    return f"{v:.2g}" if abs(v) < 1e-2 or abs(v) >= 1e4 else f"{v:.3g}"


def frame_indices(n_steps: int, n_frames: int = 60) -> np.ndarray:
    """≤ n_frames + 1 step indices from 0 to n_steps (the animation's frames)."""
    return np.unique(np.linspace(0, max(0, n_steps), min(n_steps, n_frames) + 1).round().astype(int))


def _typed(a: np.ndarray) -> dict:
    """A float64 (or integer) array as plotly.js's typed-array spec, the form plotly.py ≥ 6 ships a numpy array in;
    given in this form, plotly.py passes it through instead of inspecting and copying it, which was most
    of the time an animation's frames took to build (benchmarks/bench_race.py)."""
    a = np.asarray(a)
    kind = "<f8"
    if np.issubdtype(a.dtype, np.integer):  # step numbers: the narrowest integer type that holds them, as plotly.py
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
        kind = next(k for k in ("<i1", "<i2", "<i4") if np.iinfo(k).min <= lo and hi <= np.iinfo(k).max)
    return {"dtype": kind[1:], "bdata": base64.b64encode(np.ascontiguousarray(a, dtype=kind).tobytes()).decode("ascii")}


def _dynamic_xy(tracks, k: int, show_ball: bool, idx: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Coordinates of the animated traces at step k: one trail per track (through the frame steps
    ``idx`` ≤ k, so frames stay small), then the current iterates, the ascent segments w → w+e
    (NaN-separated), and the ρ-balls of radius ‖e‖ around w. Always ``len(tracks) + 3`` entries."""
    out, cur_xy, seg, balls = [], [], [], []
    gap = np.full((1, 2), np.nan)
    for t in tracks:
        j = min(k, t.steps)
        sel = np.append(idx[idx < j], j) if idx is not None else np.arange(j + 1)
        out.append((t.w[sel, 0], t.w[sel, 1]))
        cur = t.w[j]
        cur_xy.append(cur)
        if j < t.steps and t.passes > 1:
            a = t.ascent[j]
            seg += [cur[None], a[None], gap]
            r = float(np.linalg.norm(a - cur))
            if show_ball and r > 0:
                balls += [cur + r * _CIRCLE, gap]
    for parts in (cur_xy, seg, balls):
        arr = np.concatenate([np.reshape(p, (-1, 2)) for p in parts]) if parts else np.zeros((0, 2))
        out.append((arr[:, 0], arr[:, 1]))
    return out


def _dynamic_traces(tracks, k: int, show_ball: bool, idx: np.ndarray | None = None) -> list[dict]:
    """The animated traces with their styles (the frames then only move their coordinates), as plotly dicts."""
    xy = _dynamic_xy(tracks, k, show_ball, idx)
    out = []
    for t, (x, y) in zip(tracks, xy):
        out.append(
            dict(
                type="scatter",
                x=_typed(x),
                y=_typed(y),
                mode="lines",
                line=dict(color=variant_color(t.variant), width=2.5, dash=variant_dash(t.variant)),
                legendgroup=t.variant,
                showlegend=False,
                hoverinfo="skip",
            )
        )
    (cx, cy), (sx, sy), (bx, by) = xy[len(tracks) :]
    out.append(
        dict(
            type="scatter",
            x=_typed(cx),
            y=_typed(cy),
            mode="markers",
            showlegend=False,
            text=[t.name for t in tracks],
            marker=dict(color=[variant_color(t.variant) for t in tracks], size=11, line=dict(color="white", width=1.5)),
            hovertemplate="%{text}<br>x=%{x:.4g}, y=%{y:.4g}<extra></extra>",
        )
    )
    out.append(
        dict(
            type="scatter",
            x=_typed(sx),
            y=_typed(sy),
            mode="lines+markers",
            showlegend=False,
            line=dict(color="white", width=1, dash="dot"),
            marker=dict(color="white", size=7, symbol="circle-open", line=dict(width=2)),
            hovertemplate="ascent point w+e<br>x=%{x:.4g}, y=%{y:.4g}<extra></extra>",
        )
    )
    out.append(
        dict(
            type="scatter",
            x=_typed(bx),
            y=_typed(by),
            mode="lines",
            showlegend=False,
            hoverinfo="skip",
            fill="toself",
            fillcolor="rgba(255,255,255,0.2)",
            line=dict(color="white", width=1),
        )
    )
    return out


# ------------------------------------------------------------------------------------------- contour
def _png(rgb: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 array as PNG (stdlib zlib only: no imaging dependency)."""
    h, w, _ = rgb.shape

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + row.tobytes() for row in np.ascontiguousarray(rgb, dtype=np.uint8))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


def banded_image(Zt: np.ndarray, n_bands: int = 28, colorscale: str = "Viridis") -> np.ndarray:
    """Filled-contour picture of ``Zt`` (rows = y ascending): ``n_bands`` evenly spaced bands of the
    colour scale with a darker pixel where the band changes (the contour lines). (H, W, 3) uint8,
    first row = top of the picture."""
    lo, hi = float(np.nanmin(Zt)), float(np.nanmax(Zt))
    band = np.clip(((Zt - lo) / max(hi - lo, 1e-300) * n_bands).astype(int), 0, n_bands - 1)
    cols = sample_colorscale(colorscale, list((np.arange(n_bands) + 0.5) / n_bands), colortype="tuple")
    lut = (np.array(cols) * 255 if max(max(c) for c in cols) <= 1 else np.array(cols)).astype(np.float64)
    rgb = lut[band]  # (H, W, 3)
    edge = np.zeros(band.shape, dtype=bool)
    edge[1:, :] |= band[1:, :] != band[:-1, :]
    edge[:, 1:] |= band[:, 1:] != band[:, :-1]
    rgb[edge] *= 0.8
    return np.clip(rgb[::-1], 0, 255).astype(np.uint8)


def _map_background(landscape: Landscape, grid_n: int) -> tuple[str, float, float, np.ndarray, list[str]]:
    """The map's filled-contour picture (a PNG data URI) and its colour bar (range, ticks, tick labels), drawn
    once per landscape object: every slider change redraws the race over the same function (~25 ms)."""
    memo = landscape.__dict__.setdefault("_samlab_map_background", {})
    if grid_n not in memo:
        _, _, Z = landscape.grid(grid_n)
        Zt, zmin, delta = log_levels(Z)
        tmin, tmax = float(Zt.min()), float(Zt.max())
        ticks = np.linspace(tmin, tmax, 6)
        png = "data:image/png;base64," + base64.b64encode(_png(banded_image(Zt))).decode("ascii")
        memo[grid_n] = (png, tmin, tmax, ticks, [_fmt(10**t - delta + zmin) for t in ticks])
    return memo[grid_n]


def contour_figure(
    landscape: Landscape,
    tracks: Sequence = (),
    *,
    step: int | None = None,
    show_ball: bool = True,
    animate: bool = True,
    n_frames: int = 60,
    grid_n: int = 400,
    click_grid: int = 25,
    x_axis: str = "step",
    height: int = 620,
    title: str | None = None,
) -> go.Figure:
    """The race on the contour map (see module docstring). ``step`` = the frame shown first
    (default: the end). ``click_grid`` > 0 adds an invisible n×n layer of points that shows f on
    hover and that a click (``st.plotly_chart(on_select=...)``) can select to set the start point.

    The filled contours (log-spaced levels) are a background picture in the layout, not a trace:
    plotly.js hides contour/heatmap traces while an animation plays (plotly.js issues #4491, #4596)
    or, with ``redraw``, re-renders them every frame and flickers.

    Built as plain plotly dicts (arrays as typed-array specs) and wrapped without plotly.py's validation:
    validating every property of ~20 traces and 61 frames was ~60 % of building the map, which a slider
    change pays on the server (tests/test_figure_cache.py checks that plotly.py accepts the result as it is)."""
    png, tmin, tmax, ticks, ticktext = _map_background(landscape, grid_n)
    (x0, x1), (y0, y1) = landscape.domain
    data: list[dict] = [
        dict(  # carries the colour bar of the picture
            type="scatter",
            x=[x0],
            y=[y0],
            mode="markers",
            showlegend=False,
            hoverinfo="skip",
            name="f",
            marker=dict(
                size=0.1,
                opacity=0,
                color=[tmin],
                cmin=tmin,
                cmax=tmax,
                colorscale=_VIRIDIS,
                showscale=True,
                colorbar=dict(
                    title=dict(text="f"),
                    tickvals=_typed(ticks),
                    ticktext=ticktext,
                    len=0.8,
                ),
            ),
        )
    ]
    if click_grid:
        # 25², not 41²: each point is an SVG node that plotly styles and the page walks on every redraw; the
        # 1 681 points of 41² cost a slider change ~0.2 s in Chromium on a 2-core box (p50 1.09 → 0.86 s,
        # benchmarks/bench_browser.py). A click snaps to a grid point (a box selection starts at its centre,
        # the x₀/y₀ boxes take any value); a heatmap cannot be selected and WebGL points cost about as much.
        gx, gy = np.meshgrid(np.linspace(x0, x1, click_grid), np.linspace(y0, y1, click_grid))
        gw = np.stack((gx.ravel(), gy.ravel()), -1)
        data.append(
            dict(
                type="scatter",
                x=_typed(gw[:, 0]),
                y=_typed(gw[:, 1]),
                mode="markers",
                name="click to start here",
                marker=dict(size=9, color="rgba(0,0,0,0.003)"),
                showlegend=False,
                customdata=_typed(landscape.value(gw)),
                hovertemplate="(%{x:.3g}, %{y:.3g}) f=%{customdata:.4g}<br>click: start here<extra></extra>",
                selected=dict(marker=dict(color="rgba(0,0,0,0.003)")),
                unselected=dict(marker=dict(opacity=1)),
            )
        )
    for pts, name, sym, col in (
        (landscape.minima, "minimum", "star", "white"),
        (landscape.saddles, "saddle", "x", "#ff4d4d"),
        (landscape.maxima, "maximum", "triangle-up", "#ffb000"),
    ):
        if len(pts):
            data.append(
                dict(
                    type="scatter",
                    x=_typed(pts[:, 0]),
                    y=_typed(pts[:, 1]),
                    mode="markers",
                    name=name,
                    marker=dict(
                        symbol=sym, size=13 if len(pts) < 20 else 7, color=col, line=dict(color="black", width=1)
                    ),
                    hovertemplate=name + " (%{x:.4g}, %{y:.4g})<extra></extra>",
                )
            )
    if tracks:
        s0 = tracks[0].w[0]
        data.append(
            dict(
                type="scatter",
                x=[float(s0[0])],
                y=[float(s0[1])],
                mode="markers",
                name="start",
                marker=dict(symbol="circle-open", size=14, color="white", line=dict(width=3)),
                hovertemplate="start (%{x:.4g}, %{y:.4g})<extra></extra>",
            )
        )
    for t in tracks:  # faint full paths (on a white halo: SGD is black) + legend entries + end markers
        c = variant_color(t.variant)
        px, py = _typed(t.w[:, 0]), _typed(t.w[:, 1])
        data.append(
            dict(
                type="scatter",
                x=px,
                y=py,
                mode="lines",
                legendgroup=t.variant,
                showlegend=False,
                line=dict(color="rgba(255,255,255,0.55)", width=4),
                hoverinfo="skip",
            )
        )
        data.append(
            dict(
                type="scatter",
                x=px,
                y=py,
                mode="lines",
                name=t.label,
                legendgroup=t.variant,
                line=dict(color=c, width=1.2, dash=variant_dash(t.variant)),
                opacity=0.55,
                customdata=_typed(np.arange(len(t.w))),
                hovertemplate=f"{t.name}<br>step %{{customdata}}<br>x=%{{x:.4g}}, y=%{{y:.4g}}<extra></extra>",
            )
        )
        end = [float(t.w[-1, 0])], [float(t.w[-1, 1])]
        if t.diverged_step is not None:
            data.append(
                dict(
                    type="scatter",
                    x=end[0],
                    y=end[1],
                    mode="markers+text",
                    legendgroup=t.variant,
                    showlegend=False,
                    marker=dict(symbol="x-thin", size=16, color=c, line=dict(width=3, color=c)),
                    text=[f"diverged at step {t.diverged_step}"],
                    textposition="top center",
                    textfont=dict(color=c),
                    hoverinfo="text",
                )
            )
        else:
            data.append(
                dict(
                    type="scatter",
                    x=end[0],
                    y=end[1],
                    mode="markers",
                    legendgroup=t.variant,
                    showlegend=False,
                    marker=dict(symbol="square", size=8, color=c),
                    hovertemplate=f"{t.name} end<br>x=%{{x:.4g}}, y=%{{y:.4g}}<extra></extra>",
                )
            )
    n_static = len(data)
    max_steps = max((t.steps for t in tracks), default=0)
    k0 = max_steps if step is None else int(np.clip(step, 0, max_steps))
    idx = frame_indices(max_steps, n_frames)
    if tracks:
        data += _dynamic_traces(tracks, k0, show_ball, idx)
    animated = bool(tracks and animate and max_steps > 0)
    layout = dict(
        images=[
            dict(
                source=png,
                xref="x",
                yref="y",
                x=x0,
                y=y1,
                sizex=x1 - x0,
                sizey=y1 - y0,
                sizing="stretch",
                layer="below",
            )
        ],
        height=height,
        xaxis=dict(range=[x0, x1], title=dict(text="x"), constrain="domain", showgrid=False, zeroline=False),
        yaxis=dict(
            range=[y0, y1],
            title=dict(text="y"),
            scaleanchor="x",
            scaleratio=1,
            constrain="domain",
            showgrid=False,
            zeroline=False,
        ),
        uirevision=landscape.key,
        clickmode="event+select",
        dragmode="pan",
        hovermode="closest",
        # a click selects the grid point nearest to it; at the default 20 px a click in the middle of a grid cell
        # (cells are ~30 px wide on a laptop screen) reached none and did nothing
        hoverdistance=50 if click_grid else 20,
    )
    # legend under the map (and under the play/slider row when animated): on top, the hover toolbar covered it
    layout.update(legend_below_layout(title))
    names = [t["name"] for t in data if t.get("name") and t.get("showlegend", True)]
    layout["margin"] = map_margins(names, animated=animated, title=title)
    frames = []
    if animated:
        dyn = list(range(n_static, n_static + len(tracks) + 3))
        frames = [
            dict(
                name=str(k),
                traces=dyn,
                data=[
                    dict(type="scatter", x=_typed(x), y=_typed(y))
                    for x, y in _dynamic_xy(tracks, int(k), show_ball, idx)
                ],
            )
            for k in idx
        ]
        unit = "evaluation" if x_axis == "evals" else "step"
        layout["updatemenus"] = [
            dict(
                type="buttons",
                direction="left",
                x=0.0,
                y=-0.1,
                xanchor="left",
                yanchor="top",
                pad=dict(t=0),
                showactive=False,
                buttons=[
                    dict(
                        label="▶ play",
                        method="animate",
                        args=[
                            None,
                            dict(
                                frame=dict(duration=80, redraw=False),
                                fromcurrent=True,
                                transition=dict(duration=0),
                                mode="immediate",
                            ),
                        ],
                    ),
                    dict(
                        label="■ pause",
                        method="animate",  # ⏸ is missing from common fonts
                        args=[
                            [None],
                            dict(frame=dict(duration=0, redraw=False), mode="immediate", transition=dict(duration=0)),
                        ],
                    ),
                ],
            )
        ]
        layout["sliders"] = [
            dict(
                active=int(np.searchsorted(idx, k0).clip(0, len(idx) - 1)),
                x=0.2,
                y=-0.1,
                len=0.8,
                yanchor="top",
                pad=dict(t=0, b=0),
                ticklen=3,
                currentvalue=dict(prefix=f"{unit} ", xanchor="right", font=dict(size=12, color="#444")),
                font=dict(color="rgba(0,0,0,0)"),  # no tick labels under every frame: the current value says it
                steps=[
                    dict(
                        label=str(int(k)),
                        method="animate",
                        args=[
                            [str(int(k))],
                            dict(mode="immediate", frame=dict(duration=0, redraw=False), transition=dict(duration=0)),
                        ],
                    )
                    for k in idx
                ],
            )
        ]
    return go.Figure(dict(data=data, layout=layout, frames=frames), _validate=False)


def map_margins(legend: Sequence[str], *, animated: bool, title: str | None = None) -> dict:
    """The race map's margins, given outright (``autoexpand=False``). Left to grow them itself, plotly.js
    draws the map, measures the colour bar, the axes, the play/slider row and the legend, then draws it all
    a second time: in Chromium on a 2-core box that second pass was more than half of the map's
    ``newPlot`` (435 → 157 ms at 840 px, 833 → 250 ms at 480 px). Reserved: the y tick labels (left), the
    colour bar and its tick labels (right, up to "2.51e+03"), the x axis, the play/slider row (~110 px
    under the plot) and the rows of the legend ``legend`` (its entries' names; it sits at the bottom,
    growing up) as wrapped at 480 px, plus one spare row. The map keeps its aspect ratio, so on a wide
    window the reserve is space beside the map, not a smaller map."""
    rows = legend_rows(legend, 480) + 1
    return dict(l=60, r=135, t=40 if title else 17, b=(120 if animated else 50) + 24 * rows, autoexpand=False)


# ------------------------------------------------------------------------------------------- 3-D
def surface_figure(
    landscape: Landscape, tracks: Sequence = (), *, grid_n: int = 90, clip_quantile: float = 0.95, height: int = 620
) -> go.Figure:
    """3-D surface, clipped above the ``clip_quantile`` of f on the domain (steep walls hide the valley)."""
    xs, ys, Z = landscape.grid(grid_n)
    finite = Z[np.isfinite(Z)]
    zlo = float(finite.min()) if finite.size else 0.0
    zhi = float(np.quantile(finite, clip_quantile)) if finite.size else 1.0
    Zc = np.clip(np.nan_to_num(Z, nan=zhi, posinf=zhi, neginf=zlo), zlo, zhi)
    fig = go.Figure(
        go.Surface(
            x=xs,
            y=ys,
            z=Zc,
            colorscale="Viridis",
            opacity=0.9,
            showscale=False,
            name="f",
            hovertemplate="x=%{x:.3f}, y=%{y:.3f}<br>f=%{z:.4g}<extra></extra>",
        )
    )
    lift = 0.01 * (zhi - zlo)
    for t in tracks:
        z = np.clip(t.loss, zlo, zhi) + lift
        fig.add_trace(
            go.Scatter3d(
                x=t.w[:, 0],
                y=t.w[:, 1],
                z=z,
                mode="lines",
                name=t.label,
                line=dict(color=variant_color(t.variant), width=5),
            )
        )
    for pts, name, sym, col in (
        (landscape.minima, "minimum", "diamond", "white"),
        (landscape.saddles, "saddle", "x", "red"),
    ):
        if len(pts) and len(pts) < 50:
            z = np.clip(landscape.value(pts), zlo, zhi) + lift
            fig.add_trace(
                go.Scatter3d(
                    x=pts[:, 0],
                    y=pts[:, 1],
                    z=z,
                    mode="markers",
                    name=name,
                    marker=dict(symbol=sym, size=5, color=col, line=dict(color="black", width=1)),
                )
            )
    (x0, x1), (y0, y1) = landscape.domain
    fig.update_layout(
        height=height,
        margin=dict(l=0, r=0, t=10, b=0),
        uirevision=landscape.key + "3d",
        scene=dict(
            aspectmode="cube",  # x, y and f are different units: the preview (plots.preview) draws a cube too
            xaxis=dict(range=[x0, x1], title="x"),
            yaxis=dict(range=[y0, y1], title="y"),
            zaxis=dict(title="f", range=[zlo, zhi + 2 * lift]),
        ),
    )
    return legend_below(fig, None, top=10, left=0, right=0, bottom=10)


# ------------------------------------------------------------------------------------------- metrics
def _clip_mark(panel: str) -> dict:
    """A small 'clipped' mark at the top right of one panel (the page's caption says what and why)."""
    return dict(
        text="axis clipped ▲",
        showarrow=False,
        xref=f"x{panel} domain",
        yref=f"y{panel} domain",
        x=1.0,
        y=1.0,
        xanchor="right",
        yanchor="top",
        font=dict(size=10, color="grey"),
    )


@functools.lru_cache(maxsize=4)
def _metrics_grid(loss_title: str) -> str:
    """The metric panels' layout (2 × 2 panels sharing the x axis, their titles) as JSON: make_subplots and
    its validation run once per title, each figure decodes its own copy."""
    # short titles: four panels share a narrow column on the page, long ones ran into each other
    layout = make_subplots(
        rows=2,
        cols=2,
        shared_xaxes="all",
        vertical_spacing=0.14,
        horizontal_spacing=0.12,
        subplot_titles=(loss_title, "‖g‖", "γ_t", "dist. to minimum"),
    ).to_dict()["layout"]
    layout.pop("template", None)
    return json.dumps(layout)


def metrics_figure(
    tracks: Sequence,
    *,
    x_axis: str = "step",
    current: int | None = None,
    f_star: float | None = None,
    height: int = 520,
) -> go.Figure:
    """Loss (minus f* when known, log), ‖g‖ (log), γ_t and distance to the nearest minimum (log) vs
    step or gradient evaluations; the four panels share the x axis; ``current`` draws a marker line.
    Built as plain plotly dicts like ``contour_figure`` (panels: "" = loss, "2" = ‖g‖, "3" = γ_t, "4" = dist.)."""
    sub = "f − f*" if f_star is not None else "loss f"
    layout = json.loads(_metrics_grid(sub))
    layout.setdefault("annotations", [])
    data: list[dict] = []
    xlab = "gradient evaluations" if x_axis == "evals" else "step"
    for t in tracks:
        c, dash = variant_color(t.variant), variant_dash(t.variant)
        x_all = np.asarray(t.evals) if x_axis == "evals" else np.arange(len(t.w))
        loss = t.loss - f_star if f_star is not None else t.loss
        if f_star is not None:  # floor at float64 resolution: below it the difference is rounding
            loss = np.maximum(loss, 1e-16 * max(1.0, abs(f_star)))
        per_panel = ("", x_all, loss), ("2", x_all[:-1], t.grad_norm), ("3", x_all[:-1], t.gamma), ("4", x_all, t.dist)
        for panel, x, y in per_panel:
            data.append(
                dict(
                    type="scatter",
                    x=_typed(x),
                    y=_typed(np.asarray(y, dtype=float)),
                    name=t.label,
                    **({} if panel == "" else {"showlegend": False}),
                    legendgroup=t.variant,
                    line=dict(color=c, dash=dash, width=1.6),
                    mode="lines",
                    xaxis=f"x{panel}",
                    yaxis=f"y{panel}",
                )
            )
    notes = []
    panels = [("2", "‖g‖", [t.grad_norm for t in tracks]), ("4", "dist.", [t.dist for t in tracks])]
    if f_star is not None:
        panels.insert(0, ("", sub, [np.maximum(t.loss - f_star, 1e-16 * max(1.0, abs(f_star))) for t in tracks]))
    for panel, name, ys in panels:
        axis = layout[f"yaxis{panel}"]
        axis["type"] = "log"
        rng, note = log_axis_range(ys, [y[0] for y in ys if len(y)])
        if rng is not None:
            axis["range"] = rng
        if note:
            notes.append(f"{name}: {note}")
            layout["annotations"].append(_clip_mark(panel))
        if name == "dist." and all(not np.isfinite(np.asarray(y, dtype=float)).any() for y in ys):
            layout["annotations"].append(
                dict(
                    text="no known minimum<br>for this function",
                    showarrow=False,
                    xref=f"x{panel} domain",
                    yref=f"y{panel} domain",
                    x=0.5,
                    y=0.5,
                    font=dict(color="grey"),
                )
            )
    gam = [np.asarray(t.gamma, dtype=float) for t in tracks]
    gmax = max((float(np.nanmax(np.abs(g[np.isfinite(g)]))) for g in gam if np.isfinite(g).any()), default=1.0)
    if gmax > 3.0:  # γ_t of a diverging run: keep the others' γ ∈ (0, ~1.5] readable
        layout["yaxis3"]["range"] = [0.0, 3.0]
        notes.append(f"γ_t: values above 3 not shown (up to {gmax:.2g})")
        layout["annotations"].append(_clip_mark("3"))
    layout["meta"] = {"clipped": notes}  # the page says what was clipped in a caption under the chart
    for panel in ("3", "4"):
        layout[f"xaxis{panel}"]["title"] = dict(text=xlab)
    if current is not None and tracks:  # (plotly.py's add_vline leaves out panels without data)
        layout["shapes"] = [
            dict(
                type="line",
                x0=current,
                x1=current,
                xref=f"x{panel}",
                y0=0,
                y1=1,
                yref=f"y{panel} domain",
                line=dict(color="grey", dash="dot", width=1),
            )
            for panel in ("", "2", "3", "4")
        ]
    layout.update(height=height, hovermode="x unified")
    layout.update(legend_below_layout(None, top=40, left=10, right=10, bottom=10))
    layout["margin"] = metrics_margins([t.label for t in tracks])
    return go.Figure(dict(data=data, layout=layout), _validate=False)


def metrics_margins(legend: Sequence[str]) -> dict:
    """The metric panels' margins, given outright for the reason ``map_margins`` gives (Chromium, 420 px:
    ``newPlot`` ~150 → ~60–90 ms). Reserved: log-axis tick labels such as "1e−10" (left), the panel titles
    (top), the x axis title and the rows of the legend ``legend`` as wrapped in the ~360 px column beside
    the map (one for SGD, SAM and SSAM; two once one says "diverged at step …")."""
    return dict(l=58, r=20, t=40, b=57 + 23 * legend_rows(legend, 360), autoexpand=False)


# ------------------------------------------------------------------------------------------- sweeps
def sweep_figure(
    df: pd.DataFrame,
    gd_bounds: Sequence[float] = (),
    *,
    metric: str = "success_rate",
    log_x: bool = True,
    height: int = 420,
    title: str | None = None,
) -> go.Figure:
    """``metric`` vs lr per variant (fixed colours); one panel per ρ value when the table has several
    (SGD, which has no ρ, is drawn in every panel); the GD bounds 2/λ_max as dashed verticals."""
    rhos = sorted(r for r in df["rho"].dropna().unique()) if "rho" in df else []
    panels = rhos if len(rhos) > 1 else [None]
    fig = make_subplots(
        rows=1,
        cols=len(panels),
        shared_yaxes=True,
        subplot_titles=[f"ρ = {r:g}" for r in panels] if panels[0] is not None else None,
    )
    shown = set()
    for j, r in enumerate(panels, start=1):
        part = df if r is None else df[(df["rho"] == r) | df["rho"].isna()]
        for v, g in part.groupby("variant", sort=False):
            g = g.sort_values("lr")
            y = g[metric].to_numpy(dtype=float)
            fig.add_trace(
                go.Scatter(
                    x=g["lr"],
                    y=np.where(np.isfinite(y), y, np.nan),
                    mode="lines+markers",
                    name=_variant_label(v),
                    legendgroup=v,
                    showlegend=v not in shown,
                    line=dict(color=variant_color(v), dash=variant_dash(v)),
                    marker=dict(size=5),
                    hovertemplate=f"{_variant_label(v)}<br>lr=%{{x:.4g}}<br>{metric}=%{{y:.3g}}<extra></extra>",
                ),
                1,
                j,
            )
            shown.add(v)
        for i, b in enumerate(gd_bounds):
            fig.add_vline(x=b, line=dict(color="#555", dash="dash", width=1.2), row=1, col=j)
            if i == 0:  # annotations on a log axis take log10 of the position (shapes take the value)
                fig.add_annotation(
                    x=math.log10(b) if log_x else b,
                    y=1.0,
                    yref="y domain",
                    row=1,
                    col=j,
                    text=f"GD bound 2/λ_max = {b:.3g}",
                    showarrow=False,
                    xanchor="left",
                    yanchor="top",
                    font=dict(size=10, color="#555"),
                )  # inside: clear of ρ titles
    ylab = {
        "success_rate": "rate of successful training",
        "diverged_rate": "diverged fraction",
        "median_distance": "median distance to minimum",
    }.get(metric, metric)
    fig.update_xaxes(title_text="learning rate η", type="log" if log_x else "linear")
    fig.update_yaxes(title_text=ylab, col=1)
    if metric in ("success_rate", "diverged_rate"):
        fig.update_yaxes(range=[-0.03, 1.05])
    elif metric == "median_distance":
        fig.update_yaxes(type="log")
    fig.update_layout(height=height)
    return legend_below(fig, title, top=70 if title else 40, left=10, right=10, bottom=10)


def heatmap_figure(
    df: pd.DataFrame,
    param: str,
    *,
    metric: str = "success_rate",
    gd_bound: float | None = None,
    height: int = 440,
    title: str | None = None,
) -> go.Figure:
    """lr × ``param`` map of ``metric`` from :func:`sam_core.landscape.lr_sweep.sweep_grid`; log10(lr) on the x axis."""
    lrs = np.sort(df["lr"].unique())
    vals = np.sort(df[param].unique())
    table = df.pivot_table(index=param, columns="lr", values=metric, aggfunc="first").reindex(index=vals, columns=lrs)
    z = table.to_numpy(dtype=float)
    x = np.log10(lrs)
    log_y = param == "rho" and vals.min() > 0 and len(vals) > 2 and vals.max() / vals.min() > 20
    y = np.log10(vals) if log_y else vals
    zmax = 1.0 if metric in ("success_rate", "diverged_rate") else None
    fig = go.Figure(
        go.Heatmap(
            x=x,
            y=y,
            z=np.where(np.isfinite(z), z, np.nan),
            zmin=0,
            zmax=zmax,
            colorscale="Viridis" if metric != "median_distance" else "Viridis_r",
            colorbar=dict(title=metric.replace("_", " ")),
            customdata=np.stack(np.meshgrid(lrs, vals), -1),
            hovertemplate="lr=%{customdata[0]:.4g}<br>" + param + "=%{customdata[1]:.4g}<br>%{z:.3g}<extra></extra>",
        )
    )
    tick = np.unique(np.round(np.linspace(x.min(), x.max(), min(6, len(x))), 2))
    fig.update_xaxes(title_text="learning rate η", tickvals=tick, ticktext=[_fmt(10**t) for t in tick])
    if log_y:
        ty = np.unique(np.round(np.linspace(y.min(), y.max(), min(6, len(y))), 2))
        fig.update_yaxes(title_text=param, tickvals=ty, ticktext=[_fmt(10**t) for t in ty])
    else:
        fig.update_yaxes(title_text={"rho": "ρ", "lam": "λ"}.get(param, param))
    if gd_bound is not None and x.min() <= math.log10(gd_bound) <= x.max():
        fig.add_vline(
            x=math.log10(gd_bound),
            line=dict(color="white", dash="dash"),
            annotation_text=f"2/λ_max = {gd_bound:.3g}",
            annotation_font_color="white",
        )
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40 if title else 10, b=10), title=title)
    return fig


def basin_figure(maps: Sequence, landscape: Landscape, *, height: int = 420) -> go.Figure:
    """One panel per variant: colour = index of the minimum reached (grey: none within tol, black: diverged)."""
    k = len(landscape.minima)
    cols = max(1, len(maps))
    fig = make_subplots(
        rows=1, cols=cols, subplot_titles=[_variant_label(m.variant) for m in maps] or None, horizontal_spacing=0.04
    )
    palette = ["#000000", "#BBBBBB"] + [BASIN_COLORS[i % len(BASIN_COLORS)] for i in range(k)]
    # label -2..k-1 -> colour index 0..k+1, drawn with a discrete colourscale
    n = len(palette)
    scale = []
    for i, c in enumerate(palette):
        scale += [[i / n, c], [(i + 1) / n, c]]
    xs_c, ys_c, Z = landscape.grid(80)
    Zt, _, _ = log_levels(Z)
    for j, m in enumerate(maps, start=1):
        z = m.label + 2
        names = np.array(
            ["diverged", "no minimum within tol"]
            + [f"minimum {i} ({p[0]:.3g}, {p[1]:.3g})" for i, p in enumerate(landscape.minima)]
        )
        fig.add_trace(
            go.Heatmap(
                x=m.xs,
                y=m.ys,
                z=z,
                zmin=-0.5,
                zmax=n - 0.5,
                colorscale=scale,
                showscale=False,
                customdata=names[z],
                hovertemplate="start (%{x:.3g}, %{y:.3g})<br>→ %{customdata}<extra></extra>",
            ),
            1,
            j,
        )
        fig.add_trace(
            go.Contour(
                x=xs_c,
                y=ys_c,
                z=Zt,
                ncontours=15,
                showscale=False,
                hoverinfo="skip",
                showlegend=False,
                contours=dict(coloring="none"),
                line=dict(color="rgba(255,255,255,0.5)", width=0.7),
            ),
            1,
            j,
        )
        if k:
            fig.add_trace(
                go.Scatter(
                    x=landscape.minima[:, 0],
                    y=landscape.minima[:, 1],
                    mode="markers",
                    showlegend=False,
                    marker=dict(
                        symbol="star",
                        size=11 if k < 20 else 6,
                        color=[BASIN_COLORS[i % len(BASIN_COLORS)] for i in range(k)],
                        line=dict(color="white", width=1.5),
                    ),
                    hoverinfo="skip",
                ),
                1,
                j,
            )
        fig.update_xaxes(range=[m.xs[0], m.xs[-1]], row=1, col=j)
        fig.update_yaxes(range=[m.ys[0], m.ys[-1]], row=1, col=j, scaleanchor=f"x{'' if j == 1 else j}")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def figure_html(fig: go.Figure) -> str:
    """A standalone HTML page of the figure (plotly.js embedded, works offline)."""
    return fig.to_html(include_plotlyjs=True, full_html=True, config=MODEBAR_CONFIG)
