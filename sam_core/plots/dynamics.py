"""Figures of the Dynamics lab (saddle escape, quadratics, edge of stability): pure plotly builders.

Every function takes results from :mod:`sam_core.dynamics` (or plain arrays) and returns a
``go.Figure``; nothing here computes an experiment or imports streamlit.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sam_core.plots.style import legend_below, variant_color, variant_dash
from sam_core.registry import VARIANTS

__all__ = [
    "eos_figure",
    "escape_time_figure",
    "lam_lr_heatmap",
    "relative_error_figure",
    "saddle_loss_figure",
    "saddle_metric_figure",
    "sam_edge_ratio_figure",
    "sampling_figure",
]

_DASHES = ["solid", "dash", "dot", "dashdot", "longdash", "longdashdot"]
_SEQ = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666"]


def _label(v: str) -> str:
    return VARIANTS[v].label if v in VARIANTS else v


def _has_rho(v: str) -> bool:
    """The variant has an ascent radius ρ (a name outside the registry is taken to have one)."""
    return VARIANTS[v].has_rho if v in VARIANTS else True


def _edge_exact(v: str) -> bool:
    return v in VARIANTS and VARIANTS[v].edge_exact


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _band(fig, x, lo, hi, color, group, row=None, col=None):
    x = np.asarray(x)
    ok = np.isfinite(lo) & np.isfinite(hi)
    if not ok.any():
        return
    xs = np.concatenate([x[ok], x[ok][::-1]])
    ys = np.concatenate([hi[ok], lo[ok][::-1]])
    kw = dict(row=row, col=col) if row is not None else {}
    fig.add_trace(
        go.Scatter(
            x=xs,
            y=ys,
            fill="toself",
            fillcolor=_rgba(color, 0.15),
            line=dict(width=0),
            hoverinfo="skip",
            showlegend=False,
            legendgroup=group,
        ),
        **kw,
    )


def _mean_band(a: np.ndarray, band: str):
    """Mean over the seed axis (0) and a band: ±1 std clipped to the seeds' range, or min–max."""
    with _quiet():
        mean = np.nanmean(a, axis=0)
        lo, hi = np.nanmin(a, axis=0), np.nanmax(a, axis=0)
        if band == "std":
            sd = np.nanstd(a, axis=0)
            lo, hi = np.maximum(mean - sd, lo), np.minimum(mean + sd, hi)
    return mean, lo, hi


