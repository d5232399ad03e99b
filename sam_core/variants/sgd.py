"""SGD: the baseline, one pass, no ascent (`ascent=None`: d = g)."""

from sam_core.registry import VariantSpec

SPEC = VariantSpec(
    name="sgd",
    label="SGD",
    passes=1,
    summary="The baseline: follow the clean gradient.",
    formula=r"d = g = \nabla L(w)",
    reference="Robbins & Monro (1951)",
)
