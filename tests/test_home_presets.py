"""Home presets: each opens an existing page whose controls take the preset's values."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def presets():
    """The cards Home draws (sam_core.presets.home_cards, at the CPU fidelity): (title, caption, page, query, icon)."""
    from sam_core.presets import home_cards

    return [card[:5] for card in home_cards(device="cpu")]


def test_home_renders_every_preset_and_variant():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30).run()  # Home is the default page
    assert not at.exception
    assert len(presets()) >= 6  # the six original questions, and one card per further paper figure
    links = [el.proto.label for el in at.get("page_link")]
    for title, *_ in presets():
        assert f"**{title}**" in links, f"Home does not draw the card {title!r}"
    app_src = (ROOT / "app.py").read_text()
    for _, _, page, _, _ in presets():
        assert f'"{page}"' in app_src, f"{page} is not in the navigation"


@pytest.mark.parametrize("preset", presets(), ids=lambda p: p[0][:30])
def test_preset_configures_its_page(preset, tmp_path, monkeypatch):
    _, _, page, params, _ = preset
    monkeypatch.setenv("SAMLAB_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("SAMLAB_DATA", str(tmp_path / "data"))
    at = AppTest.from_file(str(ROOT / page), default_timeout=90)
    for k, v in params.items():
        if k != "run":  # do not start the computation here (the page tests cover run=1)
            at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    picked = [
        m
        for m in at.multiselect
        if m.value
        and set(m.value) <= {"sgd", "sam", "usam", "unified_sam", "asam", "ssam", "bsam", "presam", "infosam"}
    ]
    assert any(list(m.value) == params["variants"].split(",") for m in picked)
