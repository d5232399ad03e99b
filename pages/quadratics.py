"""Dynamics lab · Quadratics, Unified SAM and arbitrary sampling (Oikonomou & Loizou 2025).

Thin page: read controls -> start `sam_core.dynamics.quadratics.run_quadratic_lab` in a background job -> a polling
fragment draws relative-error curves, the λ × lr heatmap and the sampling comparison as they arrive.
URL parameters: problem, variants, sampling, b, steps, seeds, lr_mult, tab (curves | heatmap | sampling | theory:
the tab it opens on), run=1 (start on open).
"""

from ui.common import page_guard

page_guard()  # deep links on a fresh server run inside app.py

import math

import pandas as pd
import streamlit as st

from sam_core.dynamics.problems import PROBLEM_KINDS, SAMPLING_KINDS, Sampling
from sam_core.dynamics.quadratics import QuadraticLabConfig, run_quadratic_lab, theory_for
from sam_core.plots import dynamics as dplots
from ui.common import chart_with_preview, log_slider, qp_get, qp_set, show_error, variant_picker
from ui.jobs import Job, job_panel, link_autorun, start_job
from ui.presets import preset_banner

KEY = "quadratics"
LAM_OPTIONS = [0.0, 0.25, 0.5, 0.75, 1.0, "1/t", "1-1/t"]
SAMPLING_LABELS = {
    "full": "full batch",
    "uniform": "uniform, one example",
    "nice": "b-nice mini-batches",
    "importance": "importance sampling p_i ∝ L_i",
}


def _lams_from_url() -> list:
    """λ values from ``?lams=0,0.5,1/t`` (the Home presets); the page default if absent or malformed."""
    out = []
    for x in qp_get("lams", "").split(","):
        x = x.strip()
        try:
            v = x if x in ("1/t", "1-1/t") else float(x)
        except ValueError:
            continue
        if v in LAM_OPTIONS:
            out.append(LAM_OPTIONS[LAM_OPTIONS.index(v)])
    return list(dict.fromkeys(out)) or [0.0, 0.5, 1.0, "1/t"]


st.title("Quadratics, Unified SAM and arbitrary sampling")
preset_banner("pages/quadratics.py")  # opened by a Home preset: what to look for, fidelity switch
st.caption(
    "Unified SAM's ascent e = ρ(1 − λ + λ/‖g‖)g interpolates USAM (λ = 0) and SAM (λ = 1). Its "
    "convergence theory covers arbitrary sampling — uniform, b-nice and importance sampling — with "
    "explicit step size γ and radius ρ, used here as the defaults (× the multipliers below)."
)

side = st.sidebar
side.subheader("Problem")
pq = qp_get("problem", "ridge", options=PROBLEM_KINDS)
problem_kind = side.selectbox(
    "Problem",
    PROBLEM_KINDS,
    index=PROBLEM_KINDS.index(pq) if pq in PROBLEM_KINDS else 1,
    key="quad_problem",
    format_func={"quadratic": "½ wᵀAw", "ridge": "ridge regression", "logistic": "logistic regression"}.get,
)
dim = side.slider("Dimension", 2, 100, 10, key="quad_dim")
cond = log_slider(
    "Condition number κ",
    1.0,
    1e4,
    10.0,
    key="quad_cond",
    container=side,
    help="Of A (quadratic) or of the feature covariance before the rows are rescaled.",
)
finite_sum = problem_kind != "quadratic"
n = side.number_input("Examples n", 2, 10_000, 100, key="quad_n", disabled=not finite_sum)
row_ratio = side.slider(
    "Row-norm spread (max/min ‖a_i‖)",
    1.0,
    20.0,
    3.0,
    0.5,
    key="quad_rows",
    disabled=not finite_sum,
    help="Unequal row norms make the per-example smoothness L_i differ.",
)
reg = log_slider("L2 penalty", 1e-4, 1.0, 1e-2, key="quad_reg", container=side)
noise = side.slider("Gradient noise (std)", 0.0, 1.0, 0.0, 0.01, key="quad_noise")

