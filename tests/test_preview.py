"""The static SVG preview of a figure (sam_core.plots.preview) puts the data where plotly would.

Positions are checked against an independent computation: the panel's rectangle read back from the SVG
and the linear (or log10) map of the axis range onto it, done here by hand."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import numpy as np
import plotly.graph_objects as go
import pytest
from plotly.subplots import make_subplots

from sam_core.plots.preview import figure_svg, nice_ticks

SVG = "{http://www.w3.org/2000/svg}"  # ElementTree names SVG elements with their namespace


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # well-formed XML, or this raises


def _panels(root) -> list[tuple[float, float, float, float]]:
    """The panels' frames: white rects with a grey border, in drawing order."""
    return [
        tuple(float(r.get(k)) for k in ("x", "y", "width", "height"))
        for r in root.iter(SVG + "rect")
        if r.get("fill") == "white"
    ]


def _path_points(d: str) -> np.ndarray:
    return np.array([[float(a), float(b)] for a, b in re.findall(r"(-?[\d.]+),(-?[\d.]+)", d)])


def test_a_line_lands_where_the_axis_ranges_put_it():
    fig = go.Figure(go.Scatter(x=[0, 1, 2, 4], y=[0, 5, 10, -5], mode="lines", line=dict(color="#0072B2")))
    fig.update_layout(height=400, xaxis_range=[0, 4], yaxis_range=[-5, 10])
    root = _parse(figure_svg(fig, width=600))
    (x, y, w, h) = _panels(root)[0]
    (path,) = [p for p in root.iter(SVG + "path") if p.get("stroke") == "#0072B2"]
    got = _path_points(path.get("d"))
    xs, ys = np.array([0, 1, 2, 4.0]), np.array([0, 5, 10, -5.0])
    want = np.stack((x + xs / 4 * w, y + h - (ys + 5) / 15 * h), -1)
    np.testing.assert_allclose(got, want, atol=0.06)  # coordinates are written with one decimal


def test_nan_splits_a_line_and_log_axes_map_decades():
    fig = go.Figure(go.Scatter(x=[1e-3, 1e-2, np.nan, 1, 1e3], y=[0, 1, 1, 0.5, 0], mode="lines"))
    fig.update_layout(xaxis_type="log", xaxis_range=[-3, 3], yaxis_range=[0, 1], height=300)
    root = _parse(figure_svg(fig, width=500))
    (x, y, w, h) = _panels(root)[0]
    (path,) = [p for p in root.iter(SVG + "path") if p.get("fill") == "none"]
    d = path.get("d")
    assert d.count("M") == 2  # two runs of finite points
    got = _path_points(d)
    want_x = x + (np.log10([1e-3, 1e-2, 1, 1e3]) + 3) / 6 * w
    np.testing.assert_allclose(got[:, 0], want_x, atol=0.06)
    labels = [t.text for t in root.iter(SVG + "text")]
    assert "0.001" in labels and "1000" in labels  # decade ticks


def test_equal_axis_units_keep_the_map_square():
    fig = go.Figure(go.Scatter(x=[-2, 2], y=[-1, 1], mode="markers"))
    fig.update_layout(height=620, xaxis=dict(range=[-2, 2]), yaxis=dict(range=[-1, 1], scaleanchor="x"))
    (x, y, w, h) = _panels(_parse(figure_svg(fig, width=760)))[0]
    assert w / h == pytest.approx(2.0, rel=1e-3)


