"""The Home presets timed: first picture and finished, headless (sam_core.presets) and in Chromium.

    python benchmarks/bench_presets.py [--only headless,quadratics,browser] [--fidelity class|paper]
                                        [--repeat 3] [--real-runs] [--from-home] [--timeout S]

- ``headless``:   every preset's runner (the same computation as its card): seconds to the first partial
                  result with data (what the page's live panel draws first), to finished, and whether the
                  phenomenon check held;
- ``quadratics``: the Quadratics page's defaults with both extras (λ × lr heatmap, sampling strategies):
                  the batched lab (``run_quadratic_lab``) against the per-configuration loop it replaced
                  (one ``run_finite_sum`` call per λ and per sampling strategy), best of ``--repeat``;
- ``browser``:    each preset's page opened by its Home card URL in a fresh Chromium tab (Debian's,
                  ``tests/e2e/harness.py``): navigation → the job's first picture (a drawn curve, or its
                  static preview) → 'Finished in'. The Training-lab presets run their own figure on the
                  page (``ui.presets.preset_run_panel``); with ``--real-runs`` the bench then presses the
                  filled-in Launch and times those worker-process runs too; with ``--from-home`` it also
                  presses Home's cards one after another in one tab (plotly.js already loaded by Home).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sam_core.presets import FIDELITIES, PRESETS  # noqa: E402

ROWS: list[tuple[str, str, str, str]] = []


def row(what: str, first: str, total: str, note: str = "") -> None:
    ROWS.append((what, first, total, note))
    print(f"  {what:<44} {first:>9} {total:>9}  {note}", flush=True)


def bench_headless(fidelity: str) -> None:
    print(f"headless ({fidelity}): first result / finished", flush=True)
    for p in PRESETS:
        t0 = time.perf_counter()
        first, res = None, None
        for prog, res in p.run(fidelity):
            if first is None and res is not None and prog > 0:
                first = time.perf_counter() - t0
        total = time.perf_counter() - t0
        held, detail = p.check(res)
        row(
            f"headless {p.name}",
            f"{(first or total):.2f} s",
            f"{total:.2f} s",
            ("held" if held else "NOT HELD") + f" · {detail}",
        )


def _old_quadratics(cfg) -> None:
    """The per-configuration loop the lab ran before batching (same computations, one call each)."""
    import torch

    from sam_core.dynamics.problems import Sampling
    from sam_core.dynamics.quadratics import _variant_runs, run_finite_sum, theory_for

    p = cfg.build_problem()
    smp = cfg.build_sampling()

    def th(lam):
        return theory_for(p, smp, lam)

    for v in cfg.variants:
        for lam in cfg.lams if v == "unified_sam" else (None,):
            lr, hp, label = _variant_runs(v, lam, th, cfg, cfg.seeds)
            run_finite_sum(p, v, lr=lr, hp=hp, steps=cfg.steps, sampling=smp, n_runs=cfg.seeds, seed=1, label=label)
    lams = torch.tensor([float(x) for x in cfg.heat_lams], dtype=torch.float64)
    mults = torch.tensor([float(x) for x in cfg.heat_lr_mults], dtype=torch.float64)
    S = cfg.seeds
    lam_r = lams.repeat_interleave(len(mults) * S)
    lr_r = (mults * th(1.0)["gamma"]).repeat_interleave(S).repeat(len(lams))
    rho_r = torch.tensor([th(float(x))["rho"] for x in lam_r], dtype=torch.float64)
    run_finite_sum(p, "unified_sam", lr=lr_r, hp={"rho": rho_r, "lam": lam_r}, steps=cfg.steps, sampling=smp, seed=2)
    lam = next(x for x in cfg.lams if not isinstance(x, str))
    budget = int(cfg.budget_epochs * p.n)
    for s in [
        Sampling("full"),
        Sampling("uniform"),
        Sampling("nice", cfg.batch_size),
        Sampling("importance", 1),
        Sampling("importance", 1, reweight=False),
    ]:
        t = theory_for(p, s, lam)
        run_finite_sum(
            p,
            "unified_sam",
            lr=t["gamma"],
            hp={"rho": t["rho"], "lam": lam},
            steps=max(1, budget // (2 * s.examples_per_eval(p.n))),
            sampling=s,
            n_runs=S,
            seed=3,
        )


def bench_quadratics(repeat: int) -> None:
    from sam_core.dynamics import run_to_end
    from sam_core.dynamics.quadratics import QuadraticLabConfig, run_quadratic_lab
    from sam_core.threads import limited_threads

    cfg = QuadraticLabConfig()  # the page's defaults, both extras on
    print("quadratics page defaults (curves + heatmap + sampling), best of", repeat, flush=True)
    fns = {
        "per-config loop (before)": lambda: _old_quadratics(cfg),
        "batched lab (after)": lambda: run_to_end(run_quadratic_lab(cfg)),
    }
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeat):  # interleaved, so that a change in the machine's load hits both alike
        for name, fn in fns.items():
            t0 = time.perf_counter()
            with limited_threads(1):
                fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    for name, t in best.items():
        row(f"quadratics defaults: {name}", "", f"{t:.2f} s")


PAGE_URL = {
    "pages/landscape.py": "landscape",
    "pages/saddle.py": "saddle",
    "pages/edge_of_stability.py": "edge_of_stability",
    "pages/quadratics.py": "quadratics",
    "pages/training.py": "training",
}
# the element whose first picture counts: the job's first chart (the Training lab: the preset's own figure)
FIRST_PLOT = {
    "lr_sweep": "ls_sweep_fig",
    "saddle": "saddle_loss",
    "eos": "eos_fig",
    "unified_lambda": "quadratics_curves",
    # the convergence curves come first; its figure, the comparison, is drawn as the samplings finish
    "sampling": "quadratics_curves|quadratics_smp",
    **{n: f"preset_{n}_fig" for n in ("gamma", "stability", "label_noise", "flatness")},
}
# a picture a person sees under a chart's key: plotly.js has drawn a trace with two or more points, or the
# static preview (ui.common.chart_with_preview) has decoded; "a|b": under either key
PICTURE_JS = """(keys) => { for (const sel of keys.split('|').flatMap(k => ['.st-key-' + k, '.st-key-pv_' + k])) {
    const b = document.querySelector(sel); if (!b) continue;
    const pl = b.querySelector('.js-plotly-plot');
    if (pl && pl._fullData && pl._fullData.some(t => (t.x && t.x.length > 1) || t.z)) return true;
    const im = b.querySelector('img'); if (im && im.complete && im.naturalWidth > 0) return true; }
  return false; }"""
RUNS_DONE_JS = """(ids) => { const t = document.querySelector("[data-testid='stMain']").innerText;
  return ids.every(i => t.includes(i + ' · finished')); }"""
CURVE_JS = """() => Array.from(document.querySelectorAll('.st-key-tl_fig1 .js-plotly-plot')).some(
  p => p._fullData && p._fullData.some(t => t.x && t.x.length > 1))"""


def _launch_real_runs(page, timeout_s: float) -> tuple[float, float]:
    """The Training lab's form, filled in by the preset: press Launch; seconds to the first loss curve of the
    launched runs and to every one of them finished (each run is its own worker process, queued)."""
    import re

    button = page.locator(".st-key-tl_launch button")
    if not button.is_visible():  # the form folds away once the folder has runs
        page.get_by_text("Launch training", exact=True).first.click()
    t0 = time.perf_counter()
    button.click()
    msg = page.get_by_text(re.compile(r"Launched \d+ run")).first
    msg.wait_for(timeout=timeout_s * 1000)
    ids = re.findall(r"\d{8}-\d{6}-[0-9a-f]{6}", msg.inner_text())
    # the monitor switches to the new runs (no points yet: their workers are starting), then their curves grow
    page.wait_for_function(f"() => !({CURVE_JS})()", timeout=timeout_s * 1000)
    page.wait_for_function(CURVE_JS, timeout=timeout_s * 1000)
    first = time.perf_counter() - t0
    page.wait_for_function(RUNS_DONE_JS, arg=ids, timeout=timeout_s * 1000, polling=250)
    return first, time.perf_counter() - t0


def _picture_then_finished(page, name: str, t0: float, timeout_s: float, into: list[list[float]]) -> None:
    """Wait for the card's first picture, then for 'Finished in'; append both times (s since ``t0``)."""
    page.wait_for_function(PICTURE_JS, arg=FIRST_PLOT[name], timeout=timeout_s * 1000, polling=50)
    first = time.perf_counter() - t0
    page.get_by_text("Finished in").first.wait_for(state="attached", timeout=timeout_s * 1000)
    into[0].append(first)
    into[1].append(time.perf_counter() - t0)


