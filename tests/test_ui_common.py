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
