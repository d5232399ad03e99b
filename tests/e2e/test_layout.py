"""Every page reads at a laptop's 1024×768 and a classroom projector's 1280×720: screenshots of each page
after its preset (artifacts/e2e/layout_<page>_<w>x<h>.png), and DOM checks of what a person would see as
broken layout:

* plotly charts: a legend overlapping the chart's title or a subplot title, subplot titles running into
  each other, the modebar (toolbar, shown on hover) lying on the legend, a legend entry cut off by the
  chart's edge;
* KaTeX formulas wider than their container (the overflow is clipped), measured by the ``.katex`` box
  against its display block and by ``scrollWidth > clientWidth``; ``st.metric`` values cut with "…";
* the Landscape lab: the race map starts above the fold, the "3-D surface" button is not clipped.

Each check reads bounding boxes from the browser (``getBoundingClientRect``), so it fails on the layout it
describes: ``test_checks_catch_a_broken_layout`` builds such a layout in the page and expects every check
to report it. One server, the session's browser; each page is opened once and the window resized through the viewports
(a resize re-lays the page out as a new window of that size would, without running its lab job again).
"""

from __future__ import annotations

import os
import time

import pytest

from sam_core.training import RunConfig, RunStore, launch_variants

from .conftest import screenshot, wait_for_app

VIEWPORTS = [(1280, 720), (1024, 768)]

# page -> (url, text it must show). The presets are Home's links, with small configurations for the lab jobs
PAGES = {
    "home": ("", "SAM Lab"),
    "landscape": ("landscape?fn=quartic&variants=sgd,sam,ssam&lr=0.3&sam.rho=0.1&ssam.rho=0.1", "Landscape"),
    "saddle": ("saddle?variants=sgd,sam,ssam&rho=0.05,0.2&run=1&epochs=40&seeds=2", "Escape"),
    "quadratics": ("quadratics?run=1&steps=200&seeds=2", "Quadratic"),
    "edge_of_stability": (
        "edge_of_stability?variants=sgd,sam&lr=0.4&rho=0.05&run=1&steps=100&every=20",
        "edge of stability",
    ),
    "training": ("training", "Training"),
    "compare_runs": ("compare_runs", "Compare"),
    "sweeps": ("sweeps", "Sweep"),
    "about": ("about", "About SAM Lab"),
}

# ---------------------------------------------------------------------------------------- DOM checks
OVERLAP_JS = """() => {
  const R = (e) => { const r = e.getBoundingClientRect(); return {l: r.left, t: r.top, r: r.right, b: r.bottom,
                                                                  w: r.width, h: r.height}; };
  const hit = (a, b) => Math.min(a.r, b.r) - Math.max(a.l, b.l) > 1 && Math.min(a.b, b.b) - Math.max(a.t, b.t) > 1;
  const txt = (e) => (e.textContent || '').trim().slice(0, 60);
  const out = [];
  document.querySelectorAll('.js-plotly-plot').forEach((p, k) => {
    const box = R(p);
    if (box.w < 2 || box.h < 2) return;  // in a hidden tab
    const name = (p.closest('[class*="st-key-"]') || {}).className || `plot ${k}`;
    const key = (String(name).match(/st-key-[^ ]+/) || [name])[0];
    const legend = p.querySelector('.legend');
    const lg = legend ? R(legend.querySelector('.bg') || legend) : null;
    const titles = Array.from(p.querySelectorAll('.g-gtitle .gtitle, .gtitle')).filter(e => txt(e));
    // subplot titles are annotations placed above each panel (make_subplots): the infolayer's annotations
    const subs = Array.from(p.querySelectorAll('.infolayer .annotation')).filter(e => txt(e));
    if (lg && lg.w > 1) {
      for (const t of titles.concat(subs)) if (hit(lg, R(t))) out.push(`${key}: legend overlaps title "${txt(t)}"`);
      const mb = p.querySelector('.modebar');
      if (mb) { const m = R(mb); if (m.w > 1 && hit(lg, m)) out.push(`${key}: the modebar covers the legend`); }
      legend.querySelectorAll('.legendtext').forEach(t => { const r = R(t);
        if (r.w > 0 && (r.r > box.r + 1 || r.l < box.l - 1)) out.push(`${key}: legend entry cut off: "${txt(t)}"`); });
    }
    const all = titles.concat(subs);
    for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++)
      if (hit(R(all[i]), R(all[j]))) out.push(`${key}: titles collide: "${txt(all[i])}" / "${txt(all[j])}"`);
  });
  return out;
}"""

