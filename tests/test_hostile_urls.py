"""Every page opened from a hostile link renders: out-of-range or malformed query values are clamped or
dropped with one notice naming the parameter and its range, never an exception page (issue 15); huge
ranges and lists are refused by their count cap before anything is allocated, so the process's memory
stays bounded (issue 16); hosted, an exception shows a short message, not a traceback (issue 16).

Run with ``-s`` to see the counts (query strings tried / rendered / failed).
"""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sam_core.landscape.lr_sweep import parse_range
from sam_core.training.sweeps import SweepError, parse_values

ROOT = Path(__file__).resolve().parents[1]
HEX300 = "0x" + "f" * 300
HEX298 = "0x" + "f" * 298
BIG = "99999999999999999999"

# (page, query parameters, texts one of which a notice on the page must contain; () = only "renders")
CASES: list[tuple[str, dict[str, str], tuple[str, ...]]] = [
    # Landscape lab
    ("landscape", {"x0": "1e308", "y0": "-1e308"}, ("`x0`", "`y0`")),
    ("landscape", {"fn": "custom", "expr": HEX300}, ("`expr`",)),
    ("landscape", {"fn": "custom", "expr": HEX298}, ("too large",)),
    ("landscape", {"fn": "custom", "expr": "-" * 250 + "x"}, ("nested too deeply",)),
    ("landscape", {"fn": "custom", "expr": "9**9**9**9"}, ("exponent",)),
    ("landscape", {"fn": "custom", "expr": "__import__('os')"}, ("not allowed",)),
    ("landscape", {"fn": "custom", "dom": "1e308,-1e308,nan,0"}, ("`dom`",)),
    ("landscape", {"fn": "custom", "dom": "1,2,3"}, ("`dom`",)),
    ("landscape", {"swrhos": "0:1:1000000000"}, ("ρ values: at most 24",)),
    ("landscape", {"swrhos": "0:1:5000000"}, ("ρ values: at most 24",)),
    ("landscape", {"swrhos": "0:1:" + "9" * 400}, ("ρ values: at most 24",)),
    ("landscape", {"swrhos": ",".join(["0.1"] * 60)}, ("ρ values: at most 24",)),
    ("landscape", {"swrhos": "0.1," * 3000}, ("`swrhos`",)),
    ("landscape", {"swrhos": "nan,inf"}, ("ρ values",)),
    ("landscape", {"lr": "inf", "steps": "-5", "seed": BIG}, ("`lr`", "`steps`", "`seed`")),
    ("landscape", {"lr": "nan", "mom": "nan", "noise": "1e999"}, ("`lr`", "`mom`", "`noise`")),
    ("landscape", {"steps": "1e9", "eq": "maybe"}, ("`steps`", "`eq`")),
    (
        "landscape",
        {"tol": "0", "lastk": "100000000", "swn": "0", "swstarts": "1e12", "swsteps": "-1", "spread": "-1"},
        ("`tol`", "`lastk`", "`swn`", "`swstarts`", "`swsteps`", "`spread`"),
    ),
    (
        "landscape",
        {"swlo": "-1", "swhi": "inf", "target": "zz", "mode": "zz"},
        ("`swlo`", "`swhi`", "`target`", "`mode`"),
    ),
    ("landscape", {"fn": "nosuch", "variants": "foo,bar"}, ("`fn`", "`variants`")),
    ("landscape", {"fn": "quadratic", "lam": "1e308", "kappa": "-1"}, ("`lam`", "`kappa`")),
    ("landscape", {"view": "garbage", "ball": "maybe", "anim": "2"}, ("`view`", "`ball`", "`anim`")),
    (
        "landscape",
        {"variants": "sam,unified_sam", "sam.rho": "1e308", "unified_sam.lam": "5"},
        ("`sam.rho`", "`unified_sam.lam`"),
    ),
    ("landscape", {"x0": "", "lr": "", "steps": "", "expr": ""}, ()),
    ("landscape", {"x0": "\x00", "y0": "%00", "seed": "-0x1"}, ("`x0`", "`y0`", "`seed`")),
    # Saddle escape
    ("saddle", {"epochs": "100000000"}, ("`epochs`",)),
    ("saddle", {"epochs": "-5"}, ("`epochs`",)),
    ("saddle", {"n": "1000000000"}, ("`n`",)),
    ("saddle", {"batch": "0"}, ("`batch`",)),
    ("saddle", {"seeds": "1000", "d": "100000", "frac": "2", "lr": "inf"}, ("`seeds`", "`d`", "`frac`", "`lr`")),
    ("saddle", {"rho": "0:1:1000000000"}, ("`rho`",)),
    ("saddle", {"rho": "nan,inf,-1"}, ("`rho`",)),
    ("saddle", {"rho": ",".join(["0.1"] * 500)}, ("`rho`",)),
    ("saddle", {"mode": "garbage", "epochs": "abc"}, ("`mode`", "`epochs`")),
    ("saddle", {"variants": "x" * 5000}, ("`variants`",)),
    # Edge of stability
    ("edge_of_stability", {"steps": "100000000"}, ("`steps`",)),
    ("edge_of_stability", {"every": "0"}, ("`every`",)),
    ("edge_of_stability", {"lr": "nan", "rho": "inf"}, ("`lr`", "`rho`")),
    ("edge_of_stability", {"steps": "-1", "every": "1e9"}, ("`steps`", "`every`")),
    # Quadratics
    ("quadratics", {"b": "0"}, ("`b`",)),
    ("quadratics", {"b": "100000000"}, ("`b`",)),
    ("quadratics", {"steps": "1000000000"}, ("`steps`",)),
    (
        "quadratics",
        {"problem": "x", "sampling": "y", "seeds": "0", "lr_mult": "inf"},
        ("`problem`", "`sampling`", "`seeds`", "`lr_mult`"),
    ),
    # Training lab
    ("training", {"lr": "inf"}, ("`lr`",)),
    ("training", {"seed": BIG}, ("`seed`",)),
    (
        "training",
        {
            "epochs": "1e9",
            "batch_size": "-1",
            "subset": "nan",
            "label_noise": "5",
            "hessian_every": "-3",
            "top_k": "1000000",
        },
        ("`epochs`", "`batch_size`", "`subset`", "`label_noise`", "`hessian_every`", "`top_k`"),
    ),
    ("training", {"dataset": "../../etc", "model": "<script>alert(1)</script>"}, ()),
    ("training", {"model": "m" * 5000, "run": "../../x"}, ("`model`",)),
    # Sweeps, Compare runs, Home, About: garbage and unknown names
    ("sweeps", {"variants": "nonsense,sam", "x": "1e308"}, ("`variants`",)),
    ("compare_runs", {"run": "../../x", "variants": ",,,"}, ()),
    ("home", {"variants": "<b>", "fn": HEX300}, ()),
    ("about", {"x": "\x00" * 100}, ()),
]
# every parameter each page reads, all set to one hostile value at once (a crash of any one fails the link)
PARAMS = {
    "landscape": (
        "fn dom eq expr lr mom noise seed steps x0 y0 anim ball lastk mode spread swhi swlo swn swrhos "
        "swstarts swsteps target tol view variants sam.rho ssam.rho unified_sam.lam asam.flavour asam.eta "
        "sam.stable lam kappa run preset fidelity tab"
    ).split(),
    "edge_of_stability": "every lr rho steps variants n width run preset fidelity".split(),
    "saddle": "batch d epochs frac lr mode n rho seeds variants run preset fidelity".split(),
    "quadratics": "b lr_mult problem sampling seeds steps variants lams heat cmp budget run preset".split(),
    "training": (
        "batch_size dataset epochs hessian_every label_noise lr model run seed subset top_k variants stability "
        "preset fidelity"
    ).split(),
    "sweeps": ["variants"],
    "compare_runs": ["run"],
    "home": ["variants"],
    "about": ["variants"],
}
EVERYWHERE = ["nan", "-inf", "1e308", "-" + BIG, "abc", "", "x" * 3000]
# the links whose lists or ranges would allocate without a cap (memory is measured around them)
HUGE = {
    i
    for i, (_, q, _) in enumerate(CASES)
    if any(":" + "1" in v or len(v) > 1000 or "1000000000" in v for v in q.values())
}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    mp = pytest.MonkeyPatch()
    mp.setenv("SAMLAB_RUNS_DIR", str(base / "runs"))
    mp.setenv("SAMLAB_DATA", str(base / "data"))
    mp.setenv("SAMLAB_OFFLINE", "1")
    mp.delenv("SAMLAB_READ_ONLY", raising=False)
    mp.delenv("SAMLAB_HOSTED", raising=False)
    yield base
    mp.undo()


