"""A plotly chart that updates in place: the race's map and metric panels.

``st.plotly_chart`` draws every new figure twice. Its element first draws the figure, then an effect
re-themes it through a JSON round trip of the whole figure, so react-plotly sees new objects and calls
``Plotly.react`` again: a second full draw, as costly as the first (docs/PERFORMANCE.md). On the race that
is 0.45–0.6 s per draw for 8 variants × 2 000 steps, four draws (map twice, metric panels twice) one
after another on the browser's main thread after every slider change.

``plotly_live`` is a Streamlit custom component (``st.components.v2``, mounted in the page itself, no
iframe) that keeps one plot ``div`` and hands each new figure to ``Plotly.react`` once, with the theme
already in the figure (``THEME``: the light Streamlit look the other charts get). It uses the plotly.js that
Streamlit's own chart chunk loads (the same module ``ui.common.warm_plotly`` imports), so a page never
loads plotly.js twice. A figure the browser already shows (the same revision) is not drawn again.
A click or a box selection on the plot comes back as ``on_select(selection)`` with
``{"points": [{"x", "y", "curve_number", "point_index"}], "box": [{"x": [x0, x1], "y": [y0, y1]}]}``, the
shape ``st.plotly_chart`` reports.

Where this Streamlit build has no plotly chunk to borrow, ``plotly_live`` falls back to ``st.plotly_chart``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import plotly.io as pio
import streamlit as st

from ui.common import plotly_chunk

NAME = "samlab_plotly_live"

# The light Streamlit look (what st.plotly_chart's theme gives the other charts of the app), for the
# layout properties the race's figures leave open. A figure's own values win over a template's.
_FONT = '"Source Sans", sans-serif'
_GRID = "#e6eaf1"
_SEQ = [
    [i / 9, c]
    for i, c in enumerate(
        ("#e4f5ff", "#c7ebff", "#a6dcff", "#83c9ff", "#60b4ff", "#3d9df3", "#1c83e1", "#0068c9", "#0054a3", "#004280")
    )
]
_DIV = [
    [i / 9, c]
    for i, c in enumerate(
        ("#7d353b", "#bd4043", "#ff4b4b", "#ff8c8c", "#ffc7c7", "#a6dcff", "#60b4ff", "#1c83e1", "#0054a3", "#004280")
    )
]
_AXIS = {
    "zerolinecolor": _GRID,
    "gridcolor": _GRID,
    "tickcolor": _GRID,
    "tickfont": {"color": "#808495", "size": 12},
    "minor": {"gridcolor": _GRID},
    "automargin": True,
}
THEME = {
    "data": {
        "heatmap": [{"type": "heatmap", "colorscale": _SEQ}],
        "contour": [{"type": "contour", "colorscale": _SEQ}],
        "scatter": [{"type": "scatter", "marker": {"line": {"width": 0}}}],
    },
    "layout": {
        "colorscale": {"sequential": _SEQ, "sequentialminus": _SEQ, "diverging": _DIV},
        "coloraxis": {
            "colorscale": _SEQ,
            "colorbar": {"outlinecolor": "transparent", "tickfont": {"color": "#808495", "size": 12}},
        },
        "font": {"color": "#808495", "family": _FONT, "size": 12, "weight": 400},
        "title": {
            "font": {"family": _FONT, "size": 16, "color": "#2F2D2B"},
            "pad": {"l": 4},
            "xanchor": "left",
            "x": 0,
        },
        "legend": {
            "title": {"font": {"size": 12, "color": "#808495"}, "side": "top"},
            "valign": "top",
            "bordercolor": "transparent",
            "borderwidth": 0,
            "font": {"size": 12, "color": "#262730"},
        },
        "paper_bgcolor": "#FFFFFF",
        "plot_bgcolor": "#FFFFFF",
        "xaxis": {
            **_AXIS,
            "showgrid": False,
            "zeroline": False,
            "title": {"font": {"color": "#808495", "size": 14}, "standoff": 20},
        },
        "yaxis": {
            **_AXIS,
            "ticklabelposition": "outside",
            "title": {"font": {"color": "#808495", "size": 14}, "standoff": 24},
        },
        "hoverlabel": {
            "bgcolor": "#FFFFFF",
            "bordercolor": "#DCD8D4",
            "font": {"color": "#808495", "family": _FONT, "size": 12},
        },
        "colorway": [
            "#0068c9",
            "#83c9ff",
            "#ff2b2b",
            "#ffabab",
            "#29b09d",
            "#7defa1",
            "#ff8700",
            "#ffd16a",
            "#6d3fc0",
            "#d5dae5",
        ],
        "margin": {"pad": 8, "r": 0, "l": 0},
    },
}

_JS = r"""
function plotlyReady(chunk) {
  if (window.Plotly && window.Plotly.react) return Promise.resolve(window.Plotly);
  if (!window.__samlabPlotly) {
    // Streamlit's chart chunk sets window.Plotly when it is evaluated; import it from where Streamlit does
    const s = document.querySelector('script[type=module][src*="/static/js/index."]');
    const url = new URL(chunk, s ? s.src : document.baseURI).href;
    window.__samlabPlotly = import(url).then(() => {
      if (!(window.Plotly && window.Plotly.react)) throw new Error('plotly.js did not load from ' + chunk);
      return window.Plotly;
    });
    window.__samlabPlotly.catch(() => { window.__samlabPlotly = null; });
  }
  return window.__samlabPlotly;
}

