"""Compare runs: overlay any metric of several training runs from the run store, and their final numbers.

Runs launched together with "compare variants" form a group (same seed, data order and init);
picking a group selects all of its runs. Read-only: nothing here starts or changes a run.
"""

from ui.common import page_guard
from ui.run_store import open_run_store

page_guard()  # deep links on a fresh server run inside app.py

import streamlit as st

from sam_core.plots import training as tplots
from sam_core.training.views import run_label, run_series, summary_frame
from ui.common import show_error

st.title("Compare runs")

settings, store, runs_dir, _ = open_run_store("cr", with_data=False)
try:
    runs = store.list_runs()
except Exception as exc:  # unreadable store …
    show_error(exc, "Cannot read the run store")
    st.stop()

if not runs:
    st.info(f"No runs in {runs_dir} yet. Launch some on the Training lab page, or with `python -m sam_core.cli.train`.")
    st.stop()

by_id = {r.id: r for r in runs}
groups = sorted({r.group for r in runs if r.group}, reverse=True)
c1, c2 = st.columns([1, 3])
group = c1.selectbox(
    "Launch group", ["(any)"] + groups, key="cr_group", help="Runs started together by 'compare variants'."
)
default = [r.id for r in runs if r.group == group] if group != "(any)" else [r.id for r in runs[:3]]
chosen = c2.multiselect(
    "Runs", list(by_id), default=default, key=f"cr_runs_{group}", format_func=lambda i: f"{run_label(by_id[i])} · {i}"
)
if not chosen:
    st.info("Pick at least one run.")
    st.stop()
sel = [by_id[i] for i in chosen]

try:
    series = run_series(store, sel)
    names = sorted({c for s in series for c in s.df.columns})
    st.subheader("Final numbers")
    st.dataframe(summary_frame(store, sel), hide_index=True)
    c1, c2, c3, c4 = st.columns(4)
    metric = c1.selectbox("Metric", names, index=names.index("loss") if "loss" in names else 0, key="cr_metric")
    smoothing = c2.slider(
        "Smoothing (EMA)",
        0.0,
        0.99,
        0.6,
        0.01,
        key="cr_smooth",
        help="TensorBoard's debiased EMA, on per-step series only: per-epoch points (train/test "
        "loss and accuracy, gap, ‖w − w0‖) and Hessian points are drawn raw.",
    )
    log_y = c3.toggle("Log y", key="cr_logy")
    log_x = c4.toggle("Log step axis", key="cr_logx")
    st.plotly_chart(tplots.metric_figure(series, metric, metric, smoothing, log_x, log_y), key="cr_metric_fig")
    if smoothing > 0 and not tplots.per_step(series, metric):
        st.caption(
            f"`{metric}` has a point per epoch (or per Hessian measurement), not per step: drawn raw, "
            "without smoothing."
        )
    elif smoothing > 0:
        st.caption(f"Smoothed (EMA {smoothing:g}); the faint line behind is the raw series.")
    g1, g2 = st.columns(2)
    g1.plotly_chart(tplots.gamma_figure(series, smoothing, log_y), key="cr_gamma")
    g1.caption(tplots.CAPTIONS["gamma"])
    if tplots.has_metric(series, "top_eig"):
        g2.plotly_chart(tplots.eigen_figure(series, log_y), key="cr_eig")
        g2.caption(tplots.CAPTIONS["eigen"])
    else:  # an empty chart with a caption about edges that are not there confused people
        g2.info(tplots.EIGEN_OFF)
    st.plotly_chart(tplots.epoch_figure(series, log_y), key="cr_epoch")
    st.caption(tplots.CAPTIONS["epoch"])
    shown = [metric, "gamma", "top_eig", "gd_edge", "sam_edge", "train_loss", "test_loss", "train_acc", "test_acc"]
    table = tplots.overlay_frame(series, list(dict.fromkeys(shown)), [r.id for r in sel], smoothing)
    st.download_button(
        "Overlaid series (CSV)",
        table.to_csv(index=False),
        file_name="compare_runs.csv",
        mime="text/csv",
        key="cr_csv",
        on_click="ignore",
        help="One row per run, step and metric: the raw value and the value drawn ('shown': "
        "smoothed for per-step series).",
    )
except Exception as exc:
    show_error(exc, "Cannot draw the comparison")
