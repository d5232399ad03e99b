"""Safe parser for user-typed 2-D functions such as ``sin(x)*y + 0.1*x**2`` (never ``eval``).

The text is parsed with :mod:`ast` and every node is checked against a whitelist: numbers, the
variables ``x, y`` (aliases ``x1, x2``), the constants ``pi, e``, the operators ``+ - * / **`` and
unary ``-``/``+``, and calls of the functions in :data:`FUNCTIONS`. Anything else (attribute access,
subscripts, ``__import__``, keywords, lambdas, strings, comparisons, ``^``) is refused with an
:class:`ExprError` that says what was wrong and where. The accepted tree is compiled into a closure
of torch ops, so gradients come from autograd. Guards: at most 300 characters, 200 nodes and 64
levels of nesting, numbers up to 1e6 in magnitude (huge integer or hex literals included), constant
exponents up to 64 in magnitude, and the function (and its gradient) must be finite on a grid over the
domain. Whatever the input, the only exception that leaves :func:`compile_expression` is
:class:`ExprError`; the work of one accepted formula is bounded too (the numeric search for critical
points takes fewer Newton iterations the more operations the formula has, see :func:`search_iters`).

    fn = compile_expression("sin(x)*y + 0.1*x**2")      # elementwise f(x, y) on tensors
    L = custom_landscape("sin(x)*y + 0.1*x**2", domain=((-3, 3), (-3, 3)))   # a Landscape
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Callable

import numpy as np
import torch

from sam_core.landscape.functions import Landscape, autograd_grad_fn, critical_points

MAX_CHARS = 300
MAX_NODES = 200
MAX_DEPTH = 64  # nesting levels: the compiled closures recurse once per level when evaluated
MAX_CONST = 1e6
MAX_EXPONENT = 64.0
MAX_DOMAIN = 1e3

VARIABLES = {"x": 0, "y": 1, "x1": 0, "x2": 1}
CONSTANTS = {"pi": math.pi, "e": math.e}


def _softplus(a):
    return torch.nn.functional.softplus(a)


FUNCTIONS: dict[str, tuple[int, Callable]] = {  # name -> (number of arguments, torch op)
    "sin": (1, torch.sin),
    "cos": (1, torch.cos),
    "tan": (1, torch.tan),
    "asin": (1, torch.asin),
    "acos": (1, torch.acos),
    "atan": (1, torch.atan),
    "arcsin": (1, torch.asin),
    "arccos": (1, torch.acos),
    "arctan": (1, torch.atan),
    "sinh": (1, torch.sinh),
    "cosh": (1, torch.cosh),
    "tanh": (1, torch.tanh),
    "exp": (1, torch.exp),
    "log": (1, torch.log),
    "log10": (1, torch.log10),
    "log2": (1, torch.log2),
    "log1p": (1, torch.log1p),
    "sqrt": (1, torch.sqrt),
    "abs": (1, torch.abs),
    "sigmoid": (1, torch.sigmoid),
    "softplus": (1, _softplus),
    "relu": (1, torch.relu),
    "atan2": (2, torch.atan2),
    "min": (2, torch.minimum),
    "max": (2, torch.maximum),
    "hypot": (2, torch.hypot),
}

_BINOPS: dict[type, Callable] = {
    ast.Add: torch.add,
    ast.Sub: torch.sub,
    ast.Mult: torch.mul,
    ast.Div: torch.div,
    ast.Pow: torch.pow,
}
_BINOP_SYMBOL = {
    ast.BitXor: "^",
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitAnd: "&",
    ast.BitOr: "|",
}

_PREFIX = re.compile(r"^\s*(?:f\s*\(\s*x\s*,\s*y\s*\)|f|z)\s*=(?!=)\s*")


class ExprError(ValueError):
    """A user expression was refused; ``str(err)`` is a message to show as is."""


Fn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# autograd cost of one node, relative to an addition (forward, backward and the Hessian's double backward)
_COST: dict[type, int] = {ast.BinOp: 1, ast.UnaryOp: 1, ast.Call: 2, ast.Pow: 3}
SEARCH_WORK = 60 * 40  # Newton iterations × cost for the critical-point search: 60 iterations up to cost 40


def search_iters(cost: int) -> int:
    """Newton iterations of the critical-point search for a formula of this cost: 60 for small formulas,
    fewer (at least 15) for long ones, so the work of accepting any formula stays bounded."""
    return int(min(60, max(15, SEARCH_WORK // max(int(cost), 1))))


def _short(v) -> str:
    """A literal for a message: a 300-digit number is shown by its length, not its digits."""
    try:
        text = repr(v)
    except ValueError:  # an int beyond Python's digit limit for str()
        return "(a number with thousands of digits)"
    return text if len(text) <= 24 else f"{text[:12]}…({len(text)} digits)"


def _where(node: ast.AST) -> str:
    col = getattr(node, "col_offset", None)
    return f" (at column {col + 1})" if col is not None else ""


def _allowed() -> str:
    return "variables x, y; constants pi, e; functions " + ", ".join(sorted(FUNCTIONS))


def _depth(tree: ast.AST) -> int:
    """Nesting depth of ``tree``, iteratively (a recursive walk could itself overflow the stack)."""
    best, todo = 0, [(tree, 1)]
    while todo:
        node, d = todo.pop()
        best = max(best, d)
        todo.extend((child, d + 1) for child in ast.iter_child_nodes(node))
    return best


class _Compiler:
    def __init__(self) -> None:
        self.nodes = 0
        self.cost = 0  # tensor operations per evaluation, weighted by their autograd cost (see search_iters)

    def __call__(self, node: ast.AST) -> tuple[Fn, bool]:
        """Return (closure, depends_on_xy)."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExprError(f"expression is too long: at most {MAX_NODES} operations and names")
        self.cost += _COST.get(type(node), 0) + (_COST.get(type(getattr(node, "op", None)), 0))
        if isinstance(node, ast.Expression):
            return self(node.body)
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ExprError(f"only numbers are allowed as constants, got {_short(v)}{_where(node)}")
            if isinstance(v, int) and abs(v) > MAX_CONST:  # before float(): a 300-digit literal overflows it
                raise ExprError(f"number {_short(v)} is too large{_where(node)}: |c| ≤ {MAX_CONST:g}")
            if not math.isfinite(float(v)) or abs(float(v)) > MAX_CONST:
                raise ExprError(f"number {_short(v)} is too large{_where(node)}: |c| ≤ {MAX_CONST:g}")
            c = float(v)
            return (lambda x, y: torch.tensor(c, dtype=x.dtype)), False
        if isinstance(node, ast.Name):
            name = node.id
            if "__" in name:
                raise ExprError(f"name {name!r} is not allowed{_where(node)}: names with '__' are forbidden")
            if name in VARIABLES:
                i = VARIABLES[name]
                return ((lambda x, y: x) if i == 0 else (lambda x, y: y)), True
            if name in CONSTANTS:
                c = CONSTANTS[name]
                return (lambda x, y: torch.tensor(c, dtype=x.dtype)), False
            if name in FUNCTIONS:
                raise ExprError(f"{name} is a function: call it as {name}(...){_where(node)}")
            raise ExprError(f"unknown name {name!r}{_where(node)}; allowed: {_allowed()}")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                a, dep = self(node.operand)
                return (lambda x, y: torch.neg(a(x, y))), dep
            if isinstance(node.op, ast.UAdd):
                return self(node.operand)
            raise ExprError(f"operator {type(node.op).__name__} is not allowed{_where(node)}; use + - * / **")
        if isinstance(node, ast.BinOp):
            op = type(node.op)
            if op not in _BINOPS:
                sym = _BINOP_SYMBOL.get(op, op.__name__)
                hint = "use ** for powers" if op is ast.BitXor else "use + - * / **"
                raise ExprError(f"operator {sym!r} is not allowed{_where(node)}: {hint}")
            a, da = self(node.left)
            b, db = self(node.right)
            if op is ast.Pow and not db:  # constant exponent: check its size before it ever runs
                with torch.no_grad():
                    p = float(b(torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)))
                if not math.isfinite(p) or abs(p) > MAX_EXPONENT:
                    raise ExprError(f"exponent {p:g} is too large{_where(node.right)}: |p| ≤ {MAX_EXPONENT:g}")
            fn = _BINOPS[op]
            return (lambda x, y: fn(a(x, y), b(x, y))), da or db
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                if isinstance(node.func, ast.Attribute):
                    raise ExprError(f"attribute access (.{node.func.attr}) is not allowed{_where(node.func)}")
                raise ExprError(f"only calls like sin(x) are allowed{_where(node)}")
            name = node.func.id
            if "__" in name:
                raise ExprError(f"name {name!r} is not allowed{_where(node)}: names with '__' are forbidden")
            if name not in FUNCTIONS:
                raise ExprError(f"unknown function {name!r}{_where(node)}; allowed: {_allowed()}")
            if node.keywords:
                raise ExprError(f"{name}(): keyword arguments are not allowed{_where(node)}")
            nargs, op = FUNCTIONS[name]
            if len(node.args) != nargs or any(isinstance(a, ast.Starred) for a in node.args):
                raise ExprError(
                    f"{name}() takes {nargs} argument{'s' if nargs > 1 else ''}, got {len(node.args)}{_where(node)}"
                )
            parts = [self(a) for a in node.args]
            dep = any(d for _, d in parts)
            if nargs == 1:
                ((a, _),) = parts
                return (lambda x, y: op(a(x, y))), dep
            (a, _), (b, _) = parts
            return (lambda x, y: op(a(x, y), b(x, y))), dep
        if isinstance(node, ast.Attribute):
            raise ExprError(f"attribute access (.{node.attr}) is not allowed{_where(node)}")
        if isinstance(node, ast.Subscript):
            raise ExprError(f"indexing with [...] is not allowed{_where(node)}")
        if isinstance(node, ast.Compare):
            raise ExprError(f"comparisons are not allowed{_where(node)}")
        kind = type(node).__name__
        raise ExprError(f"{kind} is not allowed{_where(node)}; use numbers, {_allowed()}, and + - * / **")


