"""The project's command lines and what they share: bad input is one line on stderr, never a traceback.

- ``python -m sam_core.cli.train``: one training run (or several variants, or a `torchrun` rank).
- ``python -m sam_core.cli.runs``: list, show, stop, resume and delete the runs of a run store.
- ``python -m sam_core.cli.sweep``: hyperparameter sweeps of training runs.
- ``python -m demos.…``: the labs' experiments (landscape race, lr sweep, saddle, quadratics, edge of
  stability, presets) from a shell.


    from sam_core.cli import Parser, cli_main, ensure_writable

    @cli_main
    def main(argv=None) -> int:
        args = Parser(prog="python -m …").parse_args(argv)
        ensure_writable(args.csv, "--csv")        # before any long computation
        …

* `Parser`: an `argparse.ArgumentParser` whose errors are one line, ``error: argument --lr: invalid float
  value: 'a' (see … --help)``, exit status 2.
* `cli_main`: runs `main(argv)`; the project's own validation errors (`ValueError` and its kin:
  `ConfigError`, `ExprError`, `SweepError`, `StoreError`, …), missing files, unusable folders and
  SQLite errors become ``error: <message>`` on stderr and exit status 2; anything else unexpected
  is one line too (exit status 1), with the traceback only under ``SAMLAB_DEBUG=1``.
* `ensure_writable(path, field)`: refuses an output path that cannot be written *before* the work,
  naming the option; `check_device(name, field)`: refuses a device this machine does not have.
* `parse_bool`: the one reading of a boolean word (options such as ``--amp on``, and the pages' links,
  ``?eq=1``); `text_table(rows, header)`: the plain aligned tables the CLIs print.
"""

from __future__ import annotations

import argparse
import functools
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path


class CLIError(ValueError):
    """A bad option value: `field` is the option (e.g. ``--csv``), the message says what is allowed."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


class BoolError(ValueError, argparse.ArgumentTypeError):
    """Not a boolean word. A `ValueError` (what the pages' URL parsing catches) and argparse's
    `ArgumentTypeError` (whose message argparse prints as it is, after the option's name)."""


def parse_bool(text: str) -> bool:
    """``1 true yes on`` → True, ``0 false no off`` → False, in any case, surrounding spaces ignored;
    anything else raises `BoolError` ("expected true or false, got '…'")."""
    v = str(text).strip().lower()
    if v in TRUE_WORDS:
        return True
    if v in FALSE_WORDS:
        return False
    raise BoolError(f"expected true or false, got {text!r}")


def text_table(rows, header) -> str:
    """``rows`` (sequences of cells) under ``header`` as aligned plain-text columns: the header, a rule
    of dashes, one line per row (cells left-aligned, two spaces apart, no trailing spaces)."""
    header = [str(h) for h in header]
    rows = [[str(x) for x in r] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]

    def line(cells) -> str:
        return "  ".join(x.ljust(w) for x, w in zip(cells, widths)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in rows])


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no multi-line usage dump): ``error: … (see PROG --help)``."""

    def error(self, message: str):  # noqa: D102 — argparse's hook
        self.exit(2, f"error: {one_line(message)} (see {self.prog} --help)\n")


def one_line(text: object, limit: int = 600) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def describe(exc: BaseException) -> tuple[str, int]:
    """(the one-line message, the exit status) for an exception that reached a CLI's top level."""
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return one_line(exc.args[0]), 2  # KeyError's str() would quote the message
    if isinstance(exc, sqlite3.DatabaseError):
        return (
            one_line(
                f"run store: the database cannot be read ({exc}); it is corrupt or belongs to another "
                f"program, and was left unchanged — choose another runs folder (--runs-dir)"
            ),
            2,
        )
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to be a valid value", 2
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        return one_line(f"{where}{exc.strerror or exc}"), 2
    if isinstance(exc, (ValueError, TypeError, ArithmeticError)):
        return one_line(exc), 2
    return one_line(f"unexpected {type(exc).__name__}: {exc} (set SAMLAB_DEBUG=1 to see the traceback)"), 1


