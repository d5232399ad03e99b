"""The Landscape lab's figure cache: a figure is rebuilt whenever anything it draws changes, and shared when
nothing does (a class opening the same link, a rerun that leaves the race as it was)."""

import dataclasses
import json

import numpy as np

from sam_core.landscape.race import race
from sam_core.plots.landscape import contour_figure, metrics_figure
from ui import landscape_controls as lc


def _tracks(spec, lr=0.1):
    return race(lc.get_landscape(spec), ["sgd", "sam"], lr=lr, steps=60)


def test_the_digest_follows_every_array_a_figure_draws():
    spec = lc.LandscapeSpec("quartic")
    tracks = _tracks(spec)
    base = lc.tracks_digest(tracks)
    assert lc.tracks_digest(_tracks(spec)) == base  # the same race computed again
    for name in ("w", "ascent", "loss", "grad_norm", "gamma", "dist"):
        arr = getattr(tracks[1], name).copy()
        arr[len(arr) // 2] += 1e-9
        changed = [tracks[0], dataclasses.replace(tracks[1], **{name: arr})]
        assert lc.tracks_digest(changed) != base, name
    assert lc.tracks_digest([dataclasses.replace(tracks[0], diverged_step=5), tracks[1]]) != base
    assert lc.tracks_digest(tracks[::-1]) != base


def test_a_cached_figure_equals_a_fresh_one_and_is_shared_only_for_the_same_race():
    spec = lc.LandscapeSpec("quartic")
    tracks = _tracks(spec)
    opts = dict(step=30, show_ball=True, animate=True, x_axis="step", height=500)
    a = lc.cached_figure("contour", spec, tracks, **opts)
    fresh = contour_figure(lc.get_landscape(spec), tracks, **opts)
    assert json.loads(a.to_json()) == json.loads(fresh.to_json())
    assert lc.cached_figure("contour", spec, _tracks(spec), **opts) is a  # same race: the built figure
    assert lc.cached_figure("contour", spec, tracks, **{**opts, "step": 31}) is not a
    other = lc.cached_figure("contour", spec, _tracks(spec, lr=0.2), **opts)
    assert other is not a and json.loads(other.to_json()) != json.loads(a.to_json())
    m = lc.cached_figure("metrics", None, tracks, x_axis="step", current=30, f_star=0.0, height=400)
    ref = metrics_figure(tracks, x_axis="step", current=30, f_star=0.0, height=400)
    assert np.array_equal(m.data[0].y, ref.data[0].y) and json.loads(m.to_json()) == json.loads(ref.to_json())


def test_the_json_sent_for_a_race_map_is_compact_and_says_the_same():
    """plotly escapes "/" as \\u002f by default, a fifth of a race map's bytes (sam_core.plots): the JSON
    Streamlit sends now keeps "/" but still escapes "<" and ">", and decodes to the very same figure as
    the plain encoder's output."""
    import plotly.io as pio
    from plotly.utils import PlotlyJSONEncoder

    import sam_core.plots

    assert sam_core.plots.compact_plotly_json()
    spec = lc.LandscapeSpec("quartic")
    fig = contour_figure(lc.get_landscape(spec), _tracks(spec), animate=True)
    sent = pio.to_json(fig.to_dict(), validate=False)  # what st.plotly_chart puts in its message
    plain = json.dumps(fig.to_dict(), cls=PlotlyJSONEncoder)  # no escapes at all
    assert "\\u002f" not in sent and "/" in sent  # base64 data and the hover's </extra> keep their "/"
    assert "<" not in sent and ">" not in sent  # safe inside an HTML <script> (figure_html)
    assert json.loads(sent) == json.loads(plain)
    assert len(sent) < len(plain.replace("/", "\\u002f").replace("<", "\\u003c").replace(">", "\\u003e"))
