"""In a real browser: hosted, an exception page shows Streamlit's short message and no traceback (the
details are in the server log); a hostile link on the real app shows a notice, not an exception."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

from .harness import ROOT, chromium, free_port, streamlit_server, wait_for_app

BOOM = """from ui.common import apply_error_details
import streamlit as st

apply_error_details()
st.write("before the error")
raise RuntimeError("secret detail /srv/samlab/runs.sqlite")
"""


def _serve(script, env_extra, log_path):
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **env_extra)
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(script),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--server.fileWatcherType",
            "none",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    return proc, log, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    log.close()
    raise RuntimeError(f"streamlit did not start; see {log_path}")


def _page_text(url: str) -> str:
    with chromium() as browser:
        page = browser.new_page()
        page.goto(url)
        wait_for_app(page)
        page.wait_for_selector("text=before the error", timeout=60_000)
        time.sleep(1.0)
        text = page.inner_text("[data-testid='stApp']")
        page.close()
    return text


def test_hosted_exception_page_shows_a_short_message_and_logs_the_details(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text(BOOM)
    for hosted in ("1", "0"):
        log_path = tmp_path / f"server-{hosted}.log"
        proc, log, url = _serve(script, {"SAMLAB_HOSTED": hosted}, log_path)
        try:
            text = _page_text(url)
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()
        if hosted == "1":
            assert "secret detail" not in text and "Traceback" not in text and "boom.py" not in text, text
            assert "RuntimeError" not in text
            assert "encountered an error" in text  # Streamlit's generic message
            server_log = log_path.read_text()
            assert "secret detail /srv/samlab/runs.sqlite" in server_log and "Traceback" in server_log
        else:  # locally the details stay on
            assert "secret detail" in text and "RuntimeError" in text


def test_a_hostile_link_on_the_hosted_app_shows_a_notice(tmp_path):
    runs, data = tmp_path / "runs", tmp_path / "data"
    runs.mkdir()
    data.mkdir()
    with (
        streamlit_server(
            runs, data, log_name="e2e-hostile.log", env_extra={"SAMLAB_READ_ONLY": "1", "OMP_NUM_THREADS": "1"}
        ) as url,
        chromium() as browser,
    ):
        page = browser.new_page()
        page.goto(f"{url}/saddle?epochs=100000000&batch=0&rho=0:1:1000000000")
        wait_for_app(page)
        page.wait_for_selector("text=Saddle escape", timeout=60_000)
        text = page.inner_text("[data-testid='stApp']")
        assert "Link parameter epochs" in text.replace("`", "") and "[1, 5000]" in text
        assert "Link parameter batch" in text.replace("`", "")
        assert "Traceback" not in text and "StreamlitValue" not in text
        page.close()
