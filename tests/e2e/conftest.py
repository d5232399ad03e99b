"""End-to-end fixtures: a real `streamlit run app.py` server and Debian's Chromium driven by Playwright.

The server runs on a free port with its own runs/data directories; each test gets a fresh page.
Screenshots go to artifacts/e2e/ (kept as CI artifacts). Chromium is never downloaded: the tests
use /usr/bin/chromium (installed by `make test` via scripts/ensure_chromium.sh).
"""

from __future__ import annotations

import os

import pytest

from .harness import chromium, screenshot, streamlit_server, wait_for_app  # noqa: F401  (the tests import them here)

E2E_ENV = {"OMP_NUM_THREADS": "1"}  # the suite shares two cores with the browser


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    runs, data = base / "runs", base / "data"
    runs.mkdir()
    data.mkdir()
    from fakes import write_fake_cifar10

    write_fake_cifar10(data, n_train=128, n_test=32)  # the real cifar-10-batches-py format, tiny
    return runs, data


@pytest.fixture(scope="session")
def server(e2e_dirs):
    runs, data = e2e_dirs
    with streamlit_server(runs, data, env_extra=E2E_ENV) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()