def open_page(page: str, query: dict[str, str]) -> AppTest:
    if page in ("home", "about"):  # st.page_link needs the navigation: run the app, then the page
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
        for k, v in query.items():
            at.query_params[k] = v
        at.run()
        if page == "about":
            at.switch_page("pages/about.py")
            for k, v in query.items():
                at.query_params[k] = v
            at.run()
        return at
    script = {"sweeps": "training_sweeps"}.get(page, page)  # the page's URL path → its file in pages/
    at = AppTest.from_file(str(ROOT / "pages" / f"{script}.py"), default_timeout=90)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    return at


def notices(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("warning", "error", "info") for e in getattr(at, kind))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def test_every_page_renders_hostile_links_with_a_notice_naming_the_field(roots):
    open_page("landscape", {})  # warm the caches: the first landscape render compiles and allocates its grids
    base_mb = _peak_mb()
    failed, missing = [], []
    for page, query, expected in CASES:
        at = open_page(page, query)
        if at.exception:
            failed.append((page, query, [e.value[:120] for e in at.exception]))
            continue
        text = notices(at)
        lacking = [e for e in expected if e not in text]
        if lacking:
            missing.append((page, {k: v[:30] for k, v in query.items()}, lacking, text[:300]))
    grown = _peak_mb() - base_mb
    print(
        f"\nhostile links: {len(CASES)} tried, {len(CASES) - len(failed)} rendered, {len(failed)} failed "
        f"(exception page); {len(missing)} rendered without the expected notice; peak RSS +{grown:.0f} MB "
        f"over the {len(HUGE)} huge-range links and the rest"
    )
    assert not failed, failed
    assert not missing, missing
    assert grown < 300, f"peak memory grew by {grown:.0f} MB"  # 0:1:1000000000 would ask for 7.45 GiB


