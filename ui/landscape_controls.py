"""Streamlit helpers of the landscape lab page: its controls, URL state and cached computations.

The page (pages/landscape.py) stays a script that reads these controls, calls the cached helpers
and draws. The URL holds the whole configuration (function, its parameters or custom expression and
domain, variants and each one's hyperparameters, lr, momentum, steps, noise, seed, start, views and
sweep settings): every control takes its first value from the URL, and ``write_url`` puts the
current values back after each run, so copying the address shares the exact view.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from sam_core import VARIANTS
from sam_core.cli import parse_bool
from sam_core.landscape.expr import MAX_CHARS, MAX_DOMAIN, ExprError, custom_landscape
from sam_core.landscape.functions import LANDSCAPE_LABELS, LANDSCAPE_PARAMS, NAMES, Landscape, make_landscape
from sam_core.landscape.race import Track, run_track, run_tracks
from sam_core.plots.landscape import contour_figure, metrics_figure, surface_figure
from ui import common as uc

DEFAULT_EXPR = "sin(x)*y + 0.1*x**2"
DEFAULT_DOMAIN = ((-3.0, 3.0), (-3.0, 3.0))
FUNCTION_OPTIONS = [*NAMES, "custom"]
RHO_RANGE = (1e-3, 10.0)  # whole decades, so 0.01, 0.1, 1 are slider positions
LR_RANGE = (1e-4, 10.0)

# Race layout: a map that fits a 720-px projector under the page header, and below a 1200-px window the
# metrics under the map instead of beside it (Streamlit's columns only stack below 640 px)
MAP_HEIGHT = 540
RACE_CSS = """<style>
@media (max-width: 1199px) {
  .st-key-ls_race [data-testid="stHorizontalBlock"] { flex-wrap: wrap; }
  .st-key-ls_race [data-testid="stColumn"] { min-width: 100%; flex: 1 1 100%; }
}
</style>"""
# one line per metric panel of the race, for a student: what it shows and what to look for
METRIC_CAPTION = "  \n".join(
    [
        "**f − f\\***: how far above the lowest minimum; a flat line well above 0 means stuck (e.g. at a saddle).",
        "**‖g‖**: the gradient norm; it falls towards 0 at a minimum — and at a saddle too: read it with f − f\\*.",
        "**γ_t** = ‖g‖/‖g_adv‖ (SGD: 1, it has no ascent): 1 = the ascent changed nothing; below 1 the ascent point "
        "is steeper (a sharp region), and Stable SAM shrinks its step by that factor.",
        "**dist. to minimum**: to the nearest minimum; falling to ~0 = converged there, a plateau = bouncing or stuck.",
    ]
)
METRIC_CAPTION_NO_MIN = "  \n".join(
    [
        "**loss f**: the function value along each path.",
        "**‖g‖**: the gradient norm (0 at a critical point).",
        "**γ_t** = ‖g‖/‖g_adv‖ (SGD: 1, it has no ascent): below 1 the ascent point is steeper (a sharp region).",
        "**dist. to minimum**: this function has no known minimum, so that panel stays empty.",
    ]
)


@dataclass(frozen=True)
class LandscapeSpec:
    """What identifies a landscape (hashable: the cache key)."""

    name: str
    params: tuple = ()
    expr: str = ""
    domain: tuple = ()


# ------------------------------------------------------------------------------------ URL parsing
def _float(s: str) -> float:
    v = float(s)
    if not math.isfinite(v):
        raise ValueError(s)
    return v


def _domain(s: str) -> list[float]:
    """``"x_min,x_max,y_min,y_max"`` from a link: 4 finite numbers within ±MAX_DOMAIN, min < max."""
    d = [float(v) for v in s.split(",", 4)]
    if (
        len(d) != 4
        or not all(math.isfinite(v) and abs(v) <= MAX_DOMAIN for v in d)
        or not (d[0] < d[1] and d[2] < d[3])
    ):
        raise ValueError(s)
    return d


def _clip(v: float, lo: float, hi: float) -> float:
    return float(min(max(v, lo), hi))


def url_hp_defaults(variant: str, ranges: dict[str, tuple[float, float]] | None = None) -> dict:
    """Hyperparameter values of ``variant`` found in the URL as ``<variant>.<name>=value``, clamped to the
    registry's range (or ``ranges[name]``, the range the page's widget uses) with a notice."""
    out: dict[str, Any] = {}
    for name, h in VARIANTS[variant].hparams.items():
        if not h.ui:
            continue
        key = f"{variant}.{name}"
        low, high = (ranges or {}).get(name, (h.low, h.high))
        if h.kind == "bool":
            v = uc.qp_get(key, None, parse_bool, expect="1 or 0")
        elif h.kind == "choice":
            v = uc.qp_get(key, None, str, options=list(h.choices))
        elif h.kind == "schedule":
            raw = uc.qp_get(key, None, str)
            v = raw if raw in h.choices else None
            if v is None and raw is not None:
                v = uc.qp_get(
                    key,
                    None,
                    float,
                    low=low,
                    high=high,
                    expect=f"{', '.join(h.choices)} or a number in [{low:g}, {high:g}]",
                )
        else:
            v = uc.qp_get(key, None, float, low=low, high=high)
        if v is not None:
            out[name] = v
    return out


# ------------------------------------------------------------------------------------ cached work
@st.cache_resource(max_entries=64, show_spinner=False)
def get_landscape(spec: LandscapeSpec) -> Landscape:
    """The landscape for ``spec`` (custom expressions are parsed once; errors are not cached)."""
    if spec.name == "custom":
        return custom_landscape(spec.expr, spec.domain)
    return make_landscape(spec.name, **dict(spec.params))


# A race over every position of the lr slider costs about one race (single trajectories are dispatch-bound):
# then moving the lr slider only looks tracks up. Up to this many steps (memory: ~9 floats per step and lr).
LR_GRID_MAX_STEPS = 2500


@st.cache_resource(max_entries=16, show_spinner=False)
def cached_lr_tracks(
    spec: LandscapeSpec,
    variant: str,
    hp_items: tuple,
    start: tuple,
    lrs: tuple,
    steps: int,
    momentum: float,
    noise: float,
    seed: int,
) -> dict[float, Track]:
    """One variant's race at every lr of ``lrs`` (one batched run), by lr; shared read-only, not copied."""
    tracks = run_tracks(get_landscape(spec), variant, dict(hp_items), start, list(lrs), steps, momentum, noise, seed)
    return {t.lr: t for t in tracks}