# Streamlit centres a display formula in a flex box as wide as the formula, so the formula is measured against
# the element's container; its display block overflows by a pixel or two of KaTeX struts when it fits, by the
# clipped part when it does not
KATEX_JS = """() => {
  const out = [];
  const all = Array.from(document.querySelectorAll('.katex-display')).concat(
      Array.from(document.querySelectorAll('.katex')).filter(k => !k.closest('.katex-display')));
  all.forEach(d => {
    const block = d.classList.contains('katex-display') ? d : d.parentElement;
    const k = d.querySelector('.katex-html') || d;
    const cont = d.closest('[data-testid="stElementContainer"], [data-testid="element-container"]') || block;
    const cw = cont.getBoundingClientRect().width;
    if (cw < 2) return;  // in a hidden tab or expander
    const kw = k.getBoundingClientRect().width;
    const t = (d.textContent || '').trim().slice(0, 50);
    if (kw > cw + 1) out.push(`formula ${Math.round(kw)} px wide in a ${Math.round(cw)} px box: "${t}"`);
    else if (block.scrollWidth > block.clientWidth + 4)
      out.push(`formula clipped: its block scrolls (scrollWidth ${block.scrollWidth} > ${block.clientWidth}): "${t}"`);
  });
  return out;
}"""

# st.metric values cut with an ellipsis (too many metrics in a row)
METRIC_JS = """() => Array.from(
  document.querySelectorAll('[data-testid="stMetricValue"] > div, [data-testid="stMetricValue"]'))
  .filter(e => e.getBoundingClientRect().width > 1 && e.scrollWidth > e.clientWidth + 1)
  .map(e => `metric value cut: "${(e.textContent || '').trim()}"`)"""

# the Landscape lab: the race map must start above the fold and the view buttons must show whole
LANDSCAPE_JS = """() => {
  const out = [];
  const map = document.querySelector('.st-key-ls_contour .js-plotly-plot, .st-key-ls_surface .js-plotly-plot');
  if (!map) out.push('no race map');
  else { const r = map.getBoundingClientRect(); const y = r.top + window.scrollY;
         if (y > 0.6 * window.innerHeight)
           out.push(`the race map starts at y=${Math.round(y)}, below 60 % of the ${window.innerHeight} px window`);
         if (r.height < 0.45 * window.innerHeight)
           out.push(`the race map is ${Math.round(r.height)} px high: a thumbnail`); }
  document.querySelectorAll('.st-key-ls_view button').forEach(b => {
    const r = b.getBoundingClientRect(); const t = (b.textContent || '').trim();
    const p = b.closest('[data-testid="stElementContainer"]') || b.parentElement; const c = p.getBoundingClientRect();
    if (b.scrollWidth > b.clientWidth + 1 || r.right > c.right + 1 || r.right > window.innerWidth)
      out.push(`view button "${t}" is clipped`); });
  return out;
}"""


# Streamlit scrolls its main area inside a fixed-height box, so a full-page screenshot shows one window's
# worth: for the "whole page" shot the box grows to its content (same width, so the same layout)
UNSCROLL_JS = """() => { for (const sel of ['html', 'body', '#root', '[data-testid="stApp"]',
                                           '[data-testid="stAppViewContainer"]', '[data-testid="stMain"]']) {
  document.querySelectorAll(sel).forEach(e => { e.style.setProperty('height', 'auto', 'important');
    e.style.setProperty('overflow', 'visible', 'important'); }); } }"""
