"""Sweeps: launch a grid or random search of training runs and read it as a heatmap / parallel
coordinates of final test accuracy, final top eigenvalue and γ_t statistics against the swept values.

The page never trains: a launch records the sweep in the run store and starts its driver process
(`python -m sam_core.cli.sweep --sweep-id ID`), which feeds the trials to the local run queue (or to Ray
Tune). Each trial is an ordinary run; pick a row of the table to open it in the Training lab.
"""

from ui.common import page_guard
from ui.run_store import open_run_store

page_guard()  # deep links on a fresh server run inside app.py

import streamlit as st
import torch

from sam_core.plots import training_sweeps as splots
from sam_core.training.data import DATASETS, default_dataset
from sam_core.training.models import MODELS
from sam_core.training.sweeps import (
    RESULT_METRICS,
    SweepError,
    SweepSpec,
    create,
    parse_values,
    spawn_driver,
    summary,
)
from sam_core.training.sweeps.ray_executor import ray_available
from sam_core.training.sweeps.results import sweep_frame
from ui.common import show_error, variant_picker

POLL_SECONDS = 2.0
PAGE_MAX_TRIALS = 48  # a launch from the page; the CLI allows more (max_trials)

st.title("Sweeps")
st.caption(
    "A grid or random search over variants and hyperparameters of one training config. Trials run as "
    "ordinary runs in the local queue (or as Ray Tune trials) and stay in the run store."
)

settings, store, runs_dir, data_dir = open_run_store("sw")


# ------------------------------------------------------------------------------------ launch form
def _values(text: str, name: str, kind=float) -> list:
    """A grid box's values: at most PAGE_MAX_TRIALS (counted before the text is split or converted)."""
    return parse_values(text, name, kind, max_count=PAGE_MAX_TRIALS) if text.strip() else []