side.subheader("Optimizers")
variants = variant_picker("quad_variants", default=("sgd", "sam", "usam", "ssam", "unified_sam"), container=side)
lams = side.multiselect(
    "Unified SAM λ (values or schedules)", LAM_OPTIONS, default=_lams_from_url(), key="quad_lams", format_func=str
)
sq = qp_get("sampling", "nice", options=SAMPLING_KINDS)
sampling_kind = side.selectbox(
    "Sampling",
    SAMPLING_KINDS,
    index=SAMPLING_KINDS.index(sq) if sq in SAMPLING_KINDS else 2,
    format_func=SAMPLING_LABELS.get,
    key="quad_sampling",
    disabled=not finite_sum,
)
batch = side.number_input(
    "Batch size b",
    1,
    10_000,
    qp_get("b", 10, int, low=1, high=10_000),
    key="quad_b",
    disabled=not finite_sum or sampling_kind in ("full", "uniform"),
)
reweight = side.checkbox(
    "Reweight importance samples by 1/(n p_i)",
    value=True,
    key="quad_reweight",
    disabled=sampling_kind != "importance",
    help="Default on: the estimator is then unbiased. The authors' released numpy code "
    "uses the plain ∇f_i, which converges to the minimiser of Σ p_i f_i instead of f.",
)
lr_mult = log_slider(
    "Step size: × theoretical γ",
    0.1,
    1000.0,
    qp_get("lr_mult", 1.0, float, low=0.1, high=1000.0),
    key="quad_lr_mult",
    container=side,
    per_decade=6,
)
rho_mult = log_slider("Radius: × theoretical ρ", 0.01, 100.0, 1.0, key="quad_rho_mult", container=side, per_decade=6)
steps = side.number_input(
    "Steps", 10, 200_000, qp_get("steps", 2000, int, low=10, high=200_000), step=500, key="quad_steps"
)
seeds = side.slider("Seeds", 1, 10, qp_get("seeds", 3, int, low=1, high=10), key="quad_seeds")
with side.expander("Extra experiments", expanded=True):
    heatmap = st.checkbox(
        "λ × lr heatmap (Unified SAM)", value=qp_get("heat", "1", options=("0", "1")) != "0", key="quad_heat"
    )
    compare = st.checkbox(
        "Sampling strategies at equal gradient evaluations",
        value=qp_get("cmp", "1", options=("0", "1")) != "0",
        key="quad_cmp",
        disabled=not finite_sum,
    )
    budget = st.number_input(
        "Budget (passes over the data)",
        1,
        10_000,
        qp_get("budget", 100, int, low=1, high=10_000),
        key="quad_budget",
        disabled=not finite_sum,
    )

cfg = None
try:
    cfg = QuadraticLabConfig(
        problem=problem_kind,
        n=int(n),
        dim=int(dim),
        cond=float(cond),
        row_norm_ratio=float(row_ratio),
        reg=float(reg),
        noise=float(noise),
        variants=tuple(variants),
        lams=tuple(lams) or (1.0,),
        sampling=sampling_kind if finite_sum else "full",
        batch_size=int(min(batch, n)),
        reweight=bool(reweight),
        lr_mult=float(lr_mult),
        rho_mult=float(rho_mult),
        steps=int(steps),
        seeds=int(seeds),
        heatmap=heatmap,
        compare_sampling=compare and finite_sum,
        budget_epochs=float(budget),
    ).validate()
except ValueError as exc:
    show_error(exc, "Settings")


@st.cache_resource(max_entries=8, show_spinner=False)
def _problem(c: QuadraticLabConfig):
    return c.build_problem()


if cfg is not None:
    try:
        prob = _problem(cfg)
        smp = cfg.build_sampling() if finite_sum else Sampling("full")
        th1 = theory_for(prob, smp, 1.0)
        th0 = theory_for(prob, smp, 0.0)
        # two rows of three: in one row of six the values were cut ("8.8…") at 1024 px
        cols = st.columns(3) + st.columns(3)
        cols[0].metric("L", f"{prob.L:.3g}")
        cols[1].metric("μ", f"{prob.mu:.3g}")
        cols[2].metric("κ = L/μ", f"{prob.kappa:.3g}")
        cols[3].metric("max L_i / mean L_i", f"{float(prob.L_i.max()):.3g} / {float(prob.L_i.mean()):.3g}")
        cols[4].metric("theory γ", f"{th1['gamma']:.3g}")
        cols[5].metric("theory ρ (λ=1 / λ=0)", f"{th1['rho']:.2g} / {th0['rho']:.2g}")
    except ValueError as exc:
        show_error(exc, "Problem")
        cfg = None

run_clicked = side.button("Run", type="primary", key="quad_run", disabled=cfg is None or not variants)
autorun = link_autorun(KEY)  # after a reload the URL's job is found again, not restarted
if (run_clicked or autorun) and cfg is not None and variants:
    start_job(KEY, Job.from_generator(run_quadratic_lab, cfg, name=KEY, pass_stop="stop_event"))
    qp_set(
        problem=problem_kind,
        variants=variants,
        sampling=sampling_kind,
        b=int(batch),
        steps=int(steps),
        seeds=int(seeds),
        lr_mult=float(lr_mult),
    )


