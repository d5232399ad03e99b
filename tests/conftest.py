"""Suite-wide settings: one lab-job worker (sam_core.workers), whatever the machine's core count, so the
tests that read the worker's state find the one that ran their job."""

import os

os.environ.setdefault("SAMLAB_MAX_JOBS", "1")
