"""Headless scripts reproducing the seed papers' figures (CSV + HTML), on the same code as the pages."""
