"""Training lab: launch real training runs (a worker process each), watch them live, stop/resume/delete, export.

The page never trains: a launch queues the run in the run store and starts `python -m sam_core.cli.train`;
the monitor below reads the store in an `st.fragment(run_every=…)` that stops polling once no run is
active. Reloads, second tabs and app restarts see the same runs.
"""

from ui.common import page_guard, plain_markdown
from ui.presets import preset_banner, preset_run_panel
from ui.run_store import open_run_store

page_guard()  # deep links on a fresh server run inside app.py

import streamlit as st
import torch

from sam_core.plots import training as tplots
from sam_core.training import ConfigError, RunConfig, launch, launch_variants
from sam_core.training import resume as resume_run
from sam_core.training.config import BASES, SCHEDULES, dataset_defaults
from sam_core.training.data import DATASETS, available_datasets, default_dataset
from sam_core.training.models import MODELS
from sam_core.training.store import export_csv
from sam_core.training.views import run_label, run_series, runs_frame
from ui.common import hosted, hparam_inputs, kept_state, qp_get, qp_set, show_error, variant_label, variant_picker

POLL_SECONDS = 2.0

st.title("Training lab")
preset = preset_banner("pages/training.py")  # opened by a Home preset: what to look for, fidelity switch
if preset:  # the preset's figure, trained in the lab's worker pool; the form below is filled in for real runs
    with st.container(border=True):
        preset_run_panel(preset)
st.caption(
    "Real networks, any SAM variant, live γ_t and Hessian curves. Each run trains in its own worker "
    "process (`python -m sam_core.cli.train`) and lives in the run store."
)

settings, store, runs_dir, data_dir = open_run_store("tl")


