"""Every page of the dashboard opens in a real browser, finishes running, and shows no exception."""

from urllib.parse import urlencode

import pytest

from sam_core.presets import get_preset

from .conftest import screenshot, wait_for_app

PAGES = {  # url path -> text the page must show once rendered
    "": "SAM Lab",
    "landscape": "Landscape",
    # the dynamics pages start a short computation from their URL (run=1), so the screenshot shows results
    "saddle?run=1&epochs=60&seeds=2": "Escape",
    "quadratics?run=1&steps=300&seeds=2": "Quadratic",
    "edge_of_stability?run=1&steps=120&every=20": "edge of stability",
    "training": "Training",
    "compare_runs": "Compare",
    "sweeps": "Sweep",
    "about": "About SAM Lab",
}


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders_without_exception(server, page, path):
    page.goto(f"{server}/{path}")
    wait_for_app(page)
    if "run=1" in path:  # a background job streams into the page: wait until it has finished
        page.get_by_text("Finished in").first.wait_for(state="attached", timeout=120_000)  # may sit in a tab
        wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0
    assert PAGES[path] in page.inner_text("[data-testid='stMain']")
    shot = screenshot(page, path.split("?")[0] or "home")
    assert shot.stat().st_size > 10_000


LOADED_JS = "(sel) => { const i = document.querySelector(sel); return !!(i && i.complete); }"
PICTURE_JS = """(sel) => { const img = document.querySelector(sel);
  return img ? {decoded: img.complete && img.naturalWidth > 0, shown: img.offsetParent !== null,
                width: img.getBoundingClientRect().width} : null; }"""


# a picture on screen (decoded: a malformed SVG is a broken image), with a short signature of its data
SHOWN_JS = """(sel) => { const i = document.querySelector(sel);
  if (!(i && i.complete && i.naturalWidth > 0 && i.offsetParent !== null)) return null;
  return {width: i.getBoundingClientRect().width, sig: i.src.length + ':' + i.src.slice(-80)}; }"""
TRAINING_CARD = "training?" + urlencode(get_preset("label_noise").page_query("class"))  # trains its figure at once


@pytest.mark.parametrize(
    ("path", "box"),
    [
        ("landscape", "pv_ls_map"),
        ("landscape", "pv_ls_metrics"),
        ("edge_of_stability", "pv_eos_theory_fig"),
        ("saddle?run=1&epochs=400&seeds=2", "pv_saddle_loss"),  # a running job's chart, redrawn by every poll
        (TRAINING_CARD, "pv_preset_label_noise_fig"),
    ],
    ids=["landscape-map", "landscape-metrics", "eos-theory", "saddle-live", "training-card"],
)
def test_a_chart_is_pictured_before_plotly_js_arrives(server, browser, path, box):
    """With Streamlit's plotly.js chunk withheld, the page still shows its figure: the static preview decodes
    and is on screen at the chart's width; a running job's picture is replaced by the next poll's (it does not
    vanish after the first). With plotly.js let through, the chart draws over it and the preview is hidden."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        ctx.route("**/PlotlyChart.*.js", lambda route: route.abort())
        page = ctx.new_page()
        page.goto(f"{server}/{path}")
        sel = f".st-key-{box} img"
        pic = page.wait_for_function(SHOWN_JS, arg=sel, timeout=60_000, polling=50).json_value()
        assert pic["width"] > 300, pic
        assert page.locator(".js-plotly-plot").count() == 0  # no chart could draw: the picture is the preview's
        if "run=1" in path:  # run=1 or autorun=1: a later poll's picture, with more of the curves, is on screen
            later = f"(a) => {{ const p = ({SHOWN_JS})(a.sel); return !!p && p.sig !== a.sig; }}"
            page.wait_for_function(later, arg={"sel": sel, "sig": pic["sig"]}, timeout=60_000, polling=50)
    finally:
        ctx.close()
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = ctx.new_page()
        page.goto(f"{server}/{path}")
        chart = {"pv_ls_map": "ls_contour"}.get(box, box.removeprefix("pv_"))
        page.wait_for_selector(f".st-key-{chart} .js-plotly-plot .main-svg", timeout=60_000)
        wait_for_app(page)
        pic = page.evaluate(PICTURE_JS, f".st-key-{box} img")
        assert pic is None or not pic["shown"], pic  # drawn over: the preview no longer takes the chart's place
    finally:
        ctx.close()


SVG_LABEL_JS = """(sel) => { const i = document.querySelector(sel);
  if (!(i && i.complete && i.naturalWidth > 0 && i.offsetParent !== null)) return null;
  const m = atob(i.src.split(',')[1]).match(/aria-label='([^']*)'/); return m ? m[1] : ''; }"""