def _launch_form() -> None:
    c1, c2, c3, c4 = st.columns(4)
    names = list(DATASETS)
    dataset = c1.selectbox(
        "Dataset",
        names,
        index=names.index(default_dataset(data_dir)),
        key="sw_dataset",
        format_func=lambda d: DATASETS[d].label,
        help="Digits ships with scikit-learn (works offline); the others need their files "
        "in the data folder, or a download when online.",
    )
    model = c1.selectbox("Model", list(MODELS), key="sw_model", format_func=lambda m: MODELS[m].label)
    epochs = c2.number_input("Epochs", value=1, step=1, key="sw_epochs")
    batch_size = c2.number_input("Batch size", value=128, step=1, key="sw_bs")
    subset = c3.number_input("Training subset (0 = all)", value=0, step=100, key="sw_subset")
    seed = c3.number_input("Seed", value=0, step=1, key="sw_seed")
    hessian_every = c4.number_input("Hessian every m steps (0 = off)", value=100, step=10, key="sw_hevery")
    devices = ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    device = c4.selectbox("Device", devices, key="sw_device")
    final = c4.checkbox(
        "End-of-run Hessian analysis",
        value=False,
        key="sw_final",
        help="Top-5 eigenvalues and the spectral density after each trial's last epoch: minutes per "
        "trial on a CPU, and a trial shows 'running' until it is done. Off: a trial ends with "
        "its last evaluation.",
    )

    variants = variant_picker(
        "sw_variants",
        default=("sam", "ssam"),
        container=st,
        label="Variants (swept; hyperparameters apply to the variants that have them)",
    )
    search = st.radio(
        "Search",
        ["grid", "random"],
        horizontal=True,
        key="sw_search",
        format_func=lambda s: {"grid": "Grid (every combination)", "random": "Random search"}[s],
    )
    params: dict = {"optimizer": variants}
    errors: list[str] = []
    if search == "grid":
        c1, c2, c3 = st.columns(3)
        texts = {
            "lr": c1.text_input(
                "Learning rates η", "0.05", key="sw_g_lr", help="Comma-separated, e.g. 0.01, 0.05, 0.1"
            ),
            "rho": c2.text_input("ρ values", "0.02, 0.05, 0.1", key="sw_g_rho"),
            "lam": c3.text_input("λ values (Unified SAM; empty = default)", "", key="sw_g_lam"),
            "weight_decay": c1.text_input("Weight decays (empty = 5e-4)", "", key="sw_g_wd"),
            "momentum": c2.text_input("Momenta (empty = 0.9)", "", key="sw_g_mom"),
            "seed": c3.text_input("Seeds (integers; empty = the seed above)", "", key="sw_g_seed"),
        }
        for name, text in texts.items():
            try:
                vals = _values(text, name, int if name == "seed" else float)
            except SweepError as exc:
                errors += exc.errors
                continue
            if vals:
                params[name] = vals
        num_samples = 1
    else:
        c1, c2, c3 = st.columns(3)
        lr_lo = c1.number_input("η from", value=0.01, format="%.4g", key="sw_r_lr_lo")
        lr_hi = c1.number_input("η to", value=0.2, format="%.4g", key="sw_r_lr_hi")
        rho_lo = c2.number_input("ρ from", value=0.01, format="%.4g", key="sw_r_rho_lo")
        rho_hi = c2.number_input("ρ to", value=0.2, format="%.4g", key="sw_r_rho_hi")
        num_samples = c3.number_input("Trials (draws)", value=8, step=1, key="sw_r_n")
        st.caption("η and ρ are drawn log-uniformly; the variant uniformly among those chosen.")
        params.update(lr={"log_uniform": [lr_lo, lr_hi]}, rho={"log_uniform": [rho_lo, rho_hi]})

    c1, c2, c3, c4 = st.columns(4)
    has_ray = ray_available()
    executor = c1.selectbox(
        "Executor",
        ["local", "ray"] if has_ray else ["local"],
        key="sw_executor",
        help="local: this machine's run queue (SAMLAB_MAX_RUNS at once). ray: Ray Tune trials "
        "(needs pip install -r requirements-ray.txt).",
    )
    if not has_ray:
        c1.caption("Ray is not installed here: `pip install -r requirements-ray.txt` adds the Ray executor.")
    name = c2.text_input("Sweep name", "", key="sw_name")
    ray_opts: dict = {}
    if executor == "ray":
        ray_opts["address"] = c3.text_input("Ray address (empty = start one here)", "", key="sw_ray_addr") or None
        ray_opts["gpus_per_trial"] = c3.number_input(
            "GPUs per trial (fractions share)", value=0.0, step=0.25, key="sw_ray_gpu"
        )
        ray_opts["cpus_per_trial"] = c4.number_input("CPUs per trial", value=1.0, step=1.0, key="sw_ray_cpu")
        ray_opts["asha"] = c4.checkbox("ASHA early stopping (on test accuracy, per epoch)", key="sw_ray_asha")

    base = dict(
        dataset=dataset,
        data_dir=str(data_dir),
        model=model,
        epochs=epochs,
        batch_size=batch_size,
        subset=int(subset) or None,
        seed=seed,
        hessian_every=hessian_every,
        device=device,
        final_top_k=5 if final else 0,
        final_density=bool(final),
    )
    if st.button("Launch sweep", type="primary", key="sw_launch", disabled=not variants):
        if errors:
            st.error("Not launched — please fix:\n\n" + "\n".join(f"- {e}" for e in errors))
            return
        spec = SweepSpec(
            base=base,
            params=params,
            search=search,
            num_samples=int(num_samples),
            name=name,
            executor=executor,
            ray=ray_opts,
            max_trials=PAGE_MAX_TRIALS,
        )
        try:
            trials = spec.trials()
        except SweepError as exc:
            st.error("Not launched — please fix:\n\n" + "\n".join(f"- {e}" for e in exc.errors))
            return
        try:
            sweep_id = create(store, spec)
            spawn_driver(store, sweep_id)
        except Exception as exc:
            show_error(exc, "Launch failed")
            return
        st.session_state["sw_show"] = sweep_id
        st.success(f"Launched sweep {sweep_id}: {len(trials)} trial(s).")


if settings.read_only:
    st.info("Read-only mode (SAMLAB_READ_ONLY): launching and stopping sweeps are switched off.")
else:
    with st.expander("Launch a sweep", expanded=not store.list_sweeps()):
        _launch_form()


# ------------------------------------------------------------------------------------ results
def _open_run(run_id: str) -> None:
    st.session_state["tl_show"] = [run_id]  # the Training lab's run picker
    try:
        st.switch_page("pages/training.py")
    except Exception as exc:  # e.g. the page is not registered in this app
        show_error(exc, "Cannot open the Training lab")