@st.cache_data(max_entries=512, show_spinner=False)
def _single_track(
    spec: LandscapeSpec,
    variant: str,
    hp_items: tuple,
    start: tuple,
    lr: float,
    steps: int,
    momentum: float,
    noise: float,
    seed: int,
) -> Track:
    return run_track(get_landscape(spec), variant, dict(hp_items), start, lr, steps, momentum, noise, seed)


def cached_track(
    spec: LandscapeSpec,
    variant: str,
    hp_items: tuple,
    start: tuple,
    lr: float,
    steps: int,
    momentum: float,
    noise: float,
    seed: int,
    lr_grid: tuple = (),
) -> Track:
    """One variant's race track, cached per configuration (a slider change recomputes one variant). When
    ``lr`` is one of ``lr_grid`` (the lr slider's positions) the race is run at all of them at once."""
    if lr_grid and float(lr) in lr_grid and steps <= LR_GRID_MAX_STEPS:
        return cached_lr_tracks(spec, variant, hp_items, start, tuple(lr_grid), steps, momentum, noise, seed)[float(lr)]
    return _single_track(spec, variant, hp_items, start, lr, steps, momentum, noise, seed)


FIGURES = {"contour": contour_figure, "surface": surface_figure, "metrics": metrics_figure}


def tracks_digest(tracks: list[Track]) -> str:
    """A fingerprint of the race's tracks: everything of theirs a figure draws."""
    h = hashlib.blake2b(digest_size=16)
    for t in tracks:
        h.update(repr((t.variant, sorted(t.hp.items()), t.lr, t.passes, t.diverged_step, len(t.w))).encode())
        for a in (t.w, t.ascent, t.loss, t.grad_norm, t.gamma, t.dist):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()