def test_switching_the_race_view_shows_the_new_view_as_a_picture_first(server, browser):
    """The race's contour ↔ 3-D switch: the run that switches sends the new view's picture alone and draws
    the chart in the run after it, which keeps the picture until the chart has drawn. With plotly.js
    withheld, the picture is all there is: it must be the 3-D surface's after the switch (before, the 3-D
    view had no picture, so the map went blank for the seconds of software WebGL), it must still be there
    when both runs are over, and switching back brings the contour map's picture."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        ctx.route("**/PlotlyChart.*.js", lambda route: route.abort())
        page = ctx.new_page()
        page.goto(f"{server}/landscape")
        sel = ".st-key-pv_ls_map img"
        page.wait_for_function(SHOWN_JS, arg=sel, timeout=60_000, polling=50)
        first = page.evaluate(SVG_LABEL_JS, sel)
        assert first not in (None, "3-D surface"), first
        page.locator(".st-key-ls_view button", has_text="3-D surface").first.click()
        page.wait_for_function(f"(s) => ({SVG_LABEL_JS})(s) === '3-D surface'", arg=sel, timeout=60_000, polling=50)
        wait_for_app(page)
        assert page.evaluate(SVG_LABEL_JS, sel) == "3-D surface"  # the run that draws the chart kept it
        page.locator(".st-key-ls_view button", has_text="contour").first.click()
        page.wait_for_function(f"(s) => ({SVG_LABEL_JS})(s) === {first!r}", arg=sel, timeout=60_000, polling=50)
        wait_for_app(page)
        assert page.evaluate(SVG_LABEL_JS, sel) == first
        assert page.locator("[data-testid='stException']").count() == 0
    finally:
        ctx.close()
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:  # with plotly.js: once the 3-D chart has drawn, it alone is on screen (the picture gives way to it)
        page = ctx.new_page()
        page.goto(f"{server}/landscape")
        page.wait_for_selector(".st-key-ls_contour .js-plotly-plot .main-svg", timeout=60_000)
        wait_for_app(page)
        page.locator(".st-key-ls_view button", has_text="3-D surface").first.click()
        page.wait_for_function(
            "() => { const g = document.querySelector('.st-key-ls_surface .js-plotly-plot');"
            " return !!(g && g._fullLayout && g._fullLayout.scene); }",
            timeout=60_000,
        )
        wait_for_app(page)
        pic = page.evaluate(PICTURE_JS, sel)
        assert pic is None or not pic["shown"], pic
    finally:
        ctx.close()


def test_home_race_is_a_picture_that_needs_no_plotly(server, browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        ctx.route("**/PlotlyChart.*.js", lambda route: route.abort())
        page = ctx.new_page()
        page.goto(server)
        wait_for_app(page)
        page.wait_for_function(LOADED_JS, arg=".st-key-pv_home_race img")
        pic = page.evaluate(PICTURE_JS, ".st-key-pv_home_race img")
        assert pic["decoded"] and pic["shown"], pic
        assert page.locator("[data-testid='stPageLink']").count() >= 9  # the preset cards
    finally:
        ctx.close()


@pytest.mark.parametrize(
    ("preset", "tab"), [("eos", "Live training"), ("sampling", "Sampling strategies"), ("lr_sweep", "Sweeps")]
)
def test_a_card_opens_its_page_on_the_tab_its_figure_is_in(server, page, preset, tab):
    """A Home card whose figure sits in a tab opens the page on that tab, with the figure drawn there."""
    p = get_preset(preset)
    page.goto(f"{server}/{p.page.removeprefix('pages/').removesuffix('.py')}?{urlencode(p.page_query('class'))}")
    wait_for_app(page)
    assert page.locator("[role='tab'][aria-selected='true']").first.inner_text().strip() == tab
    drawn = """() => Array.from(document.querySelectorAll("[role='tabpanel']")).some(p => p.offsetParent !== null
      && Array.from(p.querySelectorAll('.js-plotly-plot')).some(c => c._fullData && c._fullData.length))"""
    page.wait_for_function(drawn, timeout=240_000)  # the job's figure, drawn in the tab on screen


def test_a_shared_landscape_link_opens_on_the_tab_it_was_copied_from(server, page, browser):
    """The Landscape lab's tabs switched in the browser alone, so its URL never said which one was open: a
    teacher's link copied on the Basins tab opened on the Race."""
    page.goto(f"{server}/landscape?variants=sgd,sam")
    wait_for_app(page)
    selected = "[role='tab'][aria-selected='true']"
    assert page.locator(selected).first.inner_text().strip() == "Race"
    page.locator("[role='tab']", has_text="Basins").first.click()
    page.wait_for_function("() => location.search.includes('tab=basins')", timeout=30_000)
    wait_for_app(page)
    link = page.url
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        other = ctx.new_page()
        other.goto(link)
        wait_for_app(other)
        assert other.locator(selected).first.inner_text().strip() == "Basins"
        other.locator("[role='tab']", has_text="Race").first.click()  # back to the race: the map is drawn
        other.wait_for_selector(".st-key-ls_contour .js-plotly-plot .main-svg", timeout=60_000)
        other.wait_for_function("() => !location.search.includes('tab=')", timeout=30_000)
    finally:
        ctx.close()


