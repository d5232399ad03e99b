"""N visitors at once: does the server stay responsive? Health-endpoint latency and page render times.

Starts ``streamlit run app.py`` on a free loopback port (as ``make run`` does) and, for each N in
``--sessions`` (default 1, 3, 6), opens N Chromium sessions on the Landscape lab at the same moment; each
then starts a Stable SAM Fig. 2 sweep (Sweeps tab → Run sweep) as a class following the teacher would.
While they work, one more visitor opens the page (the *probe*: what a newcomer waits for under load), and a
thread polls ``/_stcore/health`` every 0.25 s. Printed per N, p50 / p90:

- ``health``: latency of the health endpoint over the whole round (goal with 6 sessions: ≤ 1 s);
- ``render``: navigation → drawn race map, for the N sessions opened together, and for the probe
  (goal: ≤ 3 × the N = 1 time); and navigation → the map's first picture (its static preview, shown
  while plotly.js loads);
- ``sweep``: Run sweep → finished, per session (the server-wide job cap queues them, ``SAMLAB_MAX_JOBS``).

With ``--clients protocol`` the visitors are Streamlit's own wire protocol instead of Chromium tabs: each
opens a websocket session on the Landscape lab with the Fig. 2 sweep started from its URL (``run=1``, as the
Home card does) and times the server's render (request → the race figure sent → script finished; the race
map is picked out by its element id, since a page opened on Sweeps sends that tab first). In a
classroom every visitor's browser runs on their own laptop; six Chromium renderers on this server's two
cores measure the browsers fighting the server for the CPU, the protocol clients measure the server.

Loopback only; every wait is bounded by ``--timeout``.

    python benchmarks/bench_load.py [--sessions 1,3,6] [--clients browser,protocol] [--timeout 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import chromium, pct, streamlit_server, wait_for_app  # noqa: E402

FIG2 = "fn=quartic&variants=sgd,sam,ssam&swrhos=0.1&swlo=0.01&swhi=1.0"


class HealthPoller(threading.Thread):
    def __init__(self, url: str, timeout_s: float):
        super().__init__(daemon=True)
        self.url, self.timeout_s = f"{url}/_stcore/health", timeout_s
        self.lat: list[float] = []
        self.failures = 0
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            t0 = time.perf_counter()
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout_s) as r:
                    r.read()
                self.lat.append(time.perf_counter() - t0)
            except OSError:
                self.failures += 1
                self.lat.append(time.perf_counter() - t0)
            self.halt.wait(0.25)


# Timed inside each page, from its navigation's start (performance.now()), so that measuring costs the six
# renderers nothing while they work: polling every page from here (a CDP round trip through Playwright's
# driver per page, 20 times a second) was itself load on the two cores the browsers and the server share.
# A MutationObserver notes when the race map's static preview is on screen (ui.common.chart_with_preview)
# and when plotly.js holds the map's data (what PLOT_SIG_JS reads).
TIMING_JS = """(() => {
  const out = window.__samlabTimes = {picture: null, drawn: null};
  const check = () => {
    if (out.picture === null) {
      const img = document.querySelector('.st-key-pv_ls_map img');
      if (img && img.complete && img.naturalWidth > 0 && img.offsetParent !== null) out.picture = performance.now();
    }
    const gd = document.querySelector('.st-key-ls_contour .js-plotly-plot');
    if (gd && gd._fullData && gd._fullData.length) {
      out.drawn = performance.now();
      if (out.picture === null) out.picture = out.drawn;
      mo.disconnect();
    }
  };
  const mo = new MutationObserver(check);
  mo.observe(document, {childList: true, subtree: true, attributes: true, attributeFilter: ['src', 'style', 'class']});
  document.addEventListener('load', check, true);  // the preview's <img> decoded
})()"""


def _times(page) -> dict:
    try:
        return page.evaluate("() => window.__samlabTimes || {}") or {}
    except Exception:  # noqa: BLE001 - a page between navigations
        return {}


def _open_all(pages, url: str, timeout_s: float) -> tuple[list[float], list[float]]:
    """Navigate every page at once; each one's time to the race map's first picture, and to its drawn chart
    (read from the page once a second: the page times itself, TIMING_JS)."""
    for pg in pages:
        pg.add_init_script(TIMING_JS)
    for pg in pages:
        pg.goto(f"{url}/landscape?{FIG2}", wait_until="commit")
    times: dict[int, dict] = {}
    deadline = time.perf_counter() + timeout_s
    while len(times) < len(pages) and time.perf_counter() < deadline:
        time.sleep(1.0)
        for i, pg in enumerate(pages):
            got = {} if i in times else _times(pg)
            if got.get("drawn") is not None:
                times[i] = got
    inf = float("inf")
    return (
        [times[i]["picture"] / 1000 if i in times else inf for i in range(len(pages))],
        [times[i]["drawn"] / 1000 if i in times else inf for i in range(len(pages))],
    )


def one_round(browser, url: str, n: int, timeout_s: float) -> dict:
    health = HealthPoller(url, timeout_s)
    health.start()
    ctxs = [browser.new_context(viewport={"width": 1280, "height": 900}) for _ in range(n)]
    pages = [c.new_page() for c in ctxs]
    pictures, renders = _open_all(pages, url, timeout_s)
    clicked = {}
    for i, pg in enumerate(pages):  # the class presses Run sweep together
        try:
            wait_for_app(pg, timeout_s=timeout_s, settle_s=0.2)
            pg.get_by_role("tab", name="Sweeps").click()
            pg.locator(".st-key-ls_run_sweep button").click(timeout=timeout_s * 1000)
            clicked[i] = time.perf_counter()
        except Exception as exc:  # noqa: BLE001 - reported, the round goes on
            print(f"  session {i}: could not start the sweep ({type(exc).__name__})", flush=True)
    probe_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    probe = _open_all([probe_ctx.new_page()], url, timeout_s)[1][0]
    sweeps: dict[int, float] = {}
    deadline = time.perf_counter() + timeout_s
    while len(sweeps) < len(clicked) and time.perf_counter() < deadline:
        for i, t in clicked.items():
            if i not in sweeps and pages[i].get_by_text("Finished in").count():
                sweeps[i] = time.perf_counter() - t
        time.sleep(0.2)
    health.halt.set()
    health.join(timeout_s)
    for c in [*ctxs, probe_ctx]:
        c.close()
    return dict(
        health=health.lat,
        failures=health.failures,
        render=renders,
        picture=pictures,
        probe=probe,
        sweep=[sweeps.get(i, float("inf")) for i in clicked],
    )


async def _protocol_open(url: str, query: str, timeout_s: float, hold_s: float = 0.0) -> tuple[float, float]:
    """One visitor over Streamlit's websocket protocol: (s to the race figure, s to script finished)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.asyncio.client import connect

    t0 = time.perf_counter()
    first_plot = finished = float("inf")
    async with connect(
        url.replace("http", "ws", 1) + "/_stcore/stream",
        subprotocols=["streamlit"],
        max_size=None,
        open_timeout=timeout_s,
    ) as ws:
        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_name = "landscape"
        await ws.send(msg.SerializeToString())
        deadline = t0 + timeout_s
        while time.perf_counter() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), deadline - time.perf_counter())
            except TimeoutError:
                break
            fm = ForwardMsg()
            fm.ParseFromString(raw)
            kind = fm.WhichOneof("type")
            el = fm.delta.new_element if kind == "delta" else None
            # the race map (its element id ends with its key): opened on Sweeps, the page sends that tab first
            if el is not None and el.WhichOneof("type") == "plotly_chart" and el.plotly_chart.id.endswith("ls_contour"):
                first_plot = min(first_plot, time.perf_counter() - t0)
            elif kind == "script_finished":
                finished = time.perf_counter() - t0
                break
        end = time.perf_counter() + hold_s  # stay a while, as a visitor whose sweep runs
        while time.perf_counter() < end:
            try:
                await asyncio.wait_for(ws.recv(), max(0.01, end - time.perf_counter()))
            except TimeoutError:
                break
    return first_plot, finished


