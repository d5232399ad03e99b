"""The landscape page under AppTest: changing a variant, a slider and the function changes the plotted paths."""

import base64
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ui.landscape_controls import start_from_selection
from ui.plotly_live import drawn_figures

PAGE = str(Path(__file__).resolve().parents[1] / "pages" / "landscape.py")


def _arr(v):
    if isinstance(v, dict) and "bdata" in v:  # plotly's typed-array JSON encoding
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v, dtype=float)


def paths(at) -> dict[str, np.ndarray]:
    """variant -> (K+1, 2) path drawn on the contour map (the full, named path traces)."""
    spec = drawn_figures(at)["ls_contour"]
    out = {}
    for tr in spec["data"]:
        if tr.get("type") == "scatter" and tr.get("mode") == "lines" and tr.get("name") and tr.get("legendgroup"):
            out[tr["legendgroup"]] = np.stack((_arr(tr["x"]), _arr(tr["y"])), -1)
    return out


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.run()
    return at


def test_page_runs_and_draws_every_chosen_variant(app):
    _ok(app)
    p = paths(app)
    assert set(p) == {"sgd", "sam", "ssam"}
    assert all(np.isfinite(v).all() and len(v) > 10 for v in p.values())
    assert app.query_params["fn"] == ["quartic"] or app.query_params["fn"] == "quartic"


def test_changing_variant_slider_and_function_changes_the_paths(app):
    at = app
    before = paths(at)
    # a variant: add USAM
    at.multiselect(key="ls_variants").select("usam").run()
    _ok(at)
    p1 = paths(at)
    assert set(p1) == {"sgd", "sam", "ssam", "usam"}
    assert np.array_equal(p1["sgd"], before["sgd"])
    # a slider: SAM's rho (only SAM's path changes)
    at.select_slider(key="ls_sam_rho").set_value(0.01).run()
    _ok(at)
    p2 = paths(at)
    assert not np.array_equal(p2["sam"][: len(p1["sam"])], p1["sam"][: len(p2["sam"])]) or len(p2["sam"]) != len(
        p1["sam"]
    )
    assert np.array_equal(p2["sgd"], p1["sgd"])
    # the learning-rate slider changes every path
    at.select_slider(key="ls_lr_quartic").set_value(0.1).run()
    _ok(at)
    p3 = paths(at)
    for v in p3:
        assert p3[v].shape != p2[v].shape or not np.allclose(p3[v], p2[v])
    # the function
    at.selectbox(key="ls_fn").select("himmelblau").run()
    _ok(at)
    p4 = paths(at)
    assert set(p4) == set(p3)
    for v in p4:
        assert not np.allclose(p4[v][0], p3[v][0])  # new default start
        assert p4[v].shape != p3[v].shape or not np.allclose(p4[v], p3[v])
    assert at.query_params["fn"] in ("himmelblau", ["himmelblau"])


def test_custom_expression_error_keeps_the_last_good_function():
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.query_params["fn"] = "custom"
    at.query_params["variants"] = "sgd"
    at.run()
    _ok(at)
    good = paths(at)["sgd"]
    at.text_input(key="ls_expr").input("x**2 + __import__('os')").run()
    _ok(at)
    assert any("not allowed" in e.value for e in at.error)
    assert np.array_equal(paths(at)["sgd"], good)  # still the last good function on screen
    at.text_input(key="ls_expr").input("(x-1)**2 + 2*y**2").run()
    _ok(at)
    assert not at.error
    end = paths(at)["sgd"][-1]
    assert np.allclose(end, [1.0, 0.0], atol=1e-3)


def test_url_restores_the_configuration():
    at = AppTest.from_file(PAGE, default_timeout=90)
    qp = {
        "fn": "quadratic",
        "lam": "2",
        "kappa": "10",
        "variants": "sgd,usam",
        "lr": "0.1",
        "steps": "40",
        "x0": "1.5",
        "y0": "-1",
        "usam.rho": "0.01",
        "noise": "0",
        "seed": "3",
    }
    for k, v in qp.items():
        at.query_params[k] = v
    at.run()
    _ok(at)
    assert at.selectbox(key="ls_fn").value == "quadratic"
    assert at.select_slider(key="ls_lr_quadratic").value == pytest.approx(0.1)
    assert at.number_input(key="ls_steps").value == 40
    assert at.select_slider(key="ls_usam_rho").value == pytest.approx(0.01)
    p = paths(at)
    assert set(p) == {"sgd", "usam"} and len(p["sgd"]) == 41
    assert np.allclose(p["sgd"][0], [1.5, -1.0])
    assert at.number_input(key="ls_p_quadratic_lam").value == 2.0
    # GD on ½·2x² + ½·0.2y² from (1.5, -1) with lr 0.1: closed form (1 - lr·λ)^t per coordinate
    assert np.allclose(p["sgd"][-1], [1.5 * 0.8**40, -1.0 * 0.98**40], rtol=1e-9)


