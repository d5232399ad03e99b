"""One colour and one marker per variant, everywhere (Okabe–Ito palette: colour-blind safe)."""

from __future__ import annotations

import numpy as np

VARIANT_COLORS = {
    "sgd": "#000000",
    "sam": "#0072B2",
    "usam": "#56B4E9",
    "unified_sam": "#009E73",
    "asam": "#E69F00",
    "ssam": "#D55E00",
    "bsam": "#CC79A7",
    "presam": "#999999",
    "infosam": "#B8A200",  # a darker Okabe–Ito yellow, readable on white
}
VARIANT_DASH = {"sgd": "dot", "usam": "dash", "unified_sam": "dashdot", "presam": "longdash"}
_EXTRA = ["#882255", "#44AA99", "#117733", "#332288", "#AA4499"]


def variant_color(name: str) -> str:
    """The variant's colour (a stable fallback for names outside the registry)."""
    if name in VARIANT_COLORS:
        return VARIANT_COLORS[name]
    return _EXTRA[sum(map(ord, name)) % len(_EXTRA)]


def variant_dash(name: str) -> str:
    return VARIANT_DASH.get(name, "solid")


def log_axis_range(values, starts=(), above_start: float = 1e4, decades: float = 24.0, floor: float = 1e-300):
    """A log axis's range ``[log10 lo, log10 hi]`` that keeps the meaningful part of the data in view.

    The top is the largest finite value, but at most ``above_start`` × the largest start value (a
    diverged run's 1e196 otherwise flattens every other curve); the bottom is the smallest positive value
    above ``floor`` (float64 noise such as a 1e-304 density tail), at most ``decades`` below the top.
    Returns ``(range or None, note)``: ``note`` names what was clipped ("" if nothing).
    """
    pos = [np.asarray(v, dtype=float) for v in values]
    pos = [v[np.isfinite(v) & (v > floor)] for v in pos]
    pos = [v for v in pos if v.size]
    if not pos:
        return None, ""
    hi_data = max(float(v.max()) for v in pos)
    lo_data = min(float(v.min()) for v in pos)
    s = [float(x) for x in starts if np.isfinite(x) and x > 0]
    hi = min(hi_data, above_start * max(s)) if s else hi_data
    lo = max(lo_data, hi * 10.0 ** -decades)
    if not lo < hi:
        lo, hi = hi / 10.0, hi * 10.0
    notes = []
    if hi < hi_data:
        notes.append(f"values above {hi:.0e} not shown (up to {hi_data:.0e}: a run diverged)")
    if lo > lo_data:
        notes.append(f"values below {lo:.0e} not shown")
    return [float(np.log10(lo)) - 0.05, float(np.log10(hi)) + 0.05], "; ".join(notes)
