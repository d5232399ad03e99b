"""SAM Lab: Streamlit entry point (page config, navigation, shared sidebar)."""

import streamlit as st

from ui.common import device_badge

st.set_page_config(page_title="SAM Lab", page_icon="⛰️", layout="wide")

pages = [st.Page("pages/home.py", title="Home", icon="🏠", default=True)]
nav = st.navigation(pages)
device_badge()
nav.run()
