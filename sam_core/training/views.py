"""Tables and plot series of runs for the dashboard pages (plain pandas; no streamlit here).

`runs_frame` is the runs table (status, progress, ETA); `run_series` turns runs into overlay series
coloured by variant (runs of the same variant get distinct dashes); `summary_frame` puts the final
numbers of several runs side by side.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import pandas as pd

from sam_core.plots.style import variant_color
from sam_core.plots.training import Series, dashes_for
from sam_core.training.store import RunInfo, RunStore


def fmt_seconds(s: float | None) -> str:
    """'2 h 05 min', '3 min 20 s', '45 s'; '' when unknown."""
    if s is None or not math.isfinite(s):
        return ""
    s = int(round(s))
    if s >= 3600:
        return f"{s // 3600} h {(s % 3600) // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


def run_label(r: RunInfo) -> str:
    return r.name or r.id


def runs_frame(runs: Sequence[RunInfo]) -> pd.DataFrame:
    now = time.time()
    rows = []
    for r in runs:
        rows.append(
            {
                "id": r.id,
                "name": run_label(r),
                "status": r.status,
                "optimizer": r.variant,
                "model": r.config.get("model", ""),
                "dataset": r.config.get("dataset", ""),
                "progress": r.progress,
                "step": f"{r.step}/{r.total_steps or '?'}",
                "ETA": fmt_seconds(r.eta_seconds(now)),
                "created": pd.Timestamp(r.created, unit="s"),
                "message": r.message,
            }
        )
    cols = ["id", "name", "status", "optimizer", "model", "dataset", "progress", "step", "ETA", "created", "message"]
    return pd.DataFrame(rows, columns=cols)


def run_series(store: RunStore, runs: Sequence[RunInfo], names: Sequence[str] | None = None) -> list[Series]:
    """One plot series per run (metrics as a step-indexed DataFrame), coloured by variant."""
    colors = [variant_color(r.variant) for r in runs]
    dashes = dashes_for([run_label(r) for r in runs], colors)
    return [Series(run_label(r), c, store.metrics(r.id, names), d) for r, c, d in zip(runs, colors, dashes)]


def _last(df: pd.DataFrame, col: str) -> float:
    if col not in df.columns:
        return math.nan
    s = df[col].dropna()
    return float(s.iloc[-1]) if len(s) else math.nan


def summary_frame(store: RunStore, runs: Sequence[RunInfo]) -> pd.DataFrame:
    """The last value of the main per-epoch and Hessian metrics of each run."""
    rows = []
    for r in runs:
        df = store.metrics(r.id)
        top = store.get_artifact(r.id, "top_eigenvalues") or {}
        rows.append(
            {
                "name": run_label(r),
                "status": r.status,
                "optimizer": r.variant,
                "steps": r.step,
                "train acc": _last(df, "train_acc"),
                "test acc": _last(df, "test_acc"),
                "train loss": _last(df, "train_loss"),
                "test loss": _last(df, "test_loss"),
                "gap": _last(df, "gap"),
                "top eig": _last(df, "top_eig"),
                "γ_t (last)": _last(df, "gamma"),
                "‖w−w0‖": _last(df, "dist_w0"),
                "λ1…λk (end)": ", ".join(f"{v:.3g}" for v in top.get("values", [])),
                "train time": fmt_seconds(r.train_seconds),
            }
        )
    return pd.DataFrame(rows)