@pytest.mark.parametrize("value", EVERYWHERE, ids=lambda v: repr(v[:8]))
def test_every_parameter_of_every_page_at_once(roots, value):
    failed = []
    for page, names in PARAMS.items():
        at = open_page(page, {n: value for n in names})
        if at.exception:
            failed.append((page, [e.value[:120] for e in at.exception]))
    print(
        f"\nall parameters = {value[:8]!r}: {len(PARAMS)} pages tried, {len(PARAMS) - len(failed)} rendered, "
        f"{len(failed)} failed"
    )
    assert not failed, failed


def test_each_bad_field_gets_one_notice_with_its_range(roots):
    at = open_page("saddle", {"epochs": "100000000", "seeds": "-3"})
    assert not at.exception
    warnings = [w.value for w in at.warning]
    epochs = [w for w in warnings if "`epochs`" in w]
    assert len(epochs) == 1 and "[1, 5000]" in epochs[0] and "using 5000" in epochs[0]
    assert at.number_input(key="saddle_epochs").value == 5000  # clamped, not dropped
    assert at.slider(key="saddle_seeds").value == 1
    at = open_page("landscape", {"x0": "1e308", "y0": "-1e308", "fn": "quartic"})
    assert not at.exception
    assert at.number_input(key="ls_x0_quartic").value == 6.0  # the domain [-2, 2] ± its span
    assert at.number_input(key="ls_y0_quartic").value == -6.0
    assert sum("`x0`" in w.value for w in at.warning) == 1


def test_the_caps_are_checked_before_anything_is_allocated():
    before = _peak_mb()
    for text in ("0:1:1000000000", "0:1:" + "9" * 5000, "0.1," * 100_000):
        with pytest.raises(ValueError, match="ρ values: at most 24 values"):
            parse_range(text, log=False, max_count=24, name="ρ values")
    with pytest.raises(ValueError, match=r"lrs: at most 10000 values, got 1000000000"):
        parse_range("0.01:1:1000000000", name="lrs")  # the CLI's default cap
    assert len(parse_range("0.01:1:10000", name="lrs")) == 10000  # the cap itself is allowed
    with pytest.raises(SweepError, match="seed: at most 1000 values"):
        parse_values("1 " * 100_000, "seed", int)
    assert _peak_mb() - before < 100


