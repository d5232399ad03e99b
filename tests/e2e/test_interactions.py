"""Browser interactions: a slider on the landscape page redraws the race; a training run launched
from the page streams γ_t into its chart."""

import re
import time

from playwright.sync_api import expect

from .conftest import E2E_ENV, screenshot, streamlit_server, wait_for_app
from .harness import plot_signature, wait_plot_change

PLOT_DATA_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(p =>
    JSON.stringify((p._fullData || []).map(t => [t.name || '', t.x ? Array.from(t.x).slice(0, 400) : [],
                                                     t.y ? Array.from(t.y).slice(0, 400) : []])))"""


def plots(page):
    return page.evaluate(PLOT_DATA_JS)


def test_slider_changes_the_landscape_plot(server, page):
    page.goto(f"{server}/landscape")
    wait_for_app(page)
    before = plots(page)
    deadline = time.time() + 60  # the first page of a fresh server can look idle before its charts arrive
    while not (before and any(len(p) > 20 for p in before)) and time.time() < deadline:
        time.sleep(0.5)
        before = plots(page)
    assert before and any(len(p) > 20 for p in before)
    slider = page.locator(".st-key-ls_mom input[type='range']")  # the momentum slider (react-aria range input)
    slider.focus()
    for _ in range(30):  # 0.00 -> 0.30
        slider.press("ArrowRight")
    wait_for_app(page)
    deadline = time.time() + 30
    while plots(page) == before and time.time() < deadline:
        time.sleep(0.5)
    after = plots(page)
    assert after != before
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "landscape_after_slider")


DRAWS_JS = """() => { window.__draws = {};  // plotly draws per chart from now on
  for (const k of ['ls_contour', 'ls_metrics']) {
    const gd = document.querySelector('.st-key-' + k + ' .js-plotly-plot');
    window.__draws[k] = 0;
    if (!gd.__counted) { gd.__counted = true; gd.on('plotly_afterplot', () => window.__draws[k]++); } } }"""


def test_a_slider_change_draws_each_race_chart_once(server, page):
    """The race's map and metric panels are updated in place (ui.plotly_live): one plotly draw each per lr
    change. st.plotly_chart drew every new figure twice (its theme effect re-sends the figure to Plotly)."""
    page.goto(f"{server}/landscape")
    wait_for_app(page)
    page.wait_for_selector(".st-key-ls_metrics .js-plotly-plot .main-svg", timeout=90_000)
    page.wait_for_selector(".st-key-ls_contour .js-plotly-plot .main-svg", timeout=90_000)
    slider = page.locator(".st-key-ls_lr_quartic input[type='range']").first
    for _ in range(2):
        wait_for_app(page, settle_s=0.5)
        page.evaluate(DRAWS_JS)
        before = plot_signature(page, ".st-key-ls_metrics")
        slider.focus()
        slider.press("ArrowRight")
        wait_plot_change(page, before, ".st-key-ls_metrics", 60)
        wait_for_app(page, settle_s=1.5)  # a second draw would come 0.25–0.35 s after the first
        assert page.evaluate("window.__draws") == {"ls_contour": 1, "ls_metrics": 1}
    assert page.locator("[data-testid='stException']").count() == 0


THEME_JS = """(sel) => { const L = document.querySelector(sel + ' .js-plotly-plot')._fullLayout;
  return {font: [L.font.family, L.font.color, L.font.size], legend: L.legend.font.color, paper: L.paper_bgcolor,
          plot: L.plot_bgcolor, tick: L.yaxis.tickfont.color, grid: L.yaxis.showgrid ? L.yaxis.gridcolor : 'off',
          xgrid: L.xaxis.showgrid,
          hover: [L.hoverlabel.bgcolor, L.hoverlabel.bordercolor]}; }"""


def test_the_race_charts_look_like_streamlits_own(server, page):
    """ui.plotly_live brings its own copy of Streamlit's chart theme: compare it with what st.plotly_chart's
    theme gives a chart of this app (the edge-of-stability theory plot), so a Streamlit upgrade that changes
    its look shows up here."""
    page.goto(f"{server}/edge_of_stability")
    wait_for_app(page)
    page.wait_for_selector(".st-key-eos_theory_fig .js-plotly-plot .main-svg", timeout=90_000)
    streamlit_theme = page.evaluate(THEME_JS, ".st-key-eos_theory_fig")
    page.goto(f"{server}/landscape")
    wait_for_app(page)
    page.wait_for_selector(".st-key-ls_metrics .js-plotly-plot .main-svg", timeout=90_000)
    for chart in ("ls_metrics", "ls_contour"):
        page.wait_for_selector(f".st-key-{chart} .js-plotly-plot .main-svg", timeout=90_000)
        ours = page.evaluate(THEME_JS, f".st-key-{chart}")
        assert ours["font"][0].split(",")[0] == streamlit_theme["font"][0].split(",")[0], (ours, streamlit_theme)
        assert ours["font"][1:] == streamlit_theme["font"][1:]
        if ours["grid"] == "off":  # the map has no grid lines of its own
            ours["grid"] = streamlit_theme["grid"]
        assert {k: v for k, v in ours.items() if k != "font"} == {
            k: v for k, v in streamlit_theme.items() if k != "font"
        }


CELL_CENTRE_JS = """([x, y]) => { const gd = document.querySelector('.st-key-ls_contour .js-plotly-plot');
  const r = gd.querySelector('.nsewdrag').getBoundingClientRect();
  return [r.left + gd._fullLayout.xaxis.c2p(x), r.top + gd._fullLayout.yaxis.c2p(y)]; }"""


def test_a_click_on_the_map_starts_the_race_there(server, page):
    """A click on the contour map selects the nearest point of its invisible grid, even in the middle of a grid
    cell (the farthest a click can be from every point): x₀, y₀ take that point and the race starts there."""
    page.goto(f"{server}/landscape")
    wait_for_app(page)
    page.wait_for_selector(".st-key-ls_contour .js-plotly-plot .nsewdrag", timeout=90_000)
    step = 4 / 24  # the quartic's domain [-2, 2]² under the 25 × 25 grid (sam_core.plots.landscape)
    for i, j in ((4, 15), (17, 6)):
        want = (-2 + (i + 0.5) * step, -2 + (j + 0.5) * step)  # a cell's centre, in data coordinates
        wait_for_app(page, settle_s=0.3)
        before = plot_signature(page, ".st-key-ls_contour")
        px, py = page.evaluate(CELL_CENTRE_JS, list(want))
        page.mouse.click(px, py)
        wait_plot_change(page, before, ".st-key-ls_contour", 60)
        wait_for_app(page, settle_s=0.3)
        side = page.locator("[data-testid='stSidebar']")
        got = [float(side.locator(f"input[aria-label='{k}']").input_value()) for k in ("x₀", "y₀")]
        assert all(abs(g - w) <= step / 2 + 1e-3 for g, w in zip(got, want)), (got, want)  # a corner of that cell
        start = page.evaluate("""() => { const gd = document.querySelector('.st-key-ls_contour .js-plotly-plot');
            const t = gd._fullData.find(t => t.name === 'start'); return t ? [+t.x[0], +t.y[0]] : null; }""")
        assert start is not None and all(abs(a - b) < 1e-3 for a, b in zip(start, got)), (start, got)  # drawn there
        kept = page.evaluate("""() => { const gd = document.querySelector('.st-key-ls_contour .js-plotly-plot');
            const sel = gd._fullData.filter(t => t.selectedpoints != null).length;
            return sel + (gd.layout.selections || []).length; }""")
        assert kept == 0, "the new race kept the click's selection (its markers would stay faded)"
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "landscape_after_click")


GAMMA_POINTS_JS = """() => {
  const p = document.querySelector('.st-key-tl_fig2 .js-plotly-plot');
  if (!p || !p._fullData) return 0;  // _fullData: arrays decoded (data may hold base64 'bdata')
  return p._fullData.reduce((n, t) => n + (t.y ? Array.from(t.y).filter(v => v !== null && isFinite(v)).length : 0), 0);
}"""


def test_tiny_training_run_streams_gamma(server, page):
    # a shared link pre-fills the form: one SSAM run of LeNet-5 on the tiny generated CIFAR-10
    page.goto(
        f"{server}/training?variants=ssam&dataset=cifar10&model=lenet5&epochs=1&batch_size=8&subset=96&hessian_every=2"
    )
    wait_for_app(page)
    page.locator(".st-key-tl_launch button").click()
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0
    deadline = time.time() + 180
    n = 0
    while time.time() < deadline:
        n = page.evaluate(GAMMA_POINTS_JS)
        if n >= 2:
            break
        time.sleep(1.0)
    screenshot(page, "training_live")
    assert n >= 2, "the γ_t chart never received points"
    assert page.locator("[data-testid='stException']").count() == 0


def test_after_a_launch_the_form_folds_away_and_the_new_run_is_on_the_screen(server, page):
    """The open form filled the screen after Launch, so the new runs and their live curves started below it."""
    page.goto(f"{server}/training?variants=sgd&dataset=digits&model=cnn8&epochs=1&subset=200&hessian_every=0")
    wait_for_app(page)
    form = page.locator(".st-key-tl_form details").first
    if form.get_attribute("open") is None:  # other tests' runs are in this folder: the form starts folded
        page.locator(".st-key-tl_form summary").first.click()
        wait_for_app(page)
    assert form.get_attribute("open") is not None
    page.locator(".st-key-tl_launch button").click()
    done = page.get_by_text("Their live curves are below")
    expect(done).to_be_visible(timeout=60_000)
    wait_for_app(page)
    assert form.get_attribute("open") is None  # folded
    assert page.locator("[data-testid='stException']").count() == 0
    run_id = re.search(r"\d{8}-\d{6}-[0-9a-f]+", done.first.inner_text()).group(0)
    box = page.locator("[data-testid='stMain']").get_by_text(run_id).first.bounding_box()
    screenshot(page, "training_after_launch")
    assert box is not None and box["y"] < 1000, box  # the new run's panel starts within the first screen
    page.locator(".st-key-tl_form summary").first.click()  # and it opens again by hand, with its values
    wait_for_app(page)
    assert form.get_attribute("open") is not None
    assert page.locator(".st-key-tl_launch button").is_visible()


def test_deep_link_as_first_request_of_a_fresh_server(e2e_dirs, page):
    """A shared link opened before anyone visited Home still runs inside app.py's navigation."""
    runs, data = e2e_dirs
    with streamlit_server(runs, data, "e2e-fresh-server.log", env_extra=E2E_ENV) as url:
        page.goto(f"{url}/saddle?variants=sam,ssam&rho=0.1")
        wait_for_app(page)
        side = page.locator("[data-testid='stSidebarNav']")
        expect(side).to_contain_text("Dynamics lab", timeout=30_000)  # app.py's sections, not a legacy list
        expect(side).to_contain_text("Landscape lab")
        expect(page.locator("[data-testid='stMain']")).to_contain_text("Saddle escape", timeout=30_000)
        widget = page.locator(".st-key-saddle_variants")
        expect(widget).to_contain_text("Stable SAM (SSAM)", timeout=30_000)  # textContent, retried while it reruns
        assert "USAM" not in widget.text_content()  # the link's variants, not the page's defaults
        assert page.locator("[data-testid='stException']").count() == 0
        screenshot(page, "deep_link_fresh_server")