function selection(ev) {
  const points = (ev && ev.points ? ev.points : []).map(p => ({
    x: p.x, y: p.y, curve_number: p.curveNumber, point_index: p.pointIndex }));
  const box = ev && ev.range && ev.range.x && ev.range.y ? [{ x: ev.range.x, y: ev.range.y }] : [];
  return { points, box };
}

async function pump(s) {
  if (s.drawing) return;
  s.drawing = true;
  try {
    while (s.want) {
      const msg = s.want;
      s.want = null;
      if (msg.rev === s.rev) {
        if (s.selected) {  // the same figure after a selection: drop the selection's dimming
          s.selected = false;
          await window.Plotly.restyle(s.gd, { selectedpoints: [null] });
        }
        continue;
      }
      const Plotly = await plotlyReady(msg.chunk);
      const fig = JSON.parse(msg.figure);
      const layout = fig.layout || {};
      await Plotly.react(s.gd, { data: fig.data || [], layout, frames: fig.frames || [], config: msg.config || {} });
      s.rev = msg.rev;
      s.selected = false;
      s.width = s.gd.clientWidth;
      if (msg.select && !s.hooked) {
        s.hooked = true;
        s.gd.on('plotly_selected', ev => {
          if (!ev) return;
          s.selected = true;
          s.setTrigger('select', selection(ev));
        });
      }
    }
  } catch (err) {
    console.error('samlab plot', err);
    s.rev = null;
    s.gd.textContent = 'Cannot draw this chart: ' + err;
  } finally {
    s.drawing = false;
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let s = parentElement.__samlab;
  if (!s) {
    const gd = document.createElement('div');
    gd.className = 'samlab-live-plot';
    parentElement.appendChild(gd);
    s = { gd, rev: null, want: null, drawing: false, hooked: false, selected: false, width: 0 };
    parentElement.__samlab = s;
    // the column's width can change without a window resize (sidebar, wrap below 1200 px)
    s.ro = new ResizeObserver(() => {
      const w = s.gd.clientWidth;
      if (s.rev && w && Math.abs(w - s.width) >= 1 && window.Plotly) { s.width = w; window.Plotly.Plots.resize(s.gd); }
    });
    s.ro.observe(gd);
  }
  s.setTrigger = setTriggerValue;
  s.want = data;
  pump(s);
  // called when the chart leaves the page (a new data set keeps it): free the plot (a 3-D scene's WebGL
  // context) instead of leaving it to the garbage collector
  return () => {
    s.ro.disconnect();
    if (window.Plotly) window.Plotly.purge(s.gd);
    parentElement.__samlab = null;
  };
}
"""

_CSS = ".samlab-live-plot { width: 100%; }"

_component: Any = None


def _mount() -> Any:
    global _component
    if _component is None:
        _component = st.components.v2.component(NAME, js=_JS, css=_CSS, isolate_styles=False)
    return _component


def _payload(fig: Any) -> tuple[str, str]:
    """(revision, JSON) of a figure, kept on the figure object: the race's figures are cached and shared
    (ui.landscape_controls.cached_figure), so a rerun that shows the same figure serialises nothing."""
    got = getattr(fig, "_samlab_live", None)
    if got is None:
        spec = fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else dict(fig)
        spec["layout"] = {**spec.get("layout", {}), "template": THEME}  # in place of plotly.py's default
        text = pio.to_json(spec, validate=False)
        got = (hashlib.blake2b(text.encode(), digest_size=12).hexdigest(), text)
        try:
            fig._samlab_live = got
        except Exception:  # not a plotly Figure (a dict): nothing to keep it on
            pass
    return got


def plotly_live(
    fig: Any,
    *,
    key: str,
    config: dict | None = None,
    on_select: Callable[[dict], None] | None = None,
) -> None:
    """Draw ``fig`` under ``key``, updating the plot the browser already has (module docstring)."""
    chunk = plotly_chunk()
    if chunk is None:  # this Streamlit build has no plotly chunk to borrow
        kw: dict[str, Any] = {}
        if on_select is not None:
            kw = dict(on_select=lambda: on_select(st.session_state.get(key) or {}), selection_mode=("points", "box"))
        st.plotly_chart(fig, key=key, config=config, **kw)
        return
    rev, text = _payload(fig)
    cfg = dict(config or {})
    if on_select is not None:  # the box-select tool, as st.plotly_chart adds it for a selectable chart
        cfg["modeBarButtonsToAdd"] = [*cfg.get("modeBarButtonsToAdd", []), "select2d"]
    data = {"rev": rev, "chunk": chunk, "config": cfg, "select": on_select is not None, "figure": text}
    kw = {}
    if on_select is not None:

        def _selected() -> None:
            state = st.session_state.get(key) or {}
            sel = state.get("select") if hasattr(state, "get") else None
            if sel:
                on_select(sel)

        kw["on_select_change"] = _selected
    _mount()(key=key, data=data, **kw)


def drawn_figures(at: Any) -> dict[str, dict]:
    """The figures an ``AppTest`` run drew, by chart key (for tests): ``st.plotly_chart``'s and
    ``plotly_live``'s alike, as the plotly JSON the browser gets."""
    out: dict[str, dict] = {}
    for el in at.get("plotly_chart"):
        out[el.proto.id.rsplit("-", 1)[-1]] = json.loads(el.proto.spec)
    for el in at.get("bidi_component"):
        if el.proto.component_name == NAME:
            out[el.proto.id.rsplit("-", 1)[-1]] = json.loads(json.loads(el.proto.json)["figure"])
    return out