def test_hosted_exception_pages_show_no_traceback(roots, monkeypatch):
    from streamlit import config

    page = ROOT / "tests" / "_boom_app.py"
    page.write_text(
        "from ui.common import apply_error_details\nimport streamlit as st\n"
        "st.write('mode=' + apply_error_details())\nraise RuntimeError('secret /srv/path')\n"
    )
    saved = config.get_option("client.showErrorDetails")
    try:
        monkeypatch.setenv("SAMLAB_HOSTED", "1")
        at = AppTest.from_file(str(page), default_timeout=30).run()
        assert "mode=none" in [m.value for m in at.markdown]
        assert config.get_option("client.showErrorDetails") == "none"
        monkeypatch.setenv("SAMLAB_HOSTED", "0")
        at = AppTest.from_file(str(page), default_timeout=30).run()
        assert "mode=full" in [m.value for m in at.markdown]
        assert "secret /srv/path" in at.exception[0].value  # locally the details stay on
    finally:
        config.set_option("client.showErrorDetails", saved)
        page.unlink()


def test_hosted_detection_and_show_error(roots, monkeypatch):
    from ui import common as uc

    monkeypatch.setenv("SAMLAB_HOSTED", "auto")
    monkeypatch.setenv("SAMLAB_READ_ONLY", "1")
    assert uc.hosted()
    monkeypatch.delenv("SAMLAB_READ_ONLY")
    assert not uc.hosted()  # tests run with the repo's config.toml: 127.0.0.1
    monkeypatch.setenv("SAMLAB_HOSTED", "bogus")
    assert uc.hosted()  # a mistyped setting never leaks details

    page = ROOT / "tests" / "_show_error_app.py"
    page.write_text(
        "from ui.common import show_error\n"
        "show_error(OSError('cannot open /srv/secret/runs.sqlite'), 'Runs')\n"
        "show_error(ValueError('epochs must be an integer in [1, 5000], got 0'), 'Settings')\n"
    )
    try:
        monkeypatch.setenv("SAMLAB_HOSTED", "1")
        at = AppTest.from_file(str(page), default_timeout=30).run()
        errs = [e.value for e in at.error]
        assert errs[0].startswith("Runs: ") and "/srv/secret" not in errs[0] and "server" in errs[0]
        assert errs[1] == "Settings: epochs must be an integer in [1, 5000], got 0"  # our messages stay
        monkeypatch.setenv("SAMLAB_HOSTED", "0")
        at = AppTest.from_file(str(page), default_timeout=30).run()
        assert "/srv/secret" in at.error[0].value
    finally:
        page.unlink()


def test_the_sweeps_page_caps_a_grid_box_before_launching(roots):
    at = open_page("sweeps", {})
    at.text_input(key="sw_g_seed").set_value(" ".join(str(i) for i in range(100_000))).run()
    at.button(key="sw_launch").click().run()
    assert not at.exception
    assert any("seed: at most 48 values" in e.value for e in at.error)


def test_hosted_training_page_keeps_a_failed_runs_traceback_off_screen(roots, monkeypatch):
    from sam_core.training import RunConfig, RunStore
    from sam_core.training.worker import create

    store = RunStore(roots / "runs")
    rid = create(
        store,
        RunConfig(
            dataset="cifar10", model="lenet5", optimizer="sam", epochs=1, subset=64, batch_size=32, download=False
        ),
        name="broken",
    )
    store.update(rid, status="failed", message="RuntimeError: boom")
    store.update(rid, traceback='Traceback (most recent call last):\n  File "/srv/secret/x.py"\nRuntimeError: boom')
    for flag, shown in (("1", False), ("0", True)):
        monkeypatch.setenv("SAMLAB_HOSTED", flag)
        at = AppTest.from_file(str(ROOT / "pages" / "training.py"), default_timeout=60)
        at.session_state["tl_show"] = [rid]
        at.run()
        assert not at.exception
        assert any("/srv/secret" in c.value for c in at.code) is shown
        assert any("RuntimeError: boom" in m.value for m in at.markdown)  # the one-line message stays
