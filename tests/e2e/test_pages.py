"""Every page of the dashboard opens in a real browser, finishes running, and shows no exception."""

import pytest

from .conftest import screenshot, wait_for_app

PAGES = {  # url path -> text the page must show once rendered
    "": "SAM Lab",
    "landscape": "Landscape",
    "saddle": "Saddle",
    "quadratics": "Quadratic",
    "edge_of_stability": "edge of stability",
    "training": "Training",
    "compare_runs": "Compare",
    "sweeps": "Sweep",
    "about": "About SAM Lab",
}


@pytest.mark.parametrize("path", list(PAGES))
def test_page_renders_without_exception(server, page, path):
    page.goto(f"{server}/{path}")
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0
    assert PAGES[path] in page.inner_text("[data-testid='stMain']")
    shot = screenshot(page, path or "home")
    assert shot.stat().st_size > 10_000