RESCROLL_JS = UNSCROLL_JS.replace(
    "e.style.setProperty('height', 'auto', 'important')", "e.style.removeProperty('height')"
).replace("e.style.setProperty('overflow', 'visible', 'important')", "e.style.removeProperty('overflow')")


def page_shots(page, tag: str):
    """``<tag>.png``: what the window shows (above the fold); ``<tag>_full.png``: the whole page."""
    first = screenshot(page, tag)
    page.evaluate(UNSCROLL_JS)
    page.wait_for_timeout(300)
    screenshot(page, tag + "_full")
    page.evaluate(RESCROLL_JS)
    page.wait_for_timeout(300)
    return first


def problems(page, name: str) -> list[str]:
    found = page.evaluate(OVERLAP_JS) + page.evaluate(KATEX_JS) + list(dict.fromkeys(page.evaluate(METRIC_JS)))
    if name == "landscape":
        found += page.evaluate(LANDSCAPE_JS)
    return found


# ---------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def training_runs(e2e_dirs):
    """Three finished runs launched together (real workers, tiny): the Training lab and Compare runs overlay them."""
    runs_dir, data_dir = e2e_dirs
    mp = pytest.MonkeyPatch()
    mp.setenv("SAMLAB_OFFLINE", "1")
    mp.setenv("OMP_NUM_THREADS", "1")
    store = RunStore(runs_dir)
    cfg = RunConfig(
        dataset="cifar10",
        data_dir=str(data_dir),
        model="lenet5",
        epochs=3,
        batch_size=16,
        subset=64,
        lr=0.05,
        hessian_every=2,
        final_top_k=3,
        final_density=True,
        hessian_batch=32,
        eval_train_size=64,
        log_every=1,
    )
    ids = launch_variants(store, cfg, {"sgd": {}, "sam": {"rho": 0.05}, "ssam": {"rho": 0.05}})
    deadline = time.time() + 240
    while time.time() < deadline and any(store.get(i).active for i in ids):
        time.sleep(1.0)
    mp.undo()
    infos = [store.get(i) for i in ids]
    assert all(r.status == "finished" for r in infos), [(r.id, r.status, r.message) for r in infos]
    return ids


def _open(browser, server, name, size):
    ctx = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = ctx.new_page()
    page.set_default_timeout(90_000)
    url, must = PAGES[name]
    page.goto(f"{server}/{url}")
    wait_for_app(page)
    if "run=1" in url:  # the lab job streams into the page: wait until it has finished
        page.get_by_text("Finished in").first.wait_for(state="attached", timeout=120_000)
        wait_for_app(page, settle_s=0.5)
    assert page.locator("[data-testid='stException']").count() == 0
    assert must in page.inner_text("[data-testid='stMain']")
    if name == "landscape":  # the map's picture comes first; on a busy box plotly.js may draw the chart seconds later
        for chart in ("ls_contour", "ls_metrics"):  # both have their margins given: check them drawn
            page.wait_for_selector(f".st-key-{chart} .js-plotly-plot .main-svg", timeout=90_000)
    page.wait_for_timeout(600)  # plotly lays out legends and titles after the first paint
    return ctx, page


def _resize(page, size) -> None:
    """The same page in another window size: the layout (CSS, plotly's autosize) follows the window, so each
    size is checked without opening the page, and running its lab job, again."""
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.wait_for_function(
        "([w, h]) => window.innerWidth === w && window.innerHeight === h", arg=list(size), timeout=10_000
    )
    wait_for_app(page, settle_s=0.3)
    page.wait_for_timeout(600)  # plotly relayouts on the window's resize event (debounced)


# each page is opened at its first size and resized through the others; the Landscape lab also at a small window
SIZES = {name: VIEWPORTS + ([(800, 600)] if name == "landscape" else []) for name in PAGES}


def _view(page, label: str) -> None:
    page.locator(".st-key-ls_view button", has_text=label).click()
    wait_for_app(page, settle_s=0.5)


