"""About / References: the papers behind each variant and experiment, and how SAM Lab computes things."""

from ui.common import page_guard

page_guard()  # deep links on a fresh server run inside app.py

import streamlit as st

from sam_core import VARIANTS

st.title("About SAM Lab")
st.markdown(
    "SAM Lab is a teaching and research tool: every optimizer on every page comes from one implementation "
    "in `sam_core`, so what you see on a 2-D landscape is exactly what trains a ResNet."
)

st.subheader("Variants and their papers")
for spec in VARIANTS.values():
    st.markdown(f"**{spec.label}** (`{spec.name}`) — {spec.reference}" + (f" · [link]({spec.url})" if spec.url else ""))
    if spec.note:
        st.caption(spec.note)

st.subheader("Experiments reproduced")
st.markdown(
    """
- **Saddle escape** (Stable SAM, Fig. 1): a linear autoencoder `W₂W₁ ≈ I` initialised near the saddle at 0.
- **Rate of successful training vs learning rate** (Stable SAM, Fig. 2) on `f = x₁⁴/4 − x₁x₂ + x₂²/2`.
- **γ_t during training** (Stable SAM, Fig. 3) and uniform stability (Figs. 4–5) in the Training lab.
- **SAM edge of stability** (Long & Bartlett): the top Hessian eigenvalue against 2/η and the SAM edge.
- **Unified SAM** (Oikonomou & Loizou): λ between USAM and SAM, arbitrary sampling on quadratics.
- **Label noise** (infoSAM) and **flatness** (BSAM): Training lab presets.
"""
)

with st.expander("How the numbers are computed"):
    st.markdown(
        """
- Norms are global over all parameters of one model (or one trajectory); `ε = 1e-12` in every normaliser,
  so a zero gradient gives a zero perturbation, never NaN.
- Every pass of one step uses the same mini-batch; weights are restored by copying, bit-exactly.
- Hessian eigenvalues: Lanczos with full reorthogonalisation on a fixed batch in eval mode, warm-started
  from the previous eigenvector during training; λ_max is the algebraically largest eigenvalue.
- The SAM edge `λ_SAM = (‖g‖/2ρ)(√(1 + 8ρ/(η‖g‖)) − 1)` is Long & Bartlett's for plain SAM with GD
  steps; for SSAM or momentum it is shown as a heuristic.
- infoSAM here is a **reconstruction** (the paper's exact estimator could not be verified): constraint-
  preconditioned SAM with a noise-aware diagonal metric.
"""
    )
