"""One colour and one marker per variant, everywhere (Okabe–Ito palette: colour-blind safe)."""

from __future__ import annotations

from collections.abc import Sequence

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
    # the wider family: Tol's muted hues, each apart from the nine above and from each other
    "gsam": "#882255",  # wine
    "wsam": "#44AA99",  # teal
    "fsam": "#999933",  # olive
    "looksam": "#332288",  # indigo
    "msam": "#EE7733",  # light orange (dashed: apart from SSAM's vermillion)
}
VARIANT_DASH = {
    "sgd": "dot",
    "usam": "dash",
    "unified_sam": "dashdot",
    "presam": "longdash",
    "wsam": "dash",
    "fsam": "dashdot",
    "looksam": "longdash",
    "msam": "dash",
}
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
    lo = max(lo_data, hi * 10.0**-decades)
    if not lo < hi:
        lo, hi = hi / 10.0, hi * 10.0
    notes = []
    if hi < hi_data:
        notes.append(f"values above {hi:.0e} not shown (up to {hi_data:.0e}: a run diverged)")
    if lo > lo_data:
        notes.append(f"values below {lo:.0e} not shown")
    return [float(np.log10(lo)) - 0.05, float(np.log10(hi)) + 0.05], "; ".join(notes)


# ------------------------------------------------------------------------------ readable layouts
# Legends go below the plot area (in the figure's bottom margin, which plotly grows to fit them): a
# legend on top sat on the title, and the modebar, which appears at the top right on hover, covered it.
LEGEND_BELOW = dict(
    orientation="h",
    yref="container",
    y=0.0,
    yanchor="bottom",
    x=0.0,
    xanchor="left",
    font=dict(size=11),
    entrywidthmode="pixels",
    tracegroupgap=4,
)
TITLE_FONT = dict(size=14)


def legend_below(fig, title: str | None = None, top: int = 46, left: int = 60, right: int = 16, bottom: int = 40):
    """Title at the top left (its own margin), legend under the x axis: neither covers the other, and the
    hover toolbar at the top right covers neither. Returns the figure."""
    fig.update_layout(**legend_below_layout(title, top, left, right, bottom))
    return fig


def legend_below_layout(
    title: str | None = None, top: int = 46, left: int = 60, right: int = 16, bottom: int = 40
) -> dict:
    """``legend_below``'s layout properties as a plain dict (for figures built as dicts)."""
    layout = dict(legend=dict(LEGEND_BELOW), margin=dict(l=left, r=right, t=top, b=bottom))
    if title is not None:
        layout["title"] = dict(
            text=title,
            x=0.0,
            xanchor="left",
            xref="container",
            y=1.0,
            yref="container",
            yanchor="top",
            pad=dict(t=10, l=8),
            font=dict(TITLE_FONT),
        )
    return layout


def legend_entry_width(name: str) -> int:
    """Pixels one entry of a horizontal legend takes at its 11 px font: ~7 px a character plus the symbol.
    The static previews lay their legend out with it and the race figures reserve its rows."""
    return 34 + 7 * len(str(name))


def legend_rows(names: Sequence[str], width: int) -> int:
    """Rows a horizontal legend of entries ``names`` takes at ``width`` px, at least one."""
    rows, x = 1, 0
    for name in names:
        w = legend_entry_width(name)
        if x and x + w > width - 8:
            rows, x = rows + 1, 0
        x += w
    return rows


def short_labels(labels, max_len: int = 34) -> tuple[list[str], str]:
    """Legend names for run labels like ``'ssam ρ=0.05 · lenet5 · cifar10 · seed 0'``.

    The parts (split at ``' · '``) shared by every label are dropped, so what tells the runs apart stays in
    view; what is left is cut in the middle (``…``) beyond ``max_len`` characters, keeping its start and its
    distinguishing end. Returns ``(names, common)``: ``common`` is the dropped shared part, for a legend
    title. Labels that would become empty or equal keep their full text.
    """
    labels = [str(x) for x in labels]
    parts = [x.split(" · ") for x in labels]
    common: list[str] = []
    if len(labels) > 1:
        common = [p for p in parts[0] if all(p in q for q in parts[1:])]
    names = [" · ".join(p for p in q if p not in common) for q in parts]
    if any(not n for n in names) or len(set(names)) < len(set(labels)):
        names, common = labels, []

    def cut(s: str) -> str:
        if len(s) <= max_len:
            return s
        head = (max_len - 1) // 2
        return s[:head] + "…" + s[len(s) - (max_len - 1 - head) :]

    return [cut(n) for n in names], " · ".join(common)
