"""Start the dashboard with the core already loaded: ``python -m ui.serve [streamlit run options]``.

Streamlit runs ``app.py`` only when the first browser connects, so the first visitor of a fresh server used to
wait for torch, the core and plotly to import (~1.8 s here) and for the lab workers to start. This launcher
imports them and starts the worker pool first, then hands over to ``streamlit run app.py`` in the same
process (the modules stay imported). It imports nothing that uses Streamlit's caches: those are created when
the first script run imports the pages' helpers, inside the running server. `make run`, the Dockerfile and
the browser tests start the app through it; docs/PERFORMANCE.md, "The first visitor of a fresh server".
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app.py"
# what the first page's script run would import otherwise (none of them imports streamlit)
PRELOAD = (
    "torch",
    "numpy",
    "pandas",
    "plotly.graph_objects",
    "sam_core",
    "sam_core.workers",
    "sam_core.presets",
    "sam_core.landscape.lr_sweep",
    "sam_core.landscape.race",
    "sam_core.plots.landscape",
)


def preload() -> float:
    """Import the core and start the lab workers; returns the seconds it took."""
    t0 = time.perf_counter()
    for name in PRELOAD:
        importlib.import_module(name)
    from sam_core.workers import get_pool

    try:
        get_pool().warm()  # app.py does it too (a no-op then); a bad SAMLAB_MAX_JOBS is its message to show
    except ValueError:
        pass
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    took = preload()
    print(f"SAM Lab: core loaded and lab workers started in {took:.1f} s", flush=True)
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *args]
    return cli.main(prog_name="streamlit")


if __name__ == "__main__":
    raise SystemExit(main())
