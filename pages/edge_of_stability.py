"""Dynamics lab · SAM and the edge of stability (Long & Bartlett).

Theory panel: λ_SAM/(2/η) against α = η‖g‖/(2ρ) and a calculator of the GD and SAM edges
(`sam_core.gd_edge` / `sam_core.sam_edge`). Live panel: full-batch training of a small MLP in a
background job (`sam_core.dynamics.eos.run_eos`) with the top Hessian eigenvalue tracked by warm-started
Lanczos every k steps, drawn against 2/η and the SAM edge from the current ‖g‖.
URL parameters: variants, lr, rho, steps, every, run=1 (start on open), tab (theory | live: the tab it opens on;
live when run=1).
"""

from ui.common import page_guard

page_guard()  # deep links on a fresh server run inside app.py

import numpy as np
import streamlit as st

from sam_core import gd_edge, sam_edge
from sam_core.dynamics.eos import EoSConfig, run_eos, sam_edge_curve
from sam_core.dynamics.problems import EOS_DATASETS
from sam_core.plots import dynamics as dplots
from sam_core.settings import get_settings
from ui.common import chart_with_preview, kept_state, log_slider, qp_get, qp_set, show_error, variant_picker
from ui.jobs import Job, get_job, job_panel, link_autorun, start_job
from ui.presets import preset_banner

KEY = "eos"

st.title("SAM and the edge of stability")
preset_banner("pages/edge_of_stability.py")  # opened by a Home preset: what to look for, fidelity switch
st.caption(
    "Full-batch GD drives the top Hessian eigenvalue up to 2/η and hovers there (the edge of "
    "stability). Long & Bartlett show that SAM's edge is lower and depends on the gradient norm: "
    "SAM is unstable above the positive root of η λ (1 + ρ λ / ‖g‖) = 2."
)

# the live run sits in its own tab: a link that starts a run (run=1, the Home card) or a press of Run opens on it
TABS = {"theory": "Theory", "live": "Live training"}
opened = qp_get("tab", "live" if qp_get("run", "0") == "1" else "theory", options=tuple(TABS))
if get_job(KEY) is not None:
    opened = "live"
if st.session_state.get("eos_run"):  # Run pressed (the sidebar's button, below): show its run, not the theory
    st.session_state["eos_tab"] = TABS["live"]  # (a default alone did not switch tabs already on the screen)
theory_tab, live_tab = st.tabs(
    list(TABS.values()), default=kept_state("eos_tab", lambda: TABS[opened]), key="eos_tab", on_change="rerun"
)

with theory_tab:
    c1, c2 = st.columns([3, 2])
    with c2:
        st.subheader("Calculator")
        eta = st.number_input(
            "Learning rate η", min_value=1e-6, max_value=100.0, value=0.01, format="%.4g", key="eos_calc_lr"
        )
        rho_c = st.number_input("ρ", min_value=0.0, max_value=100.0, value=0.1, format="%.4g", key="eos_calc_rho")
        gnorm = st.number_input("‖g‖", min_value=0.0, max_value=1e6, value=1.0, format="%.4g", key="eos_calc_g")
        beta = st.number_input(
            "Heavy-ball momentum β", min_value=0.0, max_value=0.999, value=0.0, format="%.3g", key="eos_calc_beta"
        )
        gd = float(gd_edge(eta, beta))
        if gnorm > 0:
            se = float(sam_edge(gnorm, eta, rho_c, beta))
        else:
            se = float("nan")
        alpha = eta * gnorm / (2 * rho_c) if rho_c > 0 else float("inf")
        st.metric("GD edge (2 + 2β)/η", f"{gd:.4g}")
        st.metric(
            "SAM edge" + (" (heuristic with momentum)" if beta > 0 else ""),
            f"{se:.4g}" if np.isfinite(se) else "0 (‖g‖ = 0)",
        )
        st.caption(
            f"α = η‖g‖/(2ρ) = {alpha:.4g}; SAM edge / GD edge = {se / gd:.3f}"
            if np.isfinite(se) and gd > 0
            else "With ‖g‖ = 0 the SAM edge is 0: any curvature is unstable for SAM's normalised ascent."
        )
    with c1:
        a = np.logspace(-3, 3, 400)
        chart_with_preview(
            dplots.sam_edge_ratio_figure(a, sam_edge_curve(a), current=alpha if rho_c > 0 else None),
            key="eos_theory_fig",
            preview_width=640,
        )
        # one equation a line: on one line the formula was wider than this column and was clipped
        st.latex(
            r"\begin{gathered}\lambda_{SAM} = \frac{\|g\|}{2\rho}\Big(\sqrt{1 + \frac{8\rho}{\eta\|g\|}} - 1\Big)"
            r"\\ \frac{\lambda_{SAM}}{2/\eta} = \frac{\sqrt{\alpha^2 + 4\alpha} - \alpha}{2},\quad "
            r"\alpha = \frac{\eta\|g\|}{2\rho}\end{gathered}"
        )
        st.caption(
            "Read the curve: with a large gradient (large α) SAM's edge is GD's 2/η; as ‖g‖ shrinks "
            "towards a minimum (α → 0) it falls like √α far below 2/η. The star: your calculator's α."
        )

