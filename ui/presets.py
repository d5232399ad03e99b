"""The banner a page shows when a Home preset opened it: what to look for, and the fidelity switch."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st
from streamlit.errors import StreamlitAPIException

from sam_core.presets import FIDELITIES, get_preset


def preset_banner(page: str) -> str | None:
    """With ``?preset=NAME`` in the URL (a Home card), say in one sentence what to look for and offer the other
    fidelity (class-sized / the paper's sizes) as a link that reopens the page configured for it. Returns the
    preset's name, or None when the page was not opened by a preset."""
    name = st.query_params.get("preset")
    if not name:
        return None
    try:
        p = get_preset(name)
    except ValueError:
        return None  # a stale or hand-edited link: the page works without a banner
    if p.page != page:
        return None
    fidelity = st.query_params.get("fidelity", "class")
    fidelity = fidelity if fidelity in FIDELITIES else "class"
    other = "paper" if fidelity == "class" else "class"
    size = (
        "classroom size: finishes in seconds on a laptop CPU"
        if fidelity == "class"
        else "the paper's sizes: minutes on a CPU; the progress bar shows the time left"
    )
    with st.container(border=True):
        st.markdown(f"**{p.figure_ref}** · {size}. **Look for:** {p.look_for}")
        label = f"Run it at {'the paper' if other == 'paper' else 'classroom'} fidelity instead"
        try:
            st.page_link(page, label=label, icon=":material/tune:", query_params=p.page_query(other))
        except StreamlitAPIException:  # the page run on its own (no navigation): a plain link to the same page
            st.markdown(f"[{label}](?{urlencode(p.page_query(other))})")
    return p.name
