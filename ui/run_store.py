"""The run store as the training pages open it: 'Folders' in the sidebar, confined to the configured roots.

Used by the Training lab, Compare runs and Sweeps pages, so the three agree on where runs live and
refuse the same paths with the same message. Under SAMLAB_READ_ONLY=1 the store is opened read-only:
nothing is created or written (no folder, no database, no WAL files), and a folder without a run store
says "no runs here".
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from sam_core.settings import Settings, confine, get_settings
from sam_core.training import RunStore
from sam_core.training.store import StoreMissing
from ui.common import show_error


@st.cache_resource
def cached_store(path: str, read_only: bool = False) -> RunStore:
    return RunStore(path, read_only=read_only)


def open_run_store(prefix: str, with_data: bool = True) -> tuple[Settings, RunStore, Path, Path | None]:
    """Sidebar folder inputs (`{prefix}_runs_dir`, `{prefix}_data_dir`) and the store they name.

    A bad setting, a folder outside its root or an unreadable store shows an error and stops the page.
    """
    try:
        settings = get_settings()
    except ValueError as exc:
        show_error(exc, "Settings")
        st.stop()
    side = st.sidebar
    side.subheader("Folders")
    runs_sub = side.text_input(
        "Runs folder",
        value=".",
        key=f"{prefix}_runs_dir",
        help=f"A folder inside {settings.runs_dir} (SAMLAB_RUNS_DIR).",
    )
    data_sub = (
        side.text_input(
            "Data folder",
            value=".",
            key=f"{prefix}_data_dir",
            help=f"A folder inside {settings.data_dir} (SAMLAB_DATA) holding e.g. cifar-10-batches-py/.",
        )
        if with_data
        else None
    )
    try:
        runs_dir = confine(runs_sub or ".", settings.runs_dir, "Runs folder")
        data_dir = confine(data_sub or ".", settings.data_dir, "Data folder") if with_data else None
    except ValueError as exc:
        show_error(exc)
        st.stop()
    try:
        store = cached_store(str(runs_dir), settings.read_only)
    except StoreMissing as exc:  # read-only: an unknown folder is not created
        side.caption(f"Runs: `{runs_dir}`")
        st.info(
            f"No runs here: {runs_dir} holds no run store (read-only mode creates nothing). "
            + ("" if "does not exist" not in str(exc) else "The folder does not exist.")
        )
        st.stop()
    except Exception as exc:  # unwritable folder, corrupt database …
        show_error(exc, f"Cannot open the run store in {runs_dir}")
        st.stop()
    side.caption(f"Runs: `{runs_dir}`" + (f"  \nData: `{data_dir}`" if with_data else ""))
    return settings, store, runs_dir, data_dir
