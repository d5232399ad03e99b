"""Compiled sweep steps kept on disk, so a new process does not compile them again.

The compiled sweep step (`sam_core.simulate._fused_fn`, one fused C++ loop per step) costs every new
process ~3 s before its first sweep even with torch.compile's disk caches warm: importing torch.compile's
modules (torch._dynamo and inductor, ~2 s here) and tracing the step again (~0.3 s per configuration).
A command-line sweep pays it on every run. This store keeps each configuration's step as an AOTInductor
package (`torch.export` + `torch._inductor.aoti_compile_and_package`), which a later process loads through
`torch._C._aoti` in a few milliseconds without importing torch.compile at all. docs/PERFORMANCE.md,
"Compiled steps kept between processes", has the measurements.

How a step gets here: the first process that needs a configuration compiles it with torch.compile as before
and calls :func:`request_build`. That leaves a ``.todo`` file and, unless a builder is at work, starts one
(``python -m sam_core.fused_store build DIR``) in its own session at the lowest CPU priority, so the
running sweep and the page keep the cores (``SAMLAB_STEP_BUILDER_NICE``, default 19: the test suite,
which keeps both cores busy, builds at 0). The builder exports the same step, compiles it with a kernel that
takes its thread count from the process running it, checks it against the plain step on a small batch, and
renames the package into place; a step it cannot build gets a ``.failed`` file (tried again after
``FAILED_DAYS``) and is compiled by torch.compile as before, as is one whose builder died while building it.
One builder works at a time (a lock file; POSIX); it lists the queue again after each pass, so a request
made meanwhile is not lost. It keeps the ``MAX_FILES`` most recently used packages. Loading, queueing and
building never raise into a sweep: an unreadable or unwritable store is a store that is not there.

Only what can be rebuilt from a name is stored: a built-in variant, a built-in landscape (its name and
parameters), on the CPU. A package's name is a digest of that recipe, the torch and Python versions, the
CPU's instruction set and the source of ``sam_core`` itself, so any change in them is a new package,
never a stale one. ``SAMLAB_STEP_CACHE`` (`sam_core.settings`) picks the directory or turns it off.

    python -m sam_core.fused_store list [DIR]     # what is stored
    python -m sam_core.fused_store build [DIR]    # build what is queued (what the builder process runs)
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

FORMAT = 1  # bump when the package layout or the calling convention below changes
MAX_FILES = 256  # packages kept (least recently used removed by the builder); ~1.6 MB each
MIN_N = 2  # the exported batch dimension starts at 2 (torch.export specialises sizes 0 and 1)
EXAMPLE_N = 8  # the batch the builder exports and checks the step on
_PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Recipe:
    """Everything that makes one compiled step, in a form a builder process can rebuild it from."""

    variant: str  # a built-in variant's name
    landscape: str  # a built-in landscape's name
    params: tuple[tuple[str, float], ...]  # its parameters
    static: tuple[tuple[str, Any], ...]  # the hyperparameters the step specialises on (str, bool, None)
    keys: tuple[str, ...]  # the numeric hyperparameters, inputs of the step in this order
    momentum: bool
    noisy: bool
    dtype: str  # "float32" or "float64"
    dims: int  # coordinates per point
    lr_dim: int  # 0: one lr for the batch, 1: one per trajectory
    val_dims: tuple[int, ...]  # the same for each of `keys`

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str) -> Recipe:
        d = json.loads(text)
        return Recipe(
            d["variant"],
            d["landscape"],
            tuple((k, v) for k, v in d["params"]),
            tuple((k, v) for k, v in d["static"]),
            tuple(d["keys"]),
            bool(d["momentum"]),
            bool(d["noisy"]),
            d["dtype"],
            int(d["dims"]),
            int(d["lr_dim"]),
            tuple(int(v) for v in d["val_dims"]),
        )

    @property
    def digest(self) -> str:
        return hashlib.sha256((self.to_json() + _environment()).encode()).hexdigest()[:32]


_ENV: str | None = None


def _environment() -> str:
    """What a package depends on besides its recipe: torch and Python, the CPU's instruction set (the
    kernels are built for this machine's), and every source file of sam_core."""
    global _ENV
    if _ENV is None:
        h = hashlib.sha256()
        for f in sorted(_PACKAGE_DIR.rglob("*.py")):
            h.update(str(f.relative_to(_PACKAGE_DIR)).encode() + b"\0" + f.read_bytes() + b"\0")
        flags = ""
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                flags = next((line for line in fh if line.startswith(("flags", "Features"))), "")
        except OSError:
            flags = platform.processor()
        _ENV = json.dumps([FORMAT, torch.__version__, sys.version, platform.machine(), flags.strip(), h.hexdigest()])
    return _ENV


