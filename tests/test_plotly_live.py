"""ui.plotly_live under AppTest: what the browser is sent (the figure, its theme, a revision that changes
with the figure and only with it), and the fallback to st.plotly_chart. The browser side (one draw per new
figure, the click, the same look as st.plotly_chart) is in tests/e2e."""

import json

import plotly.graph_objects as go
import plotly.io as pio
from streamlit.testing.v1 import AppTest

from ui.plotly_live import NAME, THEME, drawn_figures

SCRIPT = """
import numpy as np
import plotly.graph_objects as go
import streamlit as st
import ui.plotly_live as pl

if "fig" not in st.session_state or st.session_state.get("new"):
    k = st.session_state.get("k", 1)
    st.session_state["fig"] = go.Figure(
        [go.Scatter(x=np.arange(5.0), y=np.arange(5.0) ** k, mode="lines", name="p")],
        layout=dict(height=300, xaxis_title="x"),
    )
real = pl.plotly_chunk
if st.session_state.get("no_chunk"):
    pl.plotly_chunk = lambda: None
try:
    pl.plotly_live(st.session_state["fig"], key="chart", config={"displaylogo": False}, on_select=lambda sel: None)
finally:
    pl.plotly_chunk = real
"""


def _component(at):
    els = [e for e in at.get("bidi_component") if e.proto.component_name == NAME]
    assert len(els) == 1
    return json.loads(els[0].proto.json)


def test_the_figure_goes_to_the_browser_with_the_streamlit_theme_and_a_revision():
    at = AppTest.from_string(SCRIPT, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    sent = _component(at)
    fig = at.session_state["fig"]
    want = json.loads(pio.to_json(fig, validate=False))
    got = json.loads(sent["figure"])
    assert got["data"] == want["data"]  # the traces exactly as st.plotly_chart would send them
    assert got["layout"]["xaxis"] == want["layout"]["xaxis"] and got["layout"]["height"] == 300
    assert got["layout"]["template"] == json.loads(json.dumps(THEME))  # not plotly.py's default template
    assert sent["config"]["displaylogo"] is False and "select2d" in sent["config"]["modeBarButtonsToAdd"]
    assert sent["select"] is True and sent["chunk"].startswith("PlotlyChart.")
    assert drawn_figures(at)["chart"] == got

    at.run()  # the same figure object again: the same revision, so the browser draws nothing
    assert _component(at)["rev"] == sent["rev"]
    at.session_state["new"], at.session_state["k"] = True, 2
    at.run()  # another figure: another revision, another payload
    again = _component(at)
    assert again["rev"] != sent["rev"]
    assert json.loads(again["figure"])["data"] != got["data"]


def test_equal_figures_built_twice_get_the_same_revision():
    at = AppTest.from_string(SCRIPT, default_timeout=60)
    at.run()
    rev = _component(at)["rev"]
    at.session_state["new"] = True  # rebuilt, k unchanged: a new object holding the same figure
    at.run()
    assert _component(at)["rev"] == rev


def test_a_figures_own_template_keeps_its_trace_defaults_under_the_streamlit_look():
    at = AppTest.from_string(SCRIPT.replace('xaxis_title="x"', 'xaxis_title="x", template="plotly_white"'))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    tpl = json.loads(_component(at)["figure"])["layout"]["template"]
    white = json.loads(pio.json.to_json_plotly(pio.templates["plotly_white"].to_plotly_json()))
    assert tpl["data"] == white["data"]
    assert tpl["layout"]["font"] == THEME["layout"]["font"]  # Streamlit's values win over the template's
    assert tpl["layout"]["hovermode"] == white["layout"]["hovermode"]  # and the rest of it stays


def test_without_streamlits_plotly_chunk_it_falls_back_to_st_plotly_chart():
    at = AppTest.from_string(SCRIPT, default_timeout=60)
    at.session_state["no_chunk"] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [e for e in at.get("bidi_component") if e.proto.component_name == NAME]
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    assert spec["data"][0]["name"] == "p" and len(spec["data"]) == 1
    assert isinstance(at.session_state["fig"], go.Figure)
