"""The documentation the code cites exists inside the repository, and says what the code cites it for.

Code cites the rule contract as `docs/ALGORITHMS.md, "Common skeleton"`: the quoted words name a
heading of that file (with a trailing parenthesis such as (`ssam`) left out, or the whole heading
with its backticks removed). The checks, each first shown to catch a planted mistake:
  * no .py/.md file cites the contract without its `docs/` prefix (a clone has no other copy);
  * no file points outside the repository at the shared notes of the machines it was written on;
  * in Python files every citation names a section, and every cited section is a heading there;
  * every variant of `sam_core.VARIANTS` has a section whose heading ends with its name in backticks;
  * relative links in README.md and docs/*.md lead to files that exist.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import sam_core

ROOT = Path(__file__).resolve().parents[1]
NAME = "ALGORITHMS" + ".md"  # spelt in two pieces so that this file does not cite it itself
DOC = ROOT / "docs" / NAME
SKIP_DIRS = {
    ".venv",
    ".git",
    "artifacts",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    "runs",
    "data",
}
OUTSIDE = ("../" + "shared", "/work/" + "shared")  # the shared notes live outside any clone

CITE = re.compile(r"docs/" + re.escape(NAME) + r"""(,\s*(["'])(.+?)\2)?""", re.S)


def repo_files(suffixes=(".py", ".md")) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        out += [Path(dirpath) / f for f in filenames if f.endswith(suffixes)]
    return sorted(out)


def heading_titles(markdown: str) -> tuple[set[str], list[str]]:
    """(the titles a citation may use, the raw heading texts) of a markdown text, code fences skipped."""
    titles, raw, fenced = set(), [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        m = None if fenced else re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line)
        if m:
            text = m.group(1)
            raw.append(text)
            titles.add(text.replace("`", ""))
            titles.add(re.sub(r"\s*\([^()]*\)$", "", text))
    return titles, raw


def bare_mentions(text: str, in_docs: bool) -> list[int]:
    """Line numbers where the contract is named without the docs/ prefix (a markdown link from a file
    inside docs/ to its neighbour by bare file name is the one relative form allowed)."""
    lines = []
    for m in re.finditer(re.escape(NAME), text):
        before = text[max(0, m.start() - 5) : m.start()]
        if before == "docs/" or (in_docs and (before.endswith("](") or before.endswith("](./"))):
            continue
        lines.append(text.count("\n", 0, m.start()) + 1)
    return lines


def citation_problems(text: str, titles: set[str], require_section: bool) -> list[str]:
    problems = []
    for m in CITE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        section = m.group(3)
        if section is None:
            if require_section:
                problems.append(f"line {line}: cites docs/{NAME} without naming a section")
        elif " ".join(section.split()) not in titles:
            problems.append(f"line {line}: section {section!r} is not a heading of docs/{NAME}")
    return problems


def _read(p: Path) -> str:
    return p.read_text(encoding="utf-8", errors="replace")


# ------------------------------------------------------------------------------ the checkers catch mistakes
def test_the_checkers_catch_planted_mistakes():
    md = "# Top\n## Stable SAM (`ssam`)\n```\n## not a heading\n```\n### SSAM with ASAM\n"
    titles, _ = heading_titles(md)
    assert titles >= {"Stable SAM", "Stable SAM (ssam)", "SSAM with ASAM"} and "not a heading" not in titles
    assert bare_mentions(f"see {NAME}\nok docs/{NAME}\n", in_docs=False) == [1]
    assert bare_mentions(f"[link](./{NAME}) and [x]({NAME})", in_docs=True) == []
    assert bare_mentions(f"[x]({NAME})", in_docs=False) == [1]
    good = f"(docs/{NAME}, \"Stable SAM\") and (docs/{NAME},\n    'SSAM with ASAM')"
    assert citation_problems(good, titles, require_section=True) == []
    assert citation_problems(f'docs/{NAME}, "Stable SAMM"', titles, True) == [
        f"line 1: section 'Stable SAMM' is not a heading of docs/{NAME}"
    ]
    assert citation_problems(f"x\n(docs/{NAME})", titles, True) == [
        f"line 2: cites docs/{NAME} without naming a section"
    ]
    assert citation_problems(f"(docs/{NAME})", titles, False) == []


# ------------------------------------------------------------------------------ the repository
def test_the_contract_is_in_the_repo_and_every_variant_has_a_section():
    assert DOC.is_file(), f"docs/{NAME} is missing"
    _, raw = heading_titles(_read(DOC))
    missing = [v for v in sam_core.VARIANTS if not any(h.endswith(f"(`{v}`)") for h in raw)]
    assert not missing, f"variants without a section '## Name (`name`)' in docs/{NAME}: {missing}"


def test_citations_have_the_docs_prefix_name_real_sections_and_stay_inside_the_repo():
    titles, _ = heading_titles(_read(DOC))
    problems = []
    for p in repo_files():
        rel = p.relative_to(ROOT).as_posix()
        text = _read(p)
        in_docs, is_py = rel.startswith("docs/"), p.suffix == ".py"
        problems += [f"{rel}:{n}: names {NAME} without docs/" for n in bare_mentions(text, in_docs)]
        problems += [f"{rel}: {msg}" for msg in citation_problems(text, titles, require_section=is_py)]
        problems += [f"{rel}: points outside the repository ({bad!r})" for bad in OUTSIDE if bad in text]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "doc", ["README.md", "docs/ARCHITECTURE.md", f"docs/{NAME}", "docs/CORE_API.md", "docs/PERFORMANCE.md"]
)
def test_relative_links_lead_to_files(doc):
    path = ROOT / doc
    assert path.is_file(), f"{doc} is missing"
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", _read(path)):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor
        if not (path.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{doc}: links to missing files: {broken}"


def test_readme_links_the_architecture_and_the_contract():
    readme = _read(ROOT / "README.md")
    assert "](docs/ARCHITECTURE.md)" in readme and f"](docs/{NAME})" in readme
