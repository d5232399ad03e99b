"""What a person in front of Chromium waits for: the dashboard timed end to end, against its CLIs.

Starts the app on a free port as ``make run`` does (``python -m ui.serve``, the app's own config), drives
Debian's Chromium through Playwright on the same machine and prints one table:

- ``open``:    each page, navigation → its first meaningful picture (a chart's static preview or the
               drawn chart, or the page's own content for pages without one), and → the interactive
               chart drawn; a shared Landscape URL in a fresh tab → race drawn;
- ``slider``:  Landscape lab, the lr slider moved one notch → the race redrawn with new data (p50/p90 over
               ``--repeat`` changes), for the default race and for 8 variants × 2 000 steps; click on
               the map to start there; toggle contour ↔ 3-D (→ the new view's picture, → its chart drawn);
- ``presets``: the Home cards that compute in the page, clicked on Home as a visitor does (Stable SAM
               Fig. 2 sweep, saddle, edge of stability) and the Quadratics defaults opened by URL: first
               curve and finished figure;
- ``tabs``:    two fresh tabs open the saddle card's link at the same moment (the server-wide job queue),
               against one fresh tab opening it alone;
- ``cli``:     the same computations (the cards' own configurations, ``sam_core.presets``) through their
               CLIs in this run, and the ratio page / CLI;
- ``cold``:    (not in the default set) a fresh server per round, Home, the Landscape lab and Quadratics
               opened at once: what the first visitor after a server start waits for.

Redraws are detected in the browser (``tests/e2e/harness.py``: plotly.js's decoded data, polled every
animation frame), so the figures are what the screen shows, not what the server sent.

    python benchmarks/bench_browser.py [--only open,slider,presets,cold] [--repeat 7] [--timeout 300]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sam_core.presets import EOS as PRESET_EOS  # noqa: E402
from sam_core.presets import LR_SWEEP as PRESET_SWEEP  # noqa: E402
from sam_core.presets import SADDLE as PRESET_SADDLE  # noqa: E402
from sam_core.presets import default_fidelity, get_preset  # noqa: E402
from sam_core.settings import get_settings  # noqa: E402
from tests.e2e.harness import (  # noqa: E402
    chromium,
    pct,
    plot_signature,
    streamlit_server,
    wait_for_app,
    wait_plot_change,
)

ROWS: list[tuple[str, str, str]] = []
ALL8 = "sgd,sam,usam,unified_sam,asam,ssam,bsam,presam"
# What the Home cards run, read from the presets at the fidelity Home gives them on this machine (classroom on
# a CPU, the paper's sizes on a GPU for some), so the CLI rows below time the same computation as the page:
# these once held the paper's sizes on a CPU, 3-10x the cards' work, and the ratios they printed (saddle 0.19x,
# eos 0.34x) compared two different computations. The CLIs run on the device the pages use.
SADDLE = PRESET_SADDLE[default_fidelity("saddle")]
EOS = PRESET_EOS[default_fidelity("eos")]
SWEEP = PRESET_SWEEP[default_fidelity("lr_sweep")]
SADDLE_LINK = get_preset("saddle").page_query(default_fidelity("saddle"))  # the card's own link
DEVICE = str(get_settings().torch_device())


def row(what: str, value: str, note: str = "") -> None:
    ROWS.append((what, value, note))
    print(f"  {what:<58} {value:>16}  {note}", flush=True)


def first_picture(page, url: str, selector: str, timeout_s: float, then: str | None = None) -> tuple[float, float]:
    """Seconds from navigation to ``selector`` visible, and (when ``then`` is given) to ``then`` visible."""
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_selector(selector, state="visible", timeout=timeout_s * 1000)
    t1 = time.perf_counter() - t0
    if then:
        page.wait_for_selector(then, state="visible", timeout=timeout_s * 1000)
    return t1, time.perf_counter() - t0


PLOT = ".js-plotly-plot .main-svg"


def _picture(key: str, box: str | None = None) -> str:
    """A chart's first picture: its static preview (ui.common.chart_with_preview) or the drawn chart."""
    return f".st-key-pv_{box or key} img, .st-key-{key} {PLOT}"


