"""The helpers the command lines and the pages share (sam_core/cli/__init__.py): one reading of a boolean
word, one plain-text table."""

import argparse

import pytest

from sam_core.cli import FALSE_WORDS, TRUE_WORDS, BoolError, parse_bool, text_table

# every spelling the two former copies accepted (the CLI's stripped its input, the page's did not: the union)
TRUE = ["1", "true", "yes", "on", "TRUE", "Yes", "On", " on ", "\ttrue\n"]
FALSE = ["0", "false", "no", "off", "FALSE", "No", "OFF", " 0 ", "off\n"]
BAD = ["", " ", "2", "-1", "y", "n", "tru", "truee", "enabled", "1.0", "on off", "nan", "None", "ja"]


@pytest.mark.parametrize("word", TRUE)
def test_true_words(word):
    assert parse_bool(word) is True


@pytest.mark.parametrize("word", FALSE)
def test_false_words(word):
    assert parse_bool(word) is False


@pytest.mark.parametrize("word", BAD)
def test_anything_else_is_an_error_for_the_pages_and_for_argparse(word):
    with pytest.raises(ValueError, match="expected true or false") as info:  # what ui.common.qp_get catches
        parse_bool(word)
    assert isinstance(info.value, (BoolError, argparse.ArgumentTypeError))
    assert repr(word) in str(info.value)


def test_the_word_lists_do_not_overlap_and_cover_the_documented_spellings():
    assert set(TRUE_WORDS) == {"1", "true", "yes", "on"} and set(FALSE_WORDS) == {"0", "false", "no", "off"}
    assert not set(TRUE_WORDS) & set(FALSE_WORDS)


def test_a_train_option_reads_it_and_names_the_option_on_a_bad_word(capsys):
    from sam_core.cli.train import build_parser

    p = build_parser()
    assert p.parse_args(["--amp", "Off", "--augment", " yes"]).amp is False
    assert p.parse_args(["--amp", "1"]).amp is True
    with pytest.raises(SystemExit) as info:
        p.parse_args(["--amp", "maybe"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --amp: expected true or false, got 'maybe'" in err and "Traceback" not in err


def test_a_page_link_reads_the_same_words(monkeypatch):
    import ui.common as uc

    seen = []
    monkeypatch.setattr(uc, "url_notice", lambda name, msg: seen.append((name, msg)))

    class QP(dict):
        pass

    for raw, want in [("ON", True), ("no", False), (" 1 ", True)]:
        monkeypatch.setattr(uc.st, "query_params", QP(eq=raw))
        assert uc.qp_get("eq", None, parse_bool, expect="1 or 0") is want
    monkeypatch.setattr(uc.st, "query_params", QP(eq="maybe"))
    assert uc.qp_get("eq", False, parse_bool, expect="1 or 0") is False  # the default, with one notice
    assert len(seen) == 1 and seen[0][0] == "eq" and "1 or 0" in seen[0][1]


def test_text_table_aligns_every_column_under_its_header():
    rows = [["run-1", "finished", "sam"], ["a-much-longer-id", "", "ssam"], ["x", "running", 3.5]]
    header = ["id", "status", "optimizer"]
    lines = text_table(rows, header).split("\n")
    assert len(lines) == 2 + len(rows)
    assert all(line == line.rstrip() for line in lines)  # no trailing spaces
    cells = [header, *([str(c) for c in r] for r in rows)]
    widths = [max(len(str(r[j])) for r in cells) for j in range(3)]
    assert lines[1].split("  ") == ["-" * w for w in widths]
    for line, r in zip([lines[0], *lines[2:]], cells):
        starts = [0, widths[0] + 2, widths[0] + widths[1] + 4]
        for j, s in enumerate(starts):
            assert line[s : s + len(r[j])] == r[j]  # each cell starts in its column
            assert line[s - 2 : s] in ("", "  ")  # two spaces before every column but the first


def test_text_table_with_no_rows_is_the_header_and_its_rule():
    assert text_table([], ["trial", "status"]).split("\n") == ["trial  status", "-----  ------"]
