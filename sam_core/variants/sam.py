"""SAM (Foret et al., ICLR 2021): the normalised ascent e = ρ g/(‖g‖ + ε), d = ∇L(w + e)."""

from sam_core.registry import VariantSpec, rho_param
from sam_core.rules import EPS, scale
from sam_core.variants.stable import STABLE


def ascent(s):
    return [scale(s.g, s.hp["rho"] / (s.g_norm + EPS), s.bd)]


def translate(kwargs: dict) -> str:
    """`adaptive=True` on "sam" is davda54's ASAM (all parameters, η = 0), as in `sam_core.SAM`."""
    if kwargs.pop("adaptive", False):
        kwargs.setdefault("flavour", "davda54")
        kwargs.setdefault("eta", 0.0)
        return "asam"
    return "sam"


SPEC = VariantSpec(
    name="sam",
    label="SAM",
    passes=2,
    summary="Step with the gradient at the worst point of a ρ-ball (normalised ascent).",
    formula=r"e = \rho\,\frac{g}{\|g\| + \epsilon},\quad d = \nabla L(w + e)",
    reference=(
        "Foret, Kleiner, Mobahi, Neyshabur. "
        "Sharpness-Aware Minimization for Efficiently Improving Generalization. ICLR 2021"
    ),
    url="https://arxiv.org/abs/2010.01412",
    hparams={"rho": rho_param(0.05), "stable": STABLE},
    ascent=ascent,
    translate=translate,
    edge_exact=True,
)