RACE_JS = """() => { const p = document.querySelector('.st-key-ls_contour .js-plotly-plot') ||
                                document.querySelector('.js-plotly-plot');
  if (!p || !p._fullData) return null;
  return p._fullData.map(t => [t.mode || '', t.x ? Array.from(t.x) : []]); }"""


def test_play_animates_the_race_from_its_frames(server, page):
    # the frames carry typed arrays (base64 'bdata'); playing must move the trails and draw the ρ-balls
    page.goto(f"{server}/landscape")
    wait_for_app(page)
    # the script has finished; under load plotly.js may still be drawing the map: wait for its data
    page.wait_for_function(f"() => ({RACE_JS})() !== null", timeout=60_000)
    end = page.evaluate(RACE_JS)
    full = max(len(x) for m, x in end if m == "lines")  # the faint full paths
    # shown at its last step, the animated trails are the line traces that are neither full paths nor empty
    trails = [i for i, (m, x) in enumerate(end) if m == "lines" and 1 < len(x) < full]
    assert trails, [(m, len(x)) for m, x in end]
    rail = page.locator(".js-plotly-plot rect.slider-rail-rect").first
    bb = rail.bounding_box()
    page.mouse.click(bb["x"] + 2, bb["y"] + bb["height"] / 2)  # back to the first frame
    time.sleep(1.0)
    page.get_by_text("▶ play").first.click()
    time.sleep(1.5)
    page.get_by_text("■ pause").first.click()
    mid = page.evaluate(RACE_JS)
    assert any(len(mid[i][1]) < len(end[i][1]) for i in trails), "playing did not move the trails"
    moving = [v for i in trails for v in mid[i][1] if v is not None]
    assert moving and all(v == v for v in moving)  # decoded numbers from the frames, no NaN
    balls = [x for m, x in mid[max(trails) + 1 :] if m in ("lines", "lines+markers")]
    assert any(any(v is not None and v == v for v in x) for x in balls), "no ascent segment or ρ-ball drawn"
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "landscape_playing")


