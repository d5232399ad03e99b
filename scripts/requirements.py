"""Write requirements*.txt from pyproject.toml's dependency layers (pyproject.toml is the one source).

    python scripts/requirements.py            # rewrite the three files
    python scripts/requirements.py --check    # exit 1, naming the file, when one is out of date

- requirements.txt      core + dashboard (+ the datasets it pulls in): what `make run` and the Docker image install
- requirements-ray.txt  the optional Ray executor of training sweeps
- requirements-dev.txt  requirements.txt + requirements-ray.txt + the test and lint tools (what `make test` installs)
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "# Generated from pyproject.toml by `python scripts/requirements.py`: edit pyproject.toml, then rerun it.\n"


def _expand(extras: dict[str, list[str]], name: str, project: str, seen: tuple[str, ...] = ()) -> list[str]:
    """The requirements of extra ``name``, with references to the project's own extras expanded."""
    out: list[str] = []
    for req in extras[name]:
        m = re.fullmatch(rf"{re.escape(project)}\[([\w,\s-]+)\]", req)
        if m is None:
            out.append(req)
            continue
        for inner in (x.strip() for x in m.group(1).split(",")):
            if inner in seen:
                raise ValueError(f"extra {name!r} refers to itself through {inner!r}")
            out.extend(_expand(extras, inner, project, (*seen, name)))
    return list(dict.fromkeys(out))


def render(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """File name → the text it should have."""
    meta = tomllib.loads(pyproject.read_text())["project"]
    core, extras, project = meta["dependencies"], meta["optional-dependencies"], meta["name"]

    def lines(reqs: list[str]) -> str:
        return "".join(f"{r}\n" for r in reqs)

    return {
        "requirements.txt": HEADER
        + "# The dashboard and the whole core. Ranges, not pins: any recent release works.\n"
        + lines(list(dict.fromkeys(core + _expand(extras, "dashboard", project)))),
        "requirements-ray.txt": HEADER + "# Optional: the Ray executor of training sweeps (python -m sam_core.cli.sweep"
        " --executor ray).\n# Nothing on the single-machine path imports Ray.\n"
        + lines(_expand(extras, "ray", project)),
        "requirements-dev.txt": HEADER
        + "# What `make test` installs: everything, Ray included, and the test and lint tools.\n"
        "-r requirements.txt\n-r requirements-ray.txt\n" + lines(_expand(extras, "dev", project)),
    }


def main(argv: list[str] | None = None) -> int:
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for name, text in render().items():
        path = ROOT / name
        if path.exists() and path.read_text() == text:
            continue
        if check:
            stale.append(name)
        else:
            path.write_text(text)
            print(f"wrote {name}")
    for name in stale:
        print(f"{name} is out of date with pyproject.toml: run `python scripts/requirements.py`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
