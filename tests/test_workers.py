"""The lab-job worker pool (sam_core.workers): jobs run in other processes, queue behind a server-wide cap,
stream partial results, stop, fail with a message, and a worker that ignores Stop is replaced."""

import os
import time

import pytest

from sam_core.workers import WorkerPool


def counting(n, delay=0.0):
    for i in range(n):
        time.sleep(delay)
        yield (i + 1) / n, {"i": i, "pid": os.getpid()}


def sleeper_ignoring_stop():
    yield 0.1, "started"
    time.sleep(600)  # never yields again: only a kill ends it
    yield 1.0, "never"


def failing():
    yield 0.5, "half"
    raise ValueError("lr: must be in (0, 10], got -1")


def unpicklable():
    yield 1.0, (lambda: None)


def empty_then_long_steps():
    yield 0.0, "empty"  # a lab job's first item: its result before anything is computed
    yield 0.2, "first curves"  # at once: held back by the throttle, it would wait for the next yield
    time.sleep(1.5)
    yield 1.0, "done"


def new_phase_then_a_long_step():
    yield 0.0, "empty"
    yield 0.0, "phase: the first curve"  # no progress yet, and within the gap: held back...
    time.sleep(3.0)  # ...while one long step computes (the quadratics lab's first 200 000-step curve)
    yield 1.0, "done"


def unpicklable_while_held_back():
    yield 0.1, "ok"
    yield 0.2, (lambda: None)  # inside the gap: the throttle's thread is the one that tries to send it
    time.sleep(1.0)
    yield 1.0, "ok"


def polls_stop(stop_event=None):
    i = 0
    while not stop_event.is_set():
        i += 1
        time.sleep(0.01)
    yield 1.0, i


@pytest.fixture(scope="module")
def pool():
    p = WorkerPool(size=1, kill_after=2.0)
    assert p.submit(counting, 1).join(120)  # a warm worker before the timing-sensitive tests, in any order
    yield p
    p.close()


def test_a_job_runs_in_another_process_and_streams(pool):
    job = pool.submit(counting, 5, 0.05, interval=0.0)
    assert job.join(120), job.status
    assert job.status == "done" and job.progress == 1.0
    assert job.result["i"] == 4 and job.result["pid"] != os.getpid()
    assert job.updates == 5  # interval 0: every item is sent


def test_updates_are_throttled_but_the_last_always_arrives(pool):
    job = pool.submit(counting, 400, 0.01, interval=10.0)  # 4 s: past the fast start (4 updates/s for 3 s)
    assert job.join(120)
    assert job.result["i"] == 399  # the last item always arrives
    assert 3 <= job.updates <= 15  # the first, ~4/s in the first 3 s, then none until the last


def test_the_first_item_with_progress_is_sent_at_once(pool):
    """Within the throttle's gap after the (empty) first item, the first item that carries progress still goes
    out at once: the page's first curves do not wait for the job's next yield."""
    job = pool.submit(empty_then_long_steps, interval=10.0)
    seen = set()
    while not job.join(0.01):
        seen.add(job.result)
    seen.add(job.result)
    assert "first curves" in seen, seen  # shown while the long step ran (else it was dropped for "done")
    assert job.result == "done"


def test_a_held_back_item_goes_out_when_its_gap_has_passed_not_at_the_next_yield(pool):
    """The throttle has a trailing edge: the page learns a job's new phase ~0.25 s after the yield, even when
    the next yield is a long computation away."""
    job = pool.submit(new_phase_then_a_long_step, interval=10.0)
    seen_at: dict = {}
    while not job.join(0.01):
        seen_at.setdefault(job.result, time.perf_counter())
    t_end = time.perf_counter()
    assert "phase: the first curve" in seen_at, seen_at
    assert t_end - seen_at["phase: the first curve"] > 1.5  # it arrived during the 3 s step, not with "done"
    assert job.result == "done"


def test_second_job_waits_its_turn_then_runs(pool):
    a = pool.submit(counting, 20, 0.05)
    b = pool.submit(counting, 1)
    time.sleep(0.3)
    assert a.status == "running" and b.status == "pending"
    assert b.queue_position() == 0 and pool.stats()["running"] == 1 and pool.stats()["queued"] == 1
    assert a.join(120) and b.join(120)
    assert a.status == b.status == "done" and b.t_start >= a.t_end