@contextmanager
def _quiet():
    """Silence numpy's 'mean of empty slice' warnings: all-NaN columns are expected (not yet run)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# ====================================================================================== saddle
def saddle_loss_figure(
    res,
    band: str = "std",
    log_y: bool = True,
    escape_frac: float | None = 0.5,
    title: str = "Loss vs epoch (mean over seeds, band: ±1 std)",
) -> go.Figure:
    """Mean loss ± band over seeds for every variant and ρ (colour = variant, dash = ρ)."""
    fig = go.Figure()
    n = res.epochs_done + 1
    ep = np.arange(n)
    all_rhos = sorted({r for v in res.variants for r in res.rhos[v] if _has_rho(v) or len(res.rhos[v]) > 1})
    for v in res.variants:
        color = variant_color(v)
        for i, rho in enumerate(res.rhos[v]):
            a = res.loss[v][i, :, :n]  # (seeds, epochs)
            mean, lo, hi = _mean_band(a, band)
            group = f"{v}-{rho}"
            if a.shape[0] > 1:
                _band(fig, ep, lo, hi, color, group)
            has_rho = "rho" in VARIANTS.get(v, VARIANTS["sam"]).hparams
            dash = _DASHES[all_rhos.index(rho) % len(_DASHES)] if has_rho and rho in all_rhos else "solid"
            name = f"{_label(v)} ρ={rho:g}" if has_rho else _label(v)
            fig.add_trace(
                go.Scatter(
                    x=ep,
                    y=mean,
                    mode="lines",
                    name=name,
                    legendgroup=group,
                    line=dict(color=color, dash=dash, width=2),
                    hovertemplate=f"{name}<br>epoch %{{x}}<br>loss %{{y:.4g}}<extra></extra>",
                )
            )
    if escape_frac:
        l0 = [np.nanmean(res.loss[v][..., 0]) for v in res.variants]
        if l0 and np.isfinite(l0).any():
            # a trace, not add_hline + annotation: on a log axis the annotation's y is read as log10(y) and
            # stretched the axis to 10^y
            thr = escape_frac * float(np.nanmean(l0))
            fig.add_trace(
                go.Scatter(
                    x=[0, res.config.epochs],
                    y=[thr, thr],
                    mode="lines",
                    name=f"escape: {escape_frac:g}·L(0)",
                    line=dict(color="grey", dash="dot", width=1),
                    hoverinfo="skip",
                )
            )
    fig.update_layout(xaxis_title="epoch", yaxis_title="loss", hovermode="closest", xaxis_range=[0, res.config.epochs])
    legend_below(fig, title)
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def saddle_metric_figure(res, metric: str = "w_norm", band: str = "std") -> go.Figure:
    """‖W‖ (``w_norm``) or γ_t (``gamma``) per epoch, mean ± band over seeds."""
    names = {"w_norm": ("‖W‖ = ‖(W₁, W₂)‖", "‖W‖"), "gamma": ("γ_t = ‖g‖/‖g_adv‖ (epoch mean)", "γ_t")}
    if metric not in names:
        raise ValueError(f"metric must be one of {list(names)}, got {metric!r}")
    data = getattr(res, metric)
    fig = go.Figure()
    n = res.epochs_done + 1
    ep = np.arange(n)
    for v in res.variants:
        if metric == "gamma" and not _has_rho(v):
            continue
        color = variant_color(v)
        for i, rho in enumerate(res.rhos[v]):
            mean, lo, hi = _mean_band(data[v][i, :, :n], band)
            name = f"{_label(v)} ρ={rho:g}" if _has_rho(v) else _label(v)
            group = f"{v}-{rho}"
            if data[v].shape[1] > 1:
                _band(fig, ep, lo, hi, color, group)
            fig.add_trace(
                go.Scatter(
                    x=ep,
                    y=mean,
                    mode="lines",
                    name=name,
                    legendgroup=group,
                    line=dict(color=color, dash=_DASHES[i % len(_DASHES)]),
                )
            )
    title, ylab = names[metric]
    fig.update_layout(xaxis_title="epoch", yaxis_title=ylab, xaxis_range=[0, res.config.epochs])
    return legend_below(fig, title)


def escape_time_figure(res, frac: float = 0.5) -> go.Figure:
    """Escape epoch against ρ per variant (mean ± std over the seeds that escaped).

    Runs that never escaped are drawn as open triangles at the top of the axis ("not within N epochs").
    """
    fig = go.Figure()
    esc = res.escape_epochs(frac)
    top = res.config.epochs
    for v in res.variants:
        color = variant_color(v)
        rhos = np.asarray(res.rhos[v], dtype=float)
        e = esc[v]  # (n_rho, seeds)
        ok = np.isfinite(e)
        with _quiet():
            mean = np.where(ok.any(1), np.nanmean(e, 1), np.nan)
            sd = np.where(ok.sum(1) > 1, np.nanstd(e, 1), 0.0)
        x = rhos if _has_rho(v) else None
        if not _has_rho(v):
            # no ρ: a horizontal reference line
            if np.isfinite(mean).any():
                fig.add_hline(
                    y=float(mean[0]),
                    line=dict(color=color, dash="dot"),
                    annotation_text=f"{_label(v)}: {mean[0]:.0f}",
                    annotation_position="top left",
                )
            continue
        fig.add_trace(
            go.Scatter(
                x=x,
                y=mean,
                mode="lines+markers",
                name=_label(v),
                error_y=dict(type="data", array=sd, visible=True),
                line=dict(color=color, dash=variant_dash(v)),
                marker=dict(size=9),
                customdata=np.stack([ok.sum(1), np.full(len(rhos), e.shape[1])], 1),
                hovertemplate="ρ=%{x:g}<br>escape epoch %{y:.1f}<br>"
                "escaped %{customdata[0]}/%{customdata[1]}<extra></extra>",
            )
        )
        never = ~ok.any(1)
        if never.any():
            fig.add_trace(
                go.Scatter(
                    x=rhos[never],
                    y=np.full(never.sum(), top),
                    mode="markers",
                    name=f"{_label(v)}: not within {top} epochs",
                    showlegend=True,
                    marker=dict(symbol="triangle-up-open", size=12, color=color),
                )
            )
    fig.update_layout(xaxis_title="ρ", yaxis_title="escape epoch", xaxis_type="log", yaxis_range=[0, top * 1.05])
    return legend_below(fig, f"Escape time: first epoch with L < {frac:g}·L(0)")


# ==================================================================================== quadratics
def _curve_style(curves):
    """Colour per variant; Unified SAM's λ values get their own colours from a sequential palette."""
    styles, k = [], 0
    for c in curves:
        if sum(x.variant == c.variant for x in curves) > 1:  # one variant at several λ (Unified SAM)
            styles.append((_SEQ[k % len(_SEQ)], "dashdot"))
            k += 1
        else:
            styles.append((variant_color(c.variant), variant_dash(c.variant)))
    return styles


