"""A plotly figure's picture as a small static SVG, drawn on the server in milliseconds.

A page opened in a fresh browser waits ~1.5 s for plotly.js (Streamlit loads its 4.7 MB chunk when the
first chart arrives, then parses it and draws) before anything of a figure is seen. The dashboard sends
this SVG of the same figure with the page's first elements and hides it as soon as the interactive chart
has drawn over it (``ui.common.chart_with_preview``), so the picture is there ~1 s after a page opens.

It draws what the labs' opening figures are made of, from the figure itself (not a second rendering
path per figure): layout images on the data axes (the landscape map's contour picture), scatter traces
(lines with NaN breaks, dash and opacity; markers: circle, square, diamond, star, triangle, x; text at
markers; ``fill="toself"``), line shapes (``add_hline``/``add_vline``), linear and log axes with
``scaleanchor``, the title and a legend row; and a 3-D scene's surface with its line and marker traces,
seen from plotly's default camera (``_scene``). Anything else (hover, colour bars, annotations, other
subplots, animation frames) is left to the interactive figure. No streamlit here.
"""

from __future__ import annotations

import base64
import html
import itertools
import math
from typing import Any

import numpy as np

from sam_core.plots.style import legend_entry_width

_DASH = {"dot": "2,3", "dash": "6,4", "dashdot": "6,3,2,3", "longdash": "10,4", "longdashdot": "10,3,2,3"}
_IDS = itertools.count()
MAX_POINTS = 1500  # per line: more than a preview can show at its size


def _font(size: int = 11, fill: str = "#444") -> str:
    return f"font-family='sans-serif' font-size='{size}' fill='{fill}'"


_FONT = _font()


def _arr(v) -> np.ndarray | None:
    """A trace's coordinate as float64 (plain sequences, numpy arrays, plotly's typed-array dicts)."""
    if v is None:
        return None
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v.get("dtype", "f8")))
        return a.astype(float)
    try:
        return np.asarray(v, dtype=float).ravel()
    except (TypeError, ValueError):  # categorical or date axes: not drawn in a preview
        return None


def _alpha(color) -> float:
    """The alpha of an ``rgba(...)`` colour (1 for anything else)."""
    if isinstance(color, str) and color.startswith("rgba("):
        try:
            return float(color[5:-1].split(",")[3])
        except (IndexError, ValueError):
            return 1.0
    return 1.0


