"""One colour and one marker per variant, everywhere (Okabe–Ito palette: colour-blind safe)."""

from __future__ import annotations

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