side = st.sidebar
side.subheader("Edge of stability: live")
variants = variant_picker("eos_variants", default=("sgd", "sam"), container=side)
lr = log_slider(
    "Learning rate η", 1e-3, 2.0, qp_get("lr", 0.4, float, low=1e-3, high=2.0), key="eos_lr", container=side
)
rho = log_slider(
    "ρ (every variant that has one)",
    1e-3,
    2.0,
    qp_get("rho", 0.05, float, low=1e-3, high=2.0),
    key="eos_rho",
    container=side,
)
steps = side.number_input(
    "Steps", 10, 100_000, qp_get("steps", 1500, int, low=10, high=100_000), step=100, key="eos_steps"
)
every = side.number_input(
    "Eigenvalue every k steps",
    1,
    10_000,
    qp_get("every", 50, int, low=1, high=10_000),
    key="eos_every",
    help="Warm-started Lanczos: ~6 Hessian-vector products per estimate.",
)
with side.expander("Model and data", expanded=False):
    dataset = st.selectbox(
        "Data", EOS_DATASETS, key="eos_data", help="MNIST is used only when its files are already under SAMLAB_DATA."
    )
    n = st.number_input("Points", 10, 60_000, qp_get("n", 1000, int, low=10, high=60_000), key="eos_n")
    width = st.slider("Width", 4, 512, qp_get("width", 64, int, low=4, high=512), key="eos_width")
    depth = st.slider("Hidden layers", 1, 6, 3, key="eos_depth")
    activation = st.selectbox("Activation", ["tanh", "relu", "elu"], key="eos_act")
    momentum = st.slider("Heavy-ball momentum β", 0.0, 0.99, 0.0, 0.01, key="eos_mom")
    seed = st.number_input("Seed", 0, 10_000, 0, key="eos_seed")

run_clicked = side.button("Run", type="primary", key="eos_run", disabled=not variants)
autorun = link_autorun(KEY)  # after a reload the URL's job is found again, not restarted
if run_clicked or autorun:
    try:
        settings = get_settings()
        cfg = EoSConfig(
            dataset=dataset,
            n=int(n),
            width=int(width),
            depth=int(depth),
            activation=activation,
            lr=float(lr),
            rho=float(rho),
            momentum=float(momentum),
            steps=int(steps),
            eig_every=int(every),
            seed=int(seed),
            data_dir=str(settings.data_dir),
        ).validate()
        start_job(KEY, Job.from_generator(run_eos, variants, cfg, device=settings.torch_device(), name=KEY))
        qp_set(variants=variants, lr=float(lr), rho=float(rho), steps=int(steps), every=int(every))
    except ValueError as exc:
        show_error(exc, "Settings")


EOS_CAPTION = "  \n".join(
    [
        "**λ_max**, the top Hessian eigenvalue (sharpness): GD's climbs to the dashed 2/η and hovers there; SAM's "
        "stops at its own dotted edge, lower and moving with ‖g‖.",
        "**training loss**: keeps falling, unevenly, while the sharpness sits at the edge "
        "(that is the edge of stability).",
        "**alignment** of the gradient with the top eigenvector: near 1 the step moves along the sharpest direction "
        "(oscillating across the valley), near 0 it does not.",
    ]
)


def render(res, state):
    chart_with_preview(dplots.eos_figure(res), key=f"{KEY}_fig", preview_width=900, live=True)
    st.caption(EOS_CAPTION)
    share = res.tracking_share
    st.caption(
        f"{res.steps_done}/{res.config.steps} steps · training {res.train_s:.1f} s · eigenvalue tracking "
        f"{res.track_s:.1f} s ({100 * share:.0f} % of training)"
        if np.isfinite(share)
        else ""
    )
    for v, s in res.diverged_step.items():
        st.warning(f"{v} diverged at step {s} (its curves stop there).")
    df = res.to_frame()
    st.download_button("Download CSV", df.to_csv(index=False), "edge_of_stability.csv", "text/csv", key=f"{KEY}_csv")


with live_tab:
    job_panel(
        KEY,
        render,
        label="Training",
        live=lambda res, state: chart_with_preview(
            dplots.eos_figure(res), key=f"{KEY}_fig", preview_width=900, live=True
        ),
        idle_text="Choose variants, η and ρ in the sidebar, then press **Run**. The sharpness of GD "
        "rises to 2/η and hovers there; SAM's hovers at its own, lower edge.",
    )
