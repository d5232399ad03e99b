"""The launcher (`python -m ui.serve`): it loads the core and starts the lab workers before Streamlit runs, and
loads nothing of Streamlit's before its runtime exists (a cache made then would not be the runtime's). The
browser tests start every app through it (tests/e2e/harness.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys
import ui.serve as serve
took = serve.preload()
from sam_core.workers import get_pool
pool = get_pool()
st = sorted(m for m in sys.modules if m.split(".")[0] == "streamlit")
missing = [m for m in serve.PRELOAD if m not in sys.modules]
print(json.dumps({"took": took, "streamlit": st, "loaded": missing, "workers": pool._starting + len(pool._idle)}))
"""


def test_preload_loads_the_core_and_starts_the_workers_without_streamlit():
    env = dict(os.environ, PYTHONPATH=str(ROOT), SAMLAB_MAX_JOBS="1")
    r = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["loaded"] == []  # every module of PRELOAD imported
    assert out["streamlit"] == []  # and nothing of Streamlit's
    assert out["workers"] == 1  # the pool starts its worker before the first visitor