def test_stop_keeps_what_was_computed_and_a_queued_job_never_runs(pool):
    a = pool.submit(counting, 10_000, 0.01, interval=0.0)
    b = pool.submit(counting, 3)
    deadline = time.time() + 60
    while (a.result is None or a.result["i"] < 3) and time.time() < deadline:
        time.sleep(0.02)
    b.stop()
    a.stop()
    assert a.join(30) and b.join(5)
    assert a.status == "stopped" and 3 <= a.result["i"] < 9_999
    assert b.status == "stopped" and b.result is None and b.t_start is None


def test_stop_event_reaches_a_job_that_polls_it(pool):
    job = pool.submit(polls_stop, pass_stop="stop_event")
    time.sleep(0.5)
    job.stop()
    assert job.join(30) and job.status == "stopped" and job.result > 0
    job = pool.submit(polls_stop, pass_stop="stop_event")
    deadline = time.time() + 60  # the previous job's worker may still be coming back: it is queued until then
    while job.status == "pending" and time.time() < deadline:
        time.sleep(0.001)
    job.stop()  # a Stop as the task reaches the worker is not lost: the job itself answers it (a kill yields nothing)
    assert job.join(30) and job.status == "stopped" and job.result is not None and job.result >= 0


def test_errors_are_reported_with_their_message(pool):
    job = pool.submit(failing, interval=0.0)
    assert job.join(60)
    assert job.status == "error" and job.error == "lr: must be in (0, 10], got -1" and job.result == "half"
    assert "Traceback" in job.traceback
    bad = pool.submit(unpicklable)
    assert bad.join(60) and bad.status == "error" and "pickle" in bad.error.lower()
    ok = pool.submit(counting, 2)  # the worker still serves
    assert ok.join(60) and ok.status == "done"
    late = pool.submit(unpicklable_while_held_back)  # not the first item: sent late, from the thread
    assert late.join(60) and late.status == "error" and "pickle" in late.error.lower(), (late.status, late.error)
    assert late.result == "ok"  # what was sent stays


def test_a_worker_that_ignores_stop_is_killed_and_replaced(pool):
    job = pool.submit(sleeper_ignoring_stop)
    deadline = time.time() + 60
    while job.result is None and time.time() < deadline:
        time.sleep(0.05)
    t = time.time()
    job.stop()
    assert job.join(30) and job.status == "stopped" and job.result == "started"
    assert time.time() - t < 15
    nxt = pool.submit(counting, 2)
    assert nxt.join(120) and nxt.status == "done" and nxt.result["pid"] != os.getpid()


def test_a_job_the_worker_cannot_load_is_an_error_and_the_worker_stays(pool):
    import pickle

    class Unloadable:  # pickles fine here, fails to unpickle in the worker
        def __reduce__(self):
            return (pickle.loads, (b"not a pickle",))

    job = pool.submit(counting, Unloadable())
    assert job.join(60) and job.status == "error" and "could not load the job" in job.error
    ok = pool.submit(counting, 2)
    assert ok.join(60) and ok.status == "done"


def test_local_functions_are_refused(pool):
    def gen():
        yield 1.0, None

    with pytest.raises(ValueError, match="module-level"):
        pool.submit(gen)


def env_setting():
    yield 1.0, os.environ.get("SAMLAB_COMPILE")


def test_a_job_sees_the_settings_of_its_submit(pool, monkeypatch):
    monkeypatch.setenv("SAMLAB_COMPILE", "off")
    job = pool.submit(env_setting)
    assert job.join(60) and job.result == "off"
    monkeypatch.delenv("SAMLAB_COMPILE")
    job = pool.submit(env_setting)
    assert job.join(60) and job.result is None


def test_pool_size_setting(monkeypatch):
    from sam_core.workers import default_pool_size

    monkeypatch.setenv("SAMLAB_MAX_JOBS", "3")
    assert default_pool_size() == 3
    for bad in ("0", "x", "65"):
        monkeypatch.setenv("SAMLAB_MAX_JOBS", bad)
        with pytest.raises(ValueError, match="SAMLAB_MAX_JOBS"):
            default_pool_size()
