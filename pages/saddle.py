"""Dynamics lab · Saddle escape (Stable SAM paper, Fig. 1): a linear autoencoder started at a saddle.

Thin page: read controls -> start `sam_core.dynamics.run_saddle` in a background job -> a polling
fragment draws the partial result (loss ± band over seeds, escape time, ‖W‖, γ_t) while it runs.
URL parameters (shareable, used by the Home presets): variants, rho, seeds, epochs, lr, d, mode
(minibatch | full | population), batch, n, frac, run=1 (start on open).
"""

from ui.common import page_guard

page_guard()  # deep links on a fresh server run inside app.py

import streamlit as st

from sam_core.dynamics import SaddleConfig, run_saddle
from sam_core.landscape.lr_sweep import parse_range
from sam_core.plots import dynamics as dplots
from sam_core.registry import VARIANTS
from sam_core.settings import get_settings
from ui.common import (
    chart_with_preview,
    hparam_inputs,
    log_slider,
    qp_get,
    qp_set,
    show_error,
    url_notice,
    variant_label,
    variant_picker,
)
from ui.jobs import Job, get_job, job_panel, link_autorun, start_job
from ui.presets import preset_banner

KEY = "saddle"
RHO_OPTIONS = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0]
MODES = {
    "minibatch": "mini-batch (synthetic x ~ N(0, I))",
    "full": "full batch (synthetic)",
    "population": "population loss ½‖W₂W₁ − I‖²",
}


MAX_RHOS = 16  # ρ values one link may ask for


def _floats(text: str, default: list[float]) -> list[float]:
    """ρ values from the URL (comma-separated, each in (0, 10], at most MAX_RHOS); the default if malformed."""
    if not text.strip():
        return default
    try:
        vals = list(parse_range(text, log=False, max_count=MAX_RHOS, name="rho"))
    except ValueError as exc:
        url_notice("rho", f"{str(exc).removeprefix('rho: ')}; using {', '.join(map(str, default))}.")
        return default
    kept = list(dict.fromkeys(float(v) for v in vals if 0 < v <= 10))
    if len(kept) < len(vals):
        url_notice("rho", "values outside (0, 10] dropped.")
    return kept or default


st.title("Saddle escape")
preset_banner("pages/saddle.py")  # opened by a Home preset: what to look for, fidelity switch
st.caption(
    "Stable SAM paper, Fig. 1: approximate the d×d identity by W₂W₁ from a tiny initialisation "
    "(the origin is a saddle). SAM lingers on the plateau — longer for larger ρ — while SGD and "
    "SSAM escape. Here 'SAM' is Foret's normalised SAM; the paper's plain 'SAM' is our USAM."
)

side = st.sidebar
side.subheader("Saddle escape")
variants = variant_picker("saddle_variants", default=("sgd", "sam", "usam", "ssam"), container=side)
rho_default = _floats(qp_get("rho", ""), [0.01, 0.05, 0.2])
rhos = side.multiselect(
    "ρ values",
    sorted(set(RHO_OPTIONS) | set(rho_default)),
    default=rho_default,
    key="saddle_rhos",
    help="Every variant with a ρ runs once per value (batched).",
)
seeds = side.slider(
    "Seeds",
    1,
    10,
    qp_get("seeds", 5, int, low=1, high=10),
    key="saddle_seeds",
    help="Initialisation and batch order; the band is ±1 std over seeds.",
)
epochs = side.number_input(
    "Epochs", 1, 5000, qp_get("epochs", 500, int, low=1, high=5000), step=50, key="saddle_epochs"
)
lr = log_slider(
    "Learning rate η", 1e-4, 1e-1, qp_get("lr", 1e-3, float, low=1e-4, high=1e-1), key="saddle_lr", container=side
)
mode_q = qp_get("mode", "minibatch", options=list(MODES))
mode = side.radio(
    "Loss",
    list(MODES),
    index=list(MODES).index(mode_q) if mode_q in MODES else 0,
    format_func=MODES.get,
    key="saddle_mode",
)
with side.expander("Problem", expanded=False):
    d = st.slider("d (matrix size)", 2, 64, qp_get("d", 20, int, low=2, high=64), key="saddle_d")
    init_var = st.select_slider(
        "Init variance σ²",
        [1e-6, 1e-5, 1e-4, 1e-3, 1e-2],
        value=1e-4,
        key="saddle_init",
        format_func=lambda v: f"{v:.0e}",
    )
    n_samples = st.number_input(
        "Samples n",
        1,
        100_000,
        qp_get("n", 1000, int, low=1, high=100_000),
        key="saddle_n",
        disabled=mode == "population",
    )
    batch = st.number_input(
        "Batch size",
        1,
        100_000,
        qp_get("batch", 50, int, low=1, high=100_000),
        key="saddle_batch",
        disabled=mode != "minibatch",
        help="An epoch is one pass over the n samples.",
    )
    momentum = st.slider("Heavy-ball momentum β", 0.0, 0.99, 0.0, 0.01, key="saddle_mom")
