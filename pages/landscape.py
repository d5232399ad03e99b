"""Landscape lab: race the SAM variants on 2-D functions, and sweep learning rate and ρ.

Controls in the sidebar (function, variants and their hyperparameters, lr, steps, noise, start);
three tabs: the race (contour + animation or 3-D surface, linked metric plots), sweeps (success vs
lr with the GD bound, lr × ρ / lr × λ maps) and basins of attraction. Every trajectory comes from
``sam_core.simulate``; races are cached per configuration, sweeps run as background jobs.
"""

from ui.common import page_guard

page_guard()  # deep links on a fresh server run inside app.py

import numpy as np
import streamlit as st

from sam_core import VARIANTS
from sam_core.cli import parse_bool
from sam_core.landscape.lr_sweep import (
    BASIN_SETUP,
    Success,
    SweepSetup,
    iter_basin_maps,
    iter_prewarm,
    iter_sweep_grid,
    iter_sweep_lr,
    parse_range,
    use_compile,
)
from sam_core.landscape.race import race_steps, tracks_frame
from sam_core.plots.landscape import (
    MODEBAR_CONFIG,
    basin_figure,
    figure_html,
    heatmap_figure,
    sweep_figure,
)
from ui import common as uc
from ui import landscape_controls as lc
from ui.jobs import Job, job_panel, link_autorun, start_job
from ui.presets import preset_banner

# Work one click may ask for (trajectory-steps): ~10-20 s here eager (autograd functions), ~2 s compiled
# (closed-form ones, sam_core.landscape.lr_sweep.use_compile); keeps a shared server usable for everyone.
MAX_WORK = 1e9
MAX_RHO_PANELS = 24  # ρ values (one panel each) a sweep may ask for: checked before the list is built
MAX_RHO_TEXT = 500  # characters of the ρ-values box

st.title("Landscape lab")
preset_banner("pages/landscape.py")  # opened by a Home preset: what to look for, fidelity switch
st.caption("Race the variants on 2-D test functions; sweep the learning rate and ρ over thousands of starts.")

sb = st.sidebar
sb.header("Landscape")
spec, L, fn_error = lc.function_controls(sb)
if fn_error:
    st.error(fn_error)
fn = spec.name
sb.header("Variants")
variants, hp = lc.variant_controls(sb, L)
sb.header("Run")
run = lc.run_controls(sb, L, fn)

sb.header("View")
# the race's view controls sit in the sidebar: in a row above the map they clipped the "3-D surface" button
# at 1024 px and pushed the map below the fold
view = (
    sb.segmented_control(
        "Race view",
        ["contour", "3-D surface"],
        default=uc.qp_get("view", "contour", options=("contour", "3-D surface")),
        key="ls_view",
    )
    or "contour"
)
show_ball = sb.toggle(
    "ρ-ball and ascent point", value=uc.qp_get("ball", True, parse_bool, expect="1 or 0"), key="ls_ball"
)
animate = sb.toggle(
    "Animation (play / pause)", value=uc.qp_get("anim", True, parse_bool, expect="1 or 0"), key="ls_anim"
)

# ---------------------------------------------------------------------------------------- header
head = st.columns([3, 2], vertical_alignment="center")
head[0].latex(L.latex)
facts = [
    f"domain x ∈ [{L.domain[0][0]:g}, {L.domain[0][1]:g}], y ∈ [{L.domain[1][0]:g}, {L.domain[1][1]:g}]",
    f"{len(L.minima)} minim{'um' if len(L.minima) == 1 else 'a'}, {len(L.saddles)} saddle(s)",
]
if L.gd_bounds:
    facts.append("GD bound 2/λ_max = " + ", ".join(f"{b:.4g}" for b in L.gd_bounds))
head[1].caption(" · ".join(facts))
if L.note:  # in the sidebar, under the function it describes: here it pushed the race below the fold
    sb.caption(L.note)