OPEN = {  # page -> (its first meaningful picture, the interactive chart drawn or None, label)
    "": ("[data-testid='stPageLink']", None, "Home: the preset cards"),
    "?": (".st-key-pv_home_race img", None, "Home: its example race (a picture, below the cards)"),
    "landscape": (_picture("ls_contour", "ls_map"), f".st-key-ls_contour {PLOT}", "Landscape lab: the race map"),
    "saddle": ("[data-testid='stMain'] h1", None, "Saddle: title + controls (no plot until Run)"),
    "quadratics": ("[data-testid='stMetric']", None, "Quadratics: the problem's constants"),
    "edge_of_stability": (_picture("eos_theory_fig"), f".st-key-eos_theory_fig {PLOT}", "Edge of stability: theory"),
    "training": ("[data-testid='stMain'] h1", None, "Training lab"),
    "compare_runs": ("[data-testid='stMain'] h1", None, "Compare runs"),
    "sweeps": ("[data-testid='stMain'] h1", None, "Sweeps"),
    "about": ("[data-testid='stMain'] h1", None, "About"),
}


def bench_open(browser, url: str, args) -> None:
    for path, (sel, then, label) in OPEN.items():
        xs = []
        for _ in range(max(1, args.repeat // 2)):
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            xs.append(first_picture(page, f"{url}/{path.strip('?')}", sel, args.timeout, then))
            wait_for_app(page, settle_s=0.3)
            ctx.close()
        row(f"open → first picture · {label}", pct([x[0] for x in xs]), "target ≤ 2 s")
        if then:
            row("    … and its interactive chart drawn", pct([x[1] for x in xs]))
    shared = f"{url}/landscape?fn=rosenbrock&variants=sgd,sam,ssam&lr=0.001&steps=800&x0=-1.5&y0=2"
    xs = []
    for _ in range(max(1, args.repeat // 2)):
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        xs.append(
            first_picture(page, shared, _picture("ls_contour", "ls_map"), args.timeout, f".st-key-ls_contour {PLOT}")
        )
        ctx.close()
    row("shared Landscape URL (rosenbrock) → race drawn", pct([x[0] for x in xs]), "target ≤ 3 s")
    row("    … and its interactive chart drawn", pct([x[1] for x in xs]))


COLD = ("", "landscape", "quadratics")  # pages timed as the first visitor of a fresh server


def bench_cold(browser, args) -> None:
    """A fresh server per round, each page opened at once: what the first visitor after `make run` waits."""
    for path in COLD:
        sel, then, label = OPEN[path]
        xs = []
        for _ in range(max(1, args.repeat // 2)):
            base = Path(tempfile.mkdtemp(prefix="samlab-cold-"))
            (base / "runs").mkdir()
            (base / "data").mkdir()
            with streamlit_server(base / "runs", base / "data", "bench-cold-server.log") as url:
                ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
                page = ctx.new_page()
                xs.append(first_picture(page, f"{url}/{path.strip('?')}", sel, args.timeout, then)[0])
                wait_for_app(page, settle_s=0.3)
                ctx.close()
        row(f"fresh server, first open → first picture · {label}", pct(xs), "one visitor per server start")


def _slider_changes(page, n: int, key_sel: str, timeout_s: float) -> tuple[list[float], list[float]]:
    """Seconds from each lr change to the race map redrawn, and to the metric panels beside it redrawn."""
    out, panels = [], []
    slider = page.locator(f"{key_sel} input[type='range']").first
    for i in range(n):
        wait_for_app(page, settle_s=0.3)
        before = plot_signature(page, ".st-key-ls_contour")
        before_m = plot_signature(page, ".st-key-ls_metrics")
        slider.focus()
        t0 = time.perf_counter()
        slider.press("ArrowRight")
        try:
            wait_plot_change(page, before, ".st-key-ls_contour", timeout_s)
            out.append(time.perf_counter() - t0)
            wait_plot_change(page, before_m, ".st-key-ls_metrics", timeout_s)
            panels.append(time.perf_counter() - t0)
        except Exception:  # noqa: BLE001 - say what the page showed, then fail
            print(f"    change {i}: lr shows {slider.get_attribute('aria-valuetext')}, plot unchanged", flush=True)
            raise
    return out, panels


TOGGLE_JS = """([chart, timeoutMs]) => {
  // Timed in the page, from now: the first animation frame in which the race's box shows a picture other than
  // the one it showed before (ui.common.chart_with_preview(fresh=True)), and plotly's afterplot of ``chart``.
  const box = '.st-key-pv_ls_map', img0 = document.querySelector(box + ' img'), src0 = img0 ? img0.src : '';
  const t0 = performance.now(), out = {pic: null, drawn: null};
  const hook = () => document.querySelectorAll('.st-key-' + chart + ' .js-plotly-plot').forEach(gd => {
    if (gd.__benchHooked || !gd.on) return;
    gd.__benchHooked = true;
    gd.on('plotly_afterplot', () => { if (out.drawn === null) out.drawn = (performance.now() - t0) / 1000; });
  });
  const mo = new MutationObserver(hook);
  mo.observe(document.body, {childList: true, subtree: true});
  window.__toggle = new Promise(done => {
    const tick = () => {
      const i = document.querySelector(box + ' img');
      if (out.pic === null && out.drawn === null && i && i.src !== src0 && i.complete && i.offsetHeight > 0)
        out.pic = (performance.now() - t0) / 1000;
      if (out.drawn !== null || performance.now() - t0 > timeoutMs) { mo.disconnect(); done(out); }
      else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  });
}"""


def bench_slider(browser, url: str, args) -> None:
    for label, q in (
        ("default race (3 variants × 500 steps)", ""),
        ("8 variants × 2 000 steps", f"?variants={ALL8}&steps=2000"),
    ):
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        page.goto(f"{url}/landscape{q}")
        page.wait_for_selector(f".st-key-ls_contour {PLOT}", timeout=args.timeout * 1000)
        xs, panels = _slider_changes(page, args.repeat, ".st-key-ls_lr_quartic", args.timeout)
        row(f"lr slider → race redrawn · {label}", pct(xs), "target p50 ≤ 1 s, p90 ≤ 2 s")
        row("    … and the metric panels beside it", pct(panels))
        if not q:
            xs = []
            for i in range(max(3, args.repeat // 2)):
                wait_for_app(page, settle_s=0.3)
                before = plot_signature(page, ".st-key-ls_contour")
                box = page.locator(".st-key-ls_contour .nsewdrag").first.bounding_box()
                t0 = time.perf_counter()
                page.mouse.click(  # off the race's paths: a click on a path's line selects nothing
                    box["x"] + box["width"] * (0.25 + 0.1 * i), box["y"] + box["height"] * (0.2 + 0.05 * i)
                )
                wait_plot_change(page, before, ".st-key-ls_contour", args.timeout)
                xs.append(time.perf_counter() - t0)
            row("click on the map → race from there", pct(xs), "target ≤ 1 s")
            pics, drawn = {"3-D surface": [], "contour": []}, {"3-D surface": [], "contour": []}
            for i in range(2 * max(2, args.repeat // 2)):
                wait_for_app(page, settle_s=0.3)
                target = "3-D surface" if i % 2 == 0 else "contour"
                chart = "ls_surface" if i % 2 == 0 else "ls_contour"
                page.evaluate(TOGGLE_JS, [chart, args.timeout * 1000])
                page.locator(".st-key-ls_view button", has_text=target).first.click()
                got = page.evaluate("window.__toggle")
                if got.get("drawn") is None:
                    raise RuntimeError(f"the {target} view did not draw in {args.timeout} s")
                pics[target].append(got["pic"] if got.get("pic") is not None else got["drawn"])
                drawn[target].append(got["drawn"])
            for target in pics:
                row(f"toggle → {target}: its picture on screen", pct(pics[target]), "target ≤ 1 s")
                row(f"toggle → {target}: interactive chart drawn", pct(drawn[target]))
        ctx.close()


def _wait_finished(page, timeout_s: float) -> None:
    page.get_by_text("Finished in").first.wait_for(state="attached", timeout=timeout_s * 1000)


def _first_plot(page, sel: str, timeout_s: float) -> None:
    page.wait_for_selector(sel, state="attached", timeout=timeout_s * 1000)


def _from_home(page, url: str, title: str, timeout_s: float) -> float:
    """Open Home, click the preset card ``title`` (in-app navigation, as a visitor does); the click time."""
    page.goto(f"{url}/")
    page.wait_for_selector("[data-testid='stPageLink']", timeout=timeout_s * 1000)
    wait_for_app(page, settle_s=0.5)
    t0 = time.perf_counter()
    page.locator("[data-testid='stPageLink']", has_text=title).first.click()
    return t0


def _time_job(page, t0: float, first_sel: str, key: str, label: str, note: str, args, page_times: dict) -> None:
    """Row: from ``t0`` to the job's first drawn plot and to its 'Finished in' caption."""
    try:
        _first_plot(page, first_sel, args.timeout)
        t1 = time.perf_counter() - t0
        _wait_finished(page, args.timeout)
        t2 = time.perf_counter() - t0
        page_times[key] = t2
        row(f"{label} → first curve / finished", f"{t1:.1f} / {t2:.1f} s", note)
    except Exception as exc:  # noqa: BLE001 - a timeout is a result here
        row(f"{label} → finished", f"> {args.timeout} s", type(exc).__name__)


def bench_presets(browser, url: str, args, page_times: dict) -> None:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    # Stable SAM Fig. 2: the Home card opens the Landscape lab on its Sweeps tab and runs the sweep
    t0 = _from_home(page, url, "Why SAM fails", args.timeout)
    _time_job(
        page,
        t0,
        ".st-key-ls_sweep_fig .js-plotly-plot",
        "sweep",
        "Home card 'Why SAM fails' (Fig. 2 sweep)",
        f"{SWEEP['swn']} lrs × {SWEEP['swstarts']} starts × {SWEEP['swsteps']} steps",
        args,
        page_times,
    )
    for key, title, first_sel in (
        ("saddle", "SAM stuck at a saddle", ".st-key-saddle_loss .js-plotly-plot"),
        ("eos", "The SAM edge of stability", ".st-key-eos_fig .js-plotly-plot"),
    ):
        t0 = _from_home(page, url, title, args.timeout)
        _time_job(page, t0, first_sel, key, f"Home card '{title}'", "", args, page_times)
    t0 = time.perf_counter()
    page.goto(f"{url}/quadratics?run=1")
    _time_job(
        page,
        t0,
        ".st-key-quadratics_curves .js-plotly-plot",
        "quadratics",
        "Quadratics defaults (both extra experiments), URL run=1",
        "",
        args,
        page_times,
    )
    ctx.close()


def _tabs_finish(browser, url: str, q: str, n: int, timeout_s: float) -> list[float]:
    """``n`` fresh tabs open the saddle page's link at the same moment; each one's seconds to 'Finished in'."""
    ctxs = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(n)]
    pages = [c.new_page() for c in ctxs]
    t0 = time.perf_counter()
    for pg in pages:
        pg.goto(f"{url}/saddle?{q}", wait_until="commit")
    done: dict[int, float] = {}
    deadline = time.perf_counter() + timeout_s
    while len(done) < n and time.perf_counter() < deadline:  # whichever finishes first, each timed on its own
        for i, pg in enumerate(pages):
            if i not in done and pg.get_by_text("Finished in").count():
                done[i] = time.perf_counter() - t0
        time.sleep(0.1)
    for c in ctxs:
        c.close()
    return sorted(done.values()) if len(done) == n else []


def bench_two_tabs(browser, url: str, args) -> None:
    """Two visitors open the saddle preset's link at the same moment: both finished, against one visitor
    opening the same link alone (the same path: a fresh tab, the page's load, the job, its drawing)."""
    q = urlencode(SADDLE_LINK)
    one = _tabs_finish(browser, url, q, 1, 2 * args.timeout)
    two = _tabs_finish(browser, url, q, 2, 2 * args.timeout)
    if one and two:
        row(
            "two tabs open the saddle preset's link at once → first / second finished",
            f"{two[0]:.1f} / {two[1]:.1f} s",
            f"one tab alone: {one[0]:.1f} s; second / alone {two[1] / one[0]:.2f}×",
        )
    else:
        row("two tabs open the saddle preset's link at once", f"> {2 * args.timeout} s", "timeout")


def bench_cli(args, page_times: dict) -> None:
    py = sys.executable
    out = Path(tempfile.mkdtemp())
    cmds = {
        "sweep": [
            py,
            "-m",
            "demos.stability_sweep",
            "--function",
            SWEEP["fn"],
            "--variants",
            SWEEP["variants"],
            "--rho",
            SWEEP["swrhos"],
            "--lrs",
            f"{SWEEP['swlo']}:{SWEEP['swhi']}:{SWEEP['swn']}",
            "--starts",
            SWEEP["swstarts"],
            "--steps",
            SWEEP["swsteps"],
            "--tol",
            "0.2",
            "--csv",
            str(out / "s.csv"),
        ],
        "saddle": [
            py,
            "-m",
            "demos.saddle_escape",
            "--variants",
            SADDLE["variants"],
            "--rho",
            SADDLE["rho"],
            "--seeds",
            SADDLE["seeds"],
            "--epochs",
            SADDLE["epochs"],
            "--lr",
            SADDLE["lr"],
            "--d",
            SADDLE["d"],
            "--n-samples",
            SADDLE["n"],
            *{"minibatch": ["--batch-size", SADDLE["batch"]], "full": ["--full-batch"], "population": ["--population"]}[
                SADDLE["mode"]
            ],
            "--device",
            DEVICE,
            "--csv",
            str(out / "a.csv"),
            "--quiet",
        ],
        "eos": [
            py,
            "-m",
            "demos.edge_of_stability",
            "--variants",
            EOS["variants"],
            "--lr",
            EOS["lr"],
            "--rho",
            EOS["rho"],
            "--steps",
            EOS["steps"],
            "--every",
            EOS["every"],
            "--n",
            EOS["n"],
            "--width",
            EOS["width"],
            "--device",
            DEVICE,
            "--csv",
            str(out / "e.csv"),
            "--quiet",
        ],
        "quadratics": [py, "-m", "demos.quadratic", "--csv", str(out / "q.csv"), "--quiet"],
    }
    for key, cmd in cmds.items():
        if key not in page_times:
            continue
        t0 = time.perf_counter()
        try:
            subprocess.run(cmd, cwd=ROOT, check=True, timeout=args.timeout, stdout=subprocess.DEVNULL)
            t = time.perf_counter() - t0
            row(
                f"{key}: CLI wall time (incl. start-up) · page / CLI",
                f"{t:.1f} s · {page_times[key] / t:.2f}×",
                "target ≤ 1.3×",
            )
        except Exception as exc:  # noqa: BLE001
            row(f"{key}: CLI", "failed", type(exc).__name__)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="open,slider,presets,tabs,cli")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    only = set(args.only.split(","))
    base = Path(tempfile.mkdtemp(prefix="samlab-bench-"))
    (base / "runs").mkdir()
    (base / "data").mkdir()
    print(f"SAM Lab in Chromium, {os.cpu_count()} CPUs; p50 / p90 where repeated", flush=True)
    page_times: dict = {}
    if "cold" in only:
        with chromium() as browser:
            bench_cold(browser, args)
    with streamlit_server(base / "runs", base / "data", "bench-server.log") as url, chromium() as browser:
        warm = browser.new_page()  # the first page of a fresh server pays imports once: not what a visitor waits for
        warm.goto(f"{url}/landscape")
        wait_for_app(warm)
        warm.close()
        if "open" in only:
            bench_open(browser, url, args)
        if "slider" in only:
            bench_slider(browser, url, args)
        if "presets" in only:
            bench_presets(browser, url, args, page_times)
        if "tabs" in only:
            bench_two_tabs(browser, url, args)
    if "cli" in only:
        bench_cli(args, page_times)
    print("\n| interaction | measured | note |\n|---|---|---|")
    for r in ROWS:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
