"""Suite-wide settings: one lab-job worker (sam_core.workers), whatever the machine's core count, so the
tests that read the worker's state find the one that ran their job."""

import os

import pytest

os.environ.setdefault("SAMLAB_MAX_JOBS", "1")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """After a failed test, stop the lab jobs it left running: with one worker, a job its assertion never
    got round to stopping would hold the worker, and every later job test would fail waiting behind it."""
    report = yield
    if report.failed and call.when == "call":
        import sam_core.workers as workers

        if workers._POOL is not None:
            workers._POOL.stop_all()
    return report
