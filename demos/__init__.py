"""Headless scripts reproducing the papers' figures (CSV + HTML), on the same code as the pages."""