TABS = {"curves": "Convergence", "heatmap": "λ × lr heatmap", "sampling": "Sampling strategies", "theory": "Theory"}


def render(res, state):  # ?tab=sampling: the sampling preset opens on its figure
    if res.phase and state.running:
        st.caption(f"Now: {res.phase}")
    opened = qp_get("tab", "curves", options=tuple(TABS))
    tabs = dict(zip(TABS, st.tabs(list(TABS.values()), default=TABS[opened])))

    def _curves() -> None:
        with tabs["curves"]:
            xaxis = st.radio(
                "x axis",
                ["step", "grad_evals"],
                horizontal=True,
                key=f"{KEY}_x",
                format_func={"step": "steps", "grad_evals": "gradient evaluations"}.get,
            )
            if res.curves:
                chart_with_preview(
                    dplots.relative_error_figure(res.curves, x=xaxis), key=f"{KEY}_curves", preview_width=900, live=True
                )
                st.caption(
                    "**Relative error** (f − f\\*)/(f(w₀) − f\\*), log scale, median over runs, band "
                    "min–max: a straight falling line is linear convergence, a level floor is where the step "
                    "size's noise or bias stops it."
                )
                st.download_button(
                    "Download CSV",
                    res.curves_frame().to_csv(index=False),
                    "quadratics.csv",
                    "text/csv",
                    key=f"{KEY}_csv",
                )

    def _heatmap() -> None:
        with tabs["heatmap"]:
            if res.heatmap is not None:
                st.plotly_chart(dplots.lam_lr_heatmap(res.heatmap), key=f"{KEY}_heat")
                st.caption("★ the theoretical step size; ✕ diverged. Median over seeds.")
            else:
                st.info("Not computed (yet).")

    def _sampling() -> None:
        with tabs["sampling"]:
            if res.sampling_curves:
                chart_with_preview(
                    dplots.sampling_figure(res.sampling_curves, res.sampling_theory),
                    key=f"{KEY}_smp",
                    preview_width=900,
                    live=True,
                )
                st.dataframe(pd.DataFrame(res.sampling_theory), hide_index=True)
                st.caption(
                    "Without the 1/(n p_i) reweighting the importance-sampled gradient estimates "
                    "∇(Σ p_i f_i), not ∇f: the iterates converge to the wrong point and the error stalls "
                    "at a bias floor. With it, the estimator is unbiased and the theory's larger step "
                    "(A = mean L_i instead of max L_i) applies."
                )
            else:
                st.info(
                    "Needs a finite-sum problem (ridge or logistic)."
                    if res.problem["n"] == 1
                    else "Not computed (yet)."
                )

    def _theory() -> None:
        with tabs["theory"]:
            t = res.theory
            st.markdown(
                f"Constants of the chosen sampling: A = {t['A']:.4g}, B = {t['B']:.4g} "
                f"(b-nice: A = (n−b)L_max/(b(n−1)), B = n(b−1)/(b(n−1)); importance with replacement: "
                f"A = max L_i/(b n p_i), B = 1 − 1/b; full batch: A = 0, B = 1)."
            )
            st.latex(
                r"\gamma = \frac{1}{L}\min\Big(2, \frac{\mu}{8(B\mu + A)}\Big),\qquad "
                r"\rho = \frac{1}{4L}\min\Big(1, \frac{\mu}{2(B\mu+A)(1-\lambda)^2}\Big)\ (\rho = \tfrac{1}{4L}"
                r"\text{ at } \lambda = 1)"
            )
            st.json(
                {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in res.problem.items()}
            )

    # the tab the page opens on is filled first: its figure goes out before the others' (CSV, pictures)
    order = [opened] + [n for n in TABS if n != opened]
    fill = {"curves": _curves, "heatmap": _heatmap, "sampling": _sampling, "theory": _theory}
    for name in order:
        fill[name]()


def live(res, state):
    if res.phase:
        st.caption(f"Now: {res.phase} · the heatmap, the sampling comparison and the theory appear when it finishes.")
    if res.sampling_curves and qp_get("tab", "curves", options=tuple(TABS)) == "sampling":  # the page's figure
        chart_with_preview(
            dplots.sampling_figure(res.sampling_curves, res.sampling_theory),
            key=f"{KEY}_smp",
            preview_width=900,
            live=True,
        )
    elif res.curves:
        chart_with_preview(
            dplots.relative_error_figure(res.curves, x="step"), key=f"{KEY}_curves", preview_width=900, live=True
        )


job_panel(
    KEY,
    render,
    label="Running",
    live=live,
    idle_text="Pick a problem, the variants and a sampling in the sidebar, then press **Run**.",
)