def nice_ticks(lo: float, hi: float, n: int = 5) -> np.ndarray:
    """About ``n`` round tick values in [lo, hi] (steps of 1, 2 or 5 × 10^k)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return np.array([lo]) if math.isfinite(lo) else np.array([])
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return np.arange(first, hi + step * 1e-9, step)


def _tick_label(v: float, log: bool) -> str:
    if log:
        return f"{10.0 ** float(v):g}" if abs(v) < 4 else f"1e{int(round(v))}"
    return f"{v:.4g}" if abs(v) >= 1e-12 else "0"


class _Axis:
    def __init__(self, ax, data: list[np.ndarray]):
        self.log = getattr(ax, "type", None) == "log"
        self.title = getattr(getattr(ax, "title", None), "text", None) or ""
        rng = getattr(ax, "range", None)
        if rng is not None and None not in rng:
            self.lo, self.hi = float(rng[0]), float(rng[1])  # plotly: log axes take log10 units
        else:
            vals = [self.t(d) for d in data if d is not None and d.size]
            vals = np.concatenate(vals) if vals else np.array([])
            vals = vals[np.isfinite(vals)]
            lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 1.0)
            pad = 0.05 * (hi - lo) if hi > lo else 0.5
            self.lo, self.hi = lo - pad, hi + pad

    def t(self, v: np.ndarray) -> np.ndarray:
        if not self.log:
            return v
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)


def _points(xs: np.ndarray, ys: np.ndarray) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))


def _marker(sym: str, x: float, y: float, size: float, color: str, edge: str) -> str:
    r = max(size, 2.0) / 2
    open_ = sym.endswith("-open")
    sym = sym.removesuffix("-open")
    fill, stroke = ("none", color) if open_ else (color, edge)
    sw = 2 if open_ else 1
    if sym == "square":
        return f"<rect x='{x - r:.1f}' y='{y - r:.1f}' width='{2 * r:.1f}' height='{2 * r:.1f}' fill='{fill}'/>"
    if sym in ("x", "x-thin", "cross"):
        a = r * 0.8
        d = f"M{x - a:.1f},{y - a:.1f}L{x + a:.1f},{y + a:.1f}M{x - a:.1f},{y + a:.1f}L{x + a:.1f},{y - a:.1f}"
        return f"<path d='{d}' stroke='{color}' stroke-width='2.5'/>"
    if sym in ("star", "diamond", "triangle-up"):
        if sym == "star":
            ang = np.arange(10) * np.pi / 5 - np.pi / 2
            rad = np.where(np.arange(10) % 2 == 0, r * 1.1, r * 0.45)
        elif sym == "diamond":
            ang, rad = np.arange(4) * np.pi / 2, np.full(4, r)
        else:
            ang, rad = np.arange(3) * 2 * np.pi / 3 - np.pi / 2, np.full(3, r)
        pts = _points(x + rad * np.cos(ang), y + rad * np.sin(ang))
        return f"<polygon points='{pts}' fill='{fill}' stroke='{stroke}' stroke-width='{sw}'/>"
    return f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{r:.1f}' fill='{fill}' stroke='{stroke}' stroke-width='{sw}'/>"


def _axis_name(ref: str, letter: str) -> str:
    """'x2' -> 'xaxis2' (the layout property of a trace's axis reference)."""
    return f"{letter}axis{(ref or letter)[1:]}"


def figure_svg(fig, width: int = 760) -> str:
    """``fig`` (a ``go.Figure``: one panel or ``make_subplots`` panels) as a standalone ``<svg>``."""
    lay = fig.layout
    height = int(lay.height or 450)
    if any(getattr(t, "type", "") == "surface" for t in fig.data):
        return _scene(fig, width, height)
    traces = [t for t in fig.data if getattr(t, "type", "") == "scatter" and t.visible not in (False, "legendonly")]
    legend = [t for t in traces if t.name and t.showlegend is not False]
    title = getattr(lay.title, "text", None) or ""
    top = 34 if title else 14
    rows = _legend_rows(legend, width)
    area = (10, top, width - 20, height - top - 30 - 22 * len(rows))  # x, y, w, h of all panels
    uid = f"pv{next(_IDS)}"
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
        f"preserveAspectRatio='xMidYMin meet' role='img' aria-label='{html.escape(title or 'figure', quote=True)}'>"
    ]
    if title:
        out.append(f"<text x='12' y='20' {_font(14, '#222')}>{html.escape(title)}</text>")
    pairs = list(dict.fromkeys((t.xaxis or "x", t.yaxis or "y") for t in traces)) or [("x", "y")]
    for n, (xr, yr) in enumerate(pairs):
        mine = [t for t in traces if (t.xaxis or "x", t.yaxis or "y") == (xr, yr)]
        out += _panel(fig, mine, xr, yr, area, f"{uid}_{n}")
    ax, ay, aw, ah = area
    for a in lay.annotations or ():  # subplot titles and other text placed on the figure ("paper")
        if a.xref == "paper" and a.yref == "paper" and a.text and a.x is not None and a.y is not None:
            x, y = ax + float(a.x) * aw, ay + (1 - float(a.y)) * ah - 4
            anchor = {"left": "start", "right": "end"}.get(a.xanchor or "center", "middle")
            text = html.escape(a.text)
            out.append(f"<text x='{x:.1f}' y='{y:.1f}' text-anchor='{anchor}' {_font(12)}>{text}</text>")
    out += _legend(rows, height)
    out.append("</svg>")
    return "".join(out)


