"""The Home presets, headless: the same computations, figures and phenomenon checks as the cards.

    python -m demos.presets --list
    python -m demos.presets --run saddle --html out.html [--fidelity class|paper]
    python -m demos.presets --all --html-dir figures/ [--fidelity paper]

``--all`` prints one row per preset: name, seconds to the first result, seconds to finished, and
whether the phenomenon held (the preset's own check on its own output), and writes each figure as a
standalone HTML page (plotly.js embedded: works offline) with its one-sentence reading and the check.
The exit status is 1 when a check did not hold.
"""

from __future__ import annotations

import argparse
import html
import sys
import time
from pathlib import Path

from sam_core.cli import CLIError, Parser, cli_main, ensure_writable
from sam_core.presets import FIDELITIES, PRESETS, default_fidelity, get_preset


def run_one(p, fidelity: str) -> dict:
    """Run preset ``p``; returns name, result, first_s (first partial result with data), total_s, held, detail."""
    t0 = time.perf_counter()
    first = None
    res = None
    for prog, res in p.run(fidelity):
        if first is None and res is not None and prog > 0:
            first = time.perf_counter() - t0
    total = time.perf_counter() - t0
    held, detail = p.check(res)
    return dict(
        name=p.name,
        result=res,
        first_s=first if first is not None else total,
        total_s=total,
        held=held,
        detail=detail,
        fidelity=fidelity,
    )


def write_html(p, out: dict, path: Path) -> None:
    from sam_core.plots.landscape import MODEBAR_CONFIG

    fig = p.figure(out["result"])
    body = fig.to_html(include_plotlyjs=True, full_html=False, config=MODEBAR_CONFIG)
    verdict = "held" if out["held"] else "did NOT hold"
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(p.title)}</title></head><body>"
        f"<h2>{html.escape(p.title)} <small>({html.escape(p.figure_ref)}, {out['fidelity']} fidelity)</small></h2>"
        f"<p><b>Look for:</b> {html.escape(p.look_for)}</p>"
        f"<p><b>Phenomenon {verdict}:</b> {html.escape(out['detail'])} · {out['total_s']:.1f} s</p>"
        f"{body}</body></html>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")


def build_parser() -> argparse.ArgumentParser:
    ap = Parser(prog="python -m demos.presets", description=__doc__.split("\n\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--list", action="store_true", help="list the presets")
    g.add_argument("--run", metavar="NAME", help="run one preset")
    g.add_argument("--all", action="store_true", help="run every preset")
    ap.add_argument(
        "--fidelity",
        choices=FIDELITIES,
        default=None,
        help="class (CPU-sized) or paper (full size); default: per preset, by the device",
    )
    ap.add_argument("--html", default=None, help="with --run: write the figure here")
    ap.add_argument("--html-dir", default=None, help="with --all: write NAME.html for every preset here")
    return ap


@cli_main
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.html and args.all:
        raise CLIError("--html", "writes one figure, with --run; with --all use --html-dir")
    if args.html_dir and not args.all:
        raise CLIError("--html-dir", "is for --all; with --run use --html")
    ensure_writable(args.html, "--html")  # output paths are checked before minutes of work, not after
    if args.html_dir:
        d = Path(args.html_dir)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CLIError("--html-dir", f"cannot create {d} ({exc.strerror or exc})") from None
        ensure_writable(d / ".samlab-write-check.html", "--html-dir")
    if args.list:
        for p in PRESETS:
            print(f"{p.name:<15} {p.figure_ref:<32} {p.title}")
            print(f"{'':<15} look for: {p.look_for}")
        return 0
    try:
        todo = PRESETS if args.all else (get_preset(args.run),)
    except ValueError as exc:
        raise CLIError("--run", str(exc)) from None
    rows = []
    for p in todo:
        out = run_one(p, args.fidelity or default_fidelity(p))
        rows.append(out)
        path = None
        if args.html and not args.all:
            path = Path(args.html)
        elif args.html_dir:
            path = Path(args.html_dir) / f"{p.name}.html"
        if path is not None:
            write_html(p, out, path)
        if not args.all:
            print(
                f"{p.name}: {out['total_s']:.1f} s ({out['fidelity']}); phenomenon "
                f"{'held' if out['held'] else 'did NOT hold'}: {out['detail']}"
            )
            if path is not None:
                print(f"figure: {path}")
    if args.all:
        print(f"{'name':<15} {'fidelity':<8} {'first s':>8} {'total s':>8}  held  detail")
        for r in rows:
            print(
                f"{r['name']:<15} {r['fidelity']:<8} {r['first_s']:8.2f} {r['total_s']:8.2f}  "
                f"{'yes ' if r['held'] else 'NO  '}  {r['detail']}"
            )
    return 0 if all(r["held"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