TABS = {"race": "Race", "sweeps": "Sweeps", "basins": "Basins"}
opened_tab = uc.qp_get("tab", "race", options=tuple(TABS))  # ?tab=sweeps: a preset opens on its figure
# the tabs keep their state (a switch reruns the page): the URL then says which tab is open, so a shared link
# opens on it (it opened on Race whatever tab the person sharing it was looking at)
tab_race, tab_sweep, tab_basin = st.tabs(
    list(TABS.values()), default=uc.kept_state("ls_tab", lambda: TABS[opened_tab]), key="ls_tab", on_change="rerun"
)
opened_tab = {label: k for k, label in TABS.items()}.get(st.session_state.get("ls_tab"), opened_tab)
# The tab the page opens on runs first: opened on Sweeps (the Fig. 2 card), its job starts and its picture
# goes out before the race map, whose 0.8 MB figure would make the browser evaluate plotly.js first.


# ---------------------------------------------------------------------------------------- race
def _race_tab() -> None:
    tracks = []
    with tab_race:
        if not variants:
            st.info("Pick at least one variant in the sidebar.")
        try:
            with st.spinner("Simulating…"):
                for v in variants:
                    n = race_steps(v, run["steps"], run["equal_evals"])
                    tracks.append(
                        lc.cached_track(
                            spec,
                            v,
                            lc.hp_items(hp.get(v, {})),
                            run["start"],
                            run["lr"],
                            n,
                            run["momentum"],
                            run["noise"],
                            run["seed"],
                            lr_grid=run["lr_grid"],
                        )
                    )
        except ValueError as err:
            uc.show_error(err, "Cannot run the race")
            tracks = []
        max_steps = max((t.steps for t in tracks), default=0)
        # the frame shown is read before the map is drawn, its input sits under the map
        step_key = f"ls_frame_{max_steps}"
        step = int(min(max(st.session_state.get(step_key, max_steps), 0), max_steps))
        x_axis = "evals" if run["equal_evals"] else "step"
        # map and metrics side by side on a wide window; below 1200 px the metrics go under the map (CSS in
        # lc.RACE_CSS), which then takes the tab's width: beside the metrics it was a thumbnail at 1024 px
        map_h = lc.MAP_HEIGHT
        st.html(lc.RACE_CSS)
        left, right = st.container(key="ls_race").columns([3, 2])
        with left:
            try:
                # the view drawn when this page last ran in the session: a chart new on the page (the view
                # switched, or the page came back with the other view) gets its picture first
                switched = st.session_state.get("_ls_drawn_view", view) != view
                st.session_state["_ls_drawn_view"] = view
                if view == "3-D surface":
                    fig = lc.cached_figure("surface", spec, tracks, height=map_h)
                    uc.chart_with_preview(
                        fig,
                        config=MODEBAR_CONFIG,
                        key="ls_surface",
                        box="ls_map",
                        preview_width=560,
                        fresh=switched,
                        inplace=True,
                    )
                else:
                    fig = lc.cached_figure(
                        "contour",
                        spec,
                        tracks,
                        step=step,
                        show_ball=show_ball,
                        animate=animate,
                        x_axis=x_axis,
                        height=map_h,
                    )
                    uc.chart_with_preview(
                        fig,
                        config=MODEBAR_CONFIG,
                        key="ls_contour",
                        box="ls_map",
                        preview_width=560,  # the map's column on a laptop screen
                        fresh=switched,
                        inplace=True,
                        on_select=lambda sel: lc.on_plot_select(fn, sel),
                    )
                    st.caption(
                        "Click a point of the map (or draw a box) to start there. Stars: minima; red ×: saddles. "
                        "Camera icon: PNG/SVG download. 3-D surface, ρ-ball and animation: the sidebar's **View**."
                    )
            except Exception as err:  # a figure problem must not take the page down
                uc.show_error(err, "Cannot draw the map")
                fig = None
            st.number_input(
                "Show step (◀ ▶ to step through)",
                0,
                max(max_steps, 0),
                max_steps,
                1,
                key=step_key,
                width=260,
                help="The frame drawn: the iterate, its ascent point w+e and the ρ-ball at that "
                "step. Play/pause and the slider under the plot animate it in the browser.",
            )
        with right:
            if tracks:
                f_star = float(L.minima_values.min()) if len(L.minima) else None
                mfig = lc.cached_figure(
                    "metrics",
                    None,
                    tracks,
                    x_axis=x_axis,
                    current=step if x_axis == "step" else None,
                    f_star=f_star,
                    height=max(map_h - 40, 420),
                )
                uc.chart_with_preview(mfig, config=MODEBAR_CONFIG, key="ls_metrics", preview_width=460, inplace=True)
                st.caption(lc.METRIC_CAPTION if f_star is not None else lc.METRIC_CAPTION_NO_MIN)
                if mfig.layout.meta and mfig.layout.meta.get("clipped"):
                    st.caption("Axes clipped: " + "; ".join(mfig.layout.meta["clipped"]) + ".")
        if tracks:
            diverged = [t for t in tracks if t.diverged_step is not None]
            if diverged:  # one line for all of them (seven stacked boxes pushed the table off the screen)
                st.warning(
                    "Diverged (inf/NaN; each path stops at its last finite point): "
                    + ", ".join(f"{t.name} at step {t.diverged_step}" for t in diverged)
                    + "."
                )
            st.dataframe(lc.race_summary(tracks, L), hide_index=True, width="stretch")
            dl = st.columns(3)
            dl[0].download_button(
                "Trajectories (CSV)",
                lambda: tracks_frame(tracks).to_csv(index=False),
                file_name=f"race_{fn}.csv",
                mime="text/csv",
                key="ls_dl_csv",
                on_click="ignore",
            )
            if fig is not None:
                dl[1].download_button(
                    "Figure (HTML)",
                    lambda: figure_html(fig),
                    file_name=f"race_{fn}.html",
                    mime="text/html",
                    key="ls_dl_html",
                    on_click="ignore",
                )
            dl[2].caption("PNG/SVG: camera icon on each plot.")


