"""The registry: every variant is fully described, and bad values are refused with a usable message."""

import pytest
import torch

import sam_core
from sam_core.registry import resolve_hparams

EXPECTED = [
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
]


def test_all_variants_present_with_formula_and_reference():
    assert list(sam_core.VARIANTS) == EXPECTED
    for spec in sam_core.VARIANTS.values():
        assert spec.formula and spec.reference and spec.summary and spec.label
        assert spec.passes == (1 if spec.name in ("sgd", "msam") else 3 if spec.name == "bsam" else 2)


def test_defaults_lie_in_their_ranges():
    for spec in sam_core.VARIANTS.values():
        resolved = resolve_hparams(spec.name)  # validates every default
        assert set(resolved) == set(spec.hparams)


def test_every_two_pass_rule_offers_stable():
    for spec in sam_core.VARIANTS.values():
        if spec.passes == 2:
            assert "stable" in spec.hparams, spec.name
    assert sam_core.VARIANTS["ssam"].hparams["stable"].default is True


def test_documented_defaults():
    assert resolve_hparams("sam")["rho"] == 0.05
    a = resolve_hparams("asam")
    assert (a["rho"], a["eta"], a["flavour"]) == (0.5, 0.01, "official")
    assert resolve_hparams("asam", flavour="davda54")["eta"] == 0.0
    assert resolve_hparams("ssam")["normalized"] is False
    i = resolve_hparams("infosam")
    assert (i["beta"], i["delta"], i["d0"]) == (0.9, 1e-8, 10.0)
    assert "reconstruction" in sam_core.VARIANTS["infosam"].reference.lower()


@pytest.mark.parametrize(
    "variant,kw,needle",
    [
        ("sam", {"rho": -1}, "rho"),
        ("sam", {"rho": float("nan")}, "rho"),
        ("unified_sam", {"lam": 2}, "lam"),
        ("asam", {"flavour": "x"}, "flavour"),
        ("sam", {"lam": 0.5}, "unknown hyperparameter"),
        ("bogus", {}, "unknown variant"),
    ],
)
def test_errors_name_the_field(variant, kw, needle):
    with pytest.raises(ValueError, match=needle):
        resolve_hparams(variant, **kw)


def test_tensor_values_checked_entrywise():
    resolve_hparams("sam", rho=torch.tensor([0.0, 0.5]))
    with pytest.raises(ValueError, match="rho"):
        resolve_hparams("sam", rho=torch.tensor([0.1, -0.5]))


def test_init_state_hooks_of_both_forms_give_a_fresh_state():
    """The hook takes no argument; a plug-in written for the earlier `init_state(params)` form still loads
    and is given None."""
    import dataclasses

    from sam_core import rules

    base = sam_core.VARIANTS["sgd"]
    new_form = dataclasses.replace(base, init_state=lambda: {"count": 0})
    old_form = dataclasses.replace(base, init_state=lambda params: {"params": params})
    a, b = rules.init_state(new_form), rules.init_state(new_form)
    assert a == {"count": 0} and a is not b  # a fresh dict per call
    assert rules.init_state(old_form) == {"params": None}
    assert rules.init_state("sgd") == {}
