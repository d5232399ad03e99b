"""Stable SAM's renormalisation as a flag any two-pass variant can offer (Tan et al., 2024).

With `stable=True` the variant's direction d (∇L(w + e) for the plain rules) is followed as γ_t·d with
γ_t = ‖g‖/‖d‖, so the step has the clean gradient's length. The maths is `rules.stable_direction`
(γ_t by `rules.norm_ratio`, exact near minima); a variant may measure the norms its own way through
`VariantSpec.stable_gamma` (ASAM's weighted norms). Add `"stable": STABLE` to a spec's hparams.
"""

from __future__ import annotations

from sam_core.registry import HParam

STABLE = HParam(
    "stable",
    False,
    kind="bool",
    symbol=r"\gamma_t",
    help="Stable SAM renormalisation: follow γ_t·g_adv with γ_t = ‖g‖/‖g_adv‖, so ‖d‖ = ‖g‖.",
)
STABLE_ON = HParam(STABLE.name, True, kind="bool", symbol=STABLE.symbol, help=STABLE.help)
