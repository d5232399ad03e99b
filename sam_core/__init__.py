"""SAM Lab's optimizer core: every Sharpness-Aware Minimization variant written once.

    import sam_core
    opt = sam_core.make_optimizer("ssam", model.parameters(), base_optimizer=torch.optim.SGD,
                                  rho=0.05, lr=0.1, momentum=0.9, weight_decay=5e-4)
    loss = opt.step(closure)
    sam_core.VARIANTS["ssam"].formula

See docs/CORE_API.md; a variant of your own: docs/VARIANTS.md (`load_plugins`, SAMLAB_PLUGINS).
This package never imports streamlit.
"""

from sam_core import hessian, rules
from sam_core.optim import SAM, SAMOptimizer, frozen_bn, make_optimizer
from sam_core.registry import VARIANTS, HParam, VariantSpec, get_spec, register, resolve_hparams
from sam_core.simulate import SimResult, simulate
from sam_core.theory import gd_edge, sam_edge, sam_edge_ratio
from sam_core.variants.plugins import PluginError, load_plugins, plugin_errors

__all__ = [
    "SAM",
    "SAMOptimizer",
    "VARIANTS",
    "HParam",
    "SimResult",
    "VariantSpec",
    "frozen_bn",
    "gd_edge",
    "get_spec",
    "hessian",
    "make_optimizer",
    "resolve_hparams",
    "rules",
    "sam_edge",
    "sam_edge_ratio",
    "simulate",
    "load_plugins",
    "plugin_errors",
    "PluginError",
    "register",
]

load_plugins()  # SAMLAB_PLUGINS: every process that imports sam_core sees the same variants (docs/VARIANTS.md)