def protocol_round(url: str, n: int, timeout_s: float, hold_s: float) -> dict:
    health = HealthPoller(url, timeout_s)
    health.start()

    async def go():
        crowd = [
            asyncio.create_task(_protocol_open(url, f"{FIG2}&tab=sweeps&run=1", timeout_s, hold_s)) for _ in range(n)
        ]
        await asyncio.sleep(0.5)  # a newcomer arrives while the class renders and sweeps
        probe = await _protocol_open(url, FIG2, timeout_s)
        return await asyncio.gather(*crowd), probe

    box: list = []  # Playwright's sync API holds this thread's event loop: the visitors get their own thread
    t = threading.Thread(target=lambda: box.append(asyncio.run(go())), daemon=True)
    t.start()
    t.join(3 * timeout_s)
    crowd, probe = box[0] if box else ([(float("inf"),) * 2] * n, (float("inf"),) * 2)
    health.halt.set()
    health.join(timeout_s)
    return dict(
        health=health.lat,
        failures=health.failures,
        render=[c[0] for c in crowd],
        finished=[c[1] for c in crowd],
        probe=probe[0],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sessions", default="1,3,6")
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--clients", default="browser,protocol", help="browser (Chromium tabs) and/or protocol")
    ap.add_argument("--hold", type=float, default=20.0, help="protocol visitors stay this long (s)")
    args = ap.parse_args()
    ns = [int(x) for x in args.sessions.split(",")]
    base = Path(tempfile.mkdtemp(prefix="samlab-load-"))
    (base / "runs").mkdir()
    (base / "data").mkdir()
    print(
        f"SAM Lab under load: {os.cpu_count()} CPUs, SAMLAB_MAX_JOBS={os.environ.get('SAMLAB_MAX_JOBS', 'default')}",
        flush=True,
    )
    clients = args.clients.split(",")
    results: dict[str, dict[int, dict]] = {}
    with streamlit_server(base / "runs", base / "data", "bench-load-server.log") as url, chromium() as browser:
        warm = browser.new_page()  # a fresh server's first page pays its imports once
        warm.goto(f"{url}/landscape?{FIG2}")
        wait_for_app(warm)
        warm.close()
        for kind in clients:
            results[kind] = {}
            for n in ns:
                print(f"-- {kind}: {n} session(s)", flush=True)
                results[kind][n] = (
                    one_round(browser, url, n, args.timeout)
                    if kind == "browser"
                    else protocol_round(url, n, args.timeout, args.hold)
                )
                if kind == "protocol":
                    time.sleep(5)
    for kind, res in results.items():
        if kind == "browser":
            pic_alone = statistics.median(res[ns[0]]["picture"]) if ns else float("nan")
            print("\nbrowser visitors: navigation → the race map's first picture (its static preview)")
            print("| sessions | first picture p50 / p90 (× alone) |\n|---|---|")
            for n, r in res.items():
                print(f"| {n} | {pct(r['picture'])} ({statistics.median(r['picture']) / pic_alone:.2f}×) |")
        alone = statistics.median(res[ns[0]]["render"]) if ns else float("nan")
        what = "drawn race map in Chromium" if kind == "browser" else "race figure sent by the server"
        last = "sweep finished p50 / p90" if kind == "browser" else "script finished p50 / p90"
        print(f"\n{kind} visitors (render = navigation → {what})")
        print(f"| sessions | health p50 / p90 (max) | render p50 / p90 (× alone) | probe render | {last} |")
        print("|---|---|---|---|---|")
        for n, r in res.items():
            ren = r["render"]
            ratio = statistics.median(ren) / alone if alone else float("nan")
            fail = f", {r['failures']} failed" if r["failures"] else ""
            print(
                f"| {n} | {pct(r['health'])} ({max(r['health'], default=0):.2f} s{fail}) | {pct(ren)} ({ratio:.2f}×) "
                f"| {r['probe']:.2f} s ({r['probe'] / alone:.2f}×) | {pct(r.get('sweep', r.get('finished', [])))} |"
            )
    print("\ngoal with 6 sessions: health ≤ 1 s, a render ≤ 3 × its time alone")


if __name__ == "__main__":
    main()
