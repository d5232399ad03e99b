"""The custom-expression parser: valid input, syntax errors, forbidden names, huge exponents, non-finite values."""

import builtins
import math

import numpy as np
import pytest
import torch

from sam_core.landscape.expr import ExprError, compile_expression, custom_landscape


def _xy(n=50):
    g = torch.Generator().manual_seed(1)
    return (
        torch.rand(n, generator=g, dtype=torch.float64) * 4 - 2,
        torch.rand(n, generator=g, dtype=torch.float64) * 4 - 2,
    )


def test_valid_expression_values_and_gradient():
    x, y = _xy()
    f = compile_expression("sin(x)*y + 0.1*x**2")
    assert torch.allclose(f(x, y), torch.sin(x) * y + 0.1 * x**2)
    L = custom_landscape("sin(x)*y + 0.1*x**2")
    loss, g = L.grad_fn(torch.stack((x, y), -1))
    assert torch.allclose(loss, torch.sin(x) * y + 0.1 * x**2)
    assert torch.allclose(g[:, 0], torch.cos(x) * y + 0.2 * x)  # closed form, by hand
    assert torch.allclose(g[:, 1], torch.sin(x))


@pytest.mark.parametrize(
    "text, ref",
    [
        ("x1**2 + 3*x2", lambda x, y: x**2 + 3 * y),
        ("f(x, y) = -x + y/2", lambda x, y: -x + y / 2),
        ("z = exp(-(x**2 + y**2)) * cos(pi*x)", lambda x, y: torch.exp(-(x**2 + y**2)) * torch.cos(math.pi * x)),
        (
            "max(x, y) - min(x, 2) + abs(y) + atan2(y, 3) + hypot(x, y)",
            lambda x, y: (
                torch.maximum(x, y)
                - torch.minimum(x, torch.tensor(2.0, dtype=x.dtype))
                + y.abs()
                + torch.atan2(y, torch.tensor(3.0, dtype=x.dtype))
                + torch.hypot(x, y)
            ),
        ),
        ("e**(x/4) + +y - -1", lambda x, y: math.e ** (x / 4) + y + 1),
        ("5", lambda x, y: torch.full_like(x, 5.0)),
    ],
)
def test_accepted_forms(text, ref):
    x, y = _xy()
    assert torch.allclose(compile_expression(text)(x, y), ref(x, y))


def test_constant_function_has_zero_gradient():
    L = custom_landscape("3")
    loss, g = L.grad_fn(torch.zeros(4, 2))
    assert torch.all(loss == 3) and torch.all(g == 0)


@pytest.mark.parametrize(
    "text, msg",
    [
        ("sin(x", "syntax error at column"),
        ("x +* y", "syntax error"),
        ("", "empty"),
        ("z + 1", "unknown name 'z'"),
        ("foo(x)", "unknown function 'foo'"),
        ("__import__('os')", "'__import__' is not allowed"),
        ("__import__('os').system('true')", "not allowed"),
        ("__builtins__", "not allowed"),
        ("x.real", r"attribute access \(.real\)"),
        ("(x).__class__", "attribute access"),
        ("sin.__globals__", "attribute access"),
        ("().__class__.__bases__", "attribute access"),
        ("open('f')", "unknown function 'open'"),
        ("eval('1')", "unknown function 'eval'"),
        ("x^2", r"use \*\* for powers"),
        ("x % 2", "operator '%' is not allowed"),
        ("'a' * 3", "only numbers"),
        ("True + x", "only numbers"),
        ("1j * x", "only numbers"),
        ("[x, y]", "List is not allowed"),
        ("x[0]", r"indexing with \[...\]"),
        ("lambda: 1", "Lambda is not allowed"),
        ("x if y else 1", "IfExp is not allowed"),
        ("x < y", "comparisons"),
        ("sin(x=1)", "keyword arguments"),
        ("sin(x, y)", "takes 1 argument"),
        ("atan2(x)", "takes 2 arguments"),
        ("sin", "is a function"),
        ("(lambda: 1)()", "only calls like sin"),
        ("[c for c in x]", "not allowed"),
        ("x" + " + x" * 200, "too long"),
        ("1e400 * x", "too large"),
    ],
)
def test_refused_with_a_clear_message(text, msg):
    with pytest.raises(ExprError, match=msg):
        compile_expression(text)


@pytest.mark.parametrize("text", ["x**1000", "9**9**9", "2**2**2**2**2", "x**(10*10)", "x**-100", "y**(1/0.001)"])
def test_huge_exponents_refused_before_evaluation(text):
    with pytest.raises(ExprError, match="exponent"):
        compile_expression(text)


def test_allowed_exponents_and_variable_exponents():
    x, y = _xy()
    assert torch.allclose(compile_expression("x**64")(x, y), x**64)
    assert torch.allclose(compile_expression("2**x")(x, y), 2**x)


def test_deep_nesting_is_an_error_not_a_crash():
    with pytest.raises(ExprError):
        compile_expression("(" * 300 + "x" + ")" * 300)
    with pytest.raises(ExprError):
        compile_expression("-" * 250 + "x")


@pytest.mark.parametrize(
    "text, msg",
    [
        ("log(x)", "value is not finite"),
        ("1/x", "not finite"),
        ("exp(exp(exp(x)))", "value is not finite"),
        ("sqrt(x**2 + y**2)", "gradient is not finite at x=0, y=0"),
    ],
)
def test_non_finite_on_the_domain_is_refused(text, msg):
    with pytest.raises(ExprError, match=msg):
        custom_landscape(text, ((-3, 3), (-3, 3)))


def test_non_finite_depends_on_the_domain():
    L = custom_landscape("log(x) + y**2", ((0.5, 3), (-1, 1)))
    assert L.domain == ((0.5, 3.0), (-1.0, 1.0))


@pytest.mark.parametrize(
    "domain, msg",
    [
        (((1, 0), (0, 1)), "x_min < x_max"),
        (((0, 1), (0, float("nan"))), "finite"),
        (((0, 1e9), (0, 1)), "finite numbers in"),
        ((1, 2), "domain must be"),
    ],
)
def test_bad_domains(domain, msg):
    with pytest.raises(ExprError, match=msg):
        custom_landscape("x + y", domain)


def test_never_calls_eval_or_exec(monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    # (builtins.compile stays: ast.parse uses it with PyCF_ONLY_AST, which parses and runs nothing)
    x, y = _xy()
    assert torch.allclose(compile_expression("tanh(x) * y**2")(x, y), torch.tanh(x) * y**2)


def test_custom_landscape_finds_the_quartic_points():
    L = custom_landscape("x**4/4 - x*y + y**2/2", ((-2, 2), (-2, 2)))
    assert sorted(map(tuple, np.round(L.minima, 8))) == [(-1.0, -1.0), (1.0, 1.0)]
    assert np.allclose(L.saddles, [[0.0, 0.0]], atol=1e-8)
    assert L.gd_bound == pytest.approx(2 - math.sqrt(2), rel=1e-8)
