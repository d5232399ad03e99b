"""The store of compiled sweep steps (sam_core.fused_store): a step built ahead of time (AOTInductor) must
compute what the eager loop computes, a new process must load it instead of importing torch.compile, and
anything the store cannot rebuild from a name must stay out of it.

Each build compiles C++ (~5-10 s here), so the suite builds two steps: one in-process with every input the
step can take (per-trajectory lr and ρ, momentum, noise, a tail mean, float64, a padded batch of one), and one
through the real path (a sweep queues it, the background builder builds it, a fresh process loads it).
"""

import dataclasses
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from test_fused import _assert_same  # the compiled step's comparison with the eager loop, the same here

from sam_core import fused_store
from sam_core.landscape.functions import Landscape, make_landscape
from sam_core.landscape.lr_sweep import start_points
from sam_core.registry import VARIANTS, get_spec
from sam_core.simulate import _FUSED, _layout, _split_hp, simulate

ROOT = Path(__file__).resolve().parents[1]


def _recipe(L, variant, hp, w0, lr, momentum=0.0, noise=0.0):
    """The recipe simulate computes for this call (the same helpers, the same layout rule)."""
    from sam_core.registry import resolve_hparams

    static, keys, vals = _split_hp(resolve_hparams(variant, **hp))
    layout = _layout(lr, vals)
    return fused_store.recipe_of(get_spec(variant), L.grad_parts, static, keys, bool(momentum), noise > 0, w0, layout)


