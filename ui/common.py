"""Shared Streamlit helpers: variant picker, hyperparameter widgets from the registry, URL state.

Pages call these instead of building their own widgets, so every page shows the same names,
symbols, ranges and colours. Session-state keys used across pages are listed in `KEYS`.
"""

from __future__ import annotations

import base64
import functools
import gc
import logging
import math
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import streamlit as st
import torch

from sam_core import VARIANTS
from sam_core.plots.style import variant_color, variant_dash  # noqa: F401  (re-exported for pages)
from sam_core.registry import HParam
from sam_core.settings import get_settings

KEYS = {"variants": "chosen_variants"}  # session-state keys shared between pages
_LOG = logging.getLogger("samlab")


_HEAP_SETTLED = False


def settle_heap() -> None:
    """Once per server process, after its first page has run: collect, then move every object alive (the
    imported modules of torch, plotly, Streamlit: ~250 000 objects) out of the garbage collector's sight
    (``gc.freeze``). A full collection then looks only at what the sessions made since, instead of holding
    the interpreter ~0.3 s per pass on this 2-core box; .streamlit/config.toml also turns off Streamlit's
    collection after every rerun (``runner.postScriptGC``), which held it that long after each slider
    change, for every session on the server (docs/PERFORMANCE.md)."""
    global _HEAP_SETTLED
    if _HEAP_SETTLED:
        return
    _HEAP_SETTLED = True
    gc.collect()
    gc.freeze()


def variant_label(name: str) -> str:
    return VARIANTS[name].label if name in VARIANTS else name


# ------------------------------------------------------------------------------------ URL state
# A shared link is untrusted input: every value read from it is checked against the bounds (or the options)
# of the widget it seeds. A malformed value falls back to the default, an out-of-range one is clamped, and
# either way ONE notice names the parameter and what is allowed; a link never raises an exception page.
_NOTICES = "_qp_notices"  # session state: {"box": a container at the top of the page, "seen": names noticed}
MAX_QP_CHARS = 2000  # longer values are dropped (a list or an expression is much shorter)


def _notice_state() -> dict:
    state = st.session_state.get(_NOTICES)
    if not isinstance(state, dict):
        state = st.session_state[_NOTICES] = {"box": None, "seen": set()}
    return state


def reset_url_notices() -> None:
    """Start this run's URL notices (page_guard calls it first on every page): they go to a container at
    the top of the page, so a notice read inside a collapsed expander or the sidebar is still seen."""
    st.session_state[_NOTICES] = {"box": st.container(), "seen": set()}


def url_notice(name: str, message: str) -> None:
    """Show one notice per URL parameter and run: "Link parameter `name` …: message"."""
    state = _notice_state()
    if name in state["seen"]:
        return
    state["seen"].add(name)
    text = f"Link parameter `{name}`: {message}"
    box = state.get("box")
    try:
        (box if box is not None else st).warning(text, icon=":material/link:")
    except Exception:  # e.g. written from a fragment rerun, outside the fragment: show it where we are
        st.warning(text, icon=":material/link:")


def _show(raw: str) -> str:
    """The raw value as the notice quotes it: short, and a 300-digit number by its length."""
    return repr(raw) if len(raw) <= 24 else repr(raw[:16]) + f"…({len(raw)} characters)"


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _using(default: Any) -> str:
    return "dropped" if default is None or default == "" else f"using {_fmt(default)}"


def _range(low: Any, high: Any, options: Sequence | None) -> str:
    if options is not None:
        opts = list(options)
        shown = ", ".join(map(str, opts[:12])) + (", …" if len(opts) > 12 else "")
        return f"one of {shown}"
    if low is not None and high is not None:
        return f"[{_fmt(low)}, {_fmt(high)}]"
    if low is not None:
        return f"≥ {_fmt(low)}"
    if high is not None:
        return f"≤ {_fmt(high)}"
    return ""


def _cast(raw: str, cast: Callable[[str], Any]) -> Any:
    """`cast(raw)`; an integer field also takes '1e3' or '12.0' (a whole number written as a float) and
    ±inf (clamped to the bounds by the caller)."""
    if cast is int:
        try:
            return int(raw)
        except ValueError:
            v = float(raw)  # ValueError again if it is no number at all
            if math.isnan(v):
                raise
            if math.isinf(v):
                return v
            if not v.is_integer():
                raise ValueError(raw) from None
            return int(v)
    return cast(raw)