if opened_tab == "race":
    _race_tab()

# ---------------------------------------------------------------------------------------- sweeps
with tab_sweep:
    if not len(L.minima):
        st.info("This function has no minimum on its domain, so success is undefined: pick one with a minimum.")
    else:
        st.markdown(
            "**Success** (adjust it: normalised SAM keeps bouncing around a minimum at a distance that grows "
            "with η, so a tiny radius on the final iterate alone makes it look as if it always failed)"
        )
        c = st.columns(4)
        tol = c[0].number_input(
            "tolerance radius",
            1e-4,
            10.0,
            uc.qp_get("tol", 0.2, float, low=1e-4, high=10.0),
            format="%.3g",
            key="ls_tol",
        )
        last_k = int(
            c[1].number_input(
                "average of last k iterates (1 = final)",
                1,
                1000,
                uc.qp_get("lastk", 1, int, low=1, high=1000),
                key="ls_lastk",
            )
        )
        target = c[2].selectbox(
            "target",
            ["global", "any"],
            index=0 if uc.qp_get("target", "global", options=("global", "any")) == "global" else 1,
            key="ls_target",
            help="global: the lowest minima only; any: any minimum",
        )
        mode_opts = ["saddle", "domain", "point"]
        mode = c[3].selectbox(
            "starts",
            mode_opts,
            key="ls_mode",
            index=mode_opts.index(uc.qp_get("mode", "saddle", options=mode_opts)),
            help="saddle: Gaussian around the first saddle; domain: uniform; point: around the start point",
        )
        c = st.columns(4)
        lr_lo = c[0].number_input(
            "lr from", 1e-5, 10.0, uc.qp_get("swlo", 0.01, float, low=1e-5, high=10.0), format="%.3g", key="ls_swlo"
        )
        lr_hi = c[1].number_input(
            "lr to", 1e-5, 10.0, uc.qp_get("swhi", 1.0, float, low=1e-5, high=10.0), format="%.3g", key="ls_swhi"
        )
        n_lr = int(
            c[2].number_input(
                "number of lrs (log-spaced)", 2, 40, uc.qp_get("swn", 20, int, low=2, high=40), key="ls_swn"
            )
        )
        spread = c[3].number_input(
            "start spread σ",
            0.0,
            10.0,
            uc.qp_get("spread", 0.1, float, low=0.0, high=10.0),
            format="%.3g",
            key="ls_spread",
        )
        c = st.columns(4)
        n_starts = int(
            c[0].number_input(
                "starts per lr", 1, 20000, uc.qp_get("swstarts", 500, int, low=1, high=20000), key="ls_swstarts"
            )
        )
        sw_steps = int(
            c[1].number_input("steps", 1, 5000, uc.qp_get("swsteps", 1000, int, low=1, high=5000), key="ls_swsteps")
        )
        metric = c[2].selectbox("plot", ["success_rate", "diverged_rate", "median_distance"], key="ls_metric")
        rho_text = st.text_input(
            "ρ values, one panel each (comma list; empty: each variant's own ρ from the sidebar)",
            value=uc.qp_get("swrhos", "", max_len=MAX_RHO_TEXT),
            key="ls_swrhos",
            max_chars=MAX_RHO_TEXT,
            placeholder="e.g. 0.05, 0.1, 0.2",
        )
        rhos = None
        if rho_text.strip():
            try:
                rhos = [float(r) for r in parse_range(rho_text, log=False, max_count=MAX_RHO_PANELS, name="ρ values")]
            except ValueError as err:
                uc.show_error(err)  # names the field and the cap
        success = Success(tol=float(tol), last_k=min(last_k, sw_steps), target=target)
        st.caption(
            success.describe()
            + ". Same starts for every lr"
            + ("; equal gradient evaluations: SAM-type rules get steps/2." if run["equal_evals"] else ".")
        )
        lrs = np.geomspace(min(lr_lo, lr_hi), max(lr_lo, lr_hi), n_lr)
        try:  # checked once, here: the jobs take it as it is
            setup = SweepSetup(
                starts=n_starts,
                steps=sw_steps,
                success=success,
                start_mode=mode,
                spread=float(spread),
                center=run["start"] if mode == "point" else None,
                momentum=run["momentum"],
                noise=run["noise"],
                seed=run["seed"],
                equal_evals=run["equal_evals"],
            )
        except ValueError as err:
            uc.show_error(err, "Cannot run a sweep with these settings")
            setup = None
        sweep_work = len(variants) * len(rhos or [1]) * n_lr * n_starts * sw_steps  # trajectory-steps
        too_big = sweep_work > MAX_WORK
        if too_big:  # said as the numbers are typed, not after a click that then does nothing
            per_start = max(1, len(variants) * len(rhos or [1]) * n_lr * sw_steps)
            st.error(
                f"This sweep asks for {sweep_work:.2g} trajectory-steps (variants × ρ panels × lrs × starts × "
                f"steps); one click may ask for at most {MAX_WORK:.0e}. Use fewer starts, lrs or steps "
                f"(at these settings: at most {int(MAX_WORK // per_start):,} starts per lr)."
            )
        if use_compile(L, n_lr * n_starts * sw_steps):  # big enough to compile: the worker does it while the user looks
            warm_key = repr(
                (
                    spec,
                    sorted(variants),
                    sorted((k, sorted(v.items())) for k, v in hp.items()),
                    run["momentum"],
                    run["noise"] > 0,
                )
            )
            if st.session_state.get("ls_prewarmed") != warm_key:  # never stopped or replaced: it is idempotent,
                st.session_state["ls_prewarmed"] = warm_key  # and a stopped compile would be work thrown away
                st.session_state["job:ls_prewarm"] = Job.from_generator(
                    iter_prewarm, L, list(variants), hp, name="prewarm", momentum=run["momentum"], noise=run["noise"]
                ).start()
        sweep_clicked = c[3].button(
            "Run sweep", type="primary", key="ls_run_sweep", disabled=not variants or setup is None or too_big
        )
        autosweep = link_autorun("ls_sweep")  # a Home preset's link
        if (sweep_clicked or autosweep) and variants and setup is not None:
            if not too_big:  # (a link asking for more is refused: the message above says why)
                start_job(
                    "ls_sweep",
                    Job.from_generator(
                        iter_sweep_lr,
                        L,
                        list(variants),
                        lrs,
                        hp,
                        setup,
                        rhos=rhos or None,
                        name="sweep",
                        pass_stop="stop_event",
                    ),
                )

        def _draw_sweep(df, state):
            uc.chart_with_preview(
                sweep_figure(df, L.gd_bounds, metric=metric),
                config=MODEBAR_CONFIG,
                key="ls_sweep_fig",
                preview_width=900,
                live=True,
            )
            st.dataframe(df, hide_index=True, width="stretch")
            st.download_button(
                "Sweep table (CSV)",
                df.to_csv(index=False),
                file_name=f"sweep_{fn}.csv",
                mime="text/csv",
                key="ls_dl_sweep",
                on_click="ignore",
            )

        job_panel(
            "ls_sweep",
            _draw_sweep,
            label="Sweeping",
            idle_text="Fewer starts, lrs or steps, then Run sweep."
            if too_big
            else "Set the range and press Run sweep.",
        )

        st.divider()
        st.markdown("**lr × ρ map** (lr × λ for Unified SAM)")
        two_pass = [v for v in variants if "rho" in VARIANTS[v].hparams]
        if not two_pass:
            st.info("Pick a variant with ρ (any but SGD) for a map.")
        else:
            c = st.columns(5)
            hv = c[0].selectbox("variant", two_pass, format_func=uc.variant_label, key="ls_hm_variant")
            params = list(VARIANTS[hv].map_params)
            param = c[1].selectbox("against", params, key="ls_hm_param")
            lo_d, hi_d = (0.01, 1.0) if param == "rho" else (0.0, 1.0)
            p_lo = c[2].number_input(f"{param} from", 0.0, 10.0, lo_d, format="%.3g", key=f"ls_hm_lo_{param}")
            p_hi = c[3].number_input(f"{param} to", 0.0, 10.0, hi_d, format="%.3g", key=f"ls_hm_hi_{param}")
            n_p = int(c[4].number_input("values", 2, 30, 10, key="ls_hm_n"))
            if param == "rho" and p_lo > 0:
                vals = np.geomspace(min(p_lo, p_hi), max(p_lo, p_hi), n_p)
            else:
                vals = np.linspace(min(p_lo, p_hi), min(max(p_lo, p_hi), 1.0 if param == "lam" else 10.0), n_p)
            c = st.columns(3)
            hm_starts = int(c[0].number_input("starts per cell", 1, 5000, 100, key="ls_hm_starts"))
            hm_metric = c[1].selectbox(
                "colour", ["success_rate", "median_distance", "diverged_rate"], key="ls_hm_metric"
            )
            map_work = len(lrs) * len(vals) * hm_starts * sw_steps
            if c[2].button("Run map", type="primary", key="ls_run_hm", disabled=setup is None):
                hp_v = {k: v for k, v in hp.get(hv, {}).items() if k != param}

                if map_work > MAX_WORK:
                    st.error(
                        f"This map asks for {map_work:.2g} trajectory-steps (lrs × values × starts × steps); "
                        f"one click may ask for at most {MAX_WORK:.0e}. Use fewer starts, values or steps."
                    )
                else:
                    start_job(
                        "ls_hm",
                        Job.from_generator(
                            iter_sweep_grid,
                            L,
                            hv,
                            lrs,
                            param,
                            vals,
                            hp_v,
                            setup.replace(starts=hm_starts),
                            name="map",
                            pass_stop="stop_event",
                        ),
                    )

            def _draw_map(df, state):
                p = [
                    c
                    for c in df.columns
                    if c not in ("variant", "lr", "success_rate", "diverged_rate", "median_distance")
                ][0]
                st.plotly_chart(
                    heatmap_figure(
                        df,
                        p,
                        metric=hm_metric,
                        gd_bound=L.gd_bound,
                        title=f"{uc.variant_label(df['variant'].iloc[0])}: {hm_metric}",
                    ),
                    config=MODEBAR_CONFIG,
                    key="ls_hm_fig",
                )
                st.download_button(
                    "Map table (CSV)",
                    df.to_csv(index=False),
                    file_name=f"map_{fn}.csv",
                    mime="text/csv",
                    key="ls_dl_hm",
                    on_click="ignore",
                )

            job_panel("ls_hm", _draw_map, label="Mapping", idle_text="Press Run map.")

