"""The browser harness shared by the e2e tests and ``benchmarks/bench_browser.py``.

``streamlit_server`` starts the app as ``make run`` does (``python -m ui.serve``, which runs ``streamlit run
app.py``) on a free port (own runs/data folders, offline);
``chromium`` launches Debian's Chromium headless through Playwright (never a downloaded browser);
``wait_for_app`` waits until the Streamlit script has finished; the ``*_JS`` snippets read what the
plots on the page really hold (plotly.js's decoded ``_fullData``), so a test or a timing sees what a
person sees, not what the server sent.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = os.environ.get("SAMLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]

# A short signature of every plot on the page (or under a container): per trace the number of points and
# weighted sums of its first 2 000 x and y values. It changes when a redraw brings new data.
PLOT_SIG_JS = """(sel) => { const root = sel ? document.querySelector(sel) : document;
  if (!root) return null;
  const ps = Array.from(root.querySelectorAll('.js-plotly-plot')).filter(p => p._fullData && p._fullData.length);
  if (!ps.length) return null;
  const sum = (a) => { let s = 0; if (!a) return 0; const n = Math.min(a.length, 2000);
                       for (let i = 0; i < n; i++) { const v = +a[i]; if (isFinite(v)) s += v * (1 + i % 7); }
                       return s; };
  return ps.map(p => p._fullData.map(t => (t.x ? t.x.length : 0) + ':' + sum(t.x).toPrecision(12) + ':'
                                          + sum(t.y).toPrecision(12)).join('|')
                 + '/' + ((p.layout && p.layout.scene) ? '3d' : '2d')).join('#'); }"""


def pct(xs: list[float]) -> str:
    """``"p50 / p90 s"`` of a list of timings (the benchmarks' tables); "–" for none."""
    if not xs:
        return "–"
    xs = sorted(xs)
    p90 = xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]
    return f"{statistics.median(xs):.2f} / {p90:.2f} s"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(runs: Path, data: Path, log_name: str = "e2e-server.log", env_extra: dict | None = None):
    """The app as `make run` starts it (`python -m ui.serve`), on a free port; yields its base URL once
    /_stcore/health answers ok."""
    port = free_port()
    env = dict(
        os.environ,
        SAMLAB_RUNS_DIR=str(runs),
        SAMLAB_DATA=str(data),
        PYTHONUNBUFFERED="1",
        SAMLAB_OFFLINE="1",
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
        **(env_extra or {}),
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS.parent / log_name, "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ui.serve",  # `streamlit run app.py` with the core loaded first, as make run starts it
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not become healthy; see {log.name}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextlib.contextmanager
def chromium():
    """Debian's Chromium, headless, through Playwright."""
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def app_running(page) -> bool:
    w = page.locator("[data-testid='stStatusWidget']")
    return w.count() > 0 and w.first.is_visible()


def wait_for_app(page, timeout_s: float = 90.0, settle_s: float = 1.0, poll_s: float = 0.5) -> None:
    """Wait until the Streamlit script has finished running (no 'Running…' status widget in three polls
    ``poll_s`` apart, after ``settle_s``)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_s * 1000)
    deadline = time.time() + timeout_s
    time.sleep(settle_s)
    quiet = 0
    while time.time() < deadline:
        quiet = 0 if app_running(page) else quiet + 1
        if quiet >= 3:
            return
        time.sleep(poll_s)
    raise TimeoutError("the app kept running")


def plot_signature(page, selector: str | None = None):
    return page.evaluate(PLOT_SIG_JS, selector)


def wait_plot_change(page, before, selector: str | None = None, timeout_s: float = 120.0) -> None:
    """Block until the plots (under ``selector``) hold data different from ``before`` (polled per frame)."""
    page.wait_for_function(
        f"([sel, before]) => {{ const s = ({PLOT_SIG_JS})(sel); return s !== null && s !== before; }}",
        arg=[selector, before],
        polling="raf",
        timeout=timeout_s * 1000,
    )


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