def cli_main(fn: Callable[..., int] | None = None, *, exit: bool = False):
    """Wrap a CLI's `main(argv)`: errors become ``error: <message>`` on stderr and a non-zero status —
    returned, or with ``exit=True`` raised as `SystemExit` (what argparse does for its own errors; the
    demos' convention)."""

    def deco(fn: Callable[..., int]) -> Callable[..., int]:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs) -> int:
            try:
                return fn(*args, **kwargs)
            except SystemExit:
                raise
            except KeyboardInterrupt:
                print("interrupted", file=sys.stderr, flush=True)
                code = 130
            except BaseException as exc:  # noqa: B036 — the last line of defence: one line, never a traceback
                if os.environ.get("SAMLAB_DEBUG", "").strip().lower() in TRUE_WORDS:
                    raise
                msg, code = describe(exc)
                sys.stdout.flush()
                print(f"error: {msg}", file=sys.stderr, flush=True)
            if exit:
                raise SystemExit(code)
            return code

        return wrapper

    return deco(fn) if fn is not None else deco


def ensure_writable(path: str | os.PathLike | None, field: str) -> Path | None:
    """Check that `path` can be written (its folder exists and accepts a file) without altering it.

    None and '-' (stdout) pass. An existing file is opened for appending (nothing written); a new one
    is created and removed again. Raises `CLIError` naming `field`."""
    if path is None or str(path) == "-":
        return None
    if str(path).strip() == "":
        raise CLIError(field, "an empty path; give a file name")
    p = Path(path).expanduser()
    if p.is_dir():
        raise CLIError(field, f"{p} is a folder; give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise CLIError(field, f"cannot write {p}: its folder {parent} does not exist")
    existed = p.exists()
    try:
        with open(p, "ab"):
            pass
    except OSError as exc:
        raise CLIError(field, f"cannot write {p} ({exc.strerror or exc})") from None
    if not existed:
        try:
            p.unlink()
        except OSError:
            pass
    return p


def check_device(name: str, field: str = "--device") -> str:
    """Refuse a device string torch does not parse, or a CUDA/MPS device this machine does not have."""
    import torch

    name = str(name).strip()
    if name == "auto":
        return name
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise CLIError(field, f"{name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (dev.index or 0) >= n:
            have = f"{n} CUDA device(s) (cuda:0…cuda:{n - 1})" if n else "no CUDA device"
            raise CLIError(field, f"{name}: this machine has {have}; use auto or cpu")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise CLIError(field, f"{name}: MPS is not available here; use auto or cpu")
    elif dev.type != "cpu":
        raise CLIError(field, f"{name!r}: use auto, cpu, cuda, cuda:N or mps")
    return name


NO_CAPS_HELP = "lift the work caps (the same limits as the pages) — for a machine you do not share"


def check_cap(field: str, value: float | int | None, cap: float | int, no_caps: bool, what: str = "") -> None:
    """Refuse `value` above the work cap `cap` unless --no-caps was given (checked before allocating)."""
    if no_caps or value is None or value <= cap:
        return
    shown = f"{cap:.0e}" if isinstance(cap, float) else f"{cap}"
    raise CLIError(
        field,
        f"{what or value} is above the cap of {shown} (the same as the page's); use less, or pass --no-caps to lift it",
    )


def list_count(text: str) -> int:
    """How many values a 'low:high:count' range or a comma list names, without building it (a huge count
    is refused before anything is allocated); a malformed count counts as 0 (the parser reports it)."""
    text = str(text).strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) == 3:
            try:
                n = float(parts[2])
            except ValueError:
                return 0
            return int(n) if n == n and abs(n) < float("inf") else 0
        return 0
    return sum(1 for x in text.split(",") if x.strip())


def parse_float(text: str, field: str) -> float:
    """float(text), or a `CLIError` naming the field (instead of "could not convert string to float")."""
    try:
        return float(str(text).strip())
    except ValueError:
        raise CLIError(field, f"expected a number, got {str(text)!r}") from None


def parse_names(text: str, field: str, allowed, at_least_one: bool = True, kind: str = "variant") -> list[str]:
    """A comma list of names from `allowed`, duplicates dropped; an empty list is refused."""
    names = list(dict.fromkeys(x.strip() for x in str(text).split(",") if x.strip()))
    bad = [n for n in names if n not in allowed]
    if bad:
        raise CLIError(
            field,
            f"unknown {kind}{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))}; choose from {','.join(allowed)}",
        )
    if at_least_one and not names:
        raise CLIError(field, f"name at least one, from {','.join(allowed)}")
    return names
