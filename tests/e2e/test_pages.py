"""Every page of the dashboard opens in a real browser, finishes running, and shows no exception."""

import pytest

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