def store_dir() -> Path | None:
    from sam_core.settings import get_settings

    return get_settings().step_cache


def _torch_can() -> bool:
    """This torch loads AOTInductor packages from C++ (torch._C._aoti, the five-argument loader: 2.6 on)."""
    try:
        major, minor = (int(x) for x in torch.__version__.split(".")[:2])
    except ValueError:
        return False
    loader = getattr(getattr(torch._C, "_aoti", None), "AOTIModelPackageLoader", None)
    return (major, minor) >= (2, 6) and loader is not None


_AOTI = _torch_can()


def _same_function(a: Callable | None, b: Callable | None) -> bool:
    """The same code with the same captured values (a landscape's functions close over its parameters)."""
    if a is None or b is None:
        return a is b
    if getattr(a, "__code__", None) is not getattr(b, "__code__", None):
        return False
    ca, cb = a.__closure__ or (), b.__closure__ or ()
    if len(ca) != len(cb):
        return False
    for x, y in zip(ca, cb):
        vx, vy = x.cell_contents, y.cell_contents
        if callable(vx) and hasattr(vx, "__code__"):
            if not _same_function(vx, vy):
                return False
            continue
        try:
            same = vx is vy or bool(vx == vy)
        except Exception:  # noqa: BLE001 - e.g. a tensor of several values: compare them
            same = isinstance(vx, torch.Tensor) and isinstance(vy, torch.Tensor) and torch.equal(vx, vy)
        if not same:
            return False
    return True


def recipe_of(
    spec: Any,
    grad_parts: Callable | None,
    static: tuple,
    keys: tuple[str, ...],
    momentum: bool,
    noisy: bool,
    w0: torch.Tensor,
    layout: tuple[int, tuple[int, ...]],
) -> Recipe | None:
    """The recipe of `simulate`'s compiled step for this configuration, or None when it cannot be stored
    (the store is off, not on the CPU, a plug-in variant, a gradient that is not a built-in landscape's)."""
    from sam_core.landscape.functions import NAMES, Landscape, _rebuild_landscape
    from sam_core.registry import VARIANTS

    if not _AOTI or w0.device.type != "cpu" or w0.dtype not in (torch.float32, torch.float64):
        return None
    if store_dir() is None:
        return None
    if getattr(spec, "source", None) != "built-in" or VARIANTS.get(spec.name) is not spec:
        return None
    L = getattr(grad_parts, "__self__", None)
    if not isinstance(L, Landscape) or getattr(grad_parts, "__func__", None) is not Landscape.grad_parts:
        return None
    if L.key not in NAMES or L.fg is None:
        return None
    try:
        params = tuple(sorted((str(k), float(v)) for k, v in L.params.items()))
        # the recipe must rebuild this very landscape: one built by hand under a built-in name is not stored
        again = _rebuild_landscape(L.key, dict(params), L.minima, L.saddles, L.maxima)
    except (TypeError, ValueError):
        return None
    if not (_same_function(again.fg, L.fg) and _same_function(again.f, L.f)):
        return None
    if any(not (v is None or isinstance(v, (str, bool, int, float))) for _, v in static):
        return None
    return Recipe(
        spec.name,
        L.key,
        params,
        tuple(static),
        tuple(keys),
        bool(momentum),
        bool(noisy),
        str(w0.dtype).removeprefix("torch."),
        int(w0.shape[1]),
        int(layout[0]),
        tuple(int(v) for v in layout[1]),
    )