def _legend(rows, height: int) -> list[str]:
    """The legend's rows (``_legend_rows``) at the bottom of the picture, like plotly's horizontal legend."""
    out: list[str] = []
    for r, row in enumerate(rows):  # as many rows as the names need, like plotly's horizontal legend
        ly = height - 10 - 22 * (len(rows) - 1 - r)
        for t, lx in row:
            color = _trace_color(t)
            if "lines" in (t.mode or "lines"):
                dash = _DASH.get(t.line.dash or "", "")
                extra = f" stroke-dasharray='{dash}'" if dash else ""
                swatch = f"x1='{lx}' x2='{lx + 18}' y1='{ly - 4}' y2='{ly - 4}'"
                out.append(f"<line {swatch} stroke='{color}' stroke-width='3'{extra}/>")
            else:
                sym = t.marker.symbol if isinstance(t.marker.symbol, str) else "circle"
                out.append(_marker(sym, lx + 9, ly - 4, 10, color, "#222"))
            out.append(f"<text x='{lx + 22}' y='{ly}' {_font(12)}>{html.escape(str(t.name))}</text>")
    return out


def _legend_rows(legend, width: int) -> list[list[tuple[Any, int]]]:
    """The legend's entries laid out left to right, wrapped at the figure's width: rows of (trace, x)."""
    rows: list[list[tuple[Any, int]]] = []
    lx = width  # start a row at the first entry
    for t in legend:
        w = legend_entry_width(t.name)
        if lx + w > width - 8 and (not rows or rows[-1]):
            rows.append([])
            lx = 12
        rows[-1].append((t, lx))
        lx += w
    return rows


def _panel(fig, traces, xr: str, yr: str, area, uid: str) -> list[str]:
    """One subplot: its frame, grid and tick labels, axis titles, images, traces and line shapes."""
    lay = fig.layout
    xa, ya = lay[_axis_name(xr, "x")], lay[_axis_name(yr, "y")]
    xy = [(_arr(t.x), _arr(t.y)) for t in traces]
    ax, ay = _Axis(xa, [p[0] for p in xy]), _Axis(ya, [p[1] for p in xy])
    X0, Y0, W, H = area
    (dx0, dx1), (dy0, dy1) = (xa.domain or (0, 1)), (ya.domain or (0, 1))
    gutter = 50 if ay.title else 38
    left, pw = X0 + dx0 * W + gutter, (dx1 - dx0) * W - gutter
    top, ph = Y0 + (1 - dy1) * H, (dy1 - dy0) * H - (34 if ax.title else 18)
    if getattr(ya, "scaleanchor", None) == xr:  # equal units on both axes: the map is not stretched
        ratio = float(ya.scaleratio or 1.0) * (ay.hi - ay.lo) / max(ax.hi - ax.lo, 1e-300)
        if ph / pw > ratio:
            ph = pw * ratio
        else:
            left, pw = left + (pw - ph / ratio) / 2, ph / ratio

    def px(v):
        return left + (ax.t(v) - ax.lo) / (ax.hi - ax.lo or 1.0) * pw

    def py(v):
        return top + ph - (ay.t(v) - ay.lo) / (ay.hi - ay.lo or 1.0) * ph

    out = [
        f"<defs><clipPath id='{uid}'><rect x='{left:.1f}' y='{top:.1f}' width='{pw:.1f}' height='{ph:.1f}'/>"
        "</clipPath></defs>",
        f"<rect x='{left:.1f}' y='{top:.1f}' width='{pw:.1f}' height='{ph:.1f}' fill='white' stroke='#ccc'/>",
    ]
    for v in _ticks(ax):
        x = left + (v - ax.lo) / (ax.hi - ax.lo) * pw
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top:.1f}' y2='{top + ph:.1f}' stroke='#eee'/>")
        lab = _tick_label(v, ax.log)
        out.append(f"<text x='{x:.1f}' y='{top + ph + 14:.1f}' text-anchor='middle' {_FONT}>{lab}</text>")
    for v in _ticks(ay):
        y = top + ph - (v - ay.lo) / (ay.hi - ay.lo) * ph
        out.append(f"<line x1='{left:.1f}' x2='{left + pw:.1f}' y1='{y:.1f}' y2='{y:.1f}' stroke='#eee'/>")
        lab = _tick_label(v, ay.log)
        out.append(f"<text x='{left - 4:.1f}' y='{y + 4:.1f}' text-anchor='end' {_FONT}>{lab}</text>")
    if ax.title:
        out.append(
            f"<text x='{left + pw / 2:.1f}' y='{top + ph + 30:.1f}' text-anchor='middle' {_FONT}>"
            f"{html.escape(ax.title)}</text>"
        )
    if ay.title:
        out.append(
            f"<text transform='translate({left - 40:.1f},{top + ph / 2:.1f}) rotate(-90)' text-anchor='middle' "
            f"{_FONT}>{html.escape(ay.title)}</text>"
        )
    out.append(f"<g clip-path='url(#{uid})'>")
    for im in lay.images or ():
        src = im.source if isinstance(im.source, str) else None
        if not (src and src.startswith("data:image/") and im.xref == xr and im.yref == yr):
            continue
        x0, y0 = float(im.x), float(im.y)
        ix, iy = px(np.array([x0, x0 + float(im.sizex)])), py(np.array([y0, y0 - float(im.sizey)]))
        out.append(
            f"<image href='{src}' x='{ix[0]:.1f}' y='{iy[0]:.1f}' width='{ix[1] - ix[0]:.1f}' "
            f"height='{iy[1] - iy[0]:.1f}' preserveAspectRatio='none'/>"
        )
    for t, (x, y) in zip(traces, xy):
        out += _trace(t, x, y, px, py)
    for s in lay.shapes or ():
        if (s.xref or "x").split(" ")[0] in (xr, "paper") and (s.yref or "y").split(" ")[0] in (yr, "paper"):
            out += _shape(s, left, top, pw, ph, px, py)
    out.append("</g>")
    return out