def test_a_stored_step_reproduces_the_eager_loop(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLAB_STEP_CACHE", str(tmp_path))
    L = make_landscape("quartic")
    n = 600
    w0 = start_points(L, n, "domain", seed=1).double()
    lr = torch.linspace(0.02, 1.2, n, dtype=torch.float64)  # the upper half blows up
    hp = {"rho": torch.linspace(0.0, 0.3, n, dtype=torch.float64)}
    kw = dict(momentum=0.6, noise=0.2, seed=5, tail=7, record=False)
    recipe = _recipe(L, "ssam", hp, w0, lr, momentum=0.6, noise=0.2)
    assert recipe is not None and recipe.lr_dim == 1 and recipe.val_dims == (1,) and recipe.dtype == "float64"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # built on one thread, as a builder on a busy machine may be
    try:
        path = fused_store.build(recipe, tmp_path)
    finally:
        torch.set_num_threads(threads)
    assert path.is_file() and not list(tmp_path.glob(".*"))  # no temporary file left
    # its kernel takes the thread count of the process running it: generated for the builder's one thread it
    # had no parallel loop at all, and stayed serial on every machine it ran on
    with zipfile.ZipFile(path) as z:
        kernels = [z.read(n).decode() for n in z.namelist() if n.endswith("kernel.cpp")]
    assert kernels and all("#pragma omp parallel" in k and "num_threads(" not in k for k in kernels)
    a = simulate("ssam", L.grad_fn, w0, 25, lr, hp, compile=True, grad_parts=L.grad_parts, **kw)
    stored = [fn for k, fn in _FUSED.items() if k[1] == L.grad_parts]
    assert len(stored) == 1 and isinstance(stored[0], fused_store.StoredStep)  # loaded, not compiled
    assert not list(tmp_path.glob("*.todo"))  # nothing queued: it was there
    b = simulate("ssam", L.grad_fn, w0, 25, lr, hp, **kw)
    _assert_same(a, b)
    ok = a.diverged_step < 0
    torch.testing.assert_close(a.tail_mean[ok], b.tail_mean[ok], rtol=1e-6, atol=1e-6)
    # one trajectory, through the same package (padded to the exported minimum of two rows): the eager numbers
    one = simulate(
        "ssam", L.grad_fn, w0[:1], 25, lr[:1], {"rho": hp["rho"][:1]}, compile=True, grad_parts=L.grad_parts, **kw
    )
    eager = simulate("ssam", L.grad_fn, w0[:1], 25, lr[:1], {"rho": hp["rho"][:1]}, **kw)
    torch.testing.assert_close(one.final, eager.final, rtol=1e-6, atol=1e-6)
    assert len([k for k in _FUSED if k[1] == L.grad_parts]) == 1  # the same stored step, nothing compiled
    assert not list(tmp_path.glob("*.todo")) and len(list(tmp_path.glob("*.pt2"))) == 1  # nor queued


_SWEEP = r"""
import json, sys
import numpy as np
from sam_core.landscape.functions import make_landscape
from sam_core.landscape.lr_sweep import Success, SweepSetup, sweep_lr
from sam_core.simulate import _FUSED
res = sweep_lr(make_landscape("quartic"), ["unified_sam"], np.geomspace(0.05, 1.5, 6),
               {"unified_sam": {"rho": 0.1, "lam": "1/t"}}, SweepSetup(starts=200, steps=150, success=Success(tol=0.2)))
steps = sorted(type(f).__name__ for f in _FUSED.values())
print(json.dumps({"success": np.asarray(res.success_rate).tolist(), "diverged": np.asarray(res.diverged_rate).tolist(),
                  "dynamo": "torch._dynamo" in sys.modules, "steps": steps}))
"""


def _sweep(store, compile_mode):
    # the builder this starts runs at normal priority: at its default (the lowest) it would wait for the suite
    env = dict(
        os.environ,
        SAMLAB_STEP_CACHE=str(store),
        SAMLAB_COMPILE=compile_mode,
        SAMLAB_STEP_BUILDER_NICE="0",
        PYTHONPATH=str(ROOT),
    )
    r = subprocess.run([sys.executable, "-c", _SWEEP], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_sweep_queues_its_step_and_the_next_process_loads_it_without_torch_compile(tmp_path):
    first = _sweep(tmp_path, "on")
    assert first["dynamo"] and len(first["steps"]) == 1 and "StoredStep" not in first["steps"]  # torch.compile
    deadline = time.time() + 300
    while (list(tmp_path.glob("*.todo")) or not list(tmp_path.glob("*.pt2"))) and time.time() < deadline:
        assert not list(tmp_path.glob("*.failed")), (tmp_path / "builder.log").read_text()
        time.sleep(0.5)
    log = (tmp_path / "builder.log").read_text()
    assert len(list(tmp_path.glob("*.pt2"))) == 1, log  # one configuration, built once
    again = _sweep(tmp_path, "on")
    assert again["steps"] == ["StoredStep"] and not again["dynamo"]  # torch.compile never imported
    eager = _sweep(tmp_path, "off")
    assert max(first["success"]) > 0.5 and max(first["diverged"]) > 0.5  # the sweep shows both regimes
    # float32: the compiled and stored steps round alike; either may tip a chaotic start against the eager loop
    np.testing.assert_allclose(again["success"], first["success"], atol=0.01)
    np.testing.assert_allclose(again["success"], eager["success"], atol=0.02)
    np.testing.assert_allclose(again["diverged"], eager["diverged"], atol=0.02)
    listing = subprocess.run(
        [sys.executable, "-m", "sam_core.fused_store", "list", str(tmp_path)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "1 stored steps" in listing


def test_what_cannot_be_rebuilt_from_a_name_is_not_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLAB_STEP_CACHE", str(tmp_path))
    Q = make_landscape("quartic")
    w0 = start_points(Q, 10, "domain")
    assert _recipe(Q, "sam", {"rho": 0.1}, w0, 0.1) is not None
    # a landscape built by hand under a built-in name: its recipe would rebuild another function
    fake = Landscape(
        "quartic",
        "fake",
        "",
        f=lambda x, y: x * x + y * y,
        domain=((-1, 1), (-1, 1)),
        fg=lambda x, y: (x * x + y * y, 2 * x, 2 * y),
    )
    assert _recipe(fake, "sam", {"rho": 0.1}, w0, 0.1) is None
    assert _recipe(make_landscape("quartic"), "sam", {"rho": 0.1}, w0.half(), 0.1) is None  # no such dtype
    plugin = dataclasses.replace(get_spec("sam"), name="sam_copy", source="plugin.py")
    assert plugin.name not in VARIANTS
    static, keys, vals = _split_hp({"rho": 0.1})
    assert fused_store.recipe_of(plugin, Q.grad_parts, static, keys, False, False, w0, (0, (0,))) is None
    assert fused_store.recipe_of(get_spec("sam"), None, static, keys, False, False, w0, (0, (0,))) is None
    monkeypatch.setenv("SAMLAB_STEP_CACHE", "off")
    assert _recipe(Q, "sam", {"rho": 0.1}, w0, 0.1) is None and fused_store.store_dir() is None


def test_a_broken_package_is_removed_and_a_failed_build_is_not_tried_again(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLAB_STEP_CACHE", str(tmp_path))
    Q = make_landscape("quartic")
    w0 = start_points(Q, 10, "domain")
    recipe = _recipe(Q, "sgd", {}, w0, 0.1)
    bad = tmp_path / f"{recipe.digest}.pt2"
    bad.write_bytes(b"not a zip")
    assert fused_store.load(recipe) is None and not bad.exists()
    # a recipe no builder can make (a variant that is not there): recorded as failed, then left alone
    broken = dataclasses.replace(recipe, variant="no_such_variant")
    (tmp_path / f"{broken.digest}.todo").write_text(broken.to_json())
    assert fused_store.build_queued(tmp_path) == []
    failed = tmp_path / f"{broken.digest}.failed"
    assert "no_such_variant" in failed.read_text() and not list(tmp_path.glob("*.todo"))
    assert fused_store.request_build(broken) is False  # failed before: nothing queued, no builder started
    monkeypatch.setenv("SAMLAB_READ_ONLY", "1")
    assert fused_store.request_build(dataclasses.replace(recipe, variant="sam")) is False  # hosting writes nothing
    assert not list(tmp_path.glob("*.todo"))


def test_a_change_in_sam_core_is_a_new_package(tmp_path, monkeypatch):
    Q = make_landscape("quartic")
    monkeypatch.setenv("SAMLAB_STEP_CACHE", str(tmp_path))
    recipe = _recipe(Q, "sam", {"rho": 0.1}, start_points(Q, 10, "domain"), 0.1)
    before = recipe.digest
    copy = tmp_path / "sam_core"
    copy.mkdir()
    for f in fused_store._PACKAGE_DIR.rglob("*.py"):
        dest = copy / f.relative_to(fused_store._PACKAGE_DIR)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(f.read_bytes())
    monkeypatch.setattr(fused_store, "_PACKAGE_DIR", copy)
    monkeypatch.setattr(fused_store, "_ENV", None)
    assert recipe.digest == before  # the same sources: the same name
    (copy / "rules.py").write_text((copy / "rules.py").read_text() + "\n# changed\n")
    monkeypatch.setattr(fused_store, "_ENV", None)
    assert recipe.digest != before
    assert fused_store.Recipe.from_json(recipe.to_json()) == recipe


@pytest.mark.parametrize("value", ["off", "0", "no"])
def test_the_store_can_be_turned_off(monkeypatch, value):
    monkeypatch.setenv("SAMLAB_STEP_CACHE", value)
    assert fused_store.store_dir() is None


def test_the_store_defaults_to_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("SAMLAB_STEP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert fused_store.store_dir() == (tmp_path / "samlab" / "steps").resolve()


def test_a_builder_at_work_takes_new_requests_and_a_stale_or_foreign_queue_is_handled(tmp_path, monkeypatch):
    import fcntl

    monkeypatch.setenv("SAMLAB_STEP_CACHE", str(tmp_path))
    monkeypatch.setattr(fused_store, "_BUILDER", None)
    Q = make_landscape("quartic")
    w0 = start_points(Q, 10, "domain")
    recipe = _recipe(Q, "sgd", {}, w0, 0.1)
    with open(tmp_path / "builder.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a builder at work
        assert fused_store.request_build(recipe)
        assert (tmp_path / f"{recipe.digest}.todo").is_file()
        assert fused_store._BUILDER is None  # no second builder: the one at work lists the queue again
        fcntl.flock(lock, fcntl.LOCK_UN)
    # a builder that died while building leaves its mark: the next one records a failure instead of retrying
    (tmp_path / f"{recipe.digest}.building").write_text("12345")
    foreign = tmp_path / ("f" * 32 + ".todo")  # another sam_core's or torch's request: its name is not its digest
    foreign.write_text(recipe.to_json())
    assert fused_store.build_queued(tmp_path) == []
    assert "stopped while building" in (tmp_path / f"{recipe.digest}.failed").read_text()
    assert not (tmp_path / f"{recipe.digest}.todo").exists() and not (tmp_path / f"{recipe.digest}.building").exists()
    assert foreign.is_file()  # left for its own builder


def test_an_unusable_store_is_no_error(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("SAMLAB_STEP_CACHE", str(tmp_path / "file" / "steps"))  # a path under a file
    Q = make_landscape("quartic")
    w0 = start_points(Q, 10, "domain")
    recipe = _recipe(Q, "sgd", {}, w0, 0.1)
    assert fused_store.load(recipe) is None and fused_store.request_build(recipe) is False
    # and a sweep still runs, compiled as before
    res = simulate("sgd", Q.grad_fn, w0.double(), 3, 0.1, compile=True, grad_parts=Q.grad_parts, record=False)
    assert torch.isfinite(res.final).all()


def test_a_landscape_with_other_parameters_than_its_recipe_is_not_stored(tmp_path, monkeypatch):
    monkeypatch.setenv("SAMLAB_STEP_CACHE", str(tmp_path))
    L = make_landscape("quadratic", lam=50.0)
    w0 = start_points(L, 10, "domain")
    assert _recipe(L, "sgd", {}, w0, 0.1) is not None
    # the same functions (code and captured λ) under a recipe saying another λ: would load another landscape's step
    relabelled = dataclasses.replace(L, params={**L.params, "lam": 2.0})
    assert _recipe(relabelled, "sgd", {}, w0, 0.1) is None