@pytest.mark.parametrize("name", list(PAGES))
def test_page_layout(server, browser, training_runs, name):
    ctx, page = _open(browser, server, name, SIZES[name][0])
    found, shots = [], []
    try:
        for i, size in enumerate(SIZES[name]):
            if i:
                _resize(page, size)
            tag = f"layout_{name}_{size[0]}x{size[1]}"
            where = f"{size[0]}x{size[1]}"
            if name == "landscape" and i:  # left in 3-D by the size before: back to the contour first
                _view(page, "contour")
            if name == "edge_of_stability" and i:  # left on the Live tab by the size before
                page.get_by_role("tab", name="Theory").click()
                page.wait_for_timeout(800)
            found += [f"{where}: {p}" for p in problems(page, name)]
            shots.append(page_shots(page, tag).name)
            if name == "edge_of_stability":  # the Theory tab is open first; the live chart sits in the second tab
                page.get_by_role("tab", name="Live training").click()
                page.wait_for_timeout(800)
                found += [f"{where} live: {p}" for p in problems(page, name)]
                page_shots(page, tag + "_live")
            if name == "landscape":  # the 3-D view too
                _view(page, "3-D surface")
                found += [
                    f"{where} 3-D: {p}" for p in problems(page, name) if "race map" not in p or "no race map" in p
                ]
                page_shots(page, tag + "_3d")
        assert not found, f"{', '.join(shots)}:\n" + "\n".join(found)
    finally:
        ctx.close()


def test_checks_catch_a_broken_layout(server, browser):
    """Every check reports the fault it names when the page is given that fault: a legend moved onto the
    title, a formula in a box too narrow for it, the race map pushed below the fold."""
    ctx = browser.new_context(viewport={"width": 1024, "height": 768})
    page = ctx.new_page()
    page.set_default_timeout(90_000)
    try:
        page.goto(f"{server}/{PAGES['landscape'][0]}")
        wait_for_app(page)
        page.wait_for_selector(".st-key-ls_metrics .js-plotly-plot .legend, .st-key-ls_contour .js-plotly-plot .legend")
        # a title drawn under the legend (where the old layout put the legend: on the title)
        overlap = page.evaluate("""() => { const p = document.querySelector('.st-key-ls_contour .js-plotly-plot');
            const lg = p.querySelector('.legend');
            const t = document.createElementNS('http://www.w3.org/2000/svg', 'text');
            const r = lg.getBoundingClientRect(); const svg = p.querySelector('.infolayer');
            const g = document.createElementNS('http://www.w3.org/2000/svg', 'g'); g.setAttribute('class', 'g-gtitle');
            t.setAttribute('class', 'gtitle'); t.textContent = 'A title under the legend';
            const s = svg.ownerSVGElement.getBoundingClientRect();
            t.setAttribute('x', r.left - s.left + 4); t.setAttribute('y', r.top - s.top + r.height / 2);
            g.appendChild(t); svg.appendChild(g); return true; }""")
        assert overlap
        assert any("legend overlaps title" in p for p in page.evaluate(OVERLAP_JS))
        # a formula in a column too narrow for it
        page.evaluate("""() => { const d = document.querySelector('.katex-display');
            d.closest('[data-testid="stElementContainer"]').style.width = '120px'; d.style.overflow = 'hidden'; }""")
        assert any("formula" in p for p in page.evaluate(KATEX_JS))
        # the race map pushed below the fold
        page.evaluate("""() => { const m = document.querySelector('.st-key-ls_contour');
            m.style.marginTop = '2000px'; }""")
        assert any("below" in p for p in page.evaluate(LANDSCAPE_JS))
    finally:
        ctx.close()


if os.environ.get("SAMLAB_LAYOUT_DEBUG"):  # pragma: no cover  (prints every page's problems, no assertion)

    def test_print_problems(server, browser, training_runs):
        for name in PAGES:
            for size in VIEWPORTS:
                ctx, page = _open(browser, server, name, size)
                print(name, size, problems(page, name))
                ctx.close()