@st.cache_resource(max_entries=24, show_spinner=False)
def _figure(kind: str, spec: LandscapeSpec | None, digest: str, options: tuple, _tracks: list[Track]):
    landscape = () if spec is None else (get_landscape(spec),)
    return FIGURES[kind](*landscape, _tracks, **dict(options))


def cached_figure(kind: str, spec: LandscapeSpec | None, tracks: list[Track], **options):
    """The race's ``kind`` figure ("contour", "surface": the map of ``spec``'s function; "metrics"), built
    once per configuration for every session: a class opening the teacher's link, or a rerun that leaves
    the race as it was, gets the figure already built (building it was most of a render: ~0.2 s of
    Python per page). The figure is shared, so the page only reads it (st.plotly_chart copies it)."""
    return _figure(kind, spec, tracks_digest(tracks), tuple(sorted(options.items())), tracks)


def hp_items(hp: dict) -> tuple:
    return tuple(sorted(hp.items()))


# ------------------------------------------------------------------------------------ controls
def function_controls(c) -> tuple[LandscapeSpec, Landscape, str | None]:
    """Function picker (+ its parameters, or a custom expression and domain).

    Returns ``(spec, landscape, error)``: on a bad custom expression the last good one is kept and
    ``error`` holds the message to show."""
    url_fn = uc.qp_get("fn", "quartic", options=FUNCTION_OPTIONS)
    fn = c.selectbox(
        "Function",
        FUNCTION_OPTIONS,
        index=FUNCTION_OPTIONS.index(url_fn) if url_fn in FUNCTION_OPTIONS else 0,
        format_func=lambda k: LANDSCAPE_LABELS.get(k, "Custom expression…"),
        key="ls_fn",
    )
    params: list[tuple[str, float]] = []
    for name, p in LANDSCAPE_PARAMS.get(fn, {}).items():
        d = uc.qp_get(name, p.default, float, low=p.low, high=p.high)
        label = f"{p.help.split(':')[0]}" if p.help else name
        v = c.number_input(
            f"{label} ∈ [{p.low:g}, {p.high:g}]",
            min_value=float(p.low),
            max_value=float(p.high),
            value=float(d),
            key=f"ls_p_{fn}_{name}",
            help=p.help,
            format="%.4g",
        )  # exact, not snapped
        params.append((name, float(v)))
    if fn != "custom":
        spec = LandscapeSpec(fn, tuple(params))
        return spec, get_landscape(spec), None
    expr = c.text_input(
        "f(x, y) =",
        value=uc.qp_get("expr", DEFAULT_EXPR, max_len=MAX_CHARS),
        key="ls_expr",
        max_chars=MAX_CHARS,
        help="Numbers, x, y, pi, e, + - * / **, and sin cos tan exp log sqrt abs tanh sinh cosh "
        "atan asin acos sigmoid softplus relu log1p log2 log10, atan2(a,b) min(a,b) max(a,b) "
        "hypot(a,b). Parsed by a whitelist, never eval'd.",
    )
    dom_url = uc.qp_get(
        "dom",
        None,
        _domain,
        max_len=200,
        expect=f"x_min,x_max,y_min,y_max: 4 finite numbers in [-{MAX_DOMAIN:g}, {MAX_DOMAIN:g}], min < max",
    )
    d = dom_url or [*DEFAULT_DOMAIN[0], *DEFAULT_DOMAIN[1]]
    cols = c.columns(2)
    xmin = cols[0].number_input("x min", value=float(d[0]), key="ls_xmin", format="%.3g")
    xmax = cols[1].number_input("x max", value=float(d[1]), key="ls_xmax", format="%.3g")
    ymin = cols[0].number_input("y min", value=float(d[2]), key="ls_ymin", format="%.3g")
    ymax = cols[1].number_input("y max", value=float(d[3]), key="ls_ymax", format="%.3g")
    spec = LandscapeSpec("custom", (), expr.strip(), ((float(xmin), float(xmax)), (float(ymin), float(ymax))))
    try:
        L = get_landscape(spec)
        st.session_state["ls_last_good"] = spec
        return spec, L, None
    except ExprError as err:
        good = st.session_state.get("ls_last_good") or LandscapeSpec("custom", (), DEFAULT_EXPR, DEFAULT_DOMAIN)
        return (
            good,
            get_landscape(good),
            f"{uc.plain_markdown(str(err))}\n\nStill showing the last good function: `f = {good.expr}`",
        )