# ------------------------------------------------------------------------------------ launch form
def _launch_form() -> None:
    # a shared link (?dataset=…&model=…&epochs=…) pre-fills the form; its values are validated like typed ones
    # default: the first torchvision dataset on disk, else digits (ships with scikit-learn: works offline)
    qp_dataset = qp_get("dataset", default_dataset(data_dir), max_len=64)
    d = dataset_defaults(qp_dataset if qp_dataset in DATASETS else "digits")  # model, epochs, … sized for it
    qp_model = qp_get("model", d["model"], max_len=64)
    here = available_datasets(data_dir)
    st.caption(
        f"Datasets here: {', '.join(DATASETS[n].label for n in here) or 'none'}. To add "
        f"{', '.join(s.label for n, s in DATASETS.items() if n not in here and not s.bundled)}: "
        f"put torchvision's files in `{data_dir}` (the sidebar's Data folder), or a run downloads them "
        f"there when online."
    )
    datasets = list(DATASETS) + ([qp_dataset] if qp_dataset not in DATASETS else [])
    models = list(MODELS) + ([qp_model] if qp_model not in MODELS else [])
    c1, c2, c3, c4 = st.columns(4)
    dataset = c1.selectbox(
        "Dataset",
        datasets,
        index=datasets.index(qp_dataset),
        key="tl_dataset",
        format_func=lambda d: DATASETS[d].label if d in DATASETS else d,
    )
    model = c1.selectbox(
        "Model",
        models,
        index=models.index(qp_model),
        key="tl_model",
        accept_new_options=True,
        format_func=lambda m: MODELS[m].label if m in MODELS else m,
        help="; ".join(f"{m.label}: {m.description}" for m in MODELS.values()),
    )
    epochs = c2.number_input(
        "Epochs", value=qp_get("epochs", d["epochs"], int, low=1, high=settings.max_epochs), step=1, key="tl_epochs"
    )
    batch_size = c2.number_input(
        "Batch size", value=qp_get("batch_size", d["batch_size"], int, low=1, high=10**7), step=1, key="tl_bs"
    )
    lr = c3.number_input(
        "Learning rate η",
        value=qp_get("lr", d["lr"], float, low=0.0, high=100.0),
        step=0.01,
        format="%.4g",
        key="tl_lr",
    )
    base = c3.selectbox("Base optimizer", BASES, key="tl_base")
    momentum = c4.number_input("Momentum β", value=0.9, step=0.05, key="tl_momentum")
    weight_decay = c4.number_input("Weight decay", value=5e-4, step=1e-4, format="%.2g", key="tl_wd")
    c1, c2, c3, c4 = st.columns(4)
    subset = c1.number_input(
        "Training subset (0 = all)", value=qp_get("subset", 0, int, low=0, high=10**8), step=100, key="tl_subset"
    )
    label_noise = c2.number_input(
        "Label noise rate",
        value=qp_get("label_noise", 0.0, float, low=0.0, high=1.0),
        step=0.1,
        key="tl_noise",
        help="Symmetric: this fraction of training labels moved to another class.",
    )
    seed = c3.number_input("Seed", value=qp_get("seed", 0, int, low=0, high=2**31 - 1), step=1, key="tl_seed")
    schedule = c4.selectbox("LR schedule", SCHEDULES, key="tl_schedule")
    c1, c2, c3, c4 = st.columns(4)
    hessian_every = c1.number_input(
        "Hessian every m steps (0 = off)",
        value=qp_get("hessian_every", d["hessian_every"], int, low=0, high=10**7),
        step=10,
        key="tl_hevery",
    )
    hutchinson = c2.number_input("Hutchinson probes (0 = off)", value=0, step=5, key="tl_hutch")
    stability = c3.checkbox(
        "Uniform-stability twin run",
        value=qp_get("stability", "0", options=("0", "1")) == "1",
        key="tl_stab",
        help="Train a twin on the training set with one example replaced (same init and "
        "order) and log the parameter distance (Stable SAM, Figs. 4–5).",
    )
    devices = ["auto", "cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    device = c4.selectbox("Device", devices, key="tl_device", help="auto: SAMLAB_DEVICE, else CUDA when present")
    with st.expander("More options"):
        c1, c2, c3 = st.columns(3)
        log_every = c1.number_input("Log every k steps", value=10, step=1, key="tl_logk")
        hessian_batch = c1.number_input(
            "Hessian batch (fixed examples)", value=RunConfig.hessian_batch, step=32, key="tl_hbatch"
        )
        final_top_k = c2.number_input(
            "Top-k eigenvalues at the end", value=qp_get("top_k", 5, int, low=0, high=100), step=1, key="tl_topk"
        )
        final_density = c2.checkbox("Spectral density at the end (SLQ, 100 HVPs)", value=True, key="tl_density")
        eval_train = c2.number_input("Train examples evaluated per epoch", value=5000, step=500, key="tl_evaltr")
        loss = c3.selectbox(
            "Loss",
            ["ce", "mse"],
            key="tl_loss",
            format_func=lambda s: {"ce": "cross-entropy", "mse": "squared (½‖f − onehot‖²)"}[s],
        )
        label_smoothing = c3.number_input("Label smoothing", value=0.0, step=0.05, key="tl_ls")
        augment = c3.selectbox(
            "Augmentation", ["auto", "on", "off"], key="tl_aug", help="auto: flip + crop on CIFAR, none on digits"
        )

    variants = variant_picker(
        "tl_variants",
        default=("sgd", "sam", "ssam"),
        container=st,
        label="Variants (one run each, same seed and data order)",
    )
    hparams: dict[str, dict] = {}
    if variants:
        cols = st.columns(min(len(variants), 4))
        for i, v in enumerate(variants):
            box = cols[i % len(cols)].container(border=True)
            box.markdown(f"**{variant_label(v)}**")
            hparams[v] = hparam_inputs(v, "tl", container=box)

    base_cfg = dict(
        dataset=dataset,
        data_dir=str(data_dir),
        model=model,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        base=base,
        momentum=momentum,
        weight_decay=weight_decay,
        subset=int(subset) or None,
        label_noise=label_noise,
        seed=seed,
        lr_schedule=schedule,
        hessian_every=hessian_every,
        hutchinson=hutchinson,
        stability=stability,
        device=device,
        log_every=log_every,
        hessian_batch=hessian_batch,
        final_top_k=final_top_k,
        final_density=final_density,
        eval_train_size=eval_train,
        loss=loss,
        label_smoothing=label_smoothing,
        augment=None if augment == "auto" else augment == "on",
    )
    n = len(variants)
    label = f"Launch {n} runs (compare variants)" if n > 1 else "Launch run"
    if st.button(label, type="primary", key="tl_launch", disabled=n == 0):
        per_variant: dict[str, list[str]] = {}
        cfgs = []
        for v in variants:
            try:
                cfg = RunConfig.from_dict(dict(base_cfg, optimizer=v, hparams=hparams.get(v, {})))
                per_variant[v] = cfg.errors()
            except (ConfigError, TypeError) as exc:
                per_variant[v], cfg = [str(exc)], None
            cfgs.append(cfg)
        shared = [e for e in per_variant[variants[0]] if all(e in errs for errs in per_variant.values())]
        errors = shared + [
            f"{variant_label(v)}: {e}" for v, errs in per_variant.items() for e in errs if e not in shared
        ]
        if isinstance(epochs, (int, float)) and epochs > settings.max_epochs:  # a cap for shared servers
            errors.append(
                f"epochs must be at most {settings.max_epochs} on this server (SAMLAB_MAX_EPOCHS), got {epochs}"
            )
        if errors:
            st.error("Not launched — please fix:\n\n" + "\n".join(f"- {e}" for e in errors))
            return
        try:
            if n > 1:
                ids = launch_variants(store, cfgs[0], {c.optimizer: c.hparams for c in cfgs})
            else:
                ids = [launch(store, cfgs[0])]
        except Exception as exc:  # e.g. the worker could not be started
            show_error(exc, "Launch failed")
            return
        st.session_state["tl_show"] = ids  # the monitor below shows the new runs
        st.session_state["_tl_linked"] = ",".join(ids)
        qp_set(
            dataset=dataset,
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            subset=int(subset),
            label_noise=float(label_noise),
            hessian_every=int(hessian_every),
            top_k=int(final_top_k),
            variants=variants,
            run=ids,
        )
        st.session_state["_tl_launched"] = ids  # the next run folds the form away and says so above the runs
        st.rerun()


if settings.read_only:
    st.info("Read-only mode (SAMLAB_READ_ONLY): launching, stopping and deleting runs are switched off.")
else:
    # after a launch the form folds away, so the new runs' live curves come up on the screen (the open form
    # filled it and they started below the fold); the expander keeps its state, opened or closed by hand
    launched = st.session_state.pop("_tl_launched", None)
    if launched:
        st.session_state["tl_form"] = False
    with st.expander(
        "Launch training",
        expanded=kept_state("tl_form", lambda: not store.list_runs()),
        key="tl_form",
        on_change="rerun",
    ):
        _launch_form()
    if launched:
        st.success(f"Launched {len(launched)} run(s): {', '.join(launched)}. Their live curves are below.")


# ------------------------------------------------------------------------------------ live monitor
def _actions(info) -> None:
    c1, c2, c3, c4 = st.columns([3, 3, 3, 1])  # wide enough for "Delete <run id>"
    if not settings.read_only:
        if info.active and c1.button(f"Stop {info.id}", key=f"tl_stop_{info.id}", help=f"Stop {run_label(info)}"):
            store.request_stop(info.id)
            st.toast(f"Stop requested for {info.id}; it checkpoints first.")
        if info.status in ("stopped", "failed") and c2.button(f"Resume {info.id}", key=f"tl_resume_{info.id}"):
            try:
                resume_run(store, info.id)
                st.rerun()
            except Exception as exc:
                show_error(exc, "Resume failed")
        sure = c3.checkbox(
            "confirm",
            key=f"tl_delsure_{info.id}",
            help="An active run's worker is stopped first; its metrics and checkpoint are deleted.",
        )
        if c3.button(f"Delete {info.id}", key=f"tl_del_{info.id}", disabled=not sure):
            try:
                with st.spinner("Stopping its worker first…" if info.active else "Deleting…"):
                    store.delete(info.id, force=True, stop_timeout=20.0)
                st.rerun()
            except Exception as exc:
                show_error(exc, "Delete failed")
    c4.download_button(
        "CSV",
        data=export_csv(store, info.id),
        file_name=f"{info.id}.csv",
        mime="text/csv",
        key=f"tl_csv_{info.id}",
        help="One row per logged step (python -m sam_core.cli.runs export).",
    )


@st.fragment(run_every=POLL_SECONDS if any(r.active for r in store.list_runs()) else None)
def monitor() -> None:
    runs = store.list_runs()
    active = any(r.active for r in runs)
    if st.session_state.get("tl_polling") and not active:
        st.session_state["tl_polling"] = False
        st.rerun()  # the whole page: re-registers this fragment without run_every (polling stops)
    st.session_state["tl_polling"] = active
    if not runs:
        st.info(
            "No runs yet in this folder. Launch one above, or headless: "
            "`python -m sam_core.cli.train --dataset digits --model cnn8 --optimizer sam --epochs 5`."
        )
        return
    st.subheader("Runs")
    st.dataframe(
        runs_frame(runs),
        hide_index=True,
        column_config={
            "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0),
            "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
        },
    )
    for r in runs:
        if r.status == "running":
            eta = runs_frame([r])["ETA"].iloc[0]
            st.progress(
                r.progress, text=f"{run_label(r)} — step {r.step}/{r.total_steps}{' · ETA ' + eta if eta else ''}"
            )
    by_id = {r.id: r for r in runs}
    linked = qp_get("run", "")  # a link to runs (the launch writes its runs here, so a reload shows them all)
    named = list(dict.fromkeys(i for i in linked.split(",") if i))  # each run once
    ids = [i for i in named if i in by_id]
    if len(ids) < len(named):
        st.caption(
            f"The link names {len(named) - len(ids)} run(s) not in this folder (deleted, or in another "
            "runs folder); showing the others."
        )
    # a new link, or coming back to the page (its widgets' state is gone; the URL kept the runs)
    if ids and (st.session_state.get("_tl_linked") != linked or "tl_show" not in st.session_state):
        st.session_state["_tl_linked"] = linked
        st.session_state["tl_show"] = ids
    shown = [i for i in st.session_state.get("tl_show", []) if i in by_id]  # deleted runs drop out
    # default: the newest launch group (runs launched together stay overlaid), not just the newest run
    newest = [r.id for r in runs if runs[0].group and r.group == runs[0].group][:8] or [runs[0].id]
    st.session_state["tl_show"] = shown if "tl_show" in st.session_state else newest
    # labels must not change while a run progresses (a changed label would reset the widget)
    chosen = st.multiselect(
        "Runs to show (overlay)", list(by_id), key="tl_show", format_func=lambda i: f"{run_label(by_id[i])} · {i}"
    )
    if not chosen:
        return
    sel = [by_id[i] for i in chosen]
    for info in sel:
        with st.container(border=True):
            # "finished 66 steps" says the status already; a message is shown as typed (an error's `x**2`)
            msg = (info.message or "").splitlines()[0] if info.message else ""
            said = msg if msg.startswith(info.status) else f"{info.status} — {msg}" if msg else info.status
            st.markdown(f"**{run_label(info)}** · `{info.id}` · {plain_markdown(said)}")
            if info.status == "failed" and info.traceback:
                if hosted():  # server paths stay off visitors' screens; the CLI shows it to the admin
                    st.caption(f"The traceback is in the run store: `python -m sam_core.cli.runs show {info.id}`.")
                else:
                    with st.expander("Traceback of the failure"):
                        st.code(info.traceback, language="text")
            _actions(info)
    c1, c2, c3 = st.columns(3)
    smoothing = c1.slider(
        "Smoothing (EMA, as TensorBoard)",
        0.0,
        0.99,
        0.6,
        0.01,
        key="tl_smooth",
        help="Per-step series only (loss, γ_t, ‖g‖, batch accuracy); per-epoch and Hessian points are drawn raw.",
    )
    log_y = c2.toggle("Log y", key="tl_logy")
    log_x = c3.toggle("Log step axis", key="tl_logx")
    series = run_series(store, sel)
    g1, g2 = st.columns(2)
    g1.plotly_chart(
        tplots.metric_figure(series, "loss", "Training loss (mean over each logging window)", smoothing, log_x, log_y),
        key="tl_fig1",
    )
    g1.caption(tplots.CAPTIONS["loss"])
    g2.plotly_chart(tplots.gamma_figure(series, smoothing, log_y), key="tl_fig2")
    g2.caption(tplots.CAPTIONS["gamma"])
    g1, g2 = st.columns(2)
    if tplots.has_metric(series, "top_eig"):
        g1.plotly_chart(tplots.eigen_figure(series, log_y), key="tl_fig3")
        g1.caption(tplots.CAPTIONS["eigen"])
    else:  # an empty chart with a caption about edges that are not there confused people
        g1.info(tplots.EIGEN_OFF)
    g2.plotly_chart(
        tplots.metric_figure(series, "grad_norm", "‖g‖ (clean gradient)", smoothing, log_x, log_y), key="tl_fig6"
    )
    g2.caption(tplots.CAPTIONS["grad_norm"])
    # the per-epoch chart has two panels: the page's whole width (in a half column they were tiny)
    st.plotly_chart(tplots.epoch_figure(series, log_y), key="tl_fig4")
    st.caption(tplots.CAPTIONS["epoch"] + " Drawn raw: smoothing applies to per-step series only.")
    g1, g2 = st.columns(2)
    g1.plotly_chart(tplots.metric_figure(series, "accuracy", "Batch accuracy", smoothing, log_x, False), key="tl_fig7")
    g1.caption(tplots.CAPTIONS["accuracy"])
    if any("twin_distance" in s.df.columns for s in series):
        st.plotly_chart(
            tplots.metric_figure(series, "twin_distance", "Uniform stability: ‖w − w_twin‖", smoothing, log_x, log_y),
            key="tl_fig5",
        )
    for info in sel:
        dens = store.get_artifact(info.id, "spectral_density")
        top = store.get_artifact(info.id, "top_eigenvalues")
        if dens or top:
            st.plotly_chart(
                tplots.spectrum_figure(dens, top, run_label(info), series[sel.index(info)].color),
                key=f"tl_spec_{info.id}",
            )


try:
    monitor()
except Exception as exc:  # a corrupt store or an unexpected value must not crash the page
    show_error(exc, "Cannot show the runs")
