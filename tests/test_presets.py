"""Home presets (sam_core/presets.py): each runs headless at class size and its phenomenon check holds on
its own output; each check rejects a deliberately wrong result (variants or settings swapped)."""

import copy
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from sam_core.presets import FIDELITIES, PRESETS, default_fidelity, get_preset, home_cards

ROOT = Path(__file__).resolve().parents[1]
_CACHE: dict = {}


def result(name):
    """The preset's class-size result, computed once per test session."""
    if name not in _CACHE:
        _CACHE[name] = get_preset(name).run_to_end("class")
    return _CACHE[name]


@pytest.mark.parametrize("name", [p.name for p in PRESETS])
def test_preset_reproduces_its_phenomenon_at_class_size(name):
    p = get_preset(name)
    res = result(name)
    held, detail = p.check(res)
    assert held, f"{name}: {detail}"
    assert detail
    fig = p.figure(res)
    assert len(fig.data) >= 2  # at least two things compared


# ---------------------------------------------------------------- each check can fail: wrong results
def _swap_saddle(res):
    bad = res.snapshot()
    for d in (bad.loss, bad.gamma, bad.w_norm):
        d["sam"], d["ssam"] = d["ssam"], d["sam"]
    return bad


def _swap_sweep(df):
    bad = df.copy()
    bad["variant"] = bad["variant"].map({"sam": "sgd", "sgd": "sam"}).fillna(bad["variant"])
    bad.attrs = dict(df.attrs)
    return bad


def _swap_eos(res):
    bad = res.snapshot()
    bad.top_eig["sgd"], bad.top_eig["sam"] = bad.top_eig["sam"], bad.top_eig["sgd"]
    return bad


def _reverse_lams(res):
    bad = res.snapshot()
    cs = [c for c in bad.curves if "lam" in c.extra]
    lams = [c.extra["lam"] for c in cs]
    bad.curves = [copy.copy(c) for c in cs]
    for c, lam in zip(bad.curves, reversed(lams)):
        c.extra = {**c.extra, "lam": lam}
    return bad


def _swap_sampling(res):
    bad = res.snapshot()
    cs = [copy.copy(c) for c in bad.sampling_curves]
    i = next(k for k, c in enumerate(cs) if c.label.startswith("importance"))
    j = next(k for k, c in enumerate(cs) if c.label.startswith("uniform"))
    cs[i].rel_error, cs[j].rel_error = cs[j].rel_error, cs[i].rel_error
    bad.sampling_curves = cs
    return bad


def _reverse_rho(res):
    bad = res.snapshot()
    labs = bad.labels
    curves = [bad.curves[lab] for lab in labs]
    bad.curves = dict(zip(labs, reversed(curves)))
    return bad


def _swap_variants(a, b):
    def swap(res):
        bad = res.snapshot()
        la = next(k for k, v in bad.variants.items() if v == a)
        lb = next(k for k, v in bad.variants.items() if v == b)
        bad.variants = {**bad.variants, la: b, lb: a}
        return bad

    return swap


WRONG = {
    "saddle": _swap_saddle,
    "lr_sweep": _swap_sweep,
    "eos": _swap_eos,
    "unified_lambda": _reverse_lams,
    "sampling": _swap_sampling,
    "gamma": _reverse_rho,
    "stability": _swap_variants("usam", "ssam"),
    "flatness": _swap_variants("sgd", "sam"),
    "label_noise": _swap_variants("sgd", "sam"),
}


def test_every_preset_has_a_wrong_result_case():
    assert set(WRONG) == {p.name for p in PRESETS}


@pytest.mark.parametrize("name", sorted(WRONG))
def test_check_rejects_a_wrong_result(name):
    p = get_preset(name)
    bad = WRONG[name](result(name))
    held, detail = p.check(bad)
    assert not held, f"{name}: a swapped result passed the check ({detail})"
    assert p.check(result(name))[0]  # the swap did not touch the cached result


def test_check_of_an_empty_result_fails_cleanly():
    for p in PRESETS:
        held, detail = p.check(None if p.name != "lr_sweep" else result("lr_sweep").iloc[0:0])
        assert not held and detail


def test_shortened_saddle_run_does_not_pass():
    """Cut the epochs below the escape time: SGD has not escaped, so the figure cannot make the point."""
    from sam_core.dynamics import SaddleConfig, run_saddle, run_to_end

    res = run_to_end(
        run_saddle(["sgd", "sam", "ssam"], [0.01, 0.2], [0], SaddleConfig(lr=0.01, epochs=10, batch_size=100))
    )
    assert not get_preset("saddle").check(res)[0]