# ---------------------------------------------------------------------------------------- basins
with tab_basin:
    if not len(L.minima):
        st.info("This function has no minimum on its domain: no basins to draw.")
    else:
        st.caption(
            f"Which minimum each start of a grid reaches (η = {run['lr']:.3g}, the race's settings; "
            "grey: near no minimum, black: diverged)."
        )
        c = st.columns(4)
        n_grid = int(c[0].number_input("grid size", 10, 200, 60, key="ls_bs_n"))
        bs_steps = int(c[1].number_input("steps", 1, 5000, 500, key="ls_bs_steps"))
        bs_tol = c[2].number_input("tolerance radius", 1e-4, 10.0, 0.2, format="%.3g", key="ls_bs_tol")
        if c[3].button("Run basins", type="primary", key="ls_run_bs", disabled=not variants):
            try:
                bs_setup = BASIN_SETUP.replace(
                    steps=bs_steps,
                    success=Success(tol=float(bs_tol), target="any"),
                    momentum=run["momentum"],
                    noise=run["noise"],
                    seed=run["seed"],
                )
            except ValueError as err:
                uc.show_error(err, "Cannot map the basins with these settings")
            else:
                start_job(
                    "ls_basin",
                    Job.from_generator(
                        iter_basin_maps,
                        L,
                        list(variants),
                        run["lr"],
                        hp,
                        bs_setup,
                        n=n_grid,
                        pass_stop="stop_event",
                        name="basins",
                    ),
                )

        def _draw_basins(maps, state):
            st.plotly_chart(basin_figure(maps, L), config=MODEBAR_CONFIG, key="ls_basin_fig")
            rows = []
            for m in maps:
                fr = m.fractions()
                rows.append(
                    {
                        "variant": uc.variant_label(m.variant),
                        "diverged": fr.get(-2, 0.0),
                        "near no minimum": fr.get(-1, 0.0),
                        **{
                            f"min {i} ({p[0]:.3g}, {p[1]:.3g})": fr.get(i, 0.0)
                            for i, p in enumerate(L.minima)
                            if len(L.minima) <= 12
                        },
                    }
                )
            st.dataframe(rows, hide_index=True)

        job_panel("ls_basin", _draw_basins, label="Mapping basins", idle_text="Press Run basins.")