class StoredStep:
    """A stored step, called as the compiled one: ``(ws, lr, alive, div, t, vals, bufs, mom, xis) ->
    (ws, ok, div, bufs)``. Batches under ``MIN_N`` trajectories are padded with idle rows (every row is
    computed on its own, so the padding changes nothing in the others)."""

    def __init__(self, path: Path, recipe: Recipe):
        self.path, self.recipe = path, recipe
        self._runner = torch._C._aoti.AOTIModelPackageLoader(str(path), "model", False, 1, -1)

    def __call__(self, ws, lr, alive, div, t, vals, bufs, mom, xis):
        n, d = ws[0].shape[0], len(ws)
        # the package reads its inputs with the example's (contiguous) strides and checks none of them: a strided
        # view (simulate's noise columns are) must be copied first; a contiguous tensor is passed as it is
        flat = [x.contiguous() for x in (*ws, lr, alive, div, t, *vals, *bufs, *([] if mom is None else [mom]), *xis)]
        if n < MIN_N:
            flat = [torch.cat([x, x.new_zeros(MIN_N - n)]) if x.dim() == 1 else x for x in flat]
        try:
            out = self._runner.run(flat)
        except Exception as e:  # noqa: BLE001 - simulate runs the step eagerly and says so
            _remove(self.path)  # the next process compiles it again (and rebuilds it)
            raise RuntimeError(f"the stored step {self.path.name} failed: {e}") from e
        if len(out) != d + 2 + len(bufs):
            raise RuntimeError(f"the stored step {self.path.name} returned {len(out)} tensors, not {d + 2 + len(bufs)}")
        if n < MIN_N:
            out = [o[:n] for o in out]
        return out[:d], out[d], out[d + 1], (out[d + 2 :] if self.recipe.momentum else bufs)


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # a read-only store (mounted so, or someone else's): leave it
        pass


def load(recipe: Recipe) -> StoredStep | None:
    """The stored step of `recipe`, or None when there is none or it cannot be loaded (a broken package is
    removed, so the next compile builds it again). Never raises: the store is a cache."""
    from sam_core.settings import get_settings

    settings = get_settings()
    root = settings.step_cache
    if root is None:
        return None
    path = root / f"{recipe.digest}.pt2"
    try:
        if not path.is_file():
            return None
    except OSError:  # e.g. a home directory this user may not enter
        return None
    try:
        step = StoredStep(path, recipe)
    except Exception:  # noqa: BLE001 - a truncated or foreign file: compile instead, rebuild later
        if not settings.read_only:
            _remove(path)
        return None
    if not settings.read_only:
        try:
            os.utime(path)  # most recently used: the builder prunes the oldest
        except OSError:
            pass
    return step


_SPAWNED: set[str] = set()
_SPAWN_LOCK = threading.Lock()
_BUILDER: subprocess.Popen | None = None  # the builder this process started last (polled: no zombie left)


def request_build(recipe: Recipe) -> bool:
    """Queue `recipe` for the builder, and start one unless one is at work; False when nothing was queued
    (the store is off or read-only, the package exists or failed before, this process queued it already, or
    the store cannot be written). Never raises: the store is a cache."""
    from sam_core.settings import get_settings

    settings = get_settings()
    root = settings.step_cache
    if root is None or settings.read_only:  # read-only hosting writes nothing (it still loads what is there)
        return False
    digest = recipe.digest
    with _SPAWN_LOCK:
        if digest in _SPAWNED:
            return False
        _SPAWNED.add(digest)
        try:
            if (root / f"{digest}.pt2").exists() or (root / f"{digest}.failed").exists():
                return False
            root.mkdir(parents=True, exist_ok=True)
            tmp = root / f".{digest}.{os.getpid()}.tmp"
            tmp.write_text(recipe.to_json(), encoding="utf-8")
            os.replace(tmp, root / f"{digest}.todo")
            _start_builder(root)
        except OSError:  # a read-only or full disk: the sweep goes on without
            return False
    return True


def _builder_busy(root: Path) -> bool:
    """Whether a builder holds the store's lock now (it looks for new ``.todo`` files after each pass)."""
    try:
        with open(root / "builder.lock", "a+") as lock:
            if not _lock(lock, wait=False):
                return True
            _unlock(lock)
    except OSError:
        pass
    return False


def _start_builder(root: Path) -> None:
    """Start a builder unless one is at work or the one this process started is still starting: a sweep
    of several variants queues several steps, and one builder takes them all."""
    global _BUILDER
    if _BUILDER is not None and _BUILDER.poll() is None:
        return  # ours is starting or working: it lists the queue after taking the lock, and again after each pass
    if _builder_busy(root):
        return
    _BUILDER = spawn_builder(root)


def spawn_builder(root: Path) -> subprocess.Popen:
    """Start ``python -m sam_core.fused_store build root`` on its own (it outlives this process)."""
    env = dict(os.environ, SAMLAB_STEP_CACHE=str(root))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_DIR.parent), env.get("PYTHONPATH", "")) if p)
    log_path = root / "builder.log"
    # the builders' output, kept short: started afresh once it passes 1 MB
    mode = "wb" if log_path.is_file() and log_path.stat().st_size > 1_000_000 else "ab"
    with open(log_path, mode) as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sam_core.fused_store", "build", str(root)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            start_new_session=True,
            close_fds=True,
        )


