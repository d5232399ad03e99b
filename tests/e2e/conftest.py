"""End-to-end fixtures: a real `streamlit run app.py` server and Debian's Chromium driven by Playwright.

The server runs on a free port with its own runs/data directories; each test gets a fresh page.
Screenshots go to artifacts/e2e/ (kept as CI artifacts). Chromium is never downloaded: the tests
use /usr/bin/chromium (installed by `make test` via scripts/ensure_chromium.sh).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "e2e"
CHROMIUM = os.environ.get("SAMLAB_CHROMIUM", "/usr/bin/chromium")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def e2e_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    runs, data = base / "runs", base / "data"
    runs.mkdir()
    data.mkdir()
    from sam_core.training.data import write_fake_cifar10

    write_fake_cifar10(data, n_train=128, n_test=32)  # the real cifar-10-batches-py format, tiny
    return runs, data


@contextlib.contextmanager
def streamlit_server(runs: Path, data: Path, log_name: str = "e2e-server.log"):
    """`streamlit run app.py` on a free port; yields its base URL once /_stcore/health answers ok."""
    port = _free_port()
    env = dict(os.environ, SAMLAB_RUNS_DIR=str(runs), SAMLAB_DATA=str(data), PYTHONUNBUFFERED="1",
               SAMLAB_OFFLINE="1", OMP_NUM_THREADS="1", STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS.parent / log_name, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
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
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def server(e2e_dirs):
    runs, data = e2e_dirs
    with streamlit_server(runs, data) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                    "--disable-component-update", "--disable-sync", "--no-first-run",
                                    "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    ctx.close()


def wait_for_app(page, timeout_s: float = 90.0) -> None:
    """Wait until the Streamlit script has finished running (no 'Running…' status widget)."""
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout_s * 1000)
    deadline = time.time() + timeout_s
    time.sleep(1.0)
    quiet = 0
    while time.time() < deadline:
        running = page.locator("[data-testid='stStatusWidget']").count() > 0 and \
            page.locator("[data-testid='stStatusWidget']").first.is_visible()
        quiet = 0 if running else quiet + 1
        if quiet >= 3:
            return
        time.sleep(0.5)
    raise TimeoutError("the app kept running")


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