def qp_get(
    name: str,
    default: Any,
    cast: Callable[[str], Any] = str,
    *,
    low: Any = None,
    high: Any = None,
    options: Sequence | None = None,
    max_len: int = MAX_QP_CHARS,
    expect: str = "",
) -> Any:
    """A value from the URL's query parameters, or `default` if absent.

    Pass the bounds of the widget the value seeds (`low`/`high`, or its `options`): a value outside them
    is clamped to the nearest bound (options: replaced by the default), a malformed, NaN, infinite (without
    a bound on that side) or overlong value is replaced by the default, each with one notice naming the
    parameter and its allowed range (`expect` describes a structured value, e.g. "4 numbers").
    """
    raw = st.query_params.get(name)
    if raw is None:
        return default
    raw = str(raw)
    allowed = expect or _range(low, high, options)
    tail = f" (allowed: {allowed})" if allowed else ""
    if len(raw) > max_len:
        url_notice(name, f"a value of {len(raw)} characters is too long (at most {max_len}){tail}; {_using(default)}.")
        return default
    try:
        v = _cast(raw, cast)
    except (TypeError, ValueError, OverflowError, ArithmeticError):
        kind = {int: "an integer", float: "a number"}.get(cast, "a valid value")
        url_notice(name, f"{_show(raw)} is not {kind}{tail}; {_using(default)}.")
        return default
    if options is not None:
        if v not in options:
            url_notice(name, f"{_show(raw)} is unknown{tail}; {_using(default)}.")
            return default
        return v
    if isinstance(v, float) and math.isnan(v):
        url_notice(name, f"{_show(raw)} is not a number{tail}; {_using(default)}.")
        return default
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        if (v < 0 and math.isinf(v) and low is None) or (v > 0 and math.isinf(v) and high is None):
            url_notice(name, f"{_show(raw)} is not a finite number{tail}; {_using(default)}.")
            return default
        if low is not None and v < low:
            url_notice(name, f"{_show(raw)} is outside its range{tail}; using {_fmt(low)}.")
            return low
        if high is not None and v > high:
            url_notice(name, f"{_show(raw)} is outside its range{tail}; using {_fmt(high)}.")
            return high
    return v


def qp_get_list(
    name: str, default: Sequence[str], allowed: Sequence[str] | None = None, max_items: int = 64
) -> list[str]:
    """A comma list from the URL; unknown items (not in `allowed`) are dropped and at most `max_items`
    are kept, each with one notice naming the parameter; `default` when nothing is left."""
    raw = st.query_params.get(name)
    if not raw:
        return list(default)
    raw = str(raw)
    if len(raw) > MAX_QP_CHARS:
        url_notice(name, f"a list of {len(raw)} characters is too long (at most {MAX_QP_CHARS}); using the default.")
        return list(default)
    items = [x for x in raw.split(",") if x]
    if allowed is not None:
        bad = [x for x in items if x not in allowed]
        items = [x for x in items if x in allowed]
        if bad:
            url_notice(
                name,
                f"unknown {', '.join(_show(b) for b in bad[:5])}{', …' if len(bad) > 5 else ''} "
                f"dropped (allowed: {', '.join(allowed)}).",
            )
    items = list(dict.fromkeys(items))
    if len(items) > max_items:
        url_notice(name, f"{len(items)} items, at most {max_items} are used.")
        items = items[:max_items]
    return items or list(default)