def relative_error_figure(
    curves: Sequence, x: str = "step", title: str | None = None, colors: Sequence[str] | None = None
) -> go.Figure:
    """``(f(w_t) − f*)/(f(w_0) − f*)`` on a log scale: median over runs, band = min–max."""
    if x not in ("step", "grad_evals"):
        raise ValueError(f"x must be 'step' or 'grad_evals', got {x!r}")
    fig = go.Figure()
    styles = _curve_style(curves)
    for j, c in enumerate(curves):
        color, dash = styles[j]
        if colors is not None:
            color = colors[j % len(colors)]
        xs = c.steps if x == "step" else c.grad_evals
        a = np.where(c.rel_error > 0, c.rel_error, np.nan).T  # (R, K)
        with _quiet():
            med = np.nanmedian(a, axis=0)
            lo, hi = np.nanmin(a, axis=0), np.nanmax(a, axis=0)
        if a.shape[0] > 1:
            _band(fig, xs, lo, hi, color, c.label)
        div = int((c.diverged_step >= 0).sum())
        name = c.label + (f" ({div}/{len(c.diverged_step)} diverged)" if div else "")
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=med,
                mode="lines",
                name=name,
                legendgroup=c.label,
                line=dict(color=color, dash=dash, width=2),
                hovertemplate=f"{c.label}<br>%{{x}}<br>rel. error %{{y:.3e}}<extra></extra>",
            )
        )
    fig.update_layout(
        xaxis_title="step" if x == "step" else "per-example gradient evaluations",
        yaxis_title="relative error",
        yaxis_type="log",
    )
    return legend_below(fig, title or "Relative error (f(w_t) − f*)/(f(w_0) − f*)")


def lam_lr_heatmap(heatmap: dict) -> go.Figure:
    """Final relative error (log10, median over seeds) over λ × lr; ★ marks the theoretical step size."""
    lams, lrs, final = np.asarray(heatmap["lams"]), np.asarray(heatmap["lrs"]), np.asarray(heatmap["final"])
    with np.errstate(all="ignore"):
        z = np.log10(np.where(final > 0, final, np.nan))
    z = np.where(np.isfinite(final), z, np.nan)
    text = np.where(np.isfinite(final), np.vectorize(lambda v: f"{v:.1e}")(final), "diverged")
    xlab = [f"{v:.3g}" for v in lrs]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=xlab,
            y=[f"{v:g}" for v in lams],
            colorscale="Viridis_r",
            colorbar=dict(title="log₁₀ rel. err"),
            text=text,
            hovertemplate="λ=%{y}<br>lr=%{x}<br>final rel. error %{text}<extra></extra>",
        )
    )
    div = ~np.isfinite(final)
    if div.any():
        ii, jj = np.nonzero(div)
        fig.add_trace(
            go.Scatter(
                x=[xlab[j] for j in jj],
                y=[f"{lams[i]:g}" for i in ii],
                mode="markers",
                marker=dict(symbol="x", size=12, color="crimson"),
                name="diverged",
            )
        )
    th = heatmap.get("theory_lr")
    if th is not None and len(lrs):
        j = int(np.argmin(np.abs(np.log(lrs) - np.log(th))))
        fig.add_trace(
            go.Scatter(
                x=[xlab[j]] * len(lams),
                y=[f"{v:g}" for v in lams],
                mode="markers",
                marker=dict(symbol="star", size=13, color="white", line=dict(color="black", width=1)),
                name=f"theory γ = {th:.3g}",
            )
        )
    fig.update_layout(xaxis_title="learning rate γ", yaxis_title="λ")
    return legend_below(fig, f"Unified SAM: final relative error after {heatmap.get('steps', '?')} steps")


def sampling_figure(curves: Sequence, theory: Sequence[dict] | None = None) -> go.Figure:
    """Sampling strategies at equal numbers of per-example gradient evaluations (legend: their γ, ρ)."""
    named = []
    for j, c in enumerate(curves):
        t = theory[j] if theory and j < len(theory) else None
        if t is not None:
            c = _renamed(c, f"{c.label}: γ={t['gamma']:.2g}, ρ={t['rho']:.2g}")
        named.append(c)
    fig = relative_error_figure(
        named, x="grad_evals", colors=_SEQ, title="Sampling strategies at equal gradient evaluations (theoretical γ, ρ)"
    )
    return fig


def _renamed(c, label):
    from dataclasses import replace

    return replace(c, label=label)


