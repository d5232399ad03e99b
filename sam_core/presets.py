"""The Home presets in one place: every paper's headline figure, sized for a classroom CPU, and checked.

A :class:`Preset` says which paper figure it reproduces, which page (and URL query) the Home card
opens, what to look for in one sentence, how to run the same computation headless, how to draw it
(with the ``sam_core.plots`` builders) and how to *check* that the phenomenon is really there:
``check(result) -> (held, detail)`` reads the preset's own output (the ordering of escape times,
the success-rate drop above 2/η, λ_max against 2/η, …), so a preset whose sizes were cut too far
says so instead of showing a picture that does not make the point.

Two fidelities: ``"class"`` (default on a CPU: ≤ ~20 s here, the phenomenon still visible) and
``"paper"`` (the paper's seeds, epochs and sizes where this lab can reach them; the default on a GPU
for the presets that fit in about a minute there, see :func:`default_fidelity`).

    p = get_preset("saddle")
    res = p.run_to_end("class")
    held, detail = p.check(res)
    fig = p.figure(res)

``python -m demos.presets`` runs them from a shell.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

FIDELITIES = ("class", "paper")

__all__ = ["FIDELITIES", "PRESETS", "Preset", "default_fidelity", "get_preset", "home_cards", "run_preset"]


@dataclass(frozen=True)
class Preset:
    name: str
    title: str  # the Home card's title
    figure_ref: str  # "Stable SAM, Fig. 1"
    blurb: str  # one line under the title
    look_for: str  # one sentence: what the figure shows when the phenomenon holds
    page: str  # the page the card opens
    query: dict[str, dict[str, str]]  # fidelity -> the page's URL query
    runner: Callable[[str], Iterator[tuple[float, Any]]]  # fidelity -> generator of (progress, result)
    checker: Callable[[Any], tuple[bool, str]]
    drawer: Callable[[Any], Any]  # result -> plotly figure
    icon: str = ":material/science:"
    # the paper version fits in about a minute on a GPU machine: set where it took ≤ ~35 s even on this shared
    # 2-core CPU (lr_sweep, saddle, eos, quadratics); not for the digits runs (1-5 min here, and small MLPs
    # are launch-bound on a GPU), which stay "class" by default everywhere
    paper_fits_gpu_minute: bool = False
    notes: dict = field(default_factory=dict)

    def run(self, fidelity: str = "class", stop_event=None) -> Iterator[tuple[float, Any]]:
        _check_fidelity(fidelity)
        return self.runner(fidelity) if stop_event is None else self.runner(fidelity, stop_event=stop_event)

    def run_to_end(self, fidelity: str = "class"):
        out = None
        for _, item in self.run(fidelity):
            out = item
        return out

    def check(self, result) -> tuple[bool, str]:
        if result is None:
            return False, "no result (the run did not start or was stopped before its first record)"
        try:
            held, detail = self.checker(result)
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:  # lacks what the check reads
            return False, f"result incomplete: {exc}"
        return bool(held), detail

    def figure(self, result):
        return self.drawer(result)

    def page_query(self, fidelity: str = "class") -> dict[str, str]:
        _check_fidelity(fidelity)
        return {**self.query[fidelity], "preset": self.name, "fidelity": fidelity}


def _check_fidelity(fidelity: str) -> None:
    if fidelity not in FIDELITIES:
        raise ValueError(f"fidelity must be one of {list(FIDELITIES)}, got {fidelity!r}")


def _fmt(x: float) -> str:
    return "never" if not np.isfinite(x) else f"{x:.3g}"


# ====================================================================== Stable SAM, Fig. 1: saddle
SADDLE = {
    "class": dict(
        variants="sgd,sam,usam,ssam",
        rho="0.01,0.05,0.2",
        seeds="3",
        epochs="150",
        lr="0.01",
        batch="100",
        n="1000",
        d="20",
        mode="minibatch",
        run="1",
    ),
    "paper": dict(
        variants="sgd,sam,usam,ssam",
        rho="0.01,0.05,0.2",
        seeds="5",
        epochs="500",
        lr="0.001",
        batch="50",
        n="1000",
        d="20",
        mode="minibatch",
        run="1",
    ),
}


def _saddle_run(fidelity, stop_event=None):
    from sam_core.dynamics.saddle import SaddleConfig, run_saddle

    q = SADDLE[fidelity]
    cfg = SaddleConfig(
        d=int(q["d"]), lr=float(q["lr"]), epochs=int(q["epochs"]), n_samples=int(q["n"]), batch_size=int(q["batch"])
    )
    gen = run_saddle(
        q["variants"].split(","), [float(r) for r in q["rho"].split(",")], list(range(int(q["seeds"]))), cfg
    )
    for item in gen:
        yield item
        if stop_event is not None and stop_event.is_set():
            gen.close()
            return


def _escape_means(res, frac=0.5) -> dict[str, np.ndarray]:
    """Per variant, per ρ: mean escape epoch over seeds, +inf if any seed did not escape."""
    out = {}
    for v, e in res.escape_epochs(frac).items():
        out[v] = np.where(np.isfinite(e).all(-1), np.nanmean(np.where(np.isfinite(e), e, 0), -1), np.inf)
    return out


def _saddle_check(res):
    esc = _escape_means(res)
    rhos = res.rhos["sam"]
    sgd = float(esc["sgd"][0])
    sam, ssam = esc["sam"], esc["ssam"]
    detail = (
        f"escape epoch (mean over seeds): SGD {_fmt(sgd)}; SAM "
        + ", ".join(f"ρ={r:g}: {_fmt(x)}" for r, x in zip(rhos, sam))
        + "; SSAM "
        + ", ".join(f"ρ={r:g}: {_fmt(x)}" for r, x in zip(rhos, ssam))
    )
    held = (
        math.isfinite(sgd)
        and bool(np.all(np.isfinite(ssam)) and np.all(ssam <= 1.25 * sgd + 5))  # SSAM escapes with SGD
        and bool(sam[-1] >= 1.5 * sgd)  # SAM at the largest ρ lingers (or never leaves)
        and bool(np.all(np.diff(sam) >= 0))
    )  # ... and longer for larger ρ
    return held, detail


def _saddle_figure(res):
    from sam_core.plots.dynamics import saddle_loss_figure

    return saddle_loss_figure(res, escape_frac=0.5)


# ====================================================================== Stable SAM, Fig. 2: success rate vs η
LR_SWEEP = {
    "class": dict(
        fn="quartic",
        variants="sgd,sam,ssam",
        swrhos="0.1",
        swlo="0.01",
        swhi="1.0",
        swn="20",
        swstarts="500",
        swsteps="1000",
        run="1",
        tab="sweeps",
    ),
    "paper": dict(
        fn="quartic",
        variants="sgd,sam,ssam",
        swrhos="0.1",
        swlo="0.01",
        swhi="1.0",
        swn="40",
        swstarts="5000",
        swsteps="2000",
        run="1",
        tab="sweeps",
    ),
}


def _lr_sweep_run(fidelity, stop_event=None):
    from sam_core.landscape.functions import make_landscape
    from sam_core.landscape.lr_sweep import SweepSetup, iter_sweep_lr

    q = LR_SWEEP[fidelity]
    L = make_landscape(q["fn"])
    lrs = np.geomspace(float(q["swlo"]), float(q["swhi"]), int(q["swn"]))
    yield 0.0, None
    setup = SweepSetup(starts=int(q["swstarts"]), steps=int(q["swsteps"]))
    for p, df in iter_sweep_lr(
        L, q["variants"].split(","), lrs, setup=setup, rhos=[float(q["swrhos"])], stop_event=stop_event
    ):
        df.attrs["gd_bounds"] = list(L.gd_bounds)
        yield p, df


def _lr_sweep_check(df):
    bound = float(min(df.attrs["gd_bounds"]))
    piv = df.pivot_table(index="lr", columns="variant", values="success_rate")
    lrs = piv.index.to_numpy()
    below = (lrs >= 0.05) & (lrs <= 0.8 * bound)
    above = lrs >= 1.3 * bound
    if not below.any() or not above.any():
        return False, f"the lr grid does not straddle 2/λ_max = {bound:.3g}"
    m = {v: (float(piv[v][below].mean()), float(piv[v][above].mean())) for v in piv.columns}
    detail = f"2/λ_max = {bound:.3g}; mean success below / above it: " + "; ".join(
        f"{v.upper()} {a:.2f} / {b:.2f}" for v, (a, b) in m.items()
    )
    held = (
        m["sgd"][0] >= 0.9
        and m["sgd"][1] <= 0.1
        and m["ssam"][0] >= 0.9
        and m["ssam"][1] <= 0.1
        and m["sam"][0] <= m["sgd"][0] - 0.3
    )
    return held, detail


def _lr_sweep_figure(df):
    from sam_core.plots.landscape import sweep_figure

    return sweep_figure(df, df.attrs.get("gd_bounds", ()), title="Success rate vs learning rate (quartic)")


# ====================================================================== Long & Bartlett: edge of stability
EOS = {
    "class": dict(variants="sgd,sam", lr="0.4", rho="0.05", steps="800", every="25", n="200", width="32", run="1"),
    "paper": dict(variants="sgd,sam", lr="0.4", rho="0.05", steps="1500", every="50", n="1000", width="64", run="1"),
}


def _eos_run(fidelity, stop_event=None):
    from sam_core.dynamics.eos import EoSConfig, run_eos

    q = EOS[fidelity]
    cfg = EoSConfig(
        lr=float(q["lr"]),
        rho=float(q["rho"]),
        steps=int(q["steps"]),
        eig_every=int(q["every"]),
        n=int(q["n"]),
        width=int(q["width"]),
    )
    gen = run_eos(q["variants"].split(","), cfg)
    for item in gen:
        yield item
        if stop_event is not None and stop_event.is_set():
            gen.close()
            return


def _eos_check(res):
    edge = res.gd_edge

    def late(v, values):
        a = np.asarray(values, dtype=float)
        a = a[len(a) // 2 :]
        a = a[np.isfinite(a)]
        return float(np.median(a)) if a.size else float("nan")

    gd = late("sgd", res.top_eig["sgd"])
    sam = late("sam", res.top_eig["sam"])
    sam_e = late("sam", res.sam_edge["sam"])
    detail = (
        f"2/η = {edge:.3g}; median λ_max over the second half: GD {gd:.3g} ({gd / edge:.2f}·2/η), "
        f"SAM {sam:.3g} ({sam / edge:.2f}·2/η; its own edge {sam_e:.3g})"
    )
    held = (0.8 * edge <= gd <= 1.3 * edge) and sam <= 0.85 * edge and sam <= 1.6 * sam_e
    return held, detail


def _eos_figure(res):
    from sam_core.plots.dynamics import eos_figure

    return eos_figure(res)


# ====================================================================== Unified SAM: λ on quadratics
QUAD_LAMBDA = {
    "class": dict(
        problem="ridge", variants="unified_sam", lams="0,0.5,1", steps="2000", seeds="2", heat="1", cmp="0", run="1"
    ),
    "paper": dict(
        problem="ridge", variants="unified_sam", lams="0,0.5,1", steps="10000", seeds="5", heat="1", cmp="0", run="1"
    ),
}
QUAD_SAMPLING = {
    "class": dict(
        problem="ridge",
        variants="unified_sam",
        lams="0",
        steps="200",
        seeds="2",
        heat="0",
        cmp="1",
        budget="100",
        tab="sampling",  # the page opens on the sampling comparison, the preset's figure
        run="1",
    ),
    "paper": dict(
        problem="ridge",
        variants="unified_sam",
        lams="0",
        steps="200",
        seeds="10",
        heat="0",
        cmp="1",
        budget="100",
        tab="sampling",  # the page opens on the sampling comparison, the preset's figure
        run="1",
    ),
}


def quad_config(q: dict):
    """The ``QuadraticLabConfig`` a quadratics query asks for (shared with pages/quadratics.py's reading)."""
    from sam_core.dynamics.quadratics import QuadraticLabConfig

    lams = tuple(x if x in ("1/t", "1-1/t") else float(x) for x in q["lams"].split(","))
    kw = dict(
        problem=q["problem"],
        variants=tuple(q["variants"].split(",")),
        lams=lams,
        steps=int(q["steps"]),
        seeds=int(q["seeds"]),
        heatmap=q.get("heat", "1") == "1",
        compare_sampling=q.get("cmp", "1") == "1",
    )
    if "budget" in q:
        kw["budget_epochs"] = float(q["budget"])
    return QuadraticLabConfig(**kw)


def _quad_run(table):
    def run(fidelity, stop_event=None):
        from sam_core.dynamics.quadratics import run_quadratic_lab

        yield from run_quadratic_lab(quad_config(table[fidelity]), stop_event=stop_event)

    return run


def _median_curve(c) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.nanmedian(np.where(np.isfinite(c.rel_error), c.rel_error, np.inf), axis=1)


def _quad_lambda_check(res):
    by_lam = {
        float(c.extra["lam"][0]): _median_curve(c)
        for c in res.curves
        if c.variant == "unified_sam" and "lam" in c.extra
    }
    lams = sorted(by_lam)
    final = [float(by_lam[x][-1]) for x in lams]
    half = [float(by_lam[x][len(by_lam[x]) // 2]) for x in lams]  # for the detail
    detail = "final relative error: " + ", ".join(f"λ={x:g}: {f:.2e}" for x, f in zip(lams, final))
    if len(lams) < 2:
        return False, detail + " (needs two λ values)"
    spread = final[-1] / final[0]
    detail += f"; λ={lams[-1]:g} ends ×{spread:.3g} above λ={lams[0]:g} (half-way: ×{half[-1] / half[0]:.3g})"
    held = (
        bool(np.all(np.diff(final) > 0))  # the error floor grows with λ at the theory's step sizes ...
        and spread >= 3.0
    )  # ... and clearly: SAM's (λ = 1) sits well above USAM's (λ = 0)
    return held, detail


def _quad_lambda_figure(res):
    from sam_core.plots.dynamics import relative_error_figure

    return relative_error_figure(res.curves, title="Unified SAM at the theory's γ and ρ(λ): relative error")


def _quad_sampling_check(res):
    fin = {c.label: float(np.nanmedian(np.where(np.isfinite(c.final), c.final, np.inf))) for c in res.sampling_curves}
    imp = [k for k in fin if k.startswith("importance") and "no reweighting" not in k]
    raw = [k for k in fin if "no reweighting" in k]
    plain = [k for k in fin if not k.startswith("importance")]
    detail = "final relative error at equal gradient evaluations: " + ", ".join(f"{k}: {v:.2e}" for k, v in fin.items())
    if not imp or not raw or not plain:
        return False, detail + " (needs importance, unweighted importance and a plain sampling)"
    best_plain = min(fin[k] for k in plain)
    held = fin[imp[0]] <= 0.3 * best_plain and fin[imp[0]] < fin[raw[0]]
    return held, detail


def _quad_sampling_figure(res):
    from sam_core.plots.dynamics import sampling_figure

    return sampling_figure(res.sampling_curves, res.sampling_theory)


# ====================================================================== training presets on digits
def _digits_runner(make_cfg):
    def run(fidelity, stop_event=None):
        from sam_core.training.digits_runs import run_digits

        yield from run_digits(make_cfg(fidelity), stop_event=stop_event)

    return run


def _gamma_cfg(fidelity):
    from sam_core.training.digits_runs import DigitsConfig

    rhos = (0.05, 0.1, 0.2)
    return DigitsConfig(
        runs=tuple((f"SSAM ρ={r:g}", "ssam", (("rho", r),)) for r in rhos),
        steps=200 if fidelity == "class" else 300,
        lr=0.5,
        n_train=1200,
        seeds=(0,) if fidelity == "class" else (0, 1, 2),
        record_every=10,
    )


def _gamma_check(res):
    labels = [lab for lab in res.labels if res.variants[lab] == "ssam"]
    rhos = [float(lab.split("=")[1]) for lab in labels]
    g = res.mean_over("gamma", 1.0)
    order = [g[lab] for _, lab in sorted(zip(rhos, labels))]
    detail = "mean γ_t over training: " + ", ".join(f"{lab}: {g[lab]:.3f}" for lab in labels)
    held = (
        all(np.isfinite(order))
        and all(x < 1.0 for x in order)
        and order[-1] <= 0.95  # clearly below 1 ...
        and bool(np.all(np.diff(order) <= -0.01))
    )  # ... and clearly falling with ρ
    return held, detail


def _series(res, metric_of=None):
    import pandas as pd

    from sam_core.plots.style import variant_color
    from sam_core.plots.training import DASHES, Series

    out = []
    for i, lab in enumerate(res.labels):
        c = res.curves[lab]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a metric this run does not record: all NaN
            df = pd.DataFrame({m: np.nanmean(c[m], axis=0) for m in c}, index=res.steps)
        out.append(Series(lab, variant_color(res.variants[lab]), df, DASHES[i % len(DASHES)]))
    return out


def _gamma_figure(res):
    from sam_core.plots.training import gamma_figure

    return gamma_figure(_series(res))


def _twin_cfg(fidelity):
    from sam_core.training.digits_runs import DigitsConfig

    return DigitsConfig(
        runs=(("SGD", "sgd", ()), ("USAM (paper's SAM)", "usam", (("rho", 0.1),)), ("SSAM", "ssam", (("rho", 0.1),))),
        steps=150 if fidelity == "class" else 1000,
        lr=0.5,
        n_train=600 if fidelity == "class" else 1200,
        seeds=(0,) if fidelity == "class" else (0, 1, 2),
        twin=True,
        record_every=10,
    )


def _twin_check(res):
    d = {lab: float(np.nanmean(v)) for lab, v in res.final("twin_distance").items()}
    by_v = {res.variants[lab]: x for lab, x in d.items()}
    detail = "‖w − w_twin‖ at the end: " + ", ".join(f"{lab}: {x:.3g}" for lab, x in d.items())
    held = by_v["ssam"] <= 2.0 * by_v["sgd"] and by_v["usam"] >= 3.0 * by_v["ssam"]
    return held, detail


def _twin_figure(res):
    from sam_core.plots.training import metric_figure

    return metric_figure(
        _series(res), "twin_distance", "Uniform stability: ‖w − w_twin‖ (one example replaced)", log_y=True
    )


def _flat_cfg(fidelity):
    from sam_core.training.digits_runs import DigitsConfig

    return DigitsConfig(
        runs=(("SGD", "sgd", ()), ("SAM", "sam", (("rho", 0.05),)), ("BSAM", "bsam", (("rho", 0.05),))),
        steps=300 if fidelity == "class" else 500,
        lr=0.5,
        seeds=(0,) if fidelity == "class" else (0, 1, 2, 3, 4),
        top_k=5,
        record_every=20,
    )


def _flat_check(res):
    top = {lab: float(np.nanmean(v[:, 0])) for lab, v in res.top_eigs.items()}
    by_v = {res.variants[lab]: x for lab, x in top.items()}
    detail = (
        "top Hessian eigenvalue after training: "
        + ", ".join(f"{lab}: {x:.3g}" for lab, x in top.items())
        + (
            "; BSAM is also flatter than SAM"
            if by_v["bsam"] < by_v["sam"]
            else "; between the two, BSAM's is not below SAM's at this size"
        )
    )
    held = by_v["sam"] < 0.9 * by_v["sgd"] and by_v["bsam"] < 0.9 * by_v["sgd"]
    return held, detail


def _flat_figure(res):
    import pandas as pd

    from sam_core.plots.style import variant_color
    from sam_core.plots.training import Series, metric_figure

    if not res.top_eigs:  # still training (the eigenvalues come at the end): the loss curves meanwhile
        return metric_figure(
            _series(res), "loss", "Training loss (the top Hessian eigenvalues follow when training ends)"
        )
    series = [
        Series(
            lab,
            variant_color(res.variants[lab]),
            pd.DataFrame(
                {"eigenvalue": np.nanmean(res.top_eigs[lab], axis=0)}, index=np.arange(1, res.config.top_k + 1)
            ),
        )
        for lab in res.labels
    ]
    fig = metric_figure(
        series,
        "eigenvalue",
        "Top Hessian eigenvalues after training (digits MLP)",
        x_title="rank",
        y_title="eigenvalue",
    )
    return fig.update_xaxes(dtick=1)  # ranks are whole numbers (plotly's ticks fell on 1.5, 2.5)


def _noise_cfg(fidelity):
    from sam_core.training.digits_runs import DigitsConfig

    return DigitsConfig(
        runs=(("SGD", "sgd", ()), ("SAM", "sam", (("rho", 0.1),)), ("infoSAM", "infosam", (("rho", 0.1),))),
        steps=600 if fidelity == "class" else 3000,
        lr=0.5,
        batch_size=64,
        label_noise=0.4,
        seeds=(0, 1) if fidelity == "class" else (0, 1, 2, 3, 4),
        record_every=30,
    )


def _noise_check(res):
    acc = {lab: float(np.nanmean(v)) for lab, v in res.final("test_acc").items()}
    by_v = {res.variants[lab]: x for lab, x in acc.items()}
    detail = (
        "clean test accuracy with 40 % noisy training labels: "
        + ", ".join(f"{lab}: {100 * x:.1f} %" for lab, x in acc.items())
        + ("; infoSAM ≥ SAM" if by_v["infosam"] >= by_v["sam"] else "; infoSAM below SAM here")
    )
    held = by_v["sam"] > by_v["sgd"] and by_v["infosam"] > by_v["sgd"]
    return held, detail


def _noise_figure(res):
    from sam_core.plots.training import metric_figure

    return metric_figure(
        _series(res), "test_acc", "Clean test accuracy, 40 % symmetric label noise (digits)", y_title="test accuracy"
    )


def _training_query(fidelity: str, **kw) -> dict[str, str]:
    base = dict(
        dataset="digits",
        model="mlp",
        batch_size="64",
        lr="0.05",
        hessian_every="0",
        epochs="5" if fidelity == "class" else "30",
        autorun="1",  # the page runs the preset's own figure at once (its real-runs form waits for Launch)
    )
    return {**base, **{k: str(v) for k, v in kw.items()}}


# ====================================================================== the list
PRESETS: tuple[Preset, ...] = (
    Preset(
        "lr_sweep",
        "Why SAM fails at large η",
        "Stable SAM, Fig. 2",
        "Success rate vs η on the quartic x⁴/4 − xy + y²/2, from starts around the saddle; the Sweeps tab.",
        "SGD and SSAM succeed for every η up to the GD bound 2/λ_max (dashed) and fail above it; SAM at ρ = 0.1 "
        "fails from most starts well below it.",
        "pages/landscape.py",
        LR_SWEEP,
        _lr_sweep_run,
        _lr_sweep_check,
        _lr_sweep_figure,
        ":material/landscape:",
        paper_fits_gpu_minute=True,
    ),
    Preset(
        "saddle",
        "SAM stuck at a saddle",
        "Stable SAM, Fig. 1",
        "A linear autoencoder started next to the saddle at the origin.",
        "SAM at ρ = 0.2 never leaves the plateau (and lingers longer the larger ρ); SSAM escapes with SGD.",
        "pages/saddle.py",
        SADDLE,
        _saddle_run,
        _saddle_check,
        _saddle_figure,
        ":material/moving:",
        paper_fits_gpu_minute=True,
    ),
    Preset(
        "eos",
        "The SAM edge of stability",
        "Long & Bartlett, Fig. 1",
        "Full-batch GD and SAM on a small MLP, top Hessian eigenvalue tracked by Lanczos.",
        "GD's λ_max climbs to 2/η and hovers there; SAM's stays well below, near its own lower edge.",
        "pages/edge_of_stability.py",
        EOS,
        _eos_run,
        _eos_check,
        _eos_figure,
        ":material/show_chart:",
        paper_fits_gpu_minute=True,
    ),
    Preset(
        "gamma",
        "γ_t during training",
        "Stable SAM, Fig. 3",
        "How much SSAM rescales SAM's step: an MLP on the digits that ship with scikit-learn.",
        "γ_t = ‖g‖/‖g_adv‖ stays below 1 all through training, so SSAM's step γ_t·g_adv is shorter than SAM's, "
        "and the larger ρ, the lower γ_t.",
        "pages/training.py",
        {f: _training_query(f, variants="sam,ssam") for f in FIDELITIES},
        _digits_runner(_gamma_cfg),
        _gamma_check,
        _gamma_figure,
        ":material/model_training:",
        paper_fits_gpu_minute=False,
    ),
    Preset(
        "stability",
        "Uniform stability: twin runs",
        "Stable SAM, Figs. 4–5",
        "Two networks from the same start, trained on data sets that differ in one example.",
        "SSAM's twins stay as close as SGD's, while the paper's SAM (USAM) drives them apart by orders of "
        "magnitude at the same η.",
        "pages/training.py",
        {f: _training_query(f, variants="sgd,usam,ssam", stability="1") for f in FIDELITIES},
        _digits_runner(_twin_cfg),
        _twin_check,
        _twin_figure,
        ":material/compare_arrows:",
        paper_fits_gpu_minute=False,
    ),
    Preset(
        "unified_lambda",
        "Unified SAM: USAM or SAM?",
        "Unified SAM, λ comparison",
        "Unified SAM's λ interpolates USAM (λ = 0) and SAM (λ = 1); ridge regression at the theory's γ and ρ(λ).",
        "The final error grows with λ: λ = 0 keeps converging while λ = 1 (SAM) stalls on a floor; the heatmap "
        "shows where each λ still converges.",
        "pages/quadratics.py",
        QUAD_LAMBDA,
        _quad_run(QUAD_LAMBDA),
        _quad_lambda_check,
        _quad_lambda_figure,
        ":material/functions:",
        paper_fits_gpu_minute=True,
    ),
    Preset(
        "sampling",
        "Arbitrary sampling",
        "Unified SAM, sampling strategies",
        "Full batch, uniform, b-nice and importance sampling at the same number of gradient evaluations.",
        "Importance sampling p_i ∝ L_i (reweighted) ends an order of magnitude lower than uniform or b-nice; "
        "without the reweighting it stalls on a bias floor.",
        "pages/quadratics.py",
        QUAD_SAMPLING,
        _quad_run(QUAD_SAMPLING),
        _quad_sampling_check,
        _quad_sampling_figure,
        ":material/shuffle:",
        paper_fits_gpu_minute=True,
    ),
    Preset(
        "label_noise",
        "Label noise: infoSAM vs SAM",
        "infoSAM, label-noise table",
        "40 % symmetric label noise on the digits; clean test accuracy.",
        "SAM and infoSAM keep a higher clean test accuracy than SGD under the noise; compare infoSAM with SAM.",
        "pages/training.py",
        {f: _training_query(f, variants="sgd,sam,infosam", label_noise="0.4") for f in FIDELITIES},
        _digits_runner(_noise_cfg),
        _noise_check,
        _noise_figure,
        ":material/blur_on:",
        paper_fits_gpu_minute=False,
    ),
    Preset(
        "flatness",
        "BSAM vs SAM flatness",
        "BSAM, top Hessian eigenvalues",
        "Top Hessian eigenvalues at the end of training, SGD vs SAM vs BSAM (digits MLP).",
        "SAM and BSAM end in flatter minima than SGD: their top Hessian eigenvalues are clearly smaller.",
        "pages/training.py",
        {f: _training_query(f, variants="sgd,sam,bsam", top_k="5") for f in FIDELITIES},
        _digits_runner(_flat_cfg),
        _flat_check,
        _flat_figure,
        ":material/terrain:",
        paper_fits_gpu_minute=False,
    ),
)

_BY_NAME = {p.name: p for p in PRESETS}


def get_preset(name: str) -> Preset:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}: choose one of {list(_BY_NAME)}") from None


def run_preset(name: str, fidelity: str = "class", stop_event=None) -> Iterator[tuple[float, Any]]:
    """The preset's own computation as a module-level generator, so a page can hand it to the lab's worker
    pool (``ui.jobs``); the same items as ``get_preset(name).run(fidelity, stop_event)``."""
    yield from get_preset(name).run(fidelity, stop_event=stop_event)


def default_fidelity(preset: Preset | str, device=None) -> str:
    """``"paper"`` on a GPU for presets whose paper version fits in about a minute there, else ``"class"``."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    if device is None:
        from sam_core.settings import get_settings

        try:
            device = get_settings().torch_device()
        except ValueError:
            device = "cpu"
    kind = getattr(device, "type", str(device).split(":")[0])
    return "paper" if kind == "cuda" and p.paper_fits_gpu_minute else "class"


def home_cards(device=None) -> list[tuple[str, str, str, dict, str, str]]:
    """What Home draws: ``(title, caption, page, query, icon, look_for)`` per preset, at the default fidelity."""
    out = []
    for p in PRESETS:
        f = default_fidelity(p, device)
        out.append((p.title, f"{p.figure_ref} — {p.blurb}", p.page, p.page_query(f), p.icon, p.look_for))
    return out