def _qp_text(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def qp_set(*, replace: bool = False, **values: Any) -> None:
    """Write the page's configuration into the URL (lists joined by commas), so it can be shared;
    ``replace``: ``values`` become the whole query string (keys not given are dropped).

    One message to the browser at most: each ``st.query_params[k] = v`` sends one, and the race's 33
    parameters, handled one by one on the browser's main thread, delayed the metric panels' draw by ~60 ms.
    None when the URL already says it, unless this session's last write said something else: a write of a
    run that was interrupted (an lr change, then the old lr again at once) may still be on its way to the
    browser, and it would land after this run's silence."""
    text = {k: _qp_text(v) for k, v in values.items()}
    if "variants" in text:  # our own write: not a new link to apply over the user's choice
        st.session_state["_variants_from_url"] = text["variants"]
    qp = st.query_params
    now = [(k, tuple(qp.get_all(k))) for k in qp]  # a repeated key (a hand-edited link) is written once
    want = dict(text) if replace else {**{k: v[-1] if v else "" for k, v in now}, **text}
    want_items = [(k, (v,)) for k, v in want.items()]
    sent = st.session_state.get("_qp_sent")
    if now == want_items and sent in (None, want_items):
        return
    qp.from_dict(want)  # one message (a page's embed options stay); the URL is now exactly ``want``
    st.session_state["_qp_sent"] = want_items


# ------------------------------------------------------------------------------------ widgets
def kept_state(key: str, initial: Callable[[], Any]) -> Any:
    """What to create a keyed widget that keeps its state (tabs or an expander with ``on_change="rerun"``)
    with, as its ``default``/``expanded``: its state once it has one, else ``initial()``. Streamlit counts
    that argument in the element's id, so one that moved away from the state made a new widget, reset to it:
    the edge-of-stability page flipped back to Theory when its run finished, and the Training lab's form
    folded at the first change in it. A page may set the state itself (``st.session_state[key] = …``) before
    the widget is created."""
    return st.session_state[key] if key in st.session_state else initial()


def log_options(low: float, high: float, per_decade: int = 12) -> list[float]:
    """Log-spaced values between low and high (rounded to 3 significant digits) for a log slider."""
    lo, hi = math.log10(low), math.log10(high)
    n = max(2, int(round((hi - lo) * per_decade)) + 1)
    vals = [float(f"{10 ** (lo + (hi - lo) * i / (n - 1)):.3g}") for i in range(n)]
    return sorted(set(vals))


def log_slider(
    label: str,
    low: float,
    high: float,
    default: float,
    key: str,
    help: str | None = None,
    container: Any = None,
    per_decade: int = 12,
) -> float:
    """A slider whose positions are log-spaced (plus the default itself, when it lies in range)."""
    c = container or st
    opts = log_options(low, high, per_decade)
    if low <= default <= high:  # the default itself is a position: a registry default (ρ = 0.05) stays exact
        opts = sorted(set(opts) | {float(default)})
    else:
        default = min(opts, key=lambda o: abs(math.log(max(o, 1e-300)) - math.log(max(default, 1e-300))))
    if key in st.session_state and st.session_state[key] not in opts:
        del st.session_state[key]
    return c.select_slider(label, options=opts, value=default, key=key, help=help, format_func=lambda v: f"{v:.3g}")


def variant_picker(
    key: str,
    default: Sequence[str] = ("sgd", "sam", "ssam"),
    container: Any = None,
    label: str = "Variants",
    options: Sequence[str] | None = None,
    max_selections: int | None = None,
) -> list[str]:
    """Multiselect of variants; the choice is shared by all pages (kept in session state).

    A `?variants=a,b` in the URL (a shared link or a Home preset) wins once over the remembered choice.
    """
    c = container or st.sidebar
    options = list(options or VARIANTS)
    shared = KEYS["variants"]
    raw = st.query_params.get("variants")
    if raw and st.session_state.get("_variants_from_url") != raw:
        st.session_state["_variants_from_url"] = raw
        st.session_state[shared] = qp_get_list("variants", default, allowed=options)
        st.session_state.pop(key, None)  # the widget takes the new value below
    if shared not in st.session_state:
        st.session_state[shared] = list(default)
    if key not in st.session_state:
        current = [v for v in st.session_state[shared] if v in options] or [v for v in default if v in options]
        if max_selections:
            current = current[:max_selections]
        st.session_state[key] = current
    sel = c.multiselect(
        label,
        options,
        format_func=variant_label,
        key=key,
        max_selections=max_selections,
        help="The same variants stay chosen on every page.",
    )
    st.session_state[shared] = list(sel)
    return list(sel)


def _hp_widget(h: HParam, key: str, c: Any, default: Any) -> Any:
    label = f"{h.name} (${h.symbol}$)" if h.symbol else h.name
    if h.kind == "bool":
        return c.checkbox(label, value=bool(default), key=key, help=h.help)
    if h.kind == "choice":
        return c.selectbox(label, list(h.choices), index=list(h.choices).index(default), key=key, help=h.help)
    if h.kind == "schedule":
        mode = c.selectbox(
            f"{label}: schedule",
            ["constant", *h.choices],
            index=0 if not isinstance(default, str) else 1 + list(h.choices).index(default),
            key=f"{key}_mode",
            help=h.help,
        )
        if mode != "constant":
            return mode
        val = default if not isinstance(default, str) else 0.5
        return c.slider(label, float(h.low), float(h.high), float(val), step=0.05, key=key)
    if h.log and h.low is not None and h.high is not None:
        low = h.low if h.low > 0 else max(h.default / 1000.0, 1e-6)
        return log_slider(label, low, h.high, float(default), key=key, help=h.help, container=c)
    return c.number_input(
        label, min_value=h.low, max_value=h.high, value=float(default), key=key, help=h.help, format="%.4g"
    )


def hparam_inputs(
    variant: str,
    key_prefix: str,
    container: Any = None,
    exclude: Sequence[str] = (),
    defaults: dict | None = None,
    rho_range: tuple[float, float] | None = None,
) -> dict:
    """Widgets for `variant`'s own hyperparameters (from the registry); returns their values.

    `rho_range` narrows the ρ slider (e.g. (1e-3, 2) on 2-D landscapes) without touching the registry.
    """
    c = container or st
    spec = VARIANTS[variant]
    out: dict = {}
    for name, h in spec.hparams.items():
        if not h.ui or name in exclude:
            continue
        d = (defaults or {}).get(name, h.default)
        if name == "rho" and rho_range is not None:
            h = HParam(
                h.name,
                h.default,
                kind=h.kind,
                low=rho_range[0],
                high=rho_range[1],
                log=True,
                help=h.help,
                symbol=h.symbol,
            )
        out[name] = _hp_widget(h, f"{key_prefix}_{variant}_{name}", c, d)
    return out


def page_guard() -> None:
    """Call first on every page: run it inside app.py's navigation even when opened by a deep link.

    Until `st.navigation` has run once in a server process, Streamlit treats an app with a `pages/`
    folder as a legacy multipage app; a shared link such as /landscape?fn=… as the first request of a
    fresh server would run the page file alone (no sections, no sidebar, legacy menu) and keep doing
    so. Switching that legacy mode off and rerunning runs app.py, which resolves the same page (same
    url_path) with the query parameters intact. Uses a Streamlit internal; a no-op if it is gone.
    Then it starts the run's URL notices (``reset_url_notices``): they appear at the top of the page.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - another Streamlit layout
        reset_url_notices()
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()
    reset_url_notices()


def device_badge(container: Any = None) -> str:
    """Shows which device computations run on; returns its name."""
    c = container or st.sidebar
    if torch.cuda.is_available():
        name = f"CUDA · {torch.cuda.get_device_name(0)}"
    else:
        name = "CPU"
    c.caption(f"Device: **{name}** · torch {torch.__version__.split('+')[0]}")
    return name


def hosted() -> bool:
    """Whether this server is served to others: SAMLAB_HOSTED=1/0, else (auto) when read-only or when it
    listens beyond loopback (.streamlit/config.toml binds 127.0.0.1; the Dockerfile passes 0.0.0.0). A bad
    SAMLAB_* setting counts as hosted: never leak details because a variable was mistyped."""
    try:
        settings = get_settings()
    except ValueError:
        return True
    if settings.hosted is not None:
        return settings.hosted
    if settings.read_only:
        return True
    address = str(st.get_option("server.address") or "")  # unset: Streamlit listens on every interface
    return address not in ("127.0.0.1", "localhost", "::1")


def apply_error_details() -> str:
    """Set ``client.showErrorDetails`` for this server (app.py calls it first): hosted, an uncaught exception
    shows Streamlit's short generic message ("none": no type, message or traceback; they go to the server
    log); locally the full details stay on. Returns the value set."""
    value = "none" if hosted() else "full"
    if st.get_option("client.showErrorDetails") != value:
        st.set_option("client.showErrorDetails", value)
    return value


_MD_INLINE = re.compile(r"([\\`*_$~<>])")  # what markdown reads as emphasis, code, math, strike or HTML
_MD_LINE_START = re.compile(r"^(\s*)([#>+\-]|\d+[.)])")  # a heading, a quote or a list item


def plain_markdown(text: str) -> str:
    """``text`` (a message written as plain text) as markdown that shows it as it is: ``x**2`` stays
    ``x**2`` instead of turning bold, ``success_rate`` keeps its underscores. Lines after the first (an
    expression and a caret under the column of its error) go in a code block, so the caret lines up."""
    first, _, rest = str(text).partition("\n")
    out = _MD_INLINE.sub(r"\\\1", first).replace("](", "]\\(")  # [text](url) would be a link
    out = _MD_LINE_START.sub(lambda m: m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], out)
    if rest.strip():
        out += "\n\n```text\n" + rest.replace("```", "` ` `") + "\n```"
    return out


def show_error(exc: BaseException, what: str = "") -> None:
    """A user-facing error message (never a traceback).

    Our validation errors (ValueError and its subclasses: ConfigError, ExprError, SweepError …) are
    messages written for the user and are shown as they are. Any other exception (an OSError, a database
    error, a bug) may carry server paths: hosted, the browser gets a short message and the details go to
    the server log; locally its message is shown."""
    prefix = f"{what}: " if what else ""
    if isinstance(exc, ValueError) or not hosted():
        st.error(plain_markdown(f"{prefix}{exc}"))
        return
    _LOG.error("%s%s", prefix, type(exc).__name__, exc_info=exc)
    st.error(f"{prefix}something went wrong on the server (the details are in its log).")


PREVIEW_WINDOW_S = 10.0  # plotly.js arrives within seconds of a tab's first chart; previews stop after that


def figure_image(fig: Any, width: int = 700) -> str:
    """``fig`` as a markdown image of its static SVG (``sam_core.plots.preview``), "" if it cannot be drawn.

    Markdown, because Streamlit renders it with code the page has already loaded: ``st.html`` or raw HTML
    in markdown would first fetch their own chunks, which load beside plotly.js and wait for it. The
    picture scales to the column's width: ``width`` (px) is the width it is drawn for, so that its height
    comes out near the chart's where the column is about that wide. Drawn once per figure object and
    width (the figure cache hands out the same object)."""
    memo = f"_samlab_image_{width}"
    md = getattr(fig, memo, None)
    if md is None:
        from sam_core.plots.preview import figure_svg

        try:
            svg = figure_svg(fig, width=width)
            md = f"![figure](data:image/svg+xml;base64,{base64.b64encode(svg.encode()).decode()})"
        except Exception:  # noqa: BLE001 - a preview must never cost the page its figure
            logging.getLogger("samlab").exception("figure preview failed")
            md = ""
        try:
            setattr(fig, memo, md)
        except Exception:  # noqa: BLE001 - an object that takes no attributes: draw it again next time
            pass
    return md


def static_chart(fig: Any, *, key: str, width: int = 700) -> None:
    """A figure as a picture only, for places where nobody needs to hover or zoom (Home's example race):
    it shows with the page's text, without waiting for plotly.js."""
    with st.container(key=f"pv_{key}"):
        st.markdown(figure_image(fig, width))


def chart_with_preview(
    fig: Any,
    *,
    key: str,
    preview_width: int = 700,
    live: bool = False,
    fresh: bool = False,
    box: str | None = None,
    inplace: bool | None = None,
    **kwargs: Any,
) -> Any:
    """``st.plotly_chart(fig, key=key, ...)`` preceded, while the browser may still be loading plotly.js,
    by a static picture of the same figure (``figure_image``): a fresh tab shows the figure ~1 s after it
    opens instead of ~2.5–3 s. app.py's CSS hides the picture as soon as the chart in the same box has
    drawn. The picture is sent with the session's first charts only (``PREVIEW_WINDOW_S``) and only while
    the figure is the one first shown under ``key``: a slider moved after the chart has drawn must not pay
    for a picture nobody sees. Its slot is always there (empty later), so the chart keeps its place among
    the page's elements and is updated, not rebuilt, on the next rerun.

    ``live=True`` (a running job's chart, redrawn by every poll): the picture goes with every redraw in the
    window, so a fresh tab watches the curves grow before plotly.js has loaded instead of seeing the first
    picture vanish at the next poll.

    ``fresh=True`` (a chart that replaces another one in this run, e.g. the race switched between contour
    and 3-D): this run sends the picture alone, with an empty slot where the old chart was, and asks for
    the chart in the next run (``run_held_charts``, at the end of the page), which sends the picture again
    beside it. Building a new chart blocks the browser, a 3-D scene for seconds of software WebGL on a
    laptop without a GPU; sent in the same run, the picture was painted only after that. Returns None then.
    A page that passes ``fresh`` calls ``run_held_charts()`` at its end.
    ``box`` names the box (``pv_<box>``) when charts under different keys take turns in one place: a box
    whose key changes is rebuilt by the browser, the old chart in it redrawn from scratch.
    ``inplace=True`` draws the chart with ``ui.plotly_live.plotly_live`` (one draw per new figure, updated in
    place, instead of st.plotly_chart's two); ``kwargs`` are then its ``config`` and ``on_select``. A live
    chart (redrawn at every poll of its job) is drawn so unless ``inplace=False``."""
    now = time.monotonic()
    t0 = st.session_state.setdefault("_samlab_first_chart", now)
    shown = st.session_state.setdefault("_samlab_previewed", {})  # key -> id of the figure first shown there
    held = st.session_state.setdefault("_samlab_held", {})  # box -> the key whose chart the last run held back
    place = box or key
    again = held.get(place) == key
    with st.container(key=f"pv_{place}"):
        slot = st.empty()
        if fresh or again or (now - t0 < PREVIEW_WINDOW_S and (shown.setdefault(key, id(fig)) == id(fig) or live)):
            md = figure_image(fig, preview_width)
            if md:
                slot.markdown(md)
                if fresh and not again:
                    held[place] = key
                    st.session_state["_samlab_run_again"] = True
                    st.empty()  # in the chart's place: the chart shown there before goes now
                    return None
        if again:
            del held[place]
        if inplace is None:  # a live chart, unless it asks for what only st.plotly_chart does
            inplace = live and set(kwargs) <= {"config"}
        if inplace:
            from ui.plotly_live import plotly_live  # it imports this module

            return plotly_live(fig, key=key, **kwargs)
        return st.plotly_chart(fig, key=key, **kwargs)


def run_held_charts() -> None:
    """At the end of a page: if a chart was held back for its picture (``chart_with_preview(fresh=True)``),
    run the page again at once, which draws it; the browser has had the picture for that long."""
    if st.session_state.pop("_samlab_run_again", False):
        st.rerun()


@functools.cache
def plotly_chunk() -> str | None:
    """The file name of Streamlit's plotly.js chunk (``PlotlyChart.<hash>.js``), if this build has one."""
    found = sorted((Path(st.__file__).parent / "static" / "static" / "js").glob("PlotlyChart.*.js"))
    return found[0].name if found else None


def warm_plotly() -> None:
    """Let the browser load plotly.js once the page has drawn and is idle, so that the next page's charts
    draw at once. Loading it earlier delays the page's own text (docs/PERFORMANCE.md); a page without
    charts (Home) would otherwise leave the whole 4.7 MB chunk to the first lab a visitor opens. The
    chunk is imported from the URL Streamlit itself imports it from, so it is the same module."""
    if st.session_state.get("_samlab_plotly_warmed") or not (name := plotly_chunk()):
        return
    st.session_state["_samlab_plotly_warmed"] = True
    js = (
        "<script>(() => { const s = document.querySelector('script[type=module][src*=\"/static/js/index.\"]');"
        f" if (!s) return; const url = new URL('{name}', s.src).href;"
        " const go = () => import(url).catch(() => {});"
        " setTimeout(() => (window.requestIdleCallback || setTimeout)(go, {timeout: 4000}), 500); })();</script>"
    )
    st.html(js, unsafe_allow_javascript=True)