def test_click_selection_to_start_point():
    assert start_from_selection({"selection": {"points": [{"x": 0.5, "y": -1.25, "curve_number": 1}], "box": []}}) == (
        0.5,
        -1.25,
    )
    assert start_from_selection({"selection": {"points": [], "box": [{"x": [0, 1], "y": [2, 4]}]}}) == (0.5, 3.0)
    assert start_from_selection({"selection": {"points": [], "box": [], "lasso": []}}) is None
    assert start_from_selection(None) is None
    assert start_from_selection({"selection": {"points": [{"x": "nan", "y": 1}]}}) is None


def test_sweep_tab_runs_a_background_sweep_and_draws_it():
    at = AppTest.from_file(PAGE, default_timeout=90)
    for k, v in {
        "variants": "sgd,sam",
        "swstarts": "20",
        "swsteps": "100",
        "swn": "4",
        "swlo": "0.1",
        "swhi": "1",
    }.items():
        at.query_params[k] = v
    at.run()
    _ok(at)
    at.button(key="ls_run_sweep").click().run()
    _ok(at)
    job = at.session_state["job:ls_sweep"]
    assert job.join(60)
    at.run()
    _ok(at)
    st = job.state()
    assert st.status == "done", st.error
    df = st.result
    assert list(df.variant.unique()) == ["sgd", "sam"] and len(df) == 8
    specs = list(drawn_figures(at).values())
    sweep = [s for s in specs if s["layout"].get("xaxis", {}).get("title", {}).get("text") == "learning rate η"]
    assert sweep, "the sweep figure is drawn"
    shapes = sweep[0]["layout"].get("shapes", [])
    assert any(abs(sh.get("x0", 0) - (2 - 2**0.5)) < 1e-9 for sh in shapes)  # the GD bound is marked


def _default_tab(at) -> int:
    """The index of the tab the page asks the browser to open (st.tabs(default=…))."""
    found = []

    def walk(node):
        p = getattr(node, "proto", None)
        if type(p).__name__ == "Block" and p.WhichOneof("type") == "tab_container":
            found.append(p.tab_container.default_tab_index)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    assert len(found) == 1, found
    return found[0]


def test_a_link_to_the_sweeps_tab_stays_on_it_over_reruns():
    """The page rewrites its URL after each run; the tab a link opened on must stay in it, or the next rerun
    (a slider, the picture-first redraw) asks the browser for the Race tab (seen as a flaky Home-card test)."""
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.query_params["tab"] = "sweeps"
    at.query_params["variants"] = "sgd"
    at.run()
    _ok(at)
    assert _default_tab(at) == 1
    at.number_input(key="ls_steps").set_value(200).run()
    _ok(at)
    assert at.query_params.get("tab") in ("sweeps", ["sweeps"])
    assert _default_tab(at) == 1
    plain = AppTest.from_file(PAGE, default_timeout=90)
    plain.run()
    assert _default_tab(plain) == 0 and not plain.query_params.get("tab")


def test_one_click_cannot_ask_for_unbounded_work():
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.run()
    at.number_input(key="ls_swn").set_value(40)
    at.number_input(key="ls_swstarts").set_value(20000)
    at.number_input(key="ls_swsteps").set_value(5000)
    at.run()
    # said before any click, with the most starts these settings allow, and Run sweep cannot be pressed
    msg = " ".join(e.value for e in at.error)
    assert "trajectory-steps" in msg and "at most" in msg
    n_var = len(at.session_state["ls_variants"])
    assert f"at most {int(1e9 // (n_var * 40 * 5000)):,} starts per lr" in msg
    assert at.button(key="ls_run_sweep").disabled  # (AppTest refuses to click it, as a browser does)
    _ok(at)
    assert "job:ls_sweep" not in at.session_state or at.session_state["job:ls_sweep"] is None