if opened_tab != "race":
    _race_tab()

# ---------------------------------------------------------------------------------------- URL
url = {
    "fn": fn,
    "variants": variants,
    "lr": run["lr"],
    "mom": run["momentum"],
    "steps": run["steps"],
    "noise": run["noise"],
    "seed": run["seed"],
    "eq": int(run["equal_evals"]),
    "x0": run["start"][0],
    "y0": run["start"][1],
    "view": view,
    "ball": int(show_ball),
    "anim": int(animate),
}
url.update({k: v for k, v in spec.params})
if fn == "custom":
    url["expr"] = spec.expr
    url["dom"] = [spec.domain[0][0], spec.domain[0][1], spec.domain[1][0], spec.domain[1][1]]
for v, vals in hp.items():
    for k, val in vals.items():
        url[f"{v}.{k}"] = int(val) if isinstance(val, bool) else val
for k in ("tol", "lastk", "target", "mode", "swlo", "swhi", "swn", "spread", "swstarts", "swsteps", "swrhos"):
    key = f"ls_{k}"
    if key in st.session_state:
        url[k] = st.session_state[key]
for k in ("preset", "fidelity"):  # a Home preset's banner survives the page rewriting its URL
    if st.query_params.get(k):
        url[k] = st.query_params[k]
if opened_tab != "race":  # and so does the open tab (Race, the default, is left out of the URL)
    url["tab"] = opened_tab
lc.write_url(url)
uc.run_held_charts()
