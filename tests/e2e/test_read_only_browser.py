"""Read-only hosting in a real browser (issue 16, item 2): a server with SAMLAB_READ_ONLY=1 over a runs
root that holds runs, a sweep and a sub-store; a visitor types every kind of folder into every folder
box of the Training lab, Compare runs and Sweeps pages and presses every button and checkbox shown.
The runs root (and the data root) must be byte-for-byte unchanged afterwards, and an unknown folder
must say "No runs here" instead of being created.
"""

from __future__ import annotations

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .conftest import E2E_ENV, screenshot, streamlit_server, wait_for_app

PAGES = ("training", "compare_runs", "sweeps")
FOLDERS = ("new-folder", "deep/new/tree", "sub", "../../etc")


def _settle(page) -> None:
    """The click's rerun is over: polled 3× faster than the suite's default (this test presses ~100 things)."""
    wait_for_app(page, settle_s=0.2, poll_s=0.15)


def _press_everything(page) -> int:
    """Tick every checkbox, then press every enabled button of the main area and of the sidebar's own
    content (not the sidebar's collapse control); clicked from script, so no header overlays them."""
    n = 0
    boxes = page.locator(
        "[data-testid='stMain'] [data-testid='stCheckbox'] input, "
        "[data-testid='stSidebarUserContent'] [data-testid='stCheckbox'] input"
    )
    for i in range(boxes.count()):
        if not boxes.nth(i).is_checked():
            boxes.nth(i).evaluate("el => el.click()")
            _settle(page)
            n += 1
    buttons = page.locator("[data-testid='stMain'] button, [data-testid='stSidebarUserContent'] button")
    i = 0
    while i < min(buttons.count(), 40):  # a click may rerun the page and change the buttons: re-count
        b = buttons.nth(i)
        try:
            if b.is_enabled(timeout=2000):
                b.evaluate("el => el.click()", timeout=2000)
                _settle(page)
                n += 1
        except Exception:  # noqa: BLE001 — gone with the rerun; the next one is tried
            pass
        i += 1
    return n


def _set_text(page, label: str, value: str) -> bool:
    # a rerun still under way (on a busy box) may have the sidebar half drawn: wait for its first folder box,
    # which every one of these pages has, then look for this one (Compare runs has no Data folder)
    try:
        page.locator("[data-testid='stSidebar'] input[aria-label='Runs folder']").first.wait_for(timeout=20_000)
    except PlaywrightTimeout:
        return False
    box = page.locator(f"[data-testid='stSidebar'] input[aria-label='{label}']")
    if box.count() == 0:
        return False
    box.first.fill(value)
    box.first.press("Enter")
    _settle(page)
    return True


def test_read_only_browser_session_writes_nothing(tmp_path, browser):
    from fakes import write_fake_cifar10

    from sam_core.training import RunStore
    from tests.test_read_only import _fill, tree

    runs, data = tmp_path / "runs", tmp_path / "data"
    write_fake_cifar10(data, n_train=64, n_test=16)
    store = RunStore(runs)
    _fill(store)
    store.close()
    sub = RunStore(runs / "sub")
    sub.create_run({"optimizer": "sgd"}, name="sub-run")
    sub.close()
    before = tree(tmp_path)
    pressed, no_runs = 0, []
    with streamlit_server(runs, data, "e2e-read-only.log", env_extra={**E2E_ENV, "SAMLAB_READ_ONLY": "1"}) as url:
        ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = ctx.new_page()
        page.set_default_timeout(60_000)
        try:
            for path in PAGES:
                page.goto(f"{url}/{path}")
                wait_for_app(page)
                assert page.locator("[data-testid='stException']").count() == 0, path
                pressed += _press_everything(page)
                for folder in FOLDERS:
                    if not _set_text(page, "Runs folder", folder):
                        screenshot(page, f"read-only-{path}-no-folder-box")
                        raise AssertionError(f"{path}: no Runs folder box after the buttons were pressed")
                    main = page.inner_text("[data-testid='stMain']")
                    if "No runs here" in main:
                        no_runs.append((path, folder))
                    assert page.locator("[data-testid='stException']").count() == 0, (path, folder)
                    if folder == "sub":  # a store with a run: its buttons too
                        pressed += _press_everything(page)
                    _set_text(page, "Data folder", folder)
                _set_text(page, "Runs folder", ".")
                _set_text(page, "Data folder", ".")
                screenshot(page, f"read-only-{path}")
        finally:
            ctx.close()
    assert tree(tmp_path) == before  # nothing created, written or deleted under either root
    assert not (runs / "new-folder").exists() and not (runs / "deep").exists()
    for path in PAGES:
        assert (path, "new-folder") in no_runs and (path, "deep/new/tree") in no_runs, no_runs
    assert pressed > 0
