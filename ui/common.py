"""Shared Streamlit helpers: variant picker, hyperparameter widgets from the registry, URL state.

Pages call these instead of building their own widgets, so every page shows the same names,
symbols, ranges and colours. Session-state keys used across pages are listed in `KEYS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st
import torch

from sam_core import VARIANTS
from sam_core.plots.style import variant_color, variant_dash  # noqa: F401  (re-exported for pages)
from sam_core.registry import HParam

KEYS = {"variants": "chosen_variants"}  # session-state keys shared between pages


def variant_label(name: str) -> str:
    return VARIANTS[name].label if name in VARIANTS else name


# ------------------------------------------------------------------------------------ URL state
def qp_get(name: str, default: Any, cast: Callable[[str], Any] = str) -> Any:
    """A value from the URL's query parameters, or `default` if absent or malformed."""
    raw = st.query_params.get(name)
    if raw is None:
        return default
    try:
        return cast(raw)
    except (TypeError, ValueError):
        return default


def qp_get_list(name: str, default: Sequence[str], allowed: Sequence[str] | None = None) -> list[str]:
    raw = st.query_params.get(name)
    if not raw:
        return list(default)
    items = [x for x in raw.split(",") if x]
    if allowed is not None:
        items = [x for x in items if x in allowed]
    return items or list(default)


def qp_set(**values: Any) -> None:
    """Write the page's configuration into the URL (lists joined by commas), so it can be shared."""
    for k, v in values.items():
        if isinstance(v, (list, tuple)):
            v = ",".join(map(str, v))
        elif isinstance(v, float):
            v = f"{v:.6g}"
        st.query_params[k] = str(v)
        if k == "variants":  # our own write: not a new link to apply over the user's choice
            st.session_state["_variants_from_url"] = str(v)


# ------------------------------------------------------------------------------------ widgets
def log_options(low: float, high: float, per_decade: int = 12) -> list[float]:
    """Log-spaced values between low and high (rounded to 3 significant digits) for a log slider."""
    lo, hi = math.log10(low), math.log10(high)
    n = max(2, int(round((hi - lo) * per_decade)) + 1)
    vals = [float(f"{10 ** (lo + (hi - lo) * i / (n - 1)):.3g}") for i in range(n)]
    return sorted(set(vals))


def log_slider(label: str, low: float, high: float, default: float, key: str, help: str | None = None,
               container: Any = None, per_decade: int = 12) -> float:
    """A slider whose positions are log-spaced (plus the default itself, when it lies in range)."""
    c = container or st
    opts = log_options(low, high, per_decade)
    if low <= default <= high:  # the default itself is a position: a registry default (ρ = 0.05) stays exact
        opts = sorted(set(opts) | {float(default)})
    else:
        default = min(opts, key=lambda o: abs(math.log(max(o, 1e-300)) - math.log(max(default, 1e-300))))
    if key in st.session_state and st.session_state[key] not in opts:
        del st.session_state[key]
    return c.select_slider(label, options=opts, value=default, key=key, help=help,
                           format_func=lambda v: f"{v:.3g}")


def variant_picker(key: str, default: Sequence[str] = ("sgd", "sam", "ssam"), container: Any = None,
                   label: str = "Variants", options: Sequence[str] | None = None,
                   max_selections: int | None = None) -> list[str]:
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
    sel = c.multiselect(label, options, format_func=variant_label, key=key,
                        max_selections=max_selections, help="The same variants stay chosen on every page.")
    st.session_state[shared] = list(sel)
    return list(sel)


def _hp_widget(h: HParam, key: str, c: Any, default: Any) -> Any:
    label = f"{h.name} (${h.symbol}$)" if h.symbol else h.name
    if h.kind == "bool":
        return c.checkbox(label, value=bool(default), key=key, help=h.help)
    if h.kind == "choice":
        return c.selectbox(label, list(h.choices), index=list(h.choices).index(default), key=key, help=h.help)
    if h.kind == "schedule":
        mode = c.selectbox(f"{label}: schedule", ["constant", *h.choices],
                           index=0 if not isinstance(default, str) else 1 + list(h.choices).index(default),
                           key=f"{key}_mode", help=h.help)
        if mode != "constant":
            return mode
        val = default if not isinstance(default, str) else 0.5
        return c.slider(label, float(h.low), float(h.high), float(val), step=0.05, key=key)
    if h.log and h.low is not None and h.high is not None:
        low = h.low if h.low > 0 else max(h.default / 1000.0, 1e-6)
        return log_slider(label, low, h.high, float(default), key=key, help=h.help, container=c)
    return c.number_input(label, min_value=h.low, max_value=h.high, value=float(default), key=key,
                          help=h.help, format="%.4g")


def hparam_inputs(variant: str, key_prefix: str, container: Any = None, exclude: Sequence[str] = (),
                  defaults: dict | None = None, rho_range: tuple[float, float] | None = None) -> dict:
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
            h = HParam(h.name, h.default, kind=h.kind, low=rho_range[0], high=rho_range[1], log=True,
                       help=h.help, symbol=h.symbol)
        out[name] = _hp_widget(h, f"{key_prefix}_{variant}_{name}", c, d)
    return out


def page_guard() -> None:
    """Call first on every page: run it inside app.py's navigation even when opened by a deep link.

    Until `st.navigation` has run once in a server process, Streamlit treats an app with a `pages/`
    folder as a legacy multipage app; a shared link such as /landscape?fn=… as the first request of a
    fresh server would run the page file alone (no sections, no sidebar, legacy menu) and keep doing
    so. Switching that legacy mode off and rerunning runs app.py, which resolves the same page (same
    url_path) with the query parameters intact. Uses a Streamlit internal; a no-op if it is gone.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - another Streamlit layout
        return
    if getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        st.rerun()


def device_badge(container: Any = None) -> str:
    """Shows which device computations run on; returns its name."""
    c = container or st.sidebar
    if torch.cuda.is_available():
        name = f"CUDA · {torch.cuda.get_device_name(0)}"
    else:
        name = "CPU"
    c.caption(f"Device: **{name}** · torch {torch.__version__.split('+')[0]}")
    return name


def show_error(exc: BaseException, what: str = "") -> None:
    """A user-facing error message (never a traceback)."""
    prefix = f"{what}: " if what else ""
    st.error(f"{prefix}{exc}")