def _worker_stats() -> dict:
    """The dynamo counters of the pool's worker (one worker in the tests: SAMLAB_MAX_JOBS=1 on 2 cores)."""
    from sam_core.workers import get_pool, iter_worker_stats

    job = get_pool().submit(iter_worker_stats)
    assert job.join(120) and job.status == "done", job.error
    return job.result


def test_a_large_sweep_prewarms_and_runs_its_compiled_steps(monkeypatch):
    from sam_core.workers import get_pool

    monkeypatch.setenv("SAMLAB_COMPILE", "auto")
    assert get_pool().size == 1, "this test reads the one worker (tests/conftest.py sets SAMLAB_MAX_JOBS=1)"
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["variants"] = "sgd,usam"  # a configuration no other test compiles in this process
    at.run()
    _ok(at)
    at.number_input(key="ls_swn").set_value(10)
    at.number_input(key="ls_swstarts").set_value(20000)
    at.number_input(key="ls_swsteps").set_value(300)  # 10 × 20 000 × 300 = 6e7 trajectory-steps: compiled
    before = _worker_stats()
    at.run()
    _ok(at)
    warm = at.session_state["job:ls_prewarm"]  # the page asks the worker to compile the steps while the user looks
    assert warm.join(300) and warm.state().status == "done", warm.state().error
    after = _worker_stats()
    assert after["pid"] == before["pid"]
    assert after["unique_graphs"] > before["unique_graphs"]  # the steps were compiled, in the worker
    at.button(key="ls_run_sweep").click().run()
    _ok(at)
    job = at.session_state["job:ls_sweep"]
    assert job.join(300)
    at.run()
    st = job.state()
    assert st.status == "done", st.error
    assert len(st.result) == 20 and st.result.success_rate.max() > 0.5
    assert _worker_stats()["unique_graphs"] == after["unique_graphs"]  # the sweep found them compiled


def test_the_map_and_basin_jobs_run_with_the_pages_settings():
    # the page builds one SweepSetup from its controls; the map and basin jobs must compute exactly what
    # the library computes from those settings (start mode, spread, seed, momentum, tolerance, steps …)
    from sam_core.landscape.functions import make_landscape
    from sam_core.landscape.lr_sweep import BASIN_SETUP, Success, SweepSetup, basin_map, sweep_grid

    at = AppTest.from_file(PAGE, default_timeout=90)
    for k, v in {
        "variants": "sgd,sam",
        "swsteps": "60",
        "swn": "3",
        "swlo": "0.1",
        "swhi": "0.5",
        "mode": "domain",
        "seed": "4",
        "mom": "0.3",
        "tol": "0.3",
        "sam.rho": "0.2",
    }.items():
        at.query_params[k] = v
    at.run()
    _ok(at)
    at.number_input(key="ls_hm_n").set_value(3)
    at.number_input(key="ls_hm_starts").set_value(15)
    at.run()
    at.button(key="ls_run_hm").click().run()
    _ok(at)
    job = at.session_state["job:ls_hm"]
    assert job.join(60) and job.state().status == "done", job.state().error
    got = job.state().result
    L = make_landscape("quartic")
    setup = SweepSetup(starts=15, steps=60, success=Success(tol=0.3), start_mode="domain", seed=4, momentum=0.3)
    want = sweep_grid(L, "sam", np.geomspace(0.1, 0.5, 3), "rho", np.geomspace(0.01, 1.0, 3), {}, setup)
    assert list(got.columns) == list(want.columns) and len(got) == 9
    np.testing.assert_allclose(
        got[["lr", "rho", "success_rate", "diverged_rate"]].to_numpy(),
        want[["lr", "rho", "success_rate", "diverged_rate"]].to_numpy(),
    )

    at.number_input(key="ls_bs_n").set_value(10)
    at.number_input(key="ls_bs_steps").set_value(80)
    at.number_input(key="ls_bs_tol").set_value(0.1)
    at.run()
    at.button(key="ls_run_bs").click().run()
    _ok(at)
    job = at.session_state["job:ls_basin"]
    assert job.join(60) and job.state().status == "done", job.state().error
    maps = job.state().result
    assert [m.variant for m in maps] == ["sgd", "sam"]
    lr = float(at.session_state["ls_lr_quartic"])
    s = BASIN_SETUP.replace(steps=80, success=Success(tol=0.1, target="any"), momentum=0.3, seed=4)
    for m, hp in zip(maps, [{}, {"rho": 0.2}]):
        ref = basin_map(L, m.variant, lr, hp, s, n=10)
        assert np.array_equal(m.label, ref.label) and m.tol == 0.1