PROGRESS_JS = """() => { const b = document.querySelector('[data-testid="stProgress"]');
  return b ? b.innerText : ''; }"""


def _percent(text):
    import re

    m = re.search(r"(\d+) %", text)
    return int(m.group(1)) if m else -1


def test_a_reload_mid_job_finds_the_job_again(server, page):
    """Reloading during a Saddle run used to lose the result (and leave the computation running unseen):
    the URL carries the job's token, so the reloaded page shows the same job, further along, then its result."""
    page.goto(f"{server}/saddle?variants=sgd,sam,usam,ssam&rho=0.01,0.05,0.2&run=1")
    wait_for_app(page)
    deadline = time.time() + 120
    while "Training" not in page.evaluate(PROGRESS_JS) and time.time() < deadline:
        time.sleep(0.2)
    assert "Training" in page.evaluate(PROGRESS_JS), "the preset did not start"
    assert "job.saddle=" in page.url
    token_url = page.url
    deadline = time.time() + 60
    while (before := _percent(page.evaluate(PROGRESS_JS))) < 5 and time.time() < deadline:
        time.sleep(0.2)
    page.reload()
    wait_for_app(page)
    assert page.url == token_url
    deadline = time.time() + 60
    while not (page.evaluate(PROGRESS_JS) or page.get_by_text("Finished in").count()) and time.time() < deadline:
        time.sleep(0.1)
    text = page.evaluate(PROGRESS_JS)
    if text:  # still running: the same job, further along — not a fresh start at 0 %
        assert _percent(text) >= before > 0, (before, text)
    deadline = time.time() + 240
    while time.time() < deadline:
        if page.get_by_text("Finished in").count() or page.get_by_text("Stopped after").count():
            break
        time.sleep(0.5)
    assert page.get_by_text("Finished in").count() == 1, "the reloaded page did not find the job's result"
    assert page.get_by_text("Press **Run**").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0
    screenshot(page, "saddle_after_reload")


def test_leaving_a_page_and_coming_back_keeps_its_state(server, page):
    """The sidebar's links carry no query string: coming back to a page used to reset it to its defaults."""
    page.goto(f"{server}/saddle?variants=sam,ssam&rho=0.1&epochs=321")
    wait_for_app(page)
    widget = page.locator(".st-key-saddle_variants")
    expect(widget).to_contain_text("Stable SAM (SSAM)", timeout=30_000)
    side = page.locator("[data-testid='stSidebarNav']")
    side.get_by_text("Edge of stability").click()
    wait_for_app(page)
    expect(page.locator("[data-testid='stMain']")).to_contain_text("SAM and the edge of stability", timeout=30_000)
    assert "epochs=321" not in page.url
    side.get_by_text("Saddle escape").click()
    wait_for_app(page)
    expect(page.locator(".st-key-saddle_variants")).to_contain_text("Stable SAM (SSAM)", timeout=30_000)
    assert "USAM" not in page.locator(".st-key-saddle_variants").text_content()  # not the page's defaults
    assert "epochs=321" in page.url
    assert page.locator(".st-key-saddle_epochs input").input_value() == "321"
    assert page.locator("[data-testid='stException']").count() == 0