def variant_controls(c, landscape: Landscape) -> tuple[list[str], dict[str, dict]]:
    """Variant picker and each chosen variant's hyperparameters (from the registry)."""
    variants = uc.variant_picker("ls_variants", default=("sgd", "sam", "ssam"), container=c, max_selections=8)
    hp: dict[str, dict] = {}
    for v in variants:
        if not any(h.ui for h in VARIANTS[v].hparams.values()):
            hp[v] = {}
            continue
        defaults = {"rho": _clip(landscape.rho, *RHO_RANGE)} | url_hp_defaults(v, {"rho": RHO_RANGE})
        with c.expander(f"{uc.variant_label(v)} hyperparameters", expanded=False):
            hp[v] = uc.hparam_inputs(v, "ls", defaults=defaults, rho_range=RHO_RANGE)
    return variants, hp


def _number(c, label: str, key: str, default: float, **kw) -> float:
    """A number input whose value may have been set by a callback (then no default is passed)."""
    if key in st.session_state:
        return c.number_input(label, key=key, **kw)
    return c.number_input(label, value=default, key=key, **kw)


def run_controls(c, landscape: Landscape, fn: str) -> dict:
    """lr (log slider), momentum, steps, noise, seed, equal-evaluations mode, start point."""
    same_fn = uc.qp_get("fn", "quartic", options=FUNCTION_OPTIONS) == fn
    lr0 = _clip(
        uc.qp_get("lr", landscape.lr, float, low=LR_RANGE[0], high=LR_RANGE[1]) if same_fn else landscape.lr, *LR_RANGE
    )
    lr_grid = tuple(uc.log_options(*LR_RANGE))  # the slider's fixed positions (an off-grid default runs alone)
    lr = uc.log_slider(
        "Learning rate η",
        *LR_RANGE,
        lr0,
        key=f"ls_lr_{fn}",
        container=c,
        help=f"Shared by all variants. GD bound on this function: 2/λ_max = {landscape.gd_bound:.3g}"
        if landscape.gd_bound
        else "Shared by all variants.",
    )
    momentum = c.slider("Momentum β", 0.0, 0.99, uc.qp_get("mom", 0.0, float, low=0.0, high=0.99), 0.01, key="ls_mom")
    steps = int(c.number_input("Steps", 1, 5000, uc.qp_get("steps", 500, int, low=1, high=5000), 50, key="ls_steps"))
    cols = c.columns(2)
    noise = float(
        cols[0].number_input(
            "Gradient noise σ",
            0.0,
            10.0,
            uc.qp_get("noise", 0.0, float, low=0.0, high=10.0),
            0.05,
            key="ls_noise",
            format="%.3g",
            help="Std of Gaussian noise added to every gradient (all passes of one step "
            "share the draw, like one mini-batch): mimics SGD.",
        )
    )
    seed = int(
        cols[1].number_input("Seed", 0, 2**31 - 1, uc.qp_get("seed", 0, int, low=0, high=2**31 - 1), key="ls_seed")
    )
    equal = c.toggle(
        "Equal gradient evaluations",
        value=uc.qp_get("eq", False, parse_bool, expect="1 or 0"),
        key="ls_eq",
        help="Give every variant the same budget of gradient evaluations: SAM-type rules cost 2 "
        "per step and BSAM 3, so they run steps/2 and steps/3 steps.",
    )
    c.markdown("**Start point** · or click on the contour plot")
    (x0, x1), (y0, y1) = landscape.domain
    sx, sy = landscape.start
    cols = c.columns(2)
    span = max(x1 - x0, y1 - y0)
    if same_fn:  # the number inputs below refuse a value outside their bounds: clamp a link's start first
        sx = uc.qp_get("x0", sx, float, low=x0 - span, high=x1 + span)
        sy = uc.qp_get("y0", sy, float, low=y0 - span, high=y1 + span)
    x = _number(
        cols[0], "x₀", f"ls_x0_{fn}", float(sx), min_value=x0 - span, max_value=x1 + span, format="%.4g", step=0.05
    )
    y = _number(
        cols[1], "y₀", f"ls_y0_{fn}", float(sy), min_value=y0 - span, max_value=y1 + span, format="%.4g", step=0.05
    )
    return dict(
        lr=float(lr),
        lr_grid=lr_grid,
        momentum=float(momentum),
        steps=steps,
        noise=noise,
        seed=seed,
        equal_evals=bool(equal),
        start=(float(x), float(y)),
    )


