"""Shared UI helpers: the variant choice follows the user across pages, and a shared link wins once."""

from streamlit.testing.v1 import AppTest


def _picker_app():
    import streamlit as st

    from ui.common import qp_set, variant_picker

    chosen = variant_picker(st.session_state.get("_test_key", "k1"))
    st.write("chosen=" + ",".join(chosen))
    qp_set(variants=chosen)


def _chosen(at):
    return [m.value for m in at.markdown if m.value.startswith("chosen=")][0][len("chosen=") :].split(",")


def test_url_wins_once_then_the_user_choice_stays():
    at = AppTest.from_function(_picker_app, default_timeout=30)
    at.session_state["chosen_variants"] = ["sgd"]
    at.query_params["variants"] = "sam,bsam,nonsense"
    at.run()
    assert _chosen(at) == ["sam", "bsam"]  # unknown names dropped
    at.multiselect(key="k1").select("usam").run()
    assert _chosen(at) == ["sam", "bsam", "usam"]  # the page's own URL write does not undo the user's change
    at.run()
    assert _chosen(at) == ["sam", "bsam", "usam"]


def test_choice_is_shared_between_pages():
    at = AppTest.from_function(_picker_app, default_timeout=30)
    at.run()
    at.multiselect(key="k1").set_value(["asam", "ssam"]).run()
    at.session_state["_test_key"] = "k2"  # another page's widget
    at.run()
    assert _chosen(at) == ["asam", "ssam"]


def _hp_app():
    import streamlit as st

    from ui.common import hparam_inputs

    st.write("hp=" + repr(hparam_inputs("ssam", "t")))


def test_registry_defaults_are_not_snapped_by_log_sliders():
    at = AppTest.from_function(_hp_app, default_timeout=30).run()
    text = [m.value for m in at.markdown if m.value.startswith("hp=")][0]
    assert "'rho': 0.05" in text


def test_the_server_does_not_collect_after_every_rerun_and_freezes_its_imports_once():
    """Streamlit's gc.collect after each rerun held the interpreter ~0.3 s (docs/PERFORMANCE.md): the
    config turns it off, and settle_heap freezes what is alive once (in a fresh interpreter: freezing
    this test process's objects would outlive the test)."""
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    conf = tomllib.loads((root / ".streamlit" / "config.toml").read_text())
    assert conf["runner"]["postScriptGC"] is False
    code = (
        "import gc\nfrom ui.common import settle_heap\nassert gc.get_freeze_count() == 0\n"
        "settle_heap()\nn = gc.get_freeze_count()\nassert n > 10000, n\n"
        "[object() for _ in range(10)]\nx = [[] for _ in range(1000)]\nsettle_heap()\n"
        "assert gc.get_freeze_count() == n, 'froze twice'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, timeout=120)


def test_plain_markdown_shows_every_punctuation_character_as_it_is():
    import random
    import re

    from ui.common import plain_markdown

    rng = random.Random(0)
    chars = "abc xy_*`$~#[]()<>!|+-.{}\\0123"
    for _ in range(500):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 30)))
        out = plain_markdown(text)
        assert "\n" not in out
        # CommonMark: a backslash before ASCII punctuation shows that character; every special one is escaped
        assert re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", out) == text
        assert not re.search(r"(?<!\\)[*_`$~<>]", out.replace("\\\\", ""))  # nothing left for markdown to read