def _ticks(a: _Axis) -> np.ndarray:
    if a.log:  # whole decades, at most ~6 of them
        step = max(1, math.ceil((math.floor(a.hi) - math.ceil(a.lo) + 1) / 6))
        return np.arange(math.ceil(a.lo), math.floor(a.hi) + 1, step)
    return nice_ticks(a.lo, a.hi)


def _trace_color(t) -> str:
    line = getattr(t.line, "color", None)
    mc = getattr(t.marker, "color", None)
    return line or (mc if isinstance(mc, str) else None) or "#444"


def _trace(t, x, y, px, py) -> list[str]:
    if x is None or y is None or not x.size or x.size != y.size:
        return []
    out = []
    mode = t.mode or "lines"
    opacity = 1.0 if t.opacity is None else float(t.opacity)
    X, Y = px(x), py(y)
    if "lines" in mode or t.fill == "toself":
        color = t.line.color or "#444"
        width = 2.0 if t.line.width is None else float(t.line.width)
        dash = _DASH.get(t.line.dash or "", "")
        d = _runs(X, Y, np.isfinite(X) & np.isfinite(Y))
        if d:
            fill = t.fillcolor if t.fill == "toself" and t.fillcolor else "none"
            extra = f" stroke-dasharray='{dash}'" if dash else ""
            out.append(
                f"<path d='{d}' fill='{fill}' stroke='{color}' stroke-width='{width}' "
                f"opacity='{opacity}' stroke-linejoin='round'{extra}/>"
            )
    if "markers" in mode and opacity > 0.05 and (t.marker.opacity is None or float(np.min(t.marker.opacity)) > 0.05):
        colors = t.marker.color
        sizes = t.marker.size
        n = X.size
        cs = list(colors) if isinstance(colors, (list, tuple, np.ndarray)) else [colors or "#444"] * n
        ss = np.broadcast_to(np.asarray(6 if sizes is None else sizes, dtype=float), (n,))
        edge = getattr(t.marker.line, "color", None) or "none"
        sym = t.marker.symbol if isinstance(t.marker.symbol, str) else "circle"
        if all(isinstance(c, str) and _alpha(c) >= 0.05 for c in cs) and n <= 2000:  # the click layer is ~invisible
            for i in range(n):
                if np.isfinite(X[i]) and np.isfinite(Y[i]):
                    out.append(_marker(sym, X[i], Y[i], ss[i], cs[i], edge))
    if "text" in mode and t.text is not None:
        texts = [t.text] * X.size if isinstance(t.text, str) else list(t.text)
        color = getattr(t.textfont, "color", None) or "#222"
        for xi, yi, s in zip(X, Y, texts):
            if np.isfinite(xi) and np.isfinite(yi) and s:
                label = html.escape(str(s))
                out.append(f"<text x='{xi + 6:.1f}' y='{yi - 6:.1f}' {_font(11, color)}>{label}</text>")
    return out


