"""A sweep's results as one table: a row per trial, its swept values and its runs' final numbers.

Columns: trial, run_id, status, one column per swept parameter (empty where a hyperparameter does not
apply to the trial's variant), then the result metrics of `RESULT_METRICS`:
  * test_acc, test_loss, train_acc, train_loss, gap — the last epoch evaluation;
  * top_eig — the final top Hessian eigenvalue (the end-of-run Lanczos estimate when it was computed,
    else the last tracked estimate);
  * gamma_mean, gamma_min, gamma_max, gamma_std, gamma_last — statistics of the logged γ_t (each
    logged value is the mean over one logging window of steps);
  * diverged_step — the step at which the loss became NaN/inf (empty otherwise).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sam_core.training.store import RunStore

RESULT_METRICS = {
    "test_acc": "final test accuracy",
    "test_loss": "final test loss",
    "train_acc": "final train accuracy",
    "train_loss": "final train loss",
    "gap": "final generalisation gap (test − train loss)",
    "top_eig": "final top Hessian eigenvalue",
    "gamma_mean": "mean γ_t",
    "gamma_min": "min γ_t",
    "gamma_max": "max γ_t",
    "gamma_std": "std of γ_t",
    "gamma_last": "last γ_t",
    "diverged_step": "step of divergence",
}
_EPOCH = ("test_acc", "test_loss", "train_acc", "train_loss", "gap")


def _last(s: pd.Series) -> float:
    s = s.dropna()
    return float(s.iloc[-1]) if len(s) else math.nan


def run_results(store: RunStore, run_id: str) -> dict[str, float]:
    """The result metrics of one run (NaN where not measured)."""
    df = store.metrics(run_id, names=list(_EPOCH) + ["top_eig", "gamma"])
    out = {k: _last(df[k]) if k in df.columns else math.nan for k in _EPOCH}
    top = store.get_artifact(run_id, "top_eigenvalues") or {}
    vals = top.get("values") or []
    out["top_eig"] = float(vals[0]) if vals else (_last(df["top_eig"]) if "top_eig" in df.columns else math.nan)
    g = df["gamma"].dropna().to_numpy(dtype=float) if "gamma" in df.columns else np.array([])
    g = g[np.isfinite(g)]
    out.update(
        gamma_mean=float(g.mean()) if len(g) else math.nan,
        gamma_min=float(g.min()) if len(g) else math.nan,
        gamma_max=float(g.max()) if len(g) else math.nan,
        gamma_std=float(g.std()) if len(g) > 1 else math.nan,
        gamma_last=float(g[-1]) if len(g) else math.nan,
    )
    d = store.get_artifact(run_id, "diverged_step")
    out["diverged_step"] = float(d) if d is not None else math.nan
    return out


def sweep_frame(store: RunStore, sweep_id: str) -> pd.DataFrame:
    """One row per trial (see the module docstring); the swept parameters are listed in `.attrs['params']`."""
    info = store.get_sweep(sweep_id)
    params = list((info.spec.get("params") or {}).keys())
    rows = []
    for t in store.sweep_trials(sweep_id):
        row = {"trial": t.trial, "run_id": t.run_id or "", "status": t.status}
        for p in params:
            row[p] = t.params.get(p, None)
        res = run_results(store, t.run_id) if t.run_id and t.state == "started" else {}
        for m in RESULT_METRICS:
            row[m] = res.get(m, math.nan)
        rows.append(row)
    df = pd.DataFrame(rows, columns=["trial", "run_id", "status", *params, *RESULT_METRICS])
    df.attrs["params"] = params
    return df