def test_run_on_the_edge_of_stability_page_shows_the_run_it_started(server, page):
    """The page opens on its Theory tab; Run (in the sidebar) starts a run whose curves are in Live training.
    The results used to arrive in that tab unseen, with the theory still on the screen."""
    page.goto(f"{server}/edge_of_stability?steps=120&every=20&n=100&width=16")
    wait_for_app(page)
    selected = "[role='tab'][aria-selected='true']"
    assert page.locator(selected).first.inner_text().strip() == "Theory"
    page.locator(".st-key-eos_run button").click()
    page.get_by_text("Finished in").first.wait_for(timeout=120_000)
    wait_for_app(page)
    assert page.locator(selected).first.inner_text().strip() == "Live training"
    assert page.locator(".st-key-eos_fig").first.is_visible()
    page.locator("[role='tab']", has_text="Theory").first.click()  # the reader can still go back to the theory
    wait_for_app(page)
    assert page.locator(selected).first.inner_text().strip() == "Theory"
    assert page.locator(".st-key-eos_theory_fig").first.is_visible()


def test_two_cards_of_one_page_pressed_one_after_another_each_show_their_own_figure(server, page):
    """The classroom: Home's λ card, back to Home, then the sampling card (both open the Quadratics page in one
    session). The second card runs its own comparison; it used to show the first card's result."""
    page.goto(server)
    wait_for_app(page)
    for title in ("Unified SAM: USAM or SAM?", "Arbitrary sampling"):
        page.locator("[data-testid='stPageLink'] a", has_text=title).first.click()
        page.get_by_text("Finished in").first.wait_for(timeout=120_000)
        wait_for_app(page)
        if title != "Arbitrary sampling":
            page.locator("[data-testid='stSidebarNav'] a", has_text="Home").first.click()
            wait_for_app(page)
    assert "job.quadratics=" in page.url  # a job of its own, whose token the page wrote into the URL
    names = page.evaluate(
        """() => Array.from(document.querySelectorAll("[role='tabpanel']")).filter(p => p.offsetParent !== null)
             .flatMap(p => Array.from(p.querySelectorAll('.js-plotly-plot')))
             .flatMap(p => (p._fullData || []).map(t => t.name || ''))"""
    )
    assert any("importance" in n for n in names), names  # the sampling comparison, in the tab on screen
