"""Every CLI, given a bad argument, file or store, exits non-zero with one line naming the field or the
file — no traceback, no hang, and before any long computation (issue 15).

One row per bad invocation: (CLI module, its arguments, a substring the error line must contain).
Most rows call the CLI's `main(argv)` in this process (one interpreter start for all); the rows that
used to hang or to compute first, and a few of every CLI, run as real subprocesses with a timeout.
Corrupt, foreign and other-schema run stores must come out byte-for-byte unchanged (and nothing is
created beside them). `python tests/test_cli_errors.py SRC_ROOT` runs every row as a subprocess
against another source tree and prints the counts (used for the before/after figures).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RID = "20250101-120000-abcdef"  # well formed, in no store
SID = "sweep-20250101-120000-abcdef"
HEX = "0x" + "f" * 280  # 1120 bits, under the 300-character limit: the "int too large to convert to float"
STORES = ("corrupt", "foreign", "otherschema", "truncated")  # must never be altered
TINY = [
    "--subset",
    "32",
    "--batch-size",
    "16",
    "--epochs",
    "1",
    "--hessian-every",
    "0",
    "--final-top-k",
    "0",
    "--final-density",
    "false",
    "--test-subset",
    "16",
    "--eval-train-size",
    "16",
]


def make_world(t: Path) -> dict:
    """The files the rows point at (built once): data, stores good and bad, config files."""
    from fakes import write_fake_cifar10

    from sam_core.training.store import RunStore

    write_fake_cifar10(t / "data", n_train=64, n_test=16, seed=0)
    (t / "empty").mkdir()
    (t / "afile").write_text("not a folder\n")
    for name in STORES:
        (t / name).mkdir()
    (t / "corrupt" / "runs.sqlite").write_bytes(b"this is not a database\n" * 40)
    con = sqlite3.connect(t / "foreign" / "runs.sqlite")
    con.execute("CREATE TABLE users(name TEXT, email TEXT)")
    con.execute("INSERT INTO users VALUES ('ada', 'ada@example.org')")
    con.commit()
    con.close()
    con = sqlite3.connect(t / "otherschema" / "runs.sqlite")
    con.execute("CREATE TABLE runs(id TEXT PRIMARY KEY, what TEXT)")
    con.execute(f"INSERT INTO runs VALUES ('{RID}', 'x')")
    con.commit()
    con.close()
    good = RunStore(t / "good")
    done = good.create_run({"optimizer": "sam", "model": "lenet5", "dataset": "cifar10"}, total_steps=4)
    good.finish(done, "finished", message="finished 4 steps")
    good.close()
    head = (t / "good" / "runs.sqlite").read_bytes()[:200]  # a valid header, the rest cut off
    (t / "truncated" / "runs.sqlite").write_bytes(head)
    cfgs = {
        "model_list.json": {"model": ["lenet5", "resnet20"]},
        "model_dict.json": {"model": {"name": "lenet5"}, "optimizer": ["sam"]},
        "unknown_field.json": {"modle": "lenet5"},
        "lr_string.json": {"lr": "fast"},
        "array.json": [1, 2, 3],
        "hparams_list.json": {"hparams": {"rho": [0.1, 0.2]}},
        "sweep_model_list.json": {"base": {"model": [["lenet5"]]}, "params": {"lr": [0.1]}},
        "sweep_bad_param.json": {"base": {"dataset": "cifar10"}, "params": {"lr": ["fast"]}},
        "sweep_two.json": {
            "base": {"dataset": "cifar10", "subset": 32, "batch_size": 16},
            "params": {"lr": [0.1, 0.2]},
        },
    }
    for name, obj in cfgs.items():
        (t / name).write_text(json.dumps(obj))
    deep = "[" * 200_000 + "]" * 200_000
    (t / "deep.json").write_text('{"model": ' + deep + "}")
    (t / "sweep_deep.json").write_text('{"base": ' + deep + "}")
    (t / "notjson.json").write_text("{model: lenet5")
    return {"good_run": done}


# (module, args, what the error line must contain); {T} is the world's folder, {GOOD} its finished run
TRAIN = "sam_core.cli.train"
RUNS = "sam_core.cli.runs"
SWEEP = "sam_core.cli.sweep"
EOS = "demos.edge_of_stability"
LAND = "demos.landscape"
QUAD = "demos.quadratic"
SAD = "demos.saddle_escape"
SWP = "demos.stability_sweep"
PRE = "demos.presets"
R = "--runs-dir"
ROWS = [
    # train: stores and folders
    ("train-runs-is-file", TRAIN, [R, "{T}/afile", *TINY], "is a file"),
    ("train-runs-in-proc", TRAIN, [R, "/proc/samlab-runs", *TINY], "/proc/samlab-runs"),
    ("train-runs-proc", TRAIN, [R, "/proc", *TINY], "/proc"),
    ("train-runs-under-file", TRAIN, [R, "{T}/afile/sub", *TINY], "afile"),
    ("train-store-corrupt", TRAIN, [R, "{T}/corrupt", *TINY], "corrupt"),
    ("train-store-foreign", TRAIN, [R, "{T}/foreign", *TINY], "another program"),
    ("train-store-otherschema", TRAIN, [R, "{T}/otherschema", *TINY], "another schema"),
    ("train-store-truncated", TRAIN, [R, "{T}/truncated", *TINY], "corrupt"),
    # train: config files
    ("train-config-model-list", TRAIN, ["--config", "{T}/model_list.json", R, "{T}/r"], "model must be a string"),
    ("train-config-model-dict", TRAIN, ["--config", "{T}/model_dict.json", R, "{T}/r"], "model must be a string"),
    ("train-config-deep", TRAIN, ["--config", "{T}/deep.json", R, "{T}/r"], "nested too deeply"),
    ("train-config-notjson", TRAIN, ["--config", "{T}/notjson.json", R, "{T}/r"], "--config"),
    ("train-config-missing", TRAIN, ["--config", "{T}/nope.json", R, "{T}/r"], "--config"),
    ("train-config-array", TRAIN, ["--config", "{T}/array.json", R, "{T}/r"], "JSON object"),
    ("train-config-unknown", TRAIN, ["--config", "{T}/unknown_field.json", R, "{T}/r"], "unknown field"),
    ("train-config-lr-string", TRAIN, ["--config", "{T}/lr_string.json", R, "{T}/r"], "lr must be a number"),
    ("train-config-hparams-list", TRAIN, ["--config", "{T}/hparams_list.json", R, "{T}/r"], "hparams"),
    # train: options, device, data
    ("train-device-cuda7", TRAIN, ["--device", "cuda:7", R, "{T}/r", *TINY], "cuda:7"),
    ("train-device-banana", TRAIN, ["--device", "banana", R, "{T}/r", *TINY], "device"),
    ("train-data-empty", TRAIN, ["--data-dir", "{T}/empty", R, "{T}/r", *TINY], "CIFAR-10 was not found"),
    ("train-data-missing", TRAIN, ["--data-dir", "{T}/nowhere", R, "{T}/r", *TINY], "CIFAR-10 was not found"),
    (
        "train-mnist-missing",
        TRAIN,
        ["--dataset", "mnist", "--data-dir", "{T}/data", R, "{T}/r", *TINY],
        "MNIST was not found",
    ),
    ("train-lr-a", TRAIN, ["--lr", "a", R, "{T}/r"], "--lr"),
    ("train-lr-negative", TRAIN, ["--lr", "-1", R, "{T}/r", *TINY], "lr must be"),
    ("train-epochs-0", TRAIN, ["--epochs", "0", R, "{T}/r"], "epochs must be"),
    ("train-optimizer", TRAIN, ["--optimizer", "nope", R, "{T}/r"], "optimizer"),
    ("train-model", TRAIN, ["--model", "nope", R, "{T}/r"], "model"),
    ("train-batch-too-big", TRAIN, ["--subset", "10", "--batch-size", "100", R, "{T}/r"], "batch_size"),
    ("train-rho-a", TRAIN, ["--rho", "a", R, "{T}/r"], "--rho"),
    ("train-lam-on-sam", TRAIN, ["--optimizer", "sam", "--lam", "0.5", R, "{T}/r"], "--lam does not apply"),
    ("train-seed-huge", TRAIN, ["--seed", "99999999999999999999", R, "{T}/r", *TINY], "seed"),
    ("train-bool", TRAIN, ["--augment", "maybe", R, "{T}/r"], "--augment"),
    ("train-run-id-path", TRAIN, ["--run-id", "../../etc", R, "{T}/good"], "run id"),
    ("train-run-id-unknown", TRAIN, ["--run-id", RID, R, "{T}/good"], "no run"),
    ("train-run-id-corrupt", TRAIN, ["--run-id", RID, R, "{T}/corrupt"], "corrupt"),
    # runs
    ("runs-list-corrupt", RUNS, ["list", R, "{T}/corrupt"], "corrupt"),
    ("runs-list-foreign", RUNS, ["list", R, "{T}/foreign"], "another program"),
    ("runs-list-truncated", RUNS, ["list", R, "{T}/truncated"], "corrupt"),
    ("runs-show-otherschema", RUNS, ["show", RID, R, "{T}/otherschema"], "another schema"),
    ("runs-show-corrupt", RUNS, ["show", RID, R, "{T}/corrupt"], "corrupt"),
    ("runs-list-is-file", RUNS, ["list", R, "{T}/afile"], "is a file"),
    ("runs-list-nowhere", RUNS, ["list", R, "{T}/nowhere"], "no runs here"),
    ("runs-list-proc", RUNS, ["list", R, "/proc/samlab-runs"], "/proc/samlab-runs"),
    ("runs-list-status", RUNS, ["list", "--status", "bogus", R, "{T}/good"], "--status"),
    ("runs-show-bad-id", RUNS, ["show", "bad/../id", R, "{T}/good"], "run id"),
    ("runs-show-unknown", RUNS, ["show", RID, R, "{T}/good"], "no run"),
    ("runs-export-proc", RUNS, ["export", "{GOOD}", "--csv", "/proc/x.csv", R, "{T}/good"], "--csv"),
    ("runs-export-folder", RUNS, ["export", "{GOOD}", "--csv", "{T}", R, "{T}/good"], "--csv"),
    ("runs-delete-unknown", RUNS, ["delete", RID, R, "{T}/good"], "no run"),
    ("runs-resume-finished", RUNS, ["resume", "{GOOD}", R, "{T}/good"], "only stopped or failed"),
    ("runs-delete-timeout", RUNS, ["delete", "{GOOD}", "--stop-timeout", "0", R, "{T}/good"], "--stop-timeout"),
    ("runs-no-command", RUNS, [R, "{T}/good"], "cmd"),
    # sweep
    ("sweep-list-corrupt", SWEEP, ["--list", R, "{T}/corrupt"], "corrupt"),
    ("sweep-list-foreign", SWEEP, ["--list", R, "{T}/foreign"], "another program"),
    ("sweep-list-otherschema", SWEEP, ["--list", R, "{T}/otherschema"], "another schema"),
    ("sweep-list-is-file", SWEEP, ["--list", R, "{T}/afile"], "is a file"),
    ("sweep-results-bad-id", SWEEP, ["--results", "bogus", R, "{T}/good"], "sweep id"),
    ("sweep-stop-unknown", SWEEP, ["--stop", SID, R, "{T}/good"], "no sweep"),
    ("sweep-config-missing", SWEEP, ["--config", "{T}/nope.json", "--dry-run"], "--config"),
    ("sweep-config-deep", SWEEP, ["--config", "{T}/sweep_deep.json", "--dry-run"], "nested too deeply"),
    ("sweep-config-model-list", SWEEP, ["--config", "{T}/sweep_model_list.json", "--dry-run"], "model"),
    ("sweep-config-bad-param", SWEEP, ["--config", "{T}/sweep_bad_param.json", "--dry-run"], "lr"),
    ("sweep-executor", SWEEP, ["--config", "{T}/sweep_two.json", "--executor", "banana"], "--executor"),
    ("sweep-max-trials", SWEEP, ["--config", "{T}/sweep_two.json", "--dry-run", "--max-trials", "1"], "trials"),
    ("sweep-create-corrupt", SWEEP, ["--config", "{T}/sweep_two.json", R, "{T}/corrupt"], "corrupt"),
    # demos.edge_of_stability
    ("eos-csv-proc", EOS, ["--csv", "/proc/x.csv"], "--csv"),
    ("eos-csv-nofolder", EOS, ["--csv", "{T}/nowhere/x.csv"], "--csv"),
    ("eos-html-folder", EOS, ["--html", "{T}"], "--html"),
    ("eos-device", EOS, ["--device", "cuda:7"], "cuda:7"),
    ("eos-variants-empty", EOS, ["--variants", ","], "--variants"),
    ("eos-variants-unknown", EOS, ["--variants", "sgd,nope"], "nope"),
    ("eos-steps-cap", EOS, ["--steps", "100000000"], "--steps"),
    ("eos-lr-a", EOS, ["--lr", "a"], "--lr"),
    ("eos-lr-negative", EOS, ["--lr", "-1", "--steps", "10"], "lr"),
    ("eos-mnist-missing", EOS, ["--dataset", "mnist", "--data-dir", "{T}/empty", "--steps", "10"], "MNIST"),
    # demos.landscape
    ("land-variants-comma", LAND, ["--variants", ","], "--variants"),
    ("land-variants-unknown", LAND, ["--variants", "nope"], "nope"),
    ("land-start-a", LAND, ["--start", "a,b"], "--start"),
    ("land-start-one", LAND, ["--start", "1"], "--start"),
    ("land-csv-nofolder", LAND, ["--csv", "{T}/nowhere/x.csv"], "--csv"),
    ("land-steps-cap", LAND, ["--steps", "100000000"], "--steps"),
    ("land-custom-noexpr", LAND, ["--function", "custom"], "--expr"),
    ("land-custom-hex", LAND, ["--function", "custom", "--expr", HEX], "--expr"),
    ("land-param-a", LAND, ["--function", "quadratic", "--param", "kappa=a"], "kappa"),
    ("land-param-unknown", LAND, ["--function", "quadratic", "--param", "zzz=1"], "zzz"),
    ("land-domain-a", LAND, ["--function", "custom", "--expr", "x*y", "--domain", "a,b"], "--domain"),
    ("land-function", LAND, ["--function", "nope"], "--function"),
    # demos.quadratic
    ("quad-lam-a", QUAD, ["--lam", "a"], "--lam"),
    ("quad-html-folder", QUAD, ["--html", "{T}"], "--html"),
    ("quad-csv-proc", QUAD, ["--csv", "/proc/x.csv"], "--csv"),
    ("quad-variants-empty", QUAD, ["--variants", ","], "--variants"),
    ("quad-seeds-cap", QUAD, ["--seeds", "1000000000"], "--seeds"),
    ("quad-steps-cap", QUAD, ["--steps", "1000000000"], "--steps"),
    ("quad-cond-a", QUAD, ["--cond", "a"], "--cond"),
    # demos.presets: output paths and option pairs refused before any preset runs
    ("presets-unknown", PRE, ["--run", "nope"], "--run"),
    ("presets-html-proc", PRE, ["--run", "saddle", "--html", "/proc/samlab.html"], "--html"),
    ("presets-html-no-dir", PRE, ["--run", "saddle", "--html", "{T}/missing/x.html"], "--html"),
    ("presets-html-with-all", PRE, ["--all", "--html", "{T}/x.html"], "--html"),
    ("presets-dir-with-run", PRE, ["--run", "saddle", "--html-dir", "{T}/figs"], "--html-dir"),
    ("presets-dir-is-file", PRE, ["--all", "--html-dir", "{T}/afile"], "--html-dir"),
    # demos.saddle_escape
    ("saddle-seeds-cap", SAD, ["--seeds", "1000000000"], "--seeds"),
    ("saddle-seeds-0", SAD, ["--seeds", "0"], "--seeds"),
    ("saddle-epochs-cap", SAD, ["--epochs", "100000000"], "--epochs"),
    ("saddle-lam-a", SAD, ["--lam", "a"], "--lam"),
    ("saddle-rho-a", SAD, ["--rho", "a"], "--rho"),
    ("saddle-rho-empty", SAD, ["--rho", ","], "--rho"),
    ("saddle-variants-empty", SAD, ["--variants", ","], "--variants"),
    ("saddle-csv-proc", SAD, ["--csv", "/proc/x.csv"], "--csv"),
    ("saddle-device", SAD, ["--device", "cuda:7"], "cuda:7"),
    ("saddle-lam-range", SAD, ["--lam", "5"], "lam"),
    ("saddle-escape-frac", SAD, ["--escape-frac", "2"], "--escape-frac"),
    # demos.stability_sweep
    ("swp-lrs-1e9", SWP, ["--lrs", "0.01:1:1e9", "--csv", "{T}/o.csv"], "--lrs"),
    ("swp-lrs-huge", SWP, ["--lrs", "0.01:1:1000000000", "--csv", "{T}/o.csv"], "--lrs"),
    ("swp-hex", SWP, ["--function", "custom", "--expr", HEX, "--csv", "{T}/o.csv"], "--expr"),
    ("swp-csv-proc", SWP, ["--csv", "/proc/x.csv"], "--csv"),
    ("swp-html-folder", SWP, ["--html", "{T}", "--csv", "{T}/o.csv"], "--html"),
    ("swp-starts-cap", SWP, ["--starts", "100000000", "--csv", "{T}/o.csv"], "--starts"),
    ("swp-work-cap", SWP, ["--starts", "20000", "--steps", "5000", "--csv", "{T}/o.csv"], "trajectory-steps"),
    ("swp-lrs-a", SWP, ["--lrs", "a", "--csv", "{T}/o.csv"], "--lrs"),
    ("swp-rho-a", SWP, ["--rho", "a:b", "--csv", "{T}/o.csv"], "--rho"),
    ("swp-lam-a", SWP, ["--variants", "unified_sam", "--lam", "a", "--csv", "{T}/o.csv"], "--lam"),
    ("swp-param-a", SWP, ["--function", "quadratic", "--param", "kappa=a", "--csv", "{T}/o.csv"], "kappa"),
    ("swp-variants-comma", SWP, ["--variants", ",", "--csv", "{T}/o.csv"], "--variants"),
    ("swp-tol-a", SWP, ["--tol", "a", "--csv", "{T}/o.csv"], "--tol"),
]
# real subprocesses: the rows that hung or computed first before the fix, and a few of every CLI
SUBPROCESS = {
    "train-data-empty",
    "train-store-corrupt",
    "train-device-cuda7",
    "train-config-deep",
    "runs-list-foreign",
    "runs-export-proc",
    "sweep-list-corrupt",
    "sweep-config-model-list",
    "eos-csv-proc",
    "land-variants-comma",
    "quad-lam-a",
    "saddle-seeds-cap",
    "swp-lrs-1e9",
    "swp-hex",
    "swp-csv-proc",
    "presets-html-proc",
}
ENV = {
    "SAMLAB_OFFLINE": "1",
    "SAMLAB_READ_ONLY": "",
    "SAMLAB_MAX_RUNS": "1",
    "OMP_NUM_THREADS": "1",
    "SAMLAB_DEBUG": "",
}


def _args(args: list[str], t: Path, world: dict) -> list[str]:
    return [a.replace("{T}", str(t)).replace("{GOOD}", world["good_run"]) for a in args]


def run_subprocess(module: str, argv: list[str], t: Path, src: Path = ROOT, timeout: float = 60.0):
    """(exit status or 'hang', stderr, stdout) of `python -m module argv` run from `src`."""
    env = {
        **os.environ,
        **ENV,
        "SAMLAB_RUNS_DIR": str(t / "default-runs"),
        "SAMLAB_DATA": str(t / "data"),
        "PYTHONPATH": str(src),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    try:
        p = subprocess.run(
            [sys.executable, "-m", module, *argv],
            cwd=str(t),
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return "hang", err, ""
    return p.returncode, p.stderr, p.stdout


def run_inprocess(module: str, argv: list[str]):
    """(exit status, stderr, stdout) of `module.main(argv)`; an exception escaping main counts as a traceback."""
    main = importlib.import_module(module).main
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except BaseException as exc:  # noqa: B036 — what the user would have seen as a traceback
        tb = f"\nTraceback (most recent call last):\n  (in-process) {type(exc).__name__}: {exc}"
        return 0, err.getvalue() + tb, out.getvalue()
    return code, err.getvalue(), out.getvalue()


def verdict(code, err: str, expect: str, out: str = "") -> str | None:
    """None when the row is handled cleanly, else what is wrong."""
    if code == "hang":
        return "hang"
    if "Traceback" in err or "Traceback" in out:  # the old worker printed a failure's traceback on stdout
        return "traceback"
    if code == 0:
        return "exit status 0"
    lines = [ln for ln in err.splitlines() if ln.strip().startswith("error:")]
    if len(lines) != 1:
        return f"expected one 'error:' line, got {len(lines)}: {err[-300:]!r}"
    if expect.lower() not in lines[0].lower():
        return f"the error line does not name {expect!r}: {lines[0]!r}"
    return None


def _snapshot(t: Path) -> dict:
    """Every path under the stores that must not change, with its content's hash (folders: 'dir')."""
    out = {}
    for name in STORES:
        for f in sorted((t / name).rglob("*")):
            out[str(f.relative_to(t))] = "dir" if f.is_dir() else hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    t = tmp_path_factory.mktemp("cli")
    info = make_world(t)
    mp = pytest.MonkeyPatch()
    for k, v in ENV.items():
        mp.setenv(k, v)
    mp.setenv("SAMLAB_RUNS_DIR", str(t / "default-runs"))
    mp.setenv("SAMLAB_DATA", str(t / "data"))
    mp.chdir(t)
    yield t, info, _snapshot(t)
    mp.undo()


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_invocation_is_one_clean_line(world, row):
    t, info, stores_before = world
    name, module, args, expect = row
    argv = _args(args, t, info)
    code, err, out = run_subprocess(module, argv, t) if name in SUBPROCESS else run_inprocess(module, argv)
    problem = verdict(code, err, expect, out)
    if problem is None and _snapshot(t) != stores_before:
        problem = "a corrupt/foreign run store was altered (or a file was created beside it)"
    if problem is None and module == TRAIN and (t / "r" / "runs.sqlite").exists():
        from sam_core.training.store import RunStore

        if RunStore(t / "r", read_only=True).list_runs():
            problem = "a run was created although the invocation was refused"
    assert problem is None, f"{name}: {problem}"


