"""Lab jobs survive a reload (found again by the URL's token) and stop when nobody watches (ui.jobs)."""

import time

from ui import jobs


def slow_count(n=2000, delay=0.005):
    for i in range(n):
        time.sleep(delay)
        yield (i + 1) / n, i


def _wait_result(job, timeout=10.0):
    t0 = time.monotonic()
    while job.state().result is None and time.monotonic() - t0 < timeout:
        time.sleep(0.02)


def test_a_reload_finds_the_running_job_and_a_closed_tab_stops_it():
    job = jobs.Job.thread_from_generator(slow_count, name="t").start()
    tok = jobs.register("saddle", job, "session-A")
    _wait_result(job)
    # the reload: a new session with the same URL finds the same job (and only under its own page key)
    assert jobs.find("eos", tok, "session-B") is None
    assert jobs.find("saddle", "not-a-token", "session-B") is None
    assert jobs.find("saddle", tok, "session-B") is job
    alive = {"session-A": False, "session-B": True}
    t0 = 1000.0
    assert jobs.reap(t0, alive.get) == [] and job.running  # B still watches
    alive["session-B"] = False  # the tab is closed
    assert jobs.reap(t0 + 1, alive.get) == [] and job.running  # within the grace period a reload may come
    assert jobs.reap(t0 + 1 + jobs.GRACE_S, alive.get) != [] or not job.running
    assert job.join(5.0)
    state = job.state()
    assert state.status == "stopped" and state.result is not None  # what was computed is kept
    # a finished job stays findable (a reload after it finished still shows the result) ...
    assert jobs.find("saddle", tok, "session-C") is job
    alive["session-C"] = False
    jobs.reap(t0 + 100, alive.get)
    assert jobs.find("saddle", tok, None) is job
    # ... until RETAIN_S after it finished
    jobs.reap(t0 + 200 + jobs.RETAIN_S, alive.get)
    assert jobs.find("saddle", tok, None) is None


def test_a_job_whose_sessions_cannot_be_checked_is_never_stopped():
    job = jobs.Job.thread_from_generator(slow_count, 300, 0.01, name="t").start()
    tok = jobs.register("quadratics", job, "s")
    try:
        assert jobs.reap(5000.0, lambda sid: None) == []
        assert jobs.reap(5000.0 + 10 * jobs.GRACE_S, lambda sid: None) == []
        assert job.running
    finally:
        job.stop(wait=5.0)
        jobs.reap(1e9, lambda sid: None)  # marks it finished
        jobs.reap(1e9 + jobs.RETAIN_S, lambda sid: None)
        assert jobs.find("quadratics", tok, None) is None


def test_a_shared_link_watches_and_only_a_reload_of_the_starter_takes_over():
    """A visitor opening another's link sees the job but does not own it (no Stop; Run starts their own);
    when the starter's session is gone (they reloaded), the page that finds it becomes its owner."""
    job = jobs.Job.thread_from_generator(slow_count, 300, 0.01, name="t").start()
    tok = jobs.register("eos", job, "teacher")
    try:
        alive = {"teacher": True, "student": True, "teacher-reloaded": True}
        assert jobs.find("eos", tok, "student", alive.get) is job
        assert jobs.owner(tok) == "teacher"  # the student only watches
        alive["teacher"] = False  # the teacher's tab reloaded: the old session is gone
        assert jobs.find("eos", tok, "teacher-reloaded", alive.get) is job
        assert jobs.owner(tok) == "teacher-reloaded"
        assert jobs.find("eos", tok, "student", alive.get) is job and jobs.owner(tok) == "teacher-reloaded"
    finally:
        job.stop(wait=5.0)
        jobs.reap(2e9, lambda sid: None)
        jobs.reap(2e9 + jobs.RETAIN_S, lambda sid: None)


def _first_after(delay):
    yield 0.0, "empty"  # many jobs publish their empty result first: nothing to draw yet
    time.sleep(delay)
    yield 0.5, "first"
    time.sleep(30)  # then quiet (stopped by the test)
    yield 1.0, "last"


def test_a_just_started_job_is_awaited_for_its_first_result_within_the_budget():
    """The script run that starts a job holds its first picture back a moment (ui.jobs.await_first_result):
    it returns with the first result when that comes within the budget, and without one when it does not."""
    job = jobs.Job.thread_from_generator(_first_after, 0.05, name="t").start()
    jobs.await_first_result(job, budget_s=5.0)
    assert job.state().result == "first"  # returned with the result, long before the budget ran out
    job.stop(wait=2.0)
    late = jobs.Job.thread_from_generator(_first_after, 3.0, name="t").start()
    t0 = time.monotonic()
    jobs.await_first_result(late, budget_s=0.2)
    assert late.state().result == "empty" and time.monotonic() - t0 < 2.5  # gave up at the budget, did not wait it out
    late.stop(wait=0.1)


def _autorun_page():
    import streamlit as st

    from ui.jobs import link_autorun

    st.session_state.setdefault("starts", 0)
    if link_autorun("lab"):
        st.session_state["starts"] += 1


def test_a_link_starts_its_job_once_and_another_link_of_the_page_its_own():
    """ui.jobs.link_autorun: a run=1 link starts the page's job once per distinct link in a session (the second
    card of a page must not be answered by the first card's job); a link with the job's token does not."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_autorun_page)

    def visit(**q):
        at.query_params.clear()
        at.query_params.update({k: str(v) for k, v in q.items()})
        at.run()
        assert not at.exception, at.exception
        return at.session_state["starts"]

    assert visit(lams="0,1") == 0  # no run=1: nothing starts
    assert visit(lams="0,1", run=1) == 1  # the first card
    assert visit(lams="0,1", run=1) == 1  # the same link again (a rerun, the same card): no restart
    assert visit(budget=100, run=1) == 2  # another card of the same page: its own job
    assert visit(lams="0,1", run=1, **{"job.lab": "tok"}) == 2  # a reload of a run: found, not restarted
    assert visit(lams="0,1", run=1) == 3  # the first card pressed again after the other: runs again