# ----------------------------------------------------------------------------------------------- building
def _example(recipe: Recipe, n: int = EXAMPLE_N, seed: int = 0) -> tuple:
    """A batch of `n` trajectories in the recipe's layout: the step's arguments."""
    dt = getattr(torch, recipe.dtype)
    g = torch.Generator().manual_seed(seed)

    def col(scale=1.0, shift=0.0):
        return (torch.rand(n, generator=g, dtype=dt) * scale + shift).contiguous()

    ws = [col(2.0, -1.0) for _ in range(recipe.dims)]
    lr = col(0.05, 0.01) if recipe.lr_dim else torch.tensor(0.03, dtype=dt)
    vals = [col(0.1, 0.01) if d else torch.tensor(0.05, dtype=dt) for d in recipe.val_dims]
    bufs = [col(0.1) for _ in range(recipe.dims)] if recipe.momentum else []
    mom = torch.tensor(0.5, dtype=dt) if recipe.momentum else None
    xis = [col(0.02, -0.01) for _ in range(recipe.dims)] if recipe.noisy else []
    alive, div, t = torch.ones(n, dtype=dt), torch.zeros(n, dtype=dt), torch.tensor(3.0, dtype=dt)
    return ws, lr, alive, div, t, vals, bufs, mom, xis


def build(recipe: Recipe, root: Path) -> Path:
    """Export, compile and check the step of `recipe`, and put its package in `root` (atomically)."""
    import torch._inductor
    from torch.export import Dim

    from sam_core.landscape.functions import _build_from_recipe
    from sam_core.registry import get_spec
    from sam_core.simulate import _fused_fn

    L = _build_from_recipe(recipe.landscape, dict(recipe.params), [], [], [])
    step = _fused_fn(
        get_spec(recipe.variant), L.grad_parts, dict(recipe.static), recipe.keys, recipe.momentum, recipe.noisy
    )

    class Step(torch.nn.Module):
        def forward(self, ws, lr, alive, div, t, vals, bufs, mom, xis):
            return step(ws, lr, alive, div, t, vals, bufs, mom, xis)

    args = _example(recipe)
    n = Dim("n", min=MIN_N)

    def dyn(a):
        if isinstance(a, list):
            return [dyn(x) for x in a]
        return {0: n} if isinstance(a, torch.Tensor) and a.dim() == 1 else None

    ep = torch.export.export(Step(), args, dynamic_shapes=[dyn(a) for a in args], strict=False)
    tmp = root / f".{recipe.digest}.{os.getpid()}.pt2"
    try:
        # the kernel asks OpenMP for its thread count when it runs, as the process it runs in has set it: built
        # with the builder's count it would keep that one (a builder on one thread made a serial kernel)
        torch._inductor.aoti_compile_and_package(
            ep, package_path=str(tmp), inductor_configs={"cpp.dynamic_threads": True}
        )
        stored = StoredStep(tmp, recipe)
        for n_check in (EXAMPLE_N + 5, 1):  # another size than the export's, and a padded one
            a = _example(recipe, n_check, seed=1)
            want, got = step(*a), stored(*a)
            for w, g in zip(_leaves(want), _leaves(got)):
                if w.shape != g.shape or not torch.allclose(w, g, rtol=1e-5, atol=1e-6, equal_nan=True):
                    raise RuntimeError(f"the built step differs from the plain step at n={n_check}")
        del stored
        os.replace(tmp, root / f"{recipe.digest}.pt2")
    finally:
        _remove(tmp)
    return root / f"{recipe.digest}.pt2"


def _leaves(x: Any) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in _leaves(v)]
    return []