def _count_url_messages(monkeypatch) -> list[dict]:
    """Every query-string message the app sends (Streamlit's page-info message), as the URL it says."""
    from streamlit.runtime.state.query_params import QueryParams

    sent: list[dict] = []
    real = QueryParams._send_query_param_msg

    def counted(self):
        sent.append({k: self.get_all(k) for k in self})
        real(self)

    monkeypatch.setattr(QueryParams, "_send_query_param_msg", counted)
    return sent


def _one(v):
    return v[-1] if isinstance(v, list) else v


def test_the_url_is_written_in_one_message_and_not_at_all_when_it_says_the_same(monkeypatch):
    """Each query-string message is handled on the browser's main thread before the charts that follow it;
    the race wrote 33 of them per rerun, one per parameter."""
    sent = _count_url_messages(monkeypatch)
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.query_params["job.x"] = "tok"  # a lab job's token stays in the URL
    at.query_params["bogus"] = "1"  # a key the page does not know is dropped
    at.run()
    _ok(at)
    assert len(sent) == 1
    first = sent[0]
    assert first["fn"] == ["quartic"] and first["job.x"] == ["tok"] and "bogus" not in first
    sent.clear()
    at.run()  # nothing changed
    _ok(at)
    assert sent == []
    at.select_slider(key="ls_lr_quartic").set_value(0.1).run()
    _ok(at)
    assert len(sent) == 1
    assert float(sent[0]["lr"][0]) == pytest.approx(0.1)
    assert {k: v for k, v in sent[0].items() if k != "lr"} == {k: v for k, v in first.items() if k != "lr"}
    assert float(_one(at.query_params["lr"])) == pytest.approx(0.1)


def test_an_interrupted_runs_url_is_overwritten_when_the_setting_goes_back(monkeypatch):
    """lr A → B → A at once: run B's message can reach the browser after run A's rerun began, with the URL
    still saying A. That rerun must write A again, or the URL (a reload, a shared link) says B."""
    sent = _count_url_messages(monkeypatch)
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.run()
    _ok(at)
    lr_a = _one(at.query_params["lr"])
    at.select_slider(key="ls_lr_quartic").set_value(0.1).run()  # B, sent
    _ok(at)
    assert float(sent[-1]["lr"][0]) == pytest.approx(0.1)
    n = len(sent)
    at.query_params["lr"] = lr_a  # the browser has not applied B's message yet
    at.select_slider(key="ls_lr_quartic").set_value(float(lr_a)).run()  # A again
    _ok(at)
    assert len(sent) == n + 1 and sent[-1]["lr"] == [lr_a]


def test_a_repeated_key_in_a_link_is_written_once(monkeypatch):
    sent = _count_url_messages(monkeypatch)
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.run()
    _ok(at)
    steps = _one(at.query_params["steps"])
    at.query_params["steps"] = ["9999", steps]  # the same link, hand-edited: the last value is the one used
    sent.clear()
    at.run()
    _ok(at)
    assert len(sent) == 1 and sent[0]["steps"] == [steps]
    sent.clear()
    at.run()
    _ok(at)
    assert sent == []


def _unescape_commonmark(text: str) -> str:
    """CommonMark: a backslash before any ASCII punctuation character shows that character itself."""
    import re

    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", text)


def test_a_typo_in_an_expression_is_shown_as_typed_with_the_caret_under_it():
    """``x**2`` in an error message rendered as markdown made the exponents bold markers (they vanished)."""
    import re

    at = AppTest.from_file(PAGE, default_timeout=90)
    at.query_params["fn"] = "custom"
    at.query_params["variants"] = "sgd"
    at.run()
    typo = "x**2 + 3*y**2 + sin(x"
    at.text_input(key="ls_expr").input(typo).run()
    _ok(at)
    body = next(e.value for e in at.error if "syntax error" in e.value)
    first, _, rest = body.partition("\n")
    assert not re.search(r"(?<!\\)[*_`]", first)  # nothing left for markdown to read as emphasis or code
    assert _unescape_commonmark(first).startswith("syntax error at column ")
    block = re.search(r"```text\n(.*?)\n```", rest, re.S)
    assert block is not None
    src, caret = block.group(1).split("\n")
    assert src == typo
    col = int(re.search(r"column (\d+)", first).group(1))
    assert caret == " " * (col - 1) + "^"
    assert "Still showing the last good function" in rest