def _plots(df, params: list[str]) -> None:
    metrics = [m for m in RESULT_METRICS if df[m].notna().any()] or list(RESULT_METRICS)
    c1, c2, c3, c4 = st.columns(4)
    metric = c1.selectbox("Metric", metrics, key="sw_metric", format_func=lambda m: RESULT_METRICS[m])
    if len(params) >= 2:
        x = c2.selectbox("x axis", params, index=len(params) - 1, key="sw_x")
        y_opts = [p for p in params if p != x]
        y = c3.selectbox("y axis", y_opts, index=0, key="sw_y")
        agg = c4.selectbox("Cells with several trials", splots.AGGS, key="sw_agg")
        rest = [p for p in params if p not in (x, y)]
        facet = "optimizer" if "optimizer" in rest else None
        st.plotly_chart(splots.heatmap_figure(df, x, y, metric, agg, facet=facet), key="sw_heat")
    elif params:
        st.plotly_chart(splots.metric_line_figure(df, params[0], metric), key="sw_line")
    color = metric if df[metric].notna().any() else "test_acc"
    shown = [m for m in ("test_acc", "top_eig", "gamma_mean") if df[m].notna().any()]
    if params and df[color].notna().any():
        st.plotly_chart(splots.parallel_figure(df, params, shown, color), key="sw_par")


@st.fragment(run_every=POLL_SECONDS if any(s.active for s in store.list_sweeps()) else None)
def monitor() -> None:
    sweeps = store.list_sweeps()
    active = any(s.active for s in sweeps)
    if st.session_state.get("sw_polling") and not active:
        st.session_state["sw_polling"] = False
        st.rerun()
    st.session_state["sw_polling"] = active
    if not sweeps:
        st.info(
            "No sweeps yet in this folder. Launch one above, or headless: "
            "`python -m sam_core.cli.sweep --config sweep.json` (see `--help`)."
        )
        return
    by_id = {s.id: s for s in sweeps}
    if st.session_state.get("sw_show") not in by_id:
        st.session_state["sw_show"] = sweeps[0].id
    sid = st.selectbox(
        "Sweep",
        list(by_id),
        key="sw_show",
        format_func=lambda i: f"{by_id[i].name or 'sweep'} · {i} · {by_id[i].executor}",
    )
    info = by_id[sid]
    counts = summary(store, sid)
    ended = sum(v for k, v in counts.items() if k in ("finished", "failed", "stopped", "cancelled", "deleted"))
    st.markdown(
        f"**{info.status}** · {info.n_trials} trial(s): "
        + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        + (f" — {info.message}" if info.message and info.status == "failed" else "")
    )
    if info.active:
        st.progress(ended / max(info.n_trials, 1), text=f"{ended}/{info.n_trials} trials ended")
    if not settings.read_only:
        c1, c2, _ = st.columns([1, 1, 4])
        if info.active and c1.button("Stop sweep", key=f"sw_stop_{sid}"):
            store.request_sweep_stop(sid)
            st.toast("Stop requested: trials not started are cancelled, running ones checkpoint and stop.")
        if not info.active:
            sure = c2.checkbox("confirm", key=f"sw_delsure_{sid}")
            if c2.button("Delete sweep and its runs", key=f"sw_del_{sid}", disabled=not sure):
                try:
                    store.delete_sweep(sid)
                    st.rerun()
                except ValueError as exc:
                    show_error(exc)
    df = sweep_frame(store, sid)
    params = df.attrs.get("params", [])
    cols = ["trial", "status", *params, "test_acc", "top_eig", "gamma_mean", "gamma_min", "gamma_max", "run_id"]
    event = st.dataframe(
        df[cols], hide_index=True, key=f"sw_table_{sid}", on_select="rerun", selection_mode="single-row"
    )
    rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    if rows:
        row = df.iloc[rows[0]]
        label = ", ".join(f"{p}={splots.fmt_value(row[p])}" for p in params)
        if row["run_id"]:
            if st.button(f"Open trial {row['trial']} ({label}) in the Training lab", key="sw_open"):
                _open_run(row["run_id"])
        else:
            st.caption(f"Trial {row['trial']} ({label}) has no run yet ({row['status']}).")
    else:
        st.caption("Select a row to open its run in the Training lab. Hover a heatmap cell to see its run ids.")
    if df[list(RESULT_METRICS)].notna().any().any():
        _plots(df, params)


try:
    monitor()
except Exception as exc:
    show_error(exc, "Cannot show the sweeps")