def _lock(lock, wait: bool) -> bool:
    """Take the builders' lock; False when another builder has it (and `wait` is false)."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock (two builders would only repeat work)
        return True
    try:
        fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a filesystem without locks: go on without
        pass
    return True


def _unlock(lock) -> None:
    try:
        import fcntl

        fcntl.flock(lock, fcntl.LOCK_UN)
    except (ImportError, OSError):
        pass


def build_queued(root: Path, wait: bool = False) -> list[str]:
    """Build every ``.todo`` of this sam_core and torch in `root`; returns the digests built. One builder at a
    time: without `wait`, a builder that finds another at work leaves the queue to it (that one lists the queue
    again after each pass, once it has let the lock go, so nothing queued meanwhile is missed)."""
    root.mkdir(parents=True, exist_ok=True)
    built: list[str] = []
    seen: set[str] = set()  # queued by another sam_core or torch (another digest): left for their builder
    with open(root / "builder.lock", "a+") as lock:
        while True:
            if not _lock(lock, wait):
                break
            try:
                # a step marked as being built while nobody held the lock: its builder died building it
                for mark in root.glob("*.building"):
                    (root / f"{mark.stem}.failed").write_text("the builder stopped while building it\n")
                    _remove(mark)
                    _remove(root / f"{mark.stem}.todo")
                built += _build_pass(root, seen)
                prune(root)
            finally:
                _unlock(lock)
            if not [p for p in root.glob("*.todo") if p.stem not in seen]:
                break
    return built


def _build_pass(root: Path, seen: set[str]) -> list[str]:
    built = []
    for job in sorted(root.glob("*.todo")):
        digest = job.stem
        if digest in seen:
            continue
        try:
            recipe = Recipe.from_json(job.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError):
            _remove(job)  # unreadable: nothing anybody can build
            continue
        if recipe.digest != digest:  # queued by another sam_core source or torch: theirs to build
            seen.add(digest)
            continue
        if (root / f"{digest}.pt2").exists() or (root / f"{digest}.failed").exists():
            _remove(job)
            continue
        mark = root / f"{digest}.building"
        mark.write_text(str(os.getpid()))
        t0 = time.perf_counter()
        try:
            build(recipe, root)
            built.append(digest)
            print(f"built {digest} ({recipe.variant} on {recipe.landscape}) in {time.perf_counter() - t0:.1f} s")
        except Exception as e:  # noqa: BLE001 - recorded: torch.compile keeps doing it
            reason = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            (root / f"{digest}.failed").write_text(reason + "\n", encoding="utf-8")
            print(f"failed {digest} ({recipe.variant} on {recipe.landscape}): {reason}")
        finally:
            _remove(mark)
            _remove(job)
        sys.stdout.flush()
    return built


FAILED_DAYS = 7  # a failure is tried again after this long (it may have been a full disk, a missing compiler)


def prune(root: Path, keep: int = MAX_FILES) -> None:
    """Keep the `keep` most recently used packages; drop week-old failures and stray temporary files."""
    now = time.time()

    def age(p: Path) -> float:
        try:
            return now - p.stat().st_mtime
        except OSError:
            return 0.0

    pkgs = sorted(root.glob("[!.]*.pt2"), key=age)
    for p in pkgs[keep:]:
        _remove(p)
    for p in root.glob("*.failed"):
        if age(p) > FAILED_DAYS * 86400:
            _remove(p)
    for p in root.glob(".*"):  # a builder killed mid-build leaves its temporary package
        if p.name != "builder.lock" and age(p) > 3600:
            _remove(p)


def entries(root: Path) -> list[dict]:
    """What the store holds: one row per package, failure and queued recipe."""
    rows = []
    for p in sorted(root.glob("*")):
        if p.suffix in (".pt2", ".failed", ".todo") and not p.name.startswith("."):
            rows.append({"digest": p.stem, "kind": p.suffix[1:], "bytes": p.stat().st_size, "mtime": p.stat().st_mtime})
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m sam_core.fused_store", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=("build", "list"))
    ap.add_argument("dir", nargs="?", help="the store (default: SAMLAB_STEP_CACHE)")
    args = ap.parse_args(argv)
    root = Path(args.dir) if args.dir else store_dir()
    if root is None:
        print("the step store is off (SAMLAB_STEP_CACHE=off)")
        return 0
    if args.command == "list":
        rows = entries(root) if root.is_dir() else []
        for r in rows:
            print(f"{r['kind']:<7} {r['digest']}  {r['bytes'] / 1e6:6.2f} MB")
        print(f"{sum(r['kind'] == 'pt2' for r in rows)} stored steps in {root}")
        return 0
    try:  # the sweeps and the page come first (SAMLAB_STEP_BUILDER_NICE: the increment, default 19)
        os.nice(max(0, min(19, int(os.environ.get("SAMLAB_STEP_BUILDER_NICE", "19")))))
    except (AttributeError, OSError, ValueError):
        pass
    build_queued(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
