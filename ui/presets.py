"""The banner a page shows when a Home preset opened it: what to look for, and the fidelity switch."""

from __future__ import annotations

from urllib.parse import urlencode

import streamlit as st
from streamlit.errors import StreamlitAPIException

from sam_core.presets import FIDELITIES, get_preset, run_preset
from ui.common import chart_with_preview
from ui.jobs import Job, get_job, job_panel, link_autorun, start_job


def _fidelity() -> str:
    """The URL's fidelity (``class`` when absent or unknown)."""
    fidelity = st.query_params.get("fidelity", "class")
    return fidelity if fidelity in FIDELITIES else "class"


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
    fidelity = _fidelity()
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


def preset_run_panel(name: str) -> None:
    """Run the preset's own comparison (``sam_core.presets.run_preset``) as a lab job and draw its figure live,
    then say whether the phenomenon held (the preset's check, on this very result).

    For pages whose controls cannot run a preset in one go: the Training lab trains one worker process per
    run, each paying its own start-up, so its form is filled in for the same variants while the figure itself
    comes from the preset's batched digits runs in the lab's worker pool. It starts when the Home card opened
    the page (``autorun=1``), once per link (``ui.jobs.link_autorun``); a reload finds the job through the URL."""
    p = get_preset(name)
    fidelity = _fidelity()
    key = f"preset_{name}"
    c1, c2 = st.columns([3, 1], vertical_alignment="center")
    c1.markdown(f"**The figure** · {p.blurb}")
    clicked = c2.button("Run again" if get_job(key) else "Run it", key=f"{key}_go", icon=":material/play_arrow:")
    if clicked or link_autorun(key, flag="autorun"):  # the card's link (each fidelity's its own), once
        start_job(key, Job.from_generator(run_preset, name, fidelity, name=key, pass_stop="stop_event"))

    def live(res, state) -> None:
        if len(getattr(res, "steps", ())) < 2:  # a curve needs two points: nothing to draw yet
            st.caption("Starting: the first curves appear after the first recorded steps.")
            return
        chart_with_preview(p.figure(res), key=f"{key}_fig", preview_width=700, live=True)

    def render(res, state) -> None:
        chart_with_preview(p.figure(res), key=f"{key}_fig", preview_width=700, live=True)  # as the pages' jobs
        if state.status == "done":
            held, detail = p.check(res)
            (st.success if held else st.warning)(
                ("The phenomenon held: " if held else "Not visible at this size: ") + detail + ".",
                icon=":material/check_circle:" if held else ":material/warning:",
            )

    job_panel(key, render, live=live, label="Training", idle_text="Press **Run it** to train the preset's runs.")
    st.caption(
        "Below, the Training lab's form is filled in with the same variants: **Launch** trains them as real "
        "runs, each in its own worker process (checkpoints, live γ_t and λ_max, stop and resume, CSV)."
    )