def bench_browser(fidelity: str, timeout_s: float, real_runs: bool, repeat: int, from_home: bool) -> None:
    from tests.e2e.harness import chromium, pct, streamlit_server, wait_for_app

    base = Path(tempfile.mkdtemp(prefix="samlab-bench-presets-"))
    (base / "runs").mkdir()
    (base / "data").mkdir()
    print(
        f"Chromium ({fidelity}): a fresh tab opens the card's URL → first picture / finished, p50 / p90 over --repeat",
        flush=True,
    )
    with streamlit_server(base / "runs", base / "data", "bench-presets-server.log") as url, chromium() as browser:
        warm = browser.new_page()  # a fresh server's first page pays the imports once; its worker pool starts
        warm.goto(f"{url}/landscape")
        wait_for_app(warm)
        warm.wait_for_timeout(8000)  # the pool's workers finish their idle imports, as on a server that is up
        warm.close()
        times: dict[str, list[list[float]]] = {}  # row -> [first pictures], [finished]
        failed: dict[str, str] = {}
        for _ in range(repeat):  # interleaved, so that a change in the machine's load hits every preset alike
            for p in PRESETS:
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = ctx.new_page()
                link = f"{url}/{PAGE_URL[p.page]}?{urlencode(p.page_query(fidelity))}"
                t0 = time.perf_counter()
                try:
                    page.goto(link, wait_until="commit")
                    _picture_then_finished(page, p.name, t0, timeout_s, times.setdefault(f"page {p.name}", [[], []]))
                    if real_runs and p.page == "pages/training.py":
                        n = len(p.page_query(fidelity)["variants"].split(","))
                        first, total = times.setdefault(f"page {p.name}: Launch {n} real runs", [[], []])
                        a, b = _launch_real_runs(page, timeout_s)
                        first.append(a)
                        total.append(b)
                except Exception as exc:  # noqa: BLE001 - a timeout is a result here
                    failed[f"page {p.name}"] = f"{type(exc).__name__} (> {timeout_s:.0f} s?)"
                ctx.close()
            if from_home:  # the classroom: one tab, Home's cards pressed one after another
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = ctx.new_page()
                page.goto(url)
                wait_for_app(page)
                for p in PRESETS:
                    card = page.locator("[data-testid='stPageLink'] a", has_text=p.title).first
                    try:
                        card.wait_for(timeout=timeout_s * 1000)
                        t0 = time.perf_counter()
                        card.click()
                        _picture_then_finished(
                            page, p.name, t0, timeout_s, times.setdefault(f"from Home: {p.name}", [[], []])
                        )
                    except Exception as exc:  # noqa: BLE001 - a timeout is a result here
                        failed[f"from Home: {p.name}"] = f"{type(exc).__name__} (> {timeout_s:.0f} s?)"
                    page.locator("[data-testid='stSidebarNav'] a", has_text="Home").first.click()  # same session
                    wait_for_app(page, settle_s=0.3)
                ctx.close()
        for what, (first, total) in times.items():
            note = "from the press of Launch: worker processes, one at a time" if "real runs" in what else ""
            row(what, pct(first), pct(total), (note + f" · n={len(first)}").strip(" ·"))
        for what, why in failed.items():
            row(what, "", "", why)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="headless,quadratics,browser")
    ap.add_argument("--fidelity", choices=FIDELITIES, default="class")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument(
        "--real-runs", action="store_true", help="the Training-lab presets: also press Launch and time the real runs"
    )
    ap.add_argument(
        "--from-home", action="store_true", help="also press Home's cards one after another in one tab (a class)"
    )
    args = ap.parse_args()
    only = set(args.only.split(","))
    print(f"SAM Lab presets, {os.cpu_count()} CPUs", flush=True)
    if "headless" in only:
        bench_headless(args.fidelity)
    if "quadratics" in only:
        bench_quadratics(args.repeat)
    if "browser" in only:
        bench_browser(args.fidelity, args.timeout, args.real_runs, args.repeat, args.from_home)
    print("\n| what | first picture | finished | note |\n|---|---|---|---|")
    for r in ROWS:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")


if __name__ == "__main__":
    main()
