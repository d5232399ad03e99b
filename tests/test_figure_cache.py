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


def _decoded(obj):
    """A figure's JSON with every typed-array spec decoded to a list (the dtype plotly picks aside)."""
    import base64

    if isinstance(obj, dict):
        if set(obj) == {"dtype", "bdata"}:
            return np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"])).tolist()
        return {k: _decoded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decoded(v) for v in obj]
    return obj


def test_the_race_figures_built_as_plain_dicts_are_what_plotly_validation_accepts_unchanged():
    """contour_figure and metrics_figure skip plotly.py's validation (it was most of a slider change's server
    time): every property they set must still be one plotly.py accepts, with the value it would have kept.
    Validating the figure again raises on an unknown or ill-typed property and would coerce a wrong value."""
    import plotly.graph_objects as go

    from sam_core.landscape.race import race as run_race

    cases = [
        ("quartic", ["sgd", "sam", "ssam"], dict(step=30)),
        ("rosenbrock", ["sgd", "usam", "asam"], dict(animate=False, title="a title")),
        ("saddle", [], {}),
        ("himmelblau", ["bsam"], dict(step=7, show_ball=False, click_grid=0, x_axis="evals")),
    ]
    for fn, variants, opts in cases:
        L = lc.get_landscape(lc.LandscapeSpec(fn))
        tracks = run_race(L, variants, lr=L.lr * (40 if fn == "rosenbrock" else 1), steps=60) if variants else []
        fig = contour_figure(L, tracks, **opts)
        validated = go.Figure(fig.to_dict())  # raises ValueError on anything plotly.py does not accept
        same = [json.dumps(_decoded(json.loads(f.to_json())), sort_keys=True) for f in (validated, fig)]  # NaN == NaN
        assert same[0] == same[1], fn
        assert len(fig.frames) == (0 if not variants or opts.get("animate") is False else 61), fn
        if not variants:
            continue
        for mopts in (dict(f_star=0.0, current=30), dict(x_axis="evals"), dict(f_star=None, current=None)):
            mfig = metrics_figure(tracks, **mopts)
            validated = go.Figure(mfig.to_dict())
            same = [json.dumps(_decoded(json.loads(f.to_json())), sort_keys=True) for f in (validated, mfig)]
            assert same[0] == same[1], (fn, mopts)
            assert len(mfig.data) == 4 * len(tracks) and len(mfig.layout.shapes) == (4 if mopts.get("current") else 0)
    L = lc.get_landscape(lc.LandscapeSpec("rosenbrock"))
    wild = run_race(L, ["sgd", "usam"], lr=L.lr * 40, steps=60)
    assert any(t.diverged_step is not None for t in wild)
    clipped = metrics_figure(wild, f_star=0.0).layout  # a diverging race: its axes are clipped, and say so
    assert clipped.meta["clipped"] and any("clipped" in a.text for a in clipped.annotations)


def test_the_race_figures_margins_are_given_and_reserve_the_legend_rows():
    """The map and the metric panels give plotly.js their margins (no second layout pass in the browser):
    a longer legend (more variants, a "diverged at step …" label) reserves more rows, an animated map the
    play/slider row, a title the top."""
    from sam_core.plots.landscape import map_margins, metrics_margins
    from sam_core.plots.style import legend_rows

    spec = lc.LandscapeSpec("quartic")
    tracks = _tracks(spec)
    fig = contour_figure(lc.get_landscape(spec), tracks)
    legend = [t.name for t in fig.data if t.name and t.showlegend is not False]
    assert legend[:3] == ["minimum", "saddle", "start"] and legend[3:] == [t.label for t in tracks]
    m = fig.layout.margin
    assert m.autoexpand is False and (m.l, m.r, m.t, m.b) == tuple(
        map_margins(legend, animated=True)[k] for k in "lrtb"
    )
    three = ["SGD", "SAM", "Stable SAM (SSAM)"]
    diverged = ["SGD · diverged at step 57", "SAM", "Stable SAM (SSAM)"]
    assert legend_rows(three, 360) == 1 and legend_rows(diverged, 360) == 2 and legend_rows([], 360) == 1
    assert legend_rows(["x" * 200], 360) == 1  # one entry wider than the box: still one row
    assert metrics_margins(diverged)["b"] > metrics_margins(three)["b"]
    assert map_margins(three * 3, animated=True)["b"] > map_margins(three, animated=True)["b"]
    assert map_margins(three, animated=True)["b"] > map_margins(three, animated=False)["b"]
    assert map_margins(three, animated=True, title="t")["t"] > map_margins(three, animated=True)["t"]
    mm = metrics_figure(tracks, f_star=0.0).layout.margin
    assert mm.autoexpand is False and mm.b == metrics_margins([t.label for t in tracks])["b"]
