"""Home: what SAM is, one-click presets that open a configured page, and a card per variant."""

from ui.common import page_guard

page_guard()  # deep links on a fresh server run inside app.py

import re

import streamlit as st

from sam_core import VARIANTS
from sam_core.presets import home_cards
from ui.common import static_chart, variant_color, warm_plotly


def formula_lines(tex: str) -> str:
    """A variant's formula one equation a line (a narrow card clipped the one-line form): its top-level
    ``,\\quad`` / ``,\\ `` separators become line breaks of a centred ``gathered`` block."""
    parts = [p.strip() for p in re.split(r",\\quad\s*|,\\ (?=\s*[A-Za-z\\])", tex) if p.strip()]
    return parts[0] if len(parts) == 1 else r"\begin{gathered}" + r" \\ ".join(parts) + r"\end{gathered}"


@st.cache_resource(show_spinner=False)
def home_race_figure():
    """A small example race (cached once per server): the picture Home opens with."""
    from sam_core.landscape.functions import make_landscape
    from sam_core.landscape.race import race
    from sam_core.plots.landscape import contour_figure

    L = make_landscape("quartic")
    tracks = race(L, ["sgd", "sam", "ssam"], lr=0.3, steps=300, hp={"sam": {"rho": 0.1}, "ssam": {"rho": 0.1}})
    return contour_figure(L, tracks, animate=False, click_grid=0, show_ball=False, height=380)


st.title("SAM Lab")
st.markdown(
    "**Sharpness-Aware Minimization (SAM)** looks for weights whose whole neighbourhood has low loss, "
    "because flat minima tend to generalise better. Each step first moves to the worst point of a small "
    "ball of radius ρ around the weights (the *ascent*), then descends with the gradient found there. "
    "The variants below differ in how they choose that point and how they use its gradient — and those "
    "choices decide whether training is stable, escapes saddles, or gets stuck."
)

st.subheader("Start from a question")
st.caption(
    "Each card opens a lab configured to reproduce one paper figure in a classroom minute (on a GPU, at the "
    "paper's own size where that fits in a minute); the page says what to look for. "
    "`python -m demos.presets --all` runs the same presets headless and checks each phenomenon."
)
PRESETS = home_cards()  # (title, caption, page, query, icon, look_for), defined in sam_core/presets.py
cols = st.columns(3)
for i, (title, blurb, page, params, icon, look_for) in enumerate(PRESETS):
    with cols[i % 3].container(border=True):
        st.page_link(page, label=f"**{title}**", icon=icon, query_params=params)
        st.caption(blurb)
        st.caption(f"**Look for:** {look_for}")

st.subheader("What a race looks like")
c1, c2 = st.columns([3, 2])
with c1:
    try:
        # a picture, not a chart: Home's cards then do not wait for plotly.js
        static_chart(home_race_figure(), key="home_race", width=560)
    except Exception as exc:  # a picture must not take Home down
        st.caption(f"(The example race could not be drawn: {exc})")
with c2:
    st.markdown(
        "SGD, SAM and Stable SAM from one start next to the saddle of the Stable SAM paper's quartic "
        "x₁⁴/4 − x₁x₂ + x₂²/2, at η = 0.3 and ρ = 0.1. **Look for** SAM staying by the saddle at the "
        "origin while SGD and SSAM run down to the minimum at (1, 1): SAM's normalised ascent keeps "
        "its step from shrinking where the gradient does. Open the **Landscape lab** to move η and ρ and "
        "watch the paths change live."
    )
    st.page_link(
        "pages/landscape.py",
        label="Open the Landscape lab",
        icon=":material/landscape:",
        query_params={"fn": "quartic", "variants": "sgd,sam,ssam", "lr": "0.3", "sam.rho": "0.1", "ssam.rho": "0.1"},
    )

st.subheader("The variants")
st.caption("One colour per variant on every page. Each is implemented once in `sam_core` and used by every lab.")
cols = st.columns(2)
for i, spec in enumerate(VARIANTS.values()):
    with cols[i % 2].container(border=True):
        st.markdown(
            f"<span style='color:{variant_color(spec.name)};font-size:1.3em'>■</span> "
            f"**{spec.label}** · `{spec.name}` · {spec.passes} gradient evaluation"
            f"{'s' if spec.passes > 1 else ''} per step",
            unsafe_allow_html=True,
        )
        st.caption(spec.summary)
        st.latex(formula_lines(spec.formula))
        hps = ", ".join(f"{h.name} = {h.default}" for h in spec.hparams.values() if h.ui)
        if hps:
            st.caption(f"Defaults: {hps}")
        st.caption(spec.reference + (f" — [paper]({spec.url})" if spec.url else ""))
        if spec.note:
            with st.expander("Note"):
                st.write(spec.note)

warm_plotly()  # the labs' charts then draw at once when a card is clicked
