"""Suite-wide settings: one lab-job worker (sam_core.workers), whatever the machine's core count, so the
tests that read the worker's state find the one that ran their job; no store of compiled steps (below)."""

import os

import pytest

os.environ.setdefault("SAMLAB_MAX_JOBS", "1")
# No disk store of compiled sweep steps (sam_core.fused_store) unless a test asks for one in its own directory:
# every compiling test would otherwise start a background builder, competing with the suite for the two cores,
# and a later test would load what an earlier one left instead of compiling what it means to test.
# Set outright, not by default: an environment that has a store (the Docker image sets one) must not lend it.
os.environ["SAMLAB_STEP_CACHE"] = "off"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """After a failed test, stop the lab jobs it left running: with one worker, a job its assertion never
    got round to stopping would hold the worker, and every later job test would fail waiting behind it."""
    report = yield
    if report.failed and call.when in ("setup", "call"):
        import sam_core.workers as workers

        try:
            if workers._POOL is not None:
                workers._POOL.stop_all()
        except Exception as exc:  # noqa: BLE001 - the test's own failure is the one to report
            print(f"conftest: could not stop the jobs the failed test left: {exc!r}")
    return report