def start_from_selection(selection: Any) -> tuple[float, float] | None:
    """The start point a plot selection asks for: the clicked point, or the centre of a box. ``selection`` is
    ``{"points": [...], "box": [...]}`` (ui.plotly_live) or st.plotly_chart's ``{"selection": {...}}``."""
    if not selection:
        return None
    sel = selection.get("selection", selection) if isinstance(selection, dict) or hasattr(selection, "get") else None
    if not sel:
        return None
    pts = sel.get("points") or []
    for p in pts:
        if "x" in p and "y" in p:
            try:
                x, y = float(p["x"]), float(p["y"])
            except (TypeError, ValueError):
                continue
            if math.isfinite(x) and math.isfinite(y):
                return x, y
    for b in sel.get("box") or []:
        try:
            xs, ys = b["x"], b["y"]
            return (float(xs[0]) + float(xs[1])) / 2, (float(ys[0]) + float(ys[1])) / 2
        except (KeyError, TypeError, ValueError, IndexError):
            continue
    return None


def on_plot_select(fn: str, selection: Any) -> None:
    """Callback of the contour plot: a click (or a box) sets the start point of the current function."""
    p = start_from_selection(selection)
    if p is not None:
        st.session_state[f"ls_x0_{fn}"] = round(p[0], 4)
        st.session_state[f"ls_y0_{fn}"] = round(p[1], 4)


def write_url(values: dict) -> None:
    """Replace the page's query parameters by ``values`` (the whole configuration); the tokens of its
    lab jobs (``job.<key>``, ui/jobs.py) stay, so a reload still finds a running sweep."""
    clean = {k: v for k, v in values.items() if v is not None}
    try:
        jobs = {k: v for k, v in st.query_params.to_dict().items() if k.startswith("job.")}
        uc.qp_set(replace=True, **clean, **jobs)
    except Exception:  # the URL is a convenience: never break the page over it
        pass


def race_summary(tracks: list[Track], landscape: Landscape) -> pd.DataFrame:
    """One row per variant: where it ended, its loss, distance to the nearest minimum, cost."""
    rows = []
    for t in tracks:
        rows.append(
            {
                "variant": t.name,
                "steps": t.steps,
                "grad evals": int(t.evals[-1]),
                "x": f"{t.w[-1, 0]:.4g}",
                "y": f"{t.w[-1, 1]:.4g}",
                "f": f"{t.loss[-1]:.4g}",
                "distance to min": f"{t.dist[-1]:.3g}" if len(landscape.minima) else "no minimum",
                "diverged at step": str(t.diverged_step) if t.diverged_step is not None else "",
            }
        )
    return pd.DataFrame(rows)  # strings: a display table (the CSV export keeps full precision)
