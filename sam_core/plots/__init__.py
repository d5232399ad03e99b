"""Pure plotly figure builders (arrays / DataFrames in, `go.Figure` out); no streamlit here.

Importing this package also makes plotly's JSON compact (``compact_plotly_json``): every figure the
dashboard sends (Streamlit serialises charts with ``plotly.io.to_json``) and every HTML export."""

from __future__ import annotations


def compact_plotly_json() -> bool:
    """Stop plotly's JSON writer escaping "/" as ``\\u002f``; "<" and ">" stay escaped.

    plotly.py ≥ 6 ships numpy arrays as base64 strings, and base64 of float64 data is full of "/" (the
    exponent byte 0x3F of every value near 1): a race map of 8 variants × 2 000 steps went out as 2.54 MB
    where 1.46 MB says the same, a fifth of its characters being the six of ``\\u002f``. The escape guards
    nothing here: JSON text stays valid either way, and inside an HTML ``<script>`` it is the escaped
    "<" that keeps ``</script>`` from ever appearing. plotly keeps the table private
    (``plotly.io._json._swap_json``); if that changes, the JSON stays as plotly writes it. Returns whether
    the compact table is in force."""
    try:
        from plotly.io import _json as pj
    except ImportError:
        return False
    done = True
    for name in ("_swap_json", "_swap_orjson"):
        table = getattr(pj, name, None)
        if not isinstance(table, tuple) or not all(isinstance(p, tuple) and len(p) == 2 for p in table):
            done = False
            continue
        setattr(pj, name, tuple(p for p in table if p[0] != "/"))
    return done and all(p[0] != "/" for p in pj._swap_json)


compact_plotly_json()
