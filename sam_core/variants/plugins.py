"""Plug-in variants: a user's own rule, a Python file or module, loaded beside the built-ins.

    SAMLAB_PLUGINS=path/to/my_sam.py,my_package.my_rule streamlit run app.py
    sam_core.load_plugins("path/to/my_sam.py")          # in code; returns the names it registered

`sam_core` calls `load_plugins()` (the SAMLAB_PLUGINS variable) at import, so the dashboard, every
CLI, the lab worker processes, the training workers and `torchrun` ranks (all import `sam_core`, and
inherit the environment) see the same variants. A plug-in module defines `SPEC` (a `VariantSpec`) or
`SPECS` (a list of them); the contract and a checklist are in docs/VARIANTS.md. A plug-in that fails
to import, takes a name already registered or breaks the contract (checked on a tiny problem: wrong
shapes, a Python `if` on a tensor, a hyperparameter default outside its range) is not registered: a
warning names the file and the problem, `plugin_errors()` keeps the messages for the pages to show,
and everything else keeps working. Code is only ever loaded from the server's environment or the
caller's arguments, never from the browser (so `SAMLAB_READ_ONLY=1` hosting loads no visitor code).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import re
import sys
import warnings
from collections.abc import Iterable

import torch

from sam_core.registry import VARIANTS, HParam, VariantSpec, register

ENV = "SAMLAB_PLUGINS"
# names a variant's hyperparameter must not take: the base optimizer's and the training CLI's own options
RESERVED_HPARAMS = frozenset(
    {
        "lr",
        "momentum",
        "weight_decay",
        "nesterov",
        "dampening",
        "betas",
        "eps",
        "seed",
        "epochs",
        "batch_size",
        "base",
        "optimizer",
        "params",
        "base_optimizer",
        "adaptive",
        "variant",
        "dataset",
        "model",
    }
)
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_LOADED: dict[str, list[str]] = {}  # source key -> names it registered
_ERRORS: dict[str, str] = {}  # source key -> message


class PluginError(ValueError):
    """A plug-in that could not be loaded; the message names the file or module."""


def plugin_errors() -> list[str]:
    """The messages of the plug-ins that failed to load in this process (for the pages to show)."""
    return list(_ERRORS.values())


def loaded_plugins() -> dict[str, list[str]]:
    """Source (file path or module name) -> the variant names it registered."""
    return {k: list(v) for k, v in _LOADED.items()}


def _split(sources: str | Iterable[str] | None) -> list[str]:
    if sources is None:
        sources = os.environ.get(ENV, "")
    if isinstance(sources, (str, os.PathLike)):
        sources = str(sources).split(",")
    return [str(s).strip() for s in sources if str(s).strip()]


def _is_path(src: str) -> bool:
    return src.endswith(".py") or os.sep in src or "/" in src or os.path.isfile(src)


def _key(src: str) -> str:
    return os.path.abspath(os.path.expanduser(src)) if _is_path(src) else src


def _import(src: str, key: str):
    if not _is_path(src):
        return importlib.import_module(src)
    if not os.path.isfile(key):
        raise PluginError(f"plug-in {src}: no such file")
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(key))[0])
    modname = f"samlab_plugin_{stem}"
    spec = importlib.util.spec_from_file_location(modname, key)
    if spec is None or spec.loader is None:
        raise PluginError(f"plug-in {src}: not a Python file")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod  # functions of the module pickle by reference
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return mod


def _specs_of(mod, src: str) -> list[VariantSpec]:
    specs = getattr(mod, "SPECS", None)
    if specs is None:
        specs = [mod.SPEC] if hasattr(mod, "SPEC") else None
    if not specs:
        raise PluginError(f"plug-in {src}: defines neither SPEC (a VariantSpec) nor SPECS (a list of them)")
    specs = list(specs)
    for s in specs:
        if not isinstance(s, VariantSpec):
            raise PluginError(
                f"plug-in {src}: SPEC/SPECS must hold sam_core.VariantSpec objects, got {type(s).__name__}"
            )
    return specs


def check_spec(spec: VariantSpec, where: str = "") -> None:
    """The contract of docs/VARIANTS.md, checked statically and on a tiny problem. Raises PluginError."""
    who = f"plug-in {where}: variant {spec.name!r}" if where else f"variant {spec.name!r}"

    def fail(msg: str):
        raise PluginError(f"{who}: {msg}")

    if not isinstance(spec.name, str) or not _NAME.match(spec.name):
        fail("the name must be 1-40 lower-case letters, digits or '_', starting with a letter")
    for f in ("label", "summary", "formula", "reference"):
        if not isinstance(getattr(spec, f), str) or not getattr(spec, f).strip():
            fail(f"'{f}' must be a non-empty string")
    if not isinstance(spec.passes, int) or not 1 <= spec.passes <= 8:
        fail(f"'passes' must be an integer in [1, 8], got {spec.passes!r}")
    if (spec.ascent is None) != (spec.passes == 1):
        fail("a one-pass rule has no ascent (ascent=None) and a rule with ascent has passes ≥ 2")
    for f in (
        "ascent",
        "combine",
        "stable_gamma",
        "init_state",
        "effective_rho",
        "adjust",
        "translate",
        "unnamed_warning",
    ):
        v = getattr(spec, f)
        if v is not None and not callable(v):
            fail(f"'{f}' must be a function or None")
    if not isinstance(spec.hparams, dict):
        fail("'hparams' must be a dict of name -> HParam")
    for k, h in spec.hparams.items():
        if not isinstance(h, HParam) or h.name != k:
            fail(f"hparams[{k!r}] must be an HParam named {k!r}")
        if k in RESERVED_HPARAMS:
            fail(f"hyperparameter {k!r} clashes with a base-optimizer / training option; rename it")
        try:
            h.validate(h.default, spec.name)
        except ValueError as e:
            fail(f"default out of range: {e}")
        if k == "stable" and h.kind != "bool":
            fail("'stable' must be a bool hyperparameter")
    for k in spec.map_params:
        if k not in spec.hparams:
            fail(f"map_params names {k!r}, which is not one of its hyperparameters")
    _smoke(spec, fail)


def _smoke(spec: VariantSpec, fail) -> None:
    """Two steps of the rule on a quadratic: a batch of 3 points in 2-D (batch_dims=1) and a 2-tensor
    'network' (batch_dims=0). Catches wrong shapes, wrong numbers of perturbations and Python `if`s on
    tensors (which raise on a batch of 3)."""
    from sam_core import rules

    hp = spec.defaults
    hp = {k: v for k, v in hp.items() if spec.hparams[k].kind != "tensor" or v is not None}
    A = torch.tensor([1.0, 4.0], dtype=torch.float64)
    cases = [
        (
            "a batch of 3 points in 2-D (batch_dims=1)",
            [torch.tensor([[1.0, -0.5], [0.3, 0.2], [-2.0, 1.0]], dtype=torch.float64)],
            1,
        ),
        (
            "a 2-tensor network (batch_dims=0)",
            [
                torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.0, -0.3]], dtype=torch.float64),
                torch.tensor([0.7, -0.2], dtype=torch.float64),
            ],
            0,
        ),
    ]
    for what, w, bd in cases:

        def grad_fn(ps, bd=bd):
            if bd:
                x = ps[0]
                return 0.5 * (A * x * x).sum(-1), [A * x]
            return sum(0.5 * 2.0 * (p * p).sum() for p in ps), [2.0 * p for p in ps]

        try:
            state = rules.init_state(spec)
            if not isinstance(state, dict):
                fail(f"init_state must return a dict, got {type(state).__name__}")
            for t in (1, 2):
                g = grad_fn(w)[1]
                es = rules.perturbations(spec, g, w, hp, state, t, bd, lr=0.1, lr_max=0.1)
                if len(es) != spec.passes - 1:
                    fail(
                        f"on {what}: ascent returned {len(es)} perturbation(s), passes={spec.passes} needs "
                        f"{spec.passes - 1}"
                    )
                for e in es:
                    _same_shapes(e, w, f"on {what}: a perturbation", fail)
                d, stats, _ = rules.sam_direction(spec, w, grad_fn, hp, state, t, bd, lr=0.1, lr_max=0.1)
                _same_shapes(d, w, f"on {what}: the direction", fail)
                if not all(bool(torch.isfinite(x).all()) for x in d):
                    fail(f"on {what}: the direction is not finite on a plain quadratic")
        except PluginError:
            raise
        except RuntimeError as e:
            hint = " (a Python `if` or `bool()` on a tensor? use torch.where)" if "ambiguous" in str(e) else ""
            fail(f"on {what}: {type(e).__name__}: {str(e).splitlines()[0][:200]}{hint}")
        except Exception as e:  # noqa: BLE001 - any failure of user code is reported, not raised through
            fail(f"on {what}: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}")


def _same_shapes(ts, w, what: str, fail) -> None:
    if not isinstance(ts, (list, tuple)) or len(ts) != len(w):
        fail(f"{what} must be a list of {len(w)} tensor(s) like the parameters")
    for x, p in zip(ts, w):
        if not isinstance(x, torch.Tensor) or x.shape != p.shape:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            fail(f"{what} has shape {got}, the parameter has {tuple(p.shape)}")


def load_plugins(sources: str | Iterable[str] | None = None, strict: bool = False) -> list[str]:
    """Load plug-in variants and register them; returns the names registered (already loaded ones too).

    `sources`: file paths (`*.py`) or importable module names, a list or one comma-separated string;
    default the SAMLAB_PLUGINS environment variable. A source loads once per process. Each failure is
    a warning naming the source (and kept in `plugin_errors()`); `strict=True` raises `PluginError`.
    Afterwards SAMLAB_PLUGINS lists every source loaded in this process (files as absolute paths), so
    the processes it starts load the same plug-ins whatever their working directory.
    """
    names: list[str] = []
    for src in _split(sources):
        key = _key(src)
        if key in _LOADED:
            names.extend(_LOADED[key])
            continue
        try:
            try:
                mod = _import(src, key)
            except PluginError:
                raise
            except BaseException as e:  # noqa: BLE001 - a plug-in must not take the app down, even by sys.exit
                if isinstance(e, KeyboardInterrupt):
                    raise
                raise PluginError(f"plug-in {src}: failed to import: {type(e).__name__}: {e}") from e
            specs = [dataclasses.replace(s, source=key) for s in _specs_of(mod, src)]
            for s in specs:
                if s.name in VARIANTS:
                    old = VARIANTS[s.name].source
                    where = "a built-in variant" if old == "built-in" else f"the plug-in {old}"
                    raise PluginError(f"plug-in {src}: variant name {s.name!r} is already taken by {where}")
                check_spec(s, src)
            for s in specs:
                register(s)
        except PluginError as e:
            _ERRORS[key] = str(e)
            if strict:
                raise
            warnings.warn(str(e), stacklevel=2)
            continue
        _ERRORS.pop(key, None)
        _LOADED[key] = [s.name for s in specs]
        names.extend(_LOADED[key])
    if _LOADED:  # child processes (lab workers, training workers, torchrun ranks) load the same, from any cwd
        os.environ[ENV] = ",".join(_LOADED)
    return names
