"""Streamlit-only helpers shared by the pages (the core, sam_core, never imports these)."""