# ---------------------------------------------------------------- definitions, fidelity, Home, CLI
def test_definitions_and_default_fidelity():
    nav = (ROOT / "app.py").read_text()
    names = [p.name for p in PRESETS]
    assert len(names) == len(set(names)) >= 9
    for p in PRESETS:
        assert f'"{p.page}"' in nav
        assert p.look_for.endswith(".") and p.look_for.count(". ") == 0  # one sentence
        for f in FIDELITIES:
            q = p.page_query(f)
            assert q["preset"] == p.name and q["fidelity"] == f
        assert p.query["class"] != p.query["paper"]
        assert default_fidelity(p, "cpu") == "class"
        assert default_fidelity(p, "cuda:0") == ("paper" if p.paper_fits_gpu_minute else "class")
    with pytest.raises(ValueError, match="fidelity"):
        get_preset("saddle").page_query("huge")
    with pytest.raises(ValueError, match="unknown preset"):
        get_preset("nope")
    cards = home_cards(device="cpu")
    assert [c[0] for c in cards] == [p.title for p in PRESETS]
    assert all(c[3]["fidelity"] == "class" for c in cards)


def test_headless_runner_uses_the_page_query():
    """The saddle preset's headless run has the sizes its Home card puts in the URL."""
    p = get_preset("saddle")
    q = p.page_query("class")
    res = result("saddle")
    assert res.config.epochs == int(q["epochs"]) and res.config.lr == float(q["lr"])
    assert res.seeds == list(range(int(q["seeds"])))
    assert res.variants == q["variants"].split(",")


def test_cli_list_run_and_html(tmp_path, capsys):
    from demos.presets import main

    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for p in PRESETS:
        assert p.name in out
    html = tmp_path / "saddle.html"
    assert main(["--run", "saddle", "--html", str(html), "--fidelity", "class"]) == 0
    text = html.read_text()
    assert "Look for:" in text and "held" in text and "plotly" in text
    assert main(["--run", "nope"]) == 2


def test_page_opened_by_a_preset_says_what_to_look_for():
    p = get_preset("saddle")
    at = AppTest.from_file(str(ROOT / p.page), default_timeout=60)
    for k, v in p.page_query("class").items():
        if k != "run":
            at.query_params[k] = v
    at.run()
    assert not at.exception
    text = " ".join(m.value for m in at.markdown)
    assert p.look_for in text and p.figure_ref in text
    assert at.number_input(key="saddle_epochs").value == int(p.query["class"]["epochs"])
    assert np.isclose(at.session_state["saddle_lr"], float(p.query["class"]["lr"]))


def _open_card(p, job_key: str, tmp_path, monkeypatch):
    """The page a card opens, with the card's whole URL query; waits for the job it starts. (AppTest, job state)."""
    import time

    monkeypatch.setenv("SAMLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SAMLAB_DATA", str(tmp_path / "data"))
    at = AppTest.from_file(str(ROOT / p.page), default_timeout=60)
    for k, v in p.page_query("class").items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    job = at.session_state[f"job:{job_key}"]
    t0 = time.time()
    while not job.state().finished and time.time() - t0 < 120:
        time.sleep(0.1)
    st = job.state()
    assert st.status == "done", st.error
    return at, st


def test_fig2_card_starts_the_sweep_in_the_page_and_the_page_result_holds(tmp_path, monkeypatch):
    """The card's run=1 starts the Landscape lab's sweep: the table the page computes passes the check too."""
    p = get_preset("lr_sweep")
    at, st = _open_card(p, "ls_sweep", tmp_path, monkeypatch)
    df = st.result.copy()
    from sam_core.landscape.functions import make_landscape

    df.attrs["gd_bounds"] = list(make_landscape("quartic").gd_bounds)
    held, detail = p.check(df)
    assert held, detail
    at.run()
    assert not at.exception


def test_a_training_card_trains_its_own_figure_in_the_page_and_the_result_holds(tmp_path, monkeypatch):
    """A Training-lab card (autorun=1) runs the preset's own comparison in the lab's worker pool; the result the
    page holds passes the preset's check, the page says so, and the real-runs form is filled in for it."""
    p = get_preset("stability")
    q = p.page_query("class")
    assert q["autorun"] == "1"
    at, st = _open_card(p, "preset_stability", tmp_path, monkeypatch)
    held, detail = p.check(st.result)
    assert held, detail
    assert set(st.result.variants.values()) == set(q["variants"].split(","))  # the figure's variants = the form's
    at.run()
    assert not at.exception, at.exception
    assert any("The phenomenon held" in s.value for s in at.success), [s.value for s in at.success]
    assert list(at.multiselect(key="tl_variants").value) == q["variants"].split(",")
    assert not list((tmp_path / "runs").glob("*/worker.log"))  # no real run was launched by opening the card


def test_the_flatness_figure_ticks_whole_ranks():
    from types import SimpleNamespace

    from sam_core.presets import _flat_figure

    eigs = {"SGD": np.array([[9.0, 5.0, 3.0, 2.0, 1.0]]), "SAM": np.array([[4.0, 3.0, 2.0, 1.5, 1.0]])}
    res = SimpleNamespace(
        top_eigs=eigs, variants={"SGD": "sgd", "SAM": "sam"}, labels=list(eigs), config=SimpleNamespace(top_k=5)
    )
    fig = _flat_figure(res)
    assert fig.layout.xaxis.dtick == 1
    assert [list(t.x) for t in fig.data if t.name in eigs][0] == [1, 2, 3, 4, 5]