# ============================================================================ edge of stability
def eos_figure(res, show_sam_edge: bool = True) -> go.Figure:
    """Three panels: top Hessian eigenvalue vs 2/η and the SAM edge; training loss; alignment of g."""
    fig = make_subplots(
        rows=3,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.07,
        row_heights=[0.5, 0.25, 0.25],
        subplot_titles=(
            "top Hessian eigenvalue λ_max (dashed: 2/η; dotted: SAM edge from ‖g‖)",
            "training loss",
            "alignment |⟨g, v_max⟩| / ‖g‖",
        ),
    )
    for a in fig.layout.annotations:  # subplot titles at the panels' left edge: they never reach the modebar
        a.update(x=0.0, xanchor="left", font=dict(size=13))
    gd = res.gd_edge
    fig.add_trace(
        go.Scatter(
            x=[0, res.config.steps],
            y=[gd, gd],
            mode="lines",
            name=f"GD edge (2+2β)/η = {gd:.3g}",
            line=dict(color="black", dash="dash", width=1.5),
        ),
        row=1,
        col=1,
    )
    for v in res.variants:
        color = variant_color(v)
        fig.add_trace(
            go.Scatter(
                x=res.eig_steps[v],
                y=res.top_eig[v],
                mode="lines+markers",
                name=_label(v),
                legendgroup=v,
                line=dict(color=color),
                marker=dict(size=5),
            ),
            row=1,
            col=1,
        )
        if show_sam_edge and _has_rho(v) and np.isfinite(res.sam_edge[v]).any():
            heur = "" if _edge_exact(v) and res.config.momentum == 0 else " (heuristic)"
            fig.add_trace(
                go.Scatter(
                    x=res.steps[v],
                    y=res.sam_edge[v],
                    mode="lines",
                    legendgroup=v,
                    name=f"SAM edge, {_label(v)}{heur}",
                    line=dict(color=color, dash="dot", width=1.5),
                ),
                row=1,
                col=1,
            )
        loss = np.asarray(res.loss[v], dtype=float)
        fig.add_trace(
            go.Scatter(
                x=res.steps[v],
                y=np.where(loss > 0, loss, np.nan),
                mode="lines",
                legendgroup=v,
                showlegend=False,
                line=dict(color=color),
            ),
            row=2,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=res.eig_steps[v],
                y=res.alignment[v],
                mode="lines+markers",
                legendgroup=v,
                showlegend=False,
                line=dict(color=color),
                marker=dict(size=4),
            ),
            row=3,
            col=1,
        )
    finite = [x for v in res.variants for x in res.top_eig[v] if np.isfinite(x)]
    ymax = max([gd * 1.3, *(x * 1.1 for x in finite)]) if finite else gd * 1.3
    fig.update_yaxes(range=[0, min(ymax, gd * 3)], row=1, col=1)
    fig.update_yaxes(type="log", row=2, col=1)
    fig.update_yaxes(range=[0, 1.02], row=3, col=1)
    fig.update_xaxes(title_text="step", row=3, col=1, range=[0, res.config.steps])
    fig.update_layout(height=760)
    return legend_below(fig, None, top=40)


def sam_edge_ratio_figure(
    alpha: np.ndarray, ratio: np.ndarray, marks: Sequence[float] = (0.05, 10.0), current: float | None = None
) -> go.Figure:
    """Long & Bartlett's Fig. 1: λ_SAM/(2/η) against α = η‖g‖/(2ρ) (log x axis)."""
    alpha, ratio = np.asarray(alpha, dtype=float), np.asarray(ratio, dtype=float)
    fig = go.Figure(
        go.Scatter(x=alpha, y=ratio, mode="lines", name="λ_SAM / (2/η)", line=dict(color=variant_color("sam"), width=3))
    )
    for a in marks:
        r = float(np.interp(np.log(a), np.log(alpha), ratio))
        fig.add_trace(
            go.Scatter(
                x=[a],
                y=[r],
                mode="markers+text",
                text=[f"α={a:g}: {r:.3f}"],
                textposition="top left" if a > 1 else "bottom right",
                showlegend=False,
                marker=dict(size=9, color="black"),
            )
        )
    if current is not None and np.isfinite(current) and current > 0:
        r = float((np.sqrt(current * current + 4 * current) - current) / 2)
        fig.add_trace(
            go.Scatter(
                x=[current],
                y=[r],
                mode="markers",
                name=f"your α = {current:.3g}",
                marker=dict(size=14, symbol="star", color=variant_color("ssam")),
            )
        )
    fig.add_hline(y=1.0, line=dict(color="black", dash="dash", width=1), annotation_text="GD edge 2/η")
    fig.update_layout(
        xaxis_title="α = η‖g‖ / (2ρ)", yaxis_title="λ_SAM / (2/η)", xaxis_type="log", yaxis_range=[0, 1.08]
    )
    return legend_below(fig, "SAM edge relative to the GD edge")
