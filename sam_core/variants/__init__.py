"""The SAM variants, one module each: its `VariantSpec` (name, label, passes, formula, paper,
hyperparameters with ranges) together with its rule (ascent, combination of the gradients, state) and
what the labs need from it (effective ascent radius, whether a compiled sweep step can carry it).

`BUILTIN` lists the modules in the order the pages show them; `sam_core.registry` registers them at
import. A plug-in (docs/VARIANTS.md, `sam_core.load_plugins`) is a module of the same shape outside
this package. `stable` is not a variant: it is Stable SAM's γ_t renormalisation, a flag any two-pass
variant may offer (`stable.STABLE`, applied by `rules.stable_direction`).
"""

from __future__ import annotations

import importlib

BUILTIN = (
    "sgd",
    "sam",
    "usam",
    "unified_sam",
    "asam",
    "ssam",
    "bsam",
    "presam",
    "infosam",
    "gsam",
    "wsam",
    "fsam",
    "looksam",
    "msam",
)


def register_builtins() -> None:
    from sam_core.registry import VARIANTS, register

    for name in BUILTIN:
        if name in VARIANTS:
            continue
        mod = importlib.import_module(f"{__name__}.{name}")
        register(mod.SPEC)