def test_subplots_get_one_panel_each_in_their_domains():
    fig = make_subplots(rows=2, cols=2, subplot_titles=("a", "b", "c", "d"))
    for i in range(4):
        fig.add_trace(go.Scatter(x=[0, 1], y=[i, i + 1]), row=i // 2 + 1, col=i % 2 + 1)
    fig.update_layout(height=500)
    root = _parse(figure_svg(fig, width=700))
    panels = _panels(root)
    assert len(panels) == 4
    (x1, y1, _, _), (x2, y2, _, _), (x3, y3, _, _) = panels[:3]
    assert x2 > x1 and y2 == pytest.approx(y1) and y3 > y1  # left/right, then the second row
    assert {"a", "b", "c", "d"} <= {t.text for t in root.iter(SVG + "text")}


def test_invisible_layers_are_left_out_and_images_kept():
    pixel = "data:image/png;base64," + base64.b64encode(b"not really a png").decode()
    fig = go.Figure()
    fig.add_layout_image(dict(source=pixel, xref="x", yref="y", x=0, y=1, sizex=1, sizey=1))
    fig.add_trace(go.Scatter(x=np.arange(100.0), y=np.arange(100.0), mode="markers", marker_color="rgba(0,0,0,0.003)"))
    fig.add_trace(go.Scatter(x=[0.5], y=[0.5], mode="markers", marker=dict(opacity=0, color=[1.0])))
    fig.add_trace(go.Scatter(x=[0.2], y=[0.3], mode="markers", marker=dict(symbol="star", color="white")))
    fig.update_layout(xaxis_range=[0, 1], yaxis_range=[0, 1])
    root = _parse(figure_svg(fig))
    assert len(list(root.iter(SVG + "circle"))) == 0  # click layer, colour-bar carrier
    assert len(list(root.iter(SVG + "polygon"))) == 1  # the star
    (img,) = list(root.iter(SVG + "image"))
    assert img.get("href") == pixel


def test_the_labs_opening_figures_draw():
    """The figures the pages preview: the race map (typed arrays in its frames), its metrics, the EoS curve."""
    from sam_core.dynamics.eos import sam_edge_curve
    from sam_core.landscape.functions import make_landscape
    from sam_core.landscape.race import race
    from sam_core.plots.dynamics import sam_edge_ratio_figure
    from sam_core.plots.landscape import contour_figure, metrics_figure

    L = make_landscape("quartic")
    tracks = race(L, ["sgd", "sam"], lr=0.3, steps=50, hp={"sam": {"rho": 0.1}})
    a = np.logspace(-3, 3, 50)
    for fig, n_panels in (
        (contour_figure(L, tracks, height=500), 1),
        (metrics_figure(tracks, f_star=0.0, current=10), 4),
        (sam_edge_ratio_figure(a, sam_edge_curve(a), current=0.5), 1),
    ):
        root = _parse(figure_svg(fig))
        assert len(_panels(root)) == n_panels
        strokes = {p.get("stroke") for p in root.iter(SVG + "path")}
        assert "#0072B2" in strokes  # SAM's colour: its path/curve is drawn


def test_nice_ticks_are_round_and_inside():
    for lo, hi in ((0, 1), (-2, 2), (0.013, 0.92), (-1e-3, 5e4)):
        t = nice_ticks(lo, hi)
        assert len(t) >= 2 and t.min() >= lo - 1e-12 and t.max() <= hi + 1e-12
        step = np.diff(t)
        np.testing.assert_allclose(step, step[0])
        m = step[0] / 10 ** np.floor(np.log10(step[0]))
        assert min(abs(m - k) for k in (1, 2, 5, 10)) < 1e-9


def test_a_long_legend_wraps_inside_the_picture_below_the_panel():
    names = [f"Stable SAM (SSAM) ρ={r}" for r in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5)]
    fig = go.Figure([go.Scatter(x=[0, 1], y=[i, i + 1], mode="lines", name=n) for i, n in enumerate(names)])
    fig.update_layout(height=300)
    root = _parse(figure_svg(fig, width=400))
    texts = {t.text: t for t in root.iter(SVG + "text") if t.text in names}
    assert set(texts) == set(names)  # every entry drawn
    rows = sorted({float(t.get("y")) for t in texts.values()})
    per_row = max(1, (400 - 20) // (34 + 7 * len(names[0])))  # entries of this length that fit in one row
    assert len(rows) == -(-len(names) // per_row) and len(rows) >= 2
    for t in texts.values():  # no entry runs past the right edge (the same width estimate as the layout)
        assert float(t.get("x")) + 7 * len(t.text) <= 400
    ((_, py, _, ph),) = _panels(root)
    assert py + ph < rows[0] - 12  # the panel ends above the first legend row
    assert rows[-1] <= 300


def _surface_fig(tracks: bool = True) -> go.Figure:
    """f(x, y) = x on [0, 1] × [0, 2]: a plane that rises along x only."""
    xs, ys = np.linspace(0, 1, 90), np.linspace(0, 2, 60)
    fig = go.Figure(go.Surface(x=xs, y=ys, z=np.tile(xs, (len(ys), 1)), colorscale="Viridis"))
    if tracks:
        fig.add_trace(
            go.Scatter3d(x=[0.2, 0.8], y=[1, 1], z=[0.2, 0.8], mode="lines", name="SAM", line_color="#0072B2")
        )
        fig.add_trace(go.Scatter3d(x=[1.0], y=[0.0], z=[1.0], mode="markers", name="minimum", marker_symbol="diamond"))
    fig.update_layout(height=500, scene=dict(aspectmode="cube"))
    return fig


def _quads(root) -> list[tuple[np.ndarray, str]]:
    """The surface's quads: filled four-corner paths, as (corners (4, 2), fill)."""
    out = []
    for p in root.iter(SVG + "path"):
        pts = re.findall(r"[ML](-?[\d.]+),(-?[\d.]+)", p.get("d", ""))
        if len(pts) == 4 and p.get("fill", "none").startswith("#") and p.get("fill") == p.get("stroke"):
            out.append((np.array(pts, dtype=float), p.get("fill")))
    return out


def test_a_surface_is_drawn_from_plotlys_default_camera_coloured_by_height():
    """A 3-D scene's picture (the race's 3-D view): the surface thinned to SURFACE_QUADS quads a side, coloured
    like its Viridis scale by height, seen from plotly's default eye (1.25, 1.25, 1.25) with z up. Checked
    against that camera worked out here by hand: the cube's centre lands in the middle of the scene, its
    top above its bottom, and the +x corner of the floor to the left of the +y corner (the eye looks along
    -(1, 1, 1), so +x runs to the viewer's left)."""
    from sam_core.plots.preview import SURFACE_QUADS, _camera

    root = _parse(figure_svg(_surface_fig(), width=500))
    quads = _quads(root)
    assert len(quads) == SURFACE_QUADS * SURFACE_QUADS
    # colour by height: the quads along x = max are yellow (Viridis' top), along x = min dark violet
    rgb = np.array([[int(f[i : i + 2], 16) for i in (1, 3, 5)] for _, f in quads], dtype=float)
    left = np.array([c[:, 0].mean() for c, _ in quads])  # +x runs to the left on screen (below)
    top_x, low_x = rgb[np.argmin(left)], rgb[np.argmax(left)]  # shaded, so compare hues, not levels
    assert top_x[0] > 3 * top_x[2] and top_x[1] > 3 * top_x[2], top_x  # yellow: red and green, little blue
    assert low_x[2] > low_x[1], low_x  # violet: more blue than green
    # the camera, by hand: the centre on the axis of view, z up on screen, +x to the left of +y
    project = _camera()
    u, v, depth = project(np.zeros(3))
    assert abs(u) < 1e-12 and abs(v) < 1e-12 and depth > 0
    assert project(np.array([0, 0, 0.5]))[1] > project(np.array([0, 0, -0.5]))[1]
    assert project(np.array([0.5, -0.5, -0.5]))[0] < 0 < project(np.array([-0.5, 0.5, -0.5]))[0]
    # the track and the marker are drawn over the surface, and named in the legend
    strokes = [p.get("stroke") for p in root.iter(SVG + "path") if p.get("fill") == "none"]
    assert "#0072B2" in strokes
    texts = [t.text for t in root.iter(SVG + "text")]
    assert "SAM" in texts and "minimum" in texts


def test_the_race_3d_figure_draws_as_a_scene():
    """The lab's own 3-D figure goes through the scene drawing (not the 2-D panels): many quads, and the
    picture says what it is for a screen reader."""
    from sam_core.landscape.functions import make_landscape
    from sam_core.landscape.race import run_track
    from sam_core.plots.landscape import surface_figure

    land = make_landscape("quartic")
    fig = surface_figure(land, [run_track(land, "sam", None, [1.5, 1.0], 0.05, 50)])
    svg = figure_svg(fig, width=560)
    assert "aria-label='3-D surface'" in svg
    assert len(_quads(_parse(svg))) > 500


def test_a_scene_leaves_out_what_lies_outside_its_box():
    """A track that runs out of the axis box (a diverging run) is cut at the box, as plotly clips it, instead
    of being projected from behind the camera across the picture; a surface with NaN heights still draws."""
    fig = _surface_fig(tracks=False)
    fig.add_trace(
        go.Scatter3d(x=[0.5, 0.6, 50.0, 0.7, 0.8], y=[1, 1, -90, 1, 1], z=[0.5] * 5, mode="lines", name="far")
    )
    fig.data[0].z = np.where(np.eye(60, 90) > 0, np.nan, fig.data[0].z)
    root = _parse(figure_svg(fig, width=400))
    (track,) = [p for p in root.iter(SVG + "path") if p.get("fill") == "none"]
    d = track.get("d")
    assert d.count("M") == 2  # two runs inside the box, not one line through the far point
    xy = np.array(re.findall(r"(-?[\d.]+),(-?[\d.]+)", d), dtype=float)
    assert (xy >= 0).all() and (xy[:, 0] <= 400).all() and (xy[:, 1] <= 500).all()


def _switching_page():
    import plotly.graph_objects as go
    import streamlit as st

    from ui.common import chart_with_preview, run_held_charts

    st.session_state["runs"] = st.session_state.get("runs", 0) + 1
    st.session_state["_samlab_first_chart"] = -1e9  # long past the preview window: only `fresh` sends a picture
    view = st.radio("view", ["a", "b"], key="view")
    switched = st.session_state.get("drawn", view) != view
    st.session_state["drawn"] = view
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1] if view == "a" else [1, 0], name=view))
    chart_with_preview(fig, key=f"chart_{view}", box="map", fresh=switched)
    run_held_charts()


