"""SAM Lab: Streamlit entry point — page config, navigation, and the sidebar shared by every page."""

import logging

import streamlit as st

from sam_core import plugin_errors
from sam_core.settings import get_settings
from sam_core.workers import get_pool
from ui.common import apply_error_details, device_badge, hosted, settle_heap

apply_error_details()  # hosted: an exception page shows a short message, the traceback goes to the server log
st.set_page_config(page_title="SAM Lab", page_icon=":material/landscape:", layout="wide")
# Laptop (1024×768) and projector (1280×720) screens: Streamlit's wide layout keeps 5 rem of padding on
# each side and 6 rem on top, a quarter of a 1024 px window beside the sidebar; a little less here.
# Display formulas render a notch smaller (KaTeX's 1.21 em overflowed narrow cards). A figure's static
# preview (ui.common.chart_with_preview) is hidden as soon as plotly.js has drawn the chart in its box; a
# chart Streamlit merely retains there (hidden, replaced by one under another key in this run) does not count.
st.html("""<style>
[data-testid="stMainBlockContainer"] { padding: 3.5rem 2rem 4rem 2rem; }
@media (min-width: 1400px) { [data-testid="stMainBlockContainer"] { padding-left: 4rem; padding-right: 4rem; } }
.katex-display > .katex { font-size: 1.1em; }
[class*="st-key-pv_"]:has(> :not([data-retained]) .js-plotly-plot)
  > [data-testid="stElementContainer"]:not(:has(.js-plotly-plot)) { display: none; }
[class*="st-key-pv_"] [data-testid="stMarkdownContainer"] img { width: 100%; display: block; }
</style>""")

PAGES = {
    "": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    ],
    "Landscape lab": [
        st.Page("pages/landscape.py", title="Landscape lab", icon=":material/landscape:", url_path="landscape"),
    ],
    "Dynamics lab": [
        st.Page("pages/saddle.py", title="Saddle escape", icon=":material/moving:", url_path="saddle"),
        st.Page(
            "pages/quadratics.py", title="Quadratics & sampling", icon=":material/trending_down:", url_path="quadratics"
        ),
        st.Page(
            "pages/edge_of_stability.py",
            title="Edge of stability",
            icon=":material/show_chart:",
            url_path="edge_of_stability",
        ),
    ],
    "Training lab": [
        st.Page("pages/training.py", title="Training lab", icon=":material/model_training:", url_path="training"),
        st.Page(
            "pages/compare_runs.py", title="Compare runs", icon=":material/compare_arrows:", url_path="compare_runs"
        ),
        st.Page("pages/training_sweeps.py", title="Sweeps", icon=":material/grid_view:", url_path="sweeps"),
    ],
    "About": [
        st.Page("pages/about.py", title="About & references", icon=":material/menu_book:", url_path="about"),
    ],
}

try:
    get_pool().warm()  # lab jobs run in worker processes: start them before the first Run
except ValueError as exc:  # a bad SAMLAB_MAX_JOBS: say which
    st.sidebar.error(str(exc))
nav = st.navigation(PAGES)
_plugin_errors = plugin_errors()  # a plug-in variant (SAMLAB_PLUGINS) that could not load: say which, keep going
if _plugin_errors and hosted():  # hosted: no server paths on visitors' screens; the details go to the log
    logging.getLogger("samlab").warning("plug-ins that did not load: %s", "; ".join(_plugin_errors))
    st.sidebar.warning(f"{len(_plugin_errors)} plug-in variant(s) could not load (details in the server log).")
else:
    for _msg in _plugin_errors:
        st.sidebar.warning(_msg)
device_badge()
try:
    if get_settings().read_only:
        st.sidebar.caption("🔒 Read-only demo mode: launching, stopping and deleting runs are disabled.")
except ValueError as exc:  # a bad SAMLAB_* variable: say which, keep the app usable
    st.sidebar.error(str(exc))
# Leaving a page drops its widgets' state, and the sidebar's links carry no query string: each page's last
# URL is kept for the session and put back when the page is reopened from a bare link, so it shows as it
# was left (a link with its own query string, such as a Home preset, wins).
_urls = st.session_state.setdefault("_page_urls", {})
_here = nav.url_path
if st.session_state.get("_last_page", _here) != _here and not st.query_params and _urls.get(_here):
    st.query_params.from_dict(_urls[_here])
st.session_state["_last_page"] = _here
try:
    nav.run()
finally:  # also when the page reruns or stops early: keep what its URL says now
    _urls[_here] = st.query_params.to_dict()
settle_heap()  # once per process: the imports' objects leave the garbage collector's passes
