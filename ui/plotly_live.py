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
shape ``st.plotly_chart`` reports inside its ``"selection"``; an empty selection, or the same one again, is
not sent. A new figure starts unselected; zoom and hidden legend entries stay where the figure's
``uirevision`` says so. A chart in a hidden tab is drawn when the tab is shown (plotly.js is not even loaded
for it before), as st.plotly_chart does.

Where this Streamlit build has no plotly chunk that sets ``window.Plotly``, or no ``st.components.v2``,
``plotly_live`` falls back to ``st.plotly_chart``. Not carried over from st.plotly_chart: its fullscreen
button, and the dark theme (the app's theme is light, .streamlit/config.toml).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
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

function showError(s, err) {
  console.error('samlab plot', err);
  if (window.Plotly) window.Plotly.purge(s.gd);
  s.rev = null;
  s.msg.textContent = 'Cannot draw this chart: ' + err;
  s.msg.style.display = '';
}

async function pump(s) {
  if (s.drawing || s.dead) return;
  s.drawing = true;
  try {
    // a chart in a hidden tab waits until it is shown (the ResizeObserver calls again): drawn at width 0 it
    // would load plotly.js and draw before the tab a page opened on, and be drawn again when shown
    while (s.want && !s.dead && s.gd.clientWidth > 0) {
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
      if (s.dead) break;
      const fig = JSON.parse(msg.figure);
      const layout = fig.layout || {};
      layout.selectionrevision = msg.rev;  // a new figure starts unselected (uirevision keeps zoom and legend)
      await Plotly.react(s.gd, { data: fig.data || [], layout, frames: fig.frames || [], config: msg.config || {} });
      if (s.dead) break;
      s.rev = msg.rev;
      s.selected = false;
      s.lastSel = null;
      s.msg.style.display = 'none';
      if (msg.select && !s.hooked) {
        s.hooked = true;
        s.gd.on('plotly_selected', ev => {
          if (!ev || s.drawing) return;  // plotly re-selects while it redraws: not a person's click
          const sel = selection(ev);
          const text = JSON.stringify(sel);
          if ((!sel.points.length && !sel.box.length) || text === s.lastSel) return;
          s.lastSel = text;
          s.selected = true;
          s.setTrigger('select', sel);
        });
      }
    }
  } catch (err) {
    if (!s.dead) showError(s, err);
  } finally {
    s.drawing = false;
    if (s.dead && window.Plotly) window.Plotly.purge(s.gd);  // it left the page while drawing
    else if (s.want && s.gd.clientWidth > 0) pump(s);  // data that came in meanwhile
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let s = parentElement.__samlab;
  if (!s) {
    const gd = document.createElement('div');
    gd.className = 'samlab-live-plot';
    const msg = document.createElement('div');
    msg.className = 'samlab-live-error';
    msg.style.display = 'none';
    parentElement.append(gd, msg);
    s = { gd, msg, rev: null, want: null, drawing: false, hooked: false, selected: false, dead: false };
    parentElement.__samlab = s;
    // drawn when shown (a hidden tab), resized when the column's width changes without a window resize
    s.ro = new ResizeObserver(() => {
      const w = s.gd.clientWidth;
      if (!w || s.dead) return;
      if (s.want) pump(s);
      else if (s.rev && !s.drawing && s.gd._fullLayout && Math.abs(w - s.gd._fullLayout.width) >= 1) {
        window.Plotly.Plots.resize(s.gd);
      }
    });
    s.ro.observe(gd);
  }
  s.setTrigger = setTriggerValue;
  s.want = data;
  pump(s);
  // Streamlit calls this when the chart leaves the page, and also when a newer call replaced this one while
  // the component's module was still loading: then the element is still on the page and the plot stays.
  return () => {
    if (parentElement.isConnected) return;
    s.dead = true;
    s.ro.disconnect();
    if (window.Plotly && !s.drawing) window.Plotly.purge(s.gd);  // while drawing, pump purges it at its end
    parentElement.__samlab = null;
  };
}
"""

_CSS = ".samlab-live-plot { width: 100%; } .samlab-live-error { color: #d33; font-size: 0.9rem; }"

_component: Any = None


@functools.cache
def _chunk_sets_plotly(chunk: str) -> bool:
    """Whether Streamlit's chart chunk puts plotly.js on ``window.Plotly`` (it does in the builds this was
    written for); a build that does not gets st.plotly_chart."""
    try:
        return b"window.Plotly=" in (Path(st.__file__).parent / "static" / "static" / "js" / chunk).read_bytes()
    except OSError:
        return False


def _mount() -> Any:
    """The component's mounting command, or None where this Streamlit has no ``st.components.v2`` that takes
    ``isolate_styles`` when the component is made (older releases)."""
    global _component
    if _component is None:
        try:
            _component = st.components.v2.component(NAME, js=_JS, css=_CSS, isolate_styles=False)
        except (AttributeError, TypeError):
            _component = False
    return _component or None


def _merged(base: dict, over: dict) -> dict:
    """``base`` with ``over``'s values in it, nested dicts merged (``over`` wins)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@functools.cache
def _default_template() -> str:
    return (
        json.dumps(pio.templates[pio.templates.default].to_plotly_json(), sort_keys=True)
        if pio.templates.default
        else ""
    )


def _themed(template: dict | None) -> dict:
    """The template the browser gets: THEME in place of plotly.py's default template, or merged over a
    figure's own (Streamlit's values win, as st.plotly_chart's theme does)."""
    if not template or json.dumps(template, sort_keys=True) == _default_template():
        return THEME
    return {"data": template.get("data", {}), "layout": _merged(template.get("layout", {}), THEME["layout"])}


def _payload(fig: Any) -> tuple[str, str]:
    """(revision, JSON) of a figure, kept on the figure object: the race's figures are cached and shared
    (ui.landscape_controls.cached_figure), so a rerun that shows the same figure serialises nothing. A
    figure must not be changed once it has been shown."""
    got = getattr(fig, "_samlab_live", None)
    if got is None:
        if not hasattr(fig, "to_plotly_json"):
            fig = go.Figure(fig)  # a dict, possibly holding plotly objects
        spec = fig.to_plotly_json()
        layout = dict(spec.get("layout") or {})
        layout["template"] = _themed(layout.get("template"))
        spec["layout"] = layout
        text = pio.to_json(spec, validate=False)
        got = (hashlib.blake2b(text.encode(), digest_size=12).hexdigest(), text)
        try:
            fig._samlab_live = got
        except Exception:  # nothing to keep it on
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
    mount = _mount() if chunk is not None and _chunk_sets_plotly(chunk) else None
    if mount is None:  # no plotly.js to borrow, or no components v2: Streamlit's own chart
        kw: dict[str, Any] = {}
        if on_select is not None:
            kw = dict(on_select=lambda: on_select(st.session_state.get(key) or {}), selection_mode=("points", "box"))
        st.plotly_chart(fig, key=key, config=config, **kw)
        return
    text_rev, text = _payload(fig)
    cfg = {"displaylogo": False, **(config or {})}  # st.plotly_chart hides plotly's logo too
    if on_select is not None:  # a click or a box selects; no lasso (as st.plotly_chart's points/box mode)
        cfg["modeBarButtonsToAdd"] = [*cfg.get("modeBarButtonsToAdd", []), "select2d"]
        cfg["modeBarButtonsToRemove"] = [*cfg.get("modeBarButtonsToRemove", []), "lasso2d"]
    extra = json.dumps([cfg, on_select is not None], sort_keys=True)
    rev = hashlib.blake2b((text_rev + extra).encode(), digest_size=12).hexdigest()
    data = {"rev": rev, "chunk": chunk, "config": cfg, "select": on_select is not None, "figure": text}
    kw = {}
    if on_select is not None:

        def _selected() -> None:
            state = st.session_state.get(key) or {}
            sel = state.get("select") if hasattr(state, "get") else None
            if sel:
                on_select(sel)

        kw["on_select_change"] = _selected
    mount(key=key, data=data, **kw)


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