def test_a_chart_that_replaces_another_comes_as_its_picture_then_as_the_chart():
    """ui.common.chart_with_preview(fresh=True): the run that switches views sends the new view's picture and
    no chart, then runs the page again, which sends the chart with the picture beside it (the browser keeps
    showing the picture until the chart has drawn). A run that switches nothing sends no picture and runs
    once."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_switching_page).run()
    assert not at.exception, at.exception
    assert at.session_state["runs"] == 1 and len(at.get("plotly_chart")) == 1 and not at.markdown

    at.radio(key="view").set_value("b").run()
    assert not at.exception, at.exception
    assert at.session_state["runs"] == 3  # the switching run, then the run that draws the chart
    pictures = [m.value for m in at.markdown if m.value.startswith("![figure](data:image/svg+xml;base64,")]
    assert len(pictures) == 1  # the second run sent the picture again, beside the chart
    svg = base64.b64decode(pictures[0].split(",", 1)[1].rstrip(")")).decode()
    assert ">b</text>" in svg and ">a</text>" not in svg  # the new view's legend, not the old one's
    assert len(at.get("plotly_chart")) == 1 and not at.session_state["_samlab_held"]

    at.radio(key="view").set_value("b").run()  # nothing switched: no picture, one run
    assert at.session_state["runs"] == 4 and not at.markdown
