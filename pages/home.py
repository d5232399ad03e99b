"""Home: what SAM is, and every variant with its update rule and paper (rendered from the registry)."""

import streamlit as st

from sam_core import VARIANTS
from ui.common import variant_color

st.title("SAM Lab")
st.markdown(
    "**Sharpness-Aware Minimization** looks for parameters whose whole neighbourhood has low loss: "
    "each step first moves to the worst point of a small ball around the weights (the *ascent*), "
    "then descends with the gradient found there. Its variants differ in how they pick that point "
    "and how they use its gradient. Compare them here on toy landscapes, dynamics and real training."
)
cols = st.columns(3)
for i, spec in enumerate(VARIANTS.values()):
    with cols[i % 3].container(border=True):
        st.markdown(f"<span style='color:{variant_color(spec.name)};font-size:1.2em'>■</span> "
                    f"**{spec.label}** · `{spec.name}` · {spec.passes} gradient evaluation(s)/step",
                    unsafe_allow_html=True)
        st.caption(spec.summary)
        st.latex(spec.formula)
        hps = ", ".join(f"{h.name}={h.default}" for h in spec.hparams.values() if h.ui)
        if hps:
            st.caption(f"Defaults: {hps}")
        st.caption(spec.reference + (f" — [paper]({spec.url})" if spec.url else ""))
        if spec.note:
            st.caption(spec.note)
