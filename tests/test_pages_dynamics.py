"""The Dynamics lab pages (AppTest) and the background-job helper they share (ui/jobs.py)."""

import threading
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.jobs import Job
from ui.plotly_live import drawn_figures

PAGES = Path(__file__).resolve().parents[1] / "pages"


# ------------------------------------------------------------------------------ ui.jobs
def test_generator_job_publishes_partial_results_and_finishes():
    def gen(n):
        for i in range(n):
            yield (i + 1) / n, {"i": i}

    job = Job.thread_from_generator(gen, 5).start()
    assert job.join(10)
    st = job.state()
    assert st.status == "done" and st.progress == 1.0 and st.result == {"i": 4} and st.updates == 5


def test_stop_keeps_what_was_computed_and_closes_the_generator():
    closed = threading.Event()
    release = threading.Event()

    def gen():
        try:
            i = 0
            while True:
                i += 1
                yield min(i / 1000, 0.99), i
                if i == 3:
                    release.set()
                time.sleep(0.01)
        finally:
            closed.set()

    job = Job.thread_from_generator(gen).start()
    assert release.wait(10)
    job.stop(wait=10)
    st = job.state()
    assert st.status == "stopped" and st.result >= 3 and closed.is_set()


def test_callback_job_and_errors():
    def work(ctx):
        for i in range(3):
            ctx.report(result=i, progress=(i + 1) / 3, message=f"step {i}")
        raise ValueError("lr must be in (0, 10], got -1")

    job = Job(work).start()
    job.join(10)
    st = job.state()
    assert st.status == "error" and st.error == "lr must be in (0, 10], got -1" and st.result == 2
    assert "Traceback" in job.traceback
    with pytest.raises(RuntimeError):
        job.start()


# ------------------------------------------------------------------------------ pages
def _app(name):
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _app_with_query(name, query):
    at = AppTest.from_file(str(PAGES / name), default_timeout=60)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    return at


def _wait(job, cond, timeout=60):
    t0 = time.time()
    while not cond(job.state()) and time.time() - t0 < timeout:
        time.sleep(0.05)
    return cond(job.state())


def _finish(at, key, timeout=90):
    job = at.session_state[f"job:{key}"]
    assert _wait(job, lambda s: s.finished, timeout), job.state()
    at.run()
    assert not at.exception, at.exception
    assert job.state().status == "done", job.state().error
    assert not at.error, [e.value for e in at.error]
    return job


def _stop_long_run(at, key, progressed):
    job = at.session_state[f"job:{key}"]
    assert _wait(job, lambda s: s.result is not None and progressed(s.result)), job.state()
    at.run()  # the fragment shows progress and the Stop button
    assert job.state().running
    at.button(key=f"{key}__stop").click().run()
    st = job.state()
    assert st.status == "stopped"
    assert not at.exception, at.exception
    assert any("Stopped" in w.value for w in at.warning)
    assert len(drawn_figures(at)) >= 1  # what was computed is still drawn
    return st


def test_saddle_page_runs_changes_controls_and_stops():
    at = _app("saddle.py")
    assert any("Run" in i.value for i in at.info)  # idle text before the first run
    at.slider(key="saddle_seeds").set_value(2)
    at.number_input(key="saddle_epochs").set_value(30)
    at.radio(key="saddle_mode").set_value("population")
    at.multiselect(key="saddle_rhos").set_value([0.05, 0.5])
    at.button(key="saddle_run").click().run()
    assert not at.exception, at.exception
    job = _finish(at, "saddle")
    res = job.state().result
    assert res.epochs_done == 30 and res.rhos["sam"] == [0.05, 0.5]
    assert len(drawn_figures(at)) >= 4
    assert at.query_params["epochs"] in ("30", ["30"])  # shareable URL
    # a long run, stopped: keeps what was computed
    at.number_input(key="saddle_epochs").set_value(5000)
    at.radio(key="saddle_mode").set_value("minibatch")
    at.button(key="saddle_run").click().run()
    st = _stop_long_run(at, "saddle", lambda r: r.epochs_done >= 2)
    assert 2 <= st.result.epochs_done < 5000


def test_saddle_page_reports_bad_settings_instead_of_crashing():
    at = _app("saddle.py")
    at.multiselect(key="saddle_rhos").set_value([])
    at.button(key="saddle_run").click().run()
    assert not at.exception
    assert any("ρ" in e.value for e in at.error)


def test_quadratics_page_runs_changes_controls_and_stops():
    at = _app("quadratics.py")
    assert len(at.metric) == 6  # L, μ, κ, L_i, theory γ, ρ
    at.selectbox(key="quad_sampling").set_value("importance").run()
    at.checkbox(key="quad_reweight").uncheck()
    at.number_input(key="quad_steps").set_value(100)
    at.slider(key="quad_seeds").set_value(1)
    at.number_input(key="quad_budget").set_value(3)
    at.button(key="quad_run").click().run()
    assert not at.exception, at.exception
    job = _finish(at, "quadratics")
    res = job.state().result
    assert res.config.sampling == "importance" and not res.config.reweight
    assert res.heatmap is not None and len(res.sampling_curves) == 5
    assert len(drawn_figures(at)) >= 3
    at.selectbox(key="quad_problem").set_value("quadratic").run()
    assert not at.exception and not at.error
    # long run, stopped after the first curve
    at.selectbox(key="quad_problem").set_value("logistic")
    at.number_input(key="quad_steps").set_value(200_000)
    at.button(key="quad_run").click().run()
    job = at.session_state["job:quadratics"]
    assert _wait(job, lambda s: s.result is not None and s.result.phase.startswith("curves"))
    time.sleep(0.5)  # some steps of the first, long curve
    st = _stop_long_run(at, "quadratics", lambda r: True)
    # the stop event reaches inside a curve: the part computed so far is kept, the later variants never run
    # (in a worker process the first curve may already be done by the time Stop arrives)
    assert len(st.result.curves) < len(st.result.config.variants)
    assert 0 < st.result.curves[-1].steps[-1] < 200_000