def _runs(X: np.ndarray, Y: np.ndarray, ok: np.ndarray) -> str:
    """A line's SVG path data: each run of ``ok`` points its own sub-path (NaN separates segments, as in
    plotly; a 3-D line also breaks where it leaves the box), thinned to MAX_POINTS overall."""
    stride = max(1, int(ok.sum()) // MAX_POINTS)
    d = []
    for seg in np.split(np.arange(X.size), np.flatnonzero(np.diff(ok.astype(np.int8)) != 0) + 1):
        seg = seg[ok[seg]]
        if seg.size >= 2:
            keep = np.unique(np.append(seg[::stride], seg[-1]))
            d.append("M" + "L".join(f"{X[i]:.1f},{Y[i]:.1f}" for i in keep))
    return "".join(d)


def _shape(s, left, top, pw, ph, px, py) -> list[str]:
    if s.type != "line":
        return []

    def coord(v, ref, lo, span, data):
        if ref and ("domain" in ref or ref == "paper"):
            return lo + float(v) * span
        return float(data(np.array([float(v)]))[0])

    try:
        x0 = coord(s.x0, s.xref, left, pw, px)
        x1 = coord(s.x1, s.xref, left, pw, px)
        y0 = coord(s.y0, s.yref, top + ph, -ph, py)
        y1 = coord(s.y1, s.yref, top + ph, -ph, py)
    except (TypeError, ValueError):
        return []
    color = getattr(s.line, "color", None) or "#444"
    dash = _DASH.get(getattr(s.line, "dash", None) or "", "")
    extra = f" stroke-dasharray='{dash}'" if dash else ""
    return [f"<line x1='{x0:.1f}' x2='{x1:.1f}' y1='{y0:.1f}' y2='{y1:.1f}' stroke='{color}' stroke-width='1'{extra}/>"]


# ------------------------------------------------------------------------------------------- 3-D
_VIRIDIS = np.array(
    [[68, 1, 84], [72, 40, 120], [62, 74, 137], [49, 104, 142], [38, 130, 142],
     [31, 158, 137], [53, 183, 121], [109, 205, 89], [180, 222, 44], [253, 231, 37]],
    dtype=float,
)  # fmt: skip
SURFACE_QUADS = 36  # per side: a preview's surface needs no more, and each quad is one SVG path


def _camera(eye=(1.25, 1.25, 1.25), fovy: float = math.pi / 4):
    """Plotly's default 3-D camera (``scene.camera``: eye (1.25, 1.25, 1.25) looking at the centre of a
    unit cube, z up, perspective with a 45° field of view), as ``project(P) -> (u, v, depth)`` for points
    ``P`` (..., 3) of the cube [-0.5, 0.5]³; u, v in [-1, 1] across the view's height."""
    e = np.asarray(eye, dtype=float)
    f = -e / np.linalg.norm(e)
    r = np.cross(f, (0.0, 0.0, 1.0))
    r /= np.linalg.norm(r)
    up = np.cross(r, f)
    k = 1.0 / math.tan(fovy / 2)

    def project(P):
        d = P - e
        depth = d @ f
        return k * (d @ r) / depth, k * (d @ up) / depth, depth

    return project


def _scene(fig, width: int, height: int) -> str:
    """A 3-D scene: the back walls of the axis box with their grid, the surface (quads painted far to
    near, coloured by height in Viridis, the race's scale: the trace's own colorscale is not read; shaded
    by how they face the camera), then the line and marker traces over it, cut at the box. The axes are
    scaled to a cube, as the race's surface figure asks plotly to do."""
    lay = fig.layout
    surf = next(t for t in fig.data if t.type == "surface")
    Z = np.asarray(surf.z, dtype=float)
    xs = np.asarray(surf.x, dtype=float).ravel() if surf.x is not None else np.arange(Z.shape[1], dtype=float)
    ys = np.asarray(surf.y, dtype=float).ravel() if surf.y is not None else np.arange(Z.shape[0], dtype=float)
    sc = lay.scene

    def rng(ax, data):
        r = ax.range
        lo, hi = (float(r[0]), float(r[1])) if r is not None else (float(np.nanmin(data)), float(np.nanmax(data)))
        return lo, (hi if hi > lo else lo + 1.0)

    bounds = [rng(sc.xaxis, xs), rng(sc.yaxis, ys), rng(sc.zaxis, Z)]

    def cube(x, y, z):
        return np.stack(
            [(np.asarray(v, dtype=float) - lo) / (hi - lo) - 0.5 for v, (lo, hi) in zip((x, y, z), bounds)], -1
        )

    project = _camera()
    lines = [
        t for t in fig.data if t.type == "scatter3d" and t.visible not in (False, "legendonly") and t.x is not None
    ]
    rows = _legend_rows([t for t in lines if t.name and t.showlegend is not False], width)
    top = 10
    ph = height - top - 10 - 22 * len(rows)  # the scene above the legend, as plotly lays it out
    cx, cy, s = width / 2, top + ph / 2, ph / 2

    def screen(P):
        u, v, depth = project(P)
        return cx + s * u, cy - s * v, depth

    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {width} {height}' width='{width}' height='{height}' "
        "preserveAspectRatio='xMidYMin meet' role='img' aria-label='3-D surface'>"
    ]
    # the three walls behind the data (plotly's grey panes), each with the grid at its axes' ticks
    walls = (
        ((0, -0.5), (1, 2)),  # x = min: y-z plane
        ((1, -0.5), (0, 2)),  # y = min: x-z plane
        ((2, -0.5), (0, 1)),  # z = min: x-y plane
    )
    g = np.array([-0.5, 0.5])
    for (fixed, val), (a, b) in walls:
        corners = np.zeros((4, 3))
        corners[:, fixed] = val
        corners[:, a] = g[[0, 1, 1, 0]]
        corners[:, b] = g[[0, 0, 1, 1]]
        X, Y, _ = screen(corners)
        out.append(f"<path d='{_poly(X, Y)}' fill='#f0f2f6' stroke='#d5d8de'/>")
        for ax in (a, b):
            other = b if ax == a else a
            lo, hi = bounds[ax]
            for tv in nice_ticks(lo, hi, 5):
                c = (tv - lo) / (hi - lo) - 0.5
                seg = np.zeros((2, 3))
                seg[:, fixed] = val
                seg[:, ax] = c
                seg[:, other] = g
                X, Y, _ = screen(seg)
                out.append(f"<line x1='{X[0]:.1f}' y1='{Y[0]:.1f}' x2='{X[1]:.1f}' y2='{Y[1]:.1f}' stroke='white'/>")
    # the surface, thinned to SURFACE_QUADS per side
    iy = np.unique(np.linspace(0, len(ys) - 1, min(len(ys), SURFACE_QUADS + 1)).round().astype(int))
    ix = np.unique(np.linspace(0, len(xs) - 1, min(len(xs), SURFACE_QUADS + 1)).round().astype(int))
    Zs = Z[np.ix_(iy, ix)]
    zlo, zhi = bounds[2]
    P = cube(*np.meshgrid(xs[ix], ys[iy]), np.clip(Zs, zlo, zhi))
    X, Y, D = screen(P)
    quad = [(slice(None, -1), slice(None, -1)), (slice(None, -1), slice(1, None)),
            (slice(1, None), slice(1, None)), (slice(1, None), slice(None, -1))]  # fmt: skip
    QX = np.stack([X[q] for q in quad], -1).reshape(-1, 4)
    QY = np.stack([Y[q] for q in quad], -1).reshape(-1, 4)
    depth = np.mean([D[q] for q in quad], axis=0).ravel()
    zmid = np.mean([Zs[q] for q in quad], axis=0).ravel()
    # shading: the quad's normal against the direction to the camera (plotly lights a surface gently)
    P00, P01, P11 = P[quad[0]], P[quad[1]], P[quad[2]]
    n = np.cross(P01 - P00, P11 - P01).reshape(-1, 3)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    facing = np.nan_to_num(np.abs(n @ (np.ones(3) / math.sqrt(3))))  # NaN heights: those quads are skipped
    t = np.clip(np.nan_to_num((zmid - zlo) / (zhi - zlo), nan=0.0), 0, 1)
    pos = t * (len(_VIRIDIS) - 1)
    i0 = np.minimum(pos.astype(int), len(_VIRIDIS) - 2)
    rgb = _VIRIDIS[i0] + (pos - i0)[:, None] * (_VIRIDIS[i0 + 1] - _VIRIDIS[i0])
    rgb = np.clip(rgb * (0.7 + 0.35 * facing)[:, None], 0, 255).astype(int)
    ok = np.isfinite(QX).all(1) & np.isfinite(QY).all(1)
    out.append("<g shape-rendering='crispEdges'>")
    for i in np.argsort(-depth):
        if ok[i]:
            r, g_, b = rgb[i]
            c = f"#{r:02x}{g_:02x}{b:02x}"
            out.append(f"<path d='{_poly(QX[i], QY[i])}' fill='{c}' stroke='{c}'/>")
    out.append("</g>")
    for tr in lines:
        Pc = cube(_arr(tr.x), _arr(tr.y), np.clip(_arr(tr.z), zlo, zhi))
        X, Y, _ = screen(Pc)
        mode = tr.mode or "lines+markers"
        inside = np.isfinite(X) & np.isfinite(Y) & (np.abs(Pc).max(axis=1) <= 0.5 + 1e-9)  # plotly clips to the box
        X, Y = np.where(inside, X, np.nan), np.where(inside, Y, np.nan)
        if "lines" in mode:
            color = tr.line.color or "#444"
            d = _runs(X, Y, inside)
            if d:
                out.append(f"<path d='{d}' fill='none' stroke='{color}' stroke-width='3' stroke-linejoin='round'/>")
        if "markers" in mode:
            sym = tr.marker.symbol if isinstance(tr.marker.symbol, str) else "circle"
            color = tr.marker.color if isinstance(tr.marker.color, str) else "#444"
            for x, y in zip(X, Y):
                if np.isfinite(x) and np.isfinite(y):
                    out.append(_marker(sym, x, y, 2 * float(tr.marker.size or 4), color, "#222"))
    out += _legend(rows, height)
    out.append("</svg>")
    return "".join(out)


def _poly(X, Y) -> str:
    return "M" + "L".join(f"{x:.0f},{y:.0f}" for x, y in zip(X, Y)) + "Z"