def test_the_table_covers_every_cli():
    modules = {r[1] for r in ROWS}
    assert modules == {TRAIN, RUNS, SWEEP, EOS, LAND, QUAD, SAD, SWP, PRE} and len(ROWS) >= 40
    assert {r[1] for r in ROWS if r[0] in SUBPROCESS} == modules  # each CLI also as a real process


if __name__ == "__main__":  # python tests/test_cli_errors.py [SRC_ROOT]: every row as a subprocess, counted
    import tempfile
    from collections import Counter

    src = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        info = make_world(t)
        before = _snapshot(t)
        counts: Counter = Counter()
        for name, module, args, expect in ROWS:
            code, err, out = run_subprocess(module, _args(args, t, info), t, src, timeout)
            problem = verdict(code, err, expect, out)
            altered = _snapshot(t) != before
            if altered:
                before = _snapshot(t)
            kind = (
                "hang"
                if problem == "hang"
                else "traceback"
                if problem == "traceback"
                else "exit 0"
                if problem == "exit status 0"
                else "clean"
                if problem is None
                else "unclear message"
            )
            counts[kind] += 1
            counts["altered a store"] += altered
            if problem or altered:
                print(f"{name:28s} {kind}{' (store altered)' if altered else ''}: {(problem or '')[:150]}")
        print(f"{len(ROWS)} bad invocations: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