def test_edge_of_stability_page_theory_calculator_and_live_run():
    at = _app("edge_of_stability.py")
    values = [m.value for m in at.metric]
    assert values[0] == "200" and values[1] == "40"  # η = 0.01, ρ = 0.1, ‖g‖ = 1: α = 0.05 -> 0.2 × 2/η
    at.number_input(key="eos_calc_beta").set_value(0.5).run()
    assert [m.value for m in at.metric][0] == "300"
    at.number_input(key="eos_calc_g").set_value(0.0).run()
    assert not at.exception
    at.number_input(key="eos_steps").set_value(40)
    at.number_input(key="eos_every").set_value(20)
    at.slider(key="eos_width").set_value(16)
    at.button(key="eos_run").click().run()
    job = _finish(at, "eos")
    assert job.state().result.steps_done == 40
    assert len(drawn_figures(at)) >= 2
    at.number_input(key="eos_steps").set_value(100_000)
    at.button(key="eos_run").click().run()
    st = _stop_long_run(at, "eos", lambda r: r.steps_done >= 3)
    assert 3 <= st.result.steps_done < 100_000


def test_saddle_page_reads_a_shared_url():
    at = AppTest.from_file(str(PAGES / "saddle.py"), default_timeout=60)
    at.query_params.update(
        {"rho": "0.3,0.05", "seeds": "2", "epochs": "20", "mode": "population", "run": "1", "variants": "sgd,usam"}
    )
    at.run()
    assert not at.exception, at.exception
    assert at.multiselect(key="saddle_rhos").value == [0.3, 0.05]
    job = _finish(at, "saddle")
    res = job.state().result
    assert res.variants == ["sgd", "usam"] and res.rhos["usam"] == [0.3, 0.05] and res.config.population


def test_a_job_behind_another_visitors_waits_and_says_so():
    # one worker (tests/conftest.py): another visitor's long job holds it, so this page's job queues
    from sam_core.dynamics import SaddleConfig, run_saddle
    from sam_core.workers import get_pool

    other = get_pool().submit(run_saddle, ["sgd"], [0.0], [0], SaddleConfig(epochs=5000).validate(), {})
    try:
        deadline = time.time() + 60
        while other.status != "running" and time.time() < deadline:
            time.sleep(0.05)
        at = _app("saddle.py")
        at.number_input(key="saddle_epochs").set_value(20)
        at.button(key="saddle_run").click().run()
        assert not at.exception, at.exception
        job = at.session_state["job:saddle"]
        assert job.state().status == "pending"
        texts = [p.proto.text for p in at.get("progress")]
        assert any("Waiting for a free worker" in t for t in texts), texts
        other.stop()
        _finish(at, "saddle")  # it runs once the worker is free
    finally:
        other.stop()


def test_a_shared_link_to_a_running_job_watches_it_without_a_stop_button(monkeypatch):
    """The page's URL carries its job's token: a visitor opening the link sees the same run but cannot
    stop it, and pressing Run starts their own job without stopping the sharer's."""
    from ui import jobs

    at = _app("saddle.py")
    at.number_input(key="saddle_epochs").set_value(5000)
    at.button(key="saddle_run").click().run()
    assert not at.exception, at.exception
    job = at.session_state["job:saddle"]
    try:
        assert _wait(job, lambda s: s.status == "running")
        token = at.query_params["job.saddle"]
        token = token[0] if isinstance(token, list) else token
        # AppTest gives every app the same session id: the guest is another browser session
        monkeypatch.setattr(jobs, "_session_id", lambda: "guest-session")
        guest = _app_with_query("saddle.py", {"job.saddle": token, "epochs": "20"})
        assert not guest.exception, guest.exception
        assert "job:saddle" not in guest.session_state  # watched, not owned
        assert not [b for b in guest.button if b.key == "saddle__stop"]
        assert any("watching" in c.value for c in guest.caption)
        guest.button(key="saddle_run").click().run()  # the guest's own run
        assert not guest.exception, guest.exception
        assert job.state().running, "the guest's Run stopped the sharer's job"
        assert guest.session_state["job:saddle"] is not job
        guest.session_state["job:saddle"].stop(wait=10)
    finally:
        job.stop(wait=10)


def test_a_run_link_keeps_the_edge_of_stability_page_on_its_live_tab_over_reruns():
    """The tabs' default is part of Streamlit's element id: the page dropped it after the first run, which made
    a new tabs widget on the next rerun, back on Theory (seen when the link's run finished)."""
    at = _app_with_query("edge_of_stability.py", {"run": "1", "steps": "40", "every": "20", "width": "16"})
    assert not at.exception, at.exception
    assert at.session_state["eos_tab"] == "Live training"
    _finish(at, "eos")
    at.run()
    assert at.session_state["eos_tab"] == "Live training"