def compile_expression(text: str) -> Fn:
    """Parse and compile ``text`` into an elementwise torch function ``f(x, y)``; raises ExprError (only)."""
    try:
        return _compile(text)
    except ExprError:
        raise
    except RecursionError:
        raise ExprError(f"expression is nested too deeply: at most {MAX_DEPTH} levels") from None
    except Exception as err:  # anything the whitelist did not foresee is still a refusal, never a crash
        raise ExprError(
            f"cannot read the expression ({type(err).__name__}): use numbers, {_allowed()}, and + - * / **"
        ) from None


def _compile(text: str) -> Fn:
    if not isinstance(text, str):
        raise ExprError("expression must be text")
    src = _PREFIX.sub("", text.strip(), count=1).strip()
    if not src:
        raise ExprError("expression is empty: type a function of x and y, e.g. sin(x)*y + 0.1*x**2")
    if len(src) > MAX_CHARS:
        raise ExprError(f"expression is too long: at most {MAX_CHARS} characters, got {len(src)}")
    try:
        with warnings.catch_warnings():  # e.g. "invalid escape sequence" in a quoted string: refused below anyway
            warnings.simplefilter("ignore")
            tree = ast.parse(src, mode="eval")
    except SyntaxError as err:
        col = err.offset or 1
        caret = " " * (col - 1) + "^"
        raise ExprError(f"syntax error at column {col}: {err.msg}\n{src}\n{caret}") from None
    except (RecursionError, MemoryError, ValueError, OverflowError):
        raise ExprError("expression is nested too deeply or cannot be read") from None
    if _depth(tree) > MAX_DEPTH + 1:  # + the Expression root
        raise ExprError(f"expression is nested too deeply: at most {MAX_DEPTH} levels of brackets, calls and operators")
    comp = _Compiler()
    fn, _ = comp(tree)

    def f(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.broadcast_to(fn(x, y), torch.broadcast_shapes(x.shape, y.shape))

    f.source = src  # type: ignore[attr-defined]
    f.cost = comp.cost  # type: ignore[attr-defined]
    return f


def check_domain(domain) -> tuple[tuple[float, float], tuple[float, float]]:
    """Validate ``((x0, x1), (y0, y1))``: finite, x0 < x1, y0 < y1, |bounds| ≤ 1e3."""
    try:
        (x0, x1), (y0, y1) = ((float(a), float(b)) for a, b in domain)
    except (TypeError, ValueError):
        raise ExprError("domain must be ((x_min, x_max), (y_min, y_max)) numbers") from None
    for name, lo, hi in (("x", x0, x1), ("y", y0, y1)):
        if not (math.isfinite(lo) and math.isfinite(hi)) or max(abs(lo), abs(hi)) > MAX_DOMAIN:
            raise ExprError(f"domain {name}: bounds must be finite numbers in [-{MAX_DOMAIN:g}, {MAX_DOMAIN:g}]")
        if not lo < hi:
            raise ExprError(f"domain {name}: need {name}_min < {name}_max, got {lo:g} ≥ {hi:g}")
    return (x0, x1), (y0, y1)


def check_finite(f: Fn, domain, n: int = 61) -> None:
    """Raise ExprError naming a point where f or its gradient is not finite on an n×n domain grid."""
    (x0, x1), (y0, y1) = domain
    X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    w = torch.from_numpy(np.stack((X, Y), -1).reshape(-1, 2))
    try:
        loss, g = autograd_grad_fn(f, w)
    except Exception as err:  # e.g. a shape problem inside torch: a refusal, never a crash
        raise ExprError(f"cannot evaluate the expression: {err}") from None
    for what, bad in (("value", ~torch.isfinite(loss)), ("gradient", ~torch.isfinite(g).all(-1))):
        if bool(bad.any()):
            i = int(bad.nonzero()[0, 0])
            px, py = w[i].tolist()
            raise ExprError(
                f"the function's {what} is not finite at x={px:.3g}, y={py:.3g} "
                f"({int(bad.sum())} of {n * n} grid points): change the formula or the domain"
            )


def _latex(src: str) -> str:
    """A readable LaTeX line for an accepted expression (display only: \\cdot for *, ^{} for **)."""
    out = re.sub(r"\*\*\s*(\w+(?:\.\d+)?|\([^()]*\))", lambda m: "^{" + m.group(1).strip("()") + "}", src)
    out = out.replace("*", r" \cdot ")
    out = re.sub(r"\b(" + "|".join(sorted(FUNCTIONS, key=len, reverse=True)) + r")\(", r"\\operatorname{\1}(", out)
    return "f(x, y) = " + out.replace("pi", r"\pi")


def custom_landscape(text: str, domain=((-3.0, 3.0), (-3.0, 3.0)), find_points: bool = True) -> Landscape:
    """A :class:`Landscape` for a user expression: autograd gradient, critical points found numerically."""
    dom = check_domain(domain)
    f = compile_expression(text)
    check_finite(f, dom)
    iters = search_iters(getattr(f, "cost", 0))
    pts = critical_points(f, dom, iters=iters) if find_points else {"minima": [], "saddles": [], "maxima": []}
    (x0, x1), (y0, y1) = dom
    return Landscape(
        key="custom",
        label=f"f = {f.source}",
        latex=_latex(f.source),  # type: ignore[attr-defined]
        f=f,
        fg=None,
        domain=dom,
        minima=pts["minima"],
        saddles=pts["saddles"],
        maxima=pts["maxima"],
        start=(x0 + 0.8 * (x1 - x0), y0 + 0.8 * (y1 - y0)),
        lr=0.05,
        rho=0.05,
        params={"expr": f.source, "domain": dom},  # type: ignore[attr-defined]
        note="Custom function: gradient by autograd; minima and saddles found numerically on the domain.",
    )