frac = side.slider(
    "Escape threshold: fraction of L(0)",
    0.05,
    0.95,
    qp_get("frac", 0.5, float, low=0.05, high=0.95),
    0.05,
    key="saddle_frac",
)
extra: dict = {}
others = [v for v in variants if any(h.ui and n != "rho" for n, h in VARIANTS[v].hparams.items())]
if others:
    with side.expander("Other hyperparameters", expanded=False):
        for v in others:
            st.caption(variant_label(v))
            extra[v] = hparam_inputs(v, "saddle", exclude=("rho",))

run_clicked = side.button("Run", type="primary", key="saddle_run", disabled=not variants)
autorun = link_autorun(KEY)  # after a reload the URL's job is found again, not restarted
if run_clicked or autorun:
    try:
        if not rhos and any("rho" in VARIANTS[v].hparams for v in variants):
            raise ValueError("ρ values: choose at least one")
        cfg = SaddleConfig(
            d=int(d),
            init_var=float(init_var),
            lr=float(lr),
            epochs=int(epochs),
            n_samples=int(n_samples),
            batch_size=None if mode == "full" else int(min(batch, n_samples)),
            population=mode == "population",
            momentum=float(momentum),
        ).validate()
        device = get_settings().torch_device()
        start_job(
            KEY,
            Job.from_generator(
                run_saddle, variants, rhos or [0.0], list(range(seeds)), cfg, extra, device=device, name=KEY
            ),
        )
        qp_set(
            variants=variants,
            rho=rhos,
            seeds=seeds,
            epochs=int(epochs),
            lr=float(lr),
            d=int(d),
            mode=mode,
            batch=int(batch),
            n=int(n_samples),
            frac=float(frac),
        )
    except ValueError as exc:
        show_error(exc, "Settings")


def render(res, state):
    tabs = st.tabs(["Loss", "Escape time", "‖W‖", "γ_t", "Table"])
    with tabs[0]:
        chart_with_preview(
            dplots.saddle_loss_figure(res, escape_frac=frac), key=f"{KEY}_loss", preview_width=900, live=True
        )
        st.caption(
            "**Loss** per epoch (mean over seeds, band ±1 std): a long flat start is the time spent at the "
            "saddle; look for which variants drop below the dotted escape line, and when."
        )
    with tabs[1]:
        st.plotly_chart(dplots.escape_time_figure(res, frac), key=f"{KEY}_esc")
        st.caption(
            "**Escape epoch** against ρ: a rising curve means a larger ρ holds the variant at the saddle "
            "longer; open triangles never escaped within the run."
        )
        st.dataframe(res.escape_table(frac), hide_index=True)
    with tabs[2]:
        st.plotly_chart(dplots.saddle_metric_figure(res, "w_norm"), key=f"{KEY}_wn")
        st.caption(
            "**‖W‖**: the weights' norm starts tiny (next to the saddle at W = 0); it grows once a variant "
            "escapes and settles at the identity's scale."
        )
    with tabs[3]:
        st.plotly_chart(dplots.saddle_metric_figure(res, "gamma"), key=f"{KEY}_gamma")
        st.caption(
            "**γ_t** = ‖g‖/‖∇L(w+e)‖ (SGD has no ascent, so no curve): SSAM multiplies the descent "
            "gradient by it, so its step keeps the length of the clean gradient; SAM's is not rescaled — "
            "look for γ_t far from 1 where SAM and SSAM part ways."
        )
    with tabs[4]:
        df = res.to_frame()
        st.download_button("Download CSV", df.to_csv(index=False), "saddle_escape.csv", "text/csv", key=f"{KEY}_csv")
        st.dataframe(df.tail(200), hide_index=True)
    cfg = res.config
    st.caption(
        f"{res.epochs_done}/{cfg.epochs} epochs · {cfg.steps_per_epoch} step(s)/epoch · "
        f"{sum(len(res.rhos[v]) for v in res.variants) * len(res.seeds)} runs, one batched "
        f"computation per variant · {res.elapsed_s:.1f} s"
    )


def live(res, state):
    chart_with_preview(
        dplots.saddle_loss_figure(res, escape_frac=frac), key=f"{KEY}_loss", preview_width=900, live=True
    )
    st.caption(
        f"{res.epochs_done}/{res.config.epochs} epochs · escape times, ‖W‖, γ_t and the table appear when "
        "it finishes (or when you stop it)."
    )


job_panel(
    KEY,
    render,
    label="Training",
    live=live,
    idle_text="Choose variants and ρ values in the sidebar, then press **Run**.",
)
if get_job(KEY) is not None and get_job(KEY).running:
    st.caption("The plot updates while it computes; **Stop** keeps what was computed.")
