"""Scaling laws written as formulas: parsed without ``eval``, evaluated and differentiated.

``parse("E + A*N^-alpha + B*D^-beta", axes=("N", "D"))`` reads a law over named axes. The
text goes through Python's :mod:`ast` with a whitelist (numbers, names, ``+ - * / ^ **``,
unary minus and the functions ``log``/``ln``, ``exp``, ``sqrt``); anything else (calls of
other functions, attributes, subscripts, comparisons, strings, ...) is refused with a
:class:`ScalingError` naming it. ``^`` means power, as in the papers (it is rewritten to
``**`` before parsing, so ``a*N^-alpha`` is ``a * (N ** -alpha)``).

Names that are bound axes are data; every other name is a parameter. The expression becomes
a small tree that numpy evaluates vectorised (any broadcasting shapes), and that is
differentiated symbolically (sum, product, quotient, power and chain rules), which gives

- the Jacobian ``dY/dtheta`` used by gradient polishing;
- the split into **linear** parameters, those whose derivative involves no linear parameter
  (so ``Y = offset + sum_j l_j X_j`` with basis columns ``X_j = dY/dl_j``, solved exactly by
  variable projection), and **nonlinear** ones (searched on a grid, then polished).

Default bounds (Kaplan et al. 2020 / Hoffmann et al. 2022 conventions: errors fall with
scale): coefficients and nonlinear parameters (exponents) ``>= 0``; a constant term (basis
column 1) ``[0, min Y]`` when the law has nonlinear parameters (an irreducible error), free
when it has none (the intercept of a log-linear law).
"""

from __future__ import annotations

import ast
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from scaling.errors import ScalingError

FUNCTIONS = {"log": np.log, "ln": np.log, "exp": np.exp, "sqrt": np.sqrt}
INF = float("inf")
MAX_LENGTH = 500


@dataclass(frozen=True)
class Expr:
    """A node: ``op`` in num, sym, add, sub, mul, div, pow, neg, log, exp, sqrt."""

    op: str
    args: tuple = ()
    value: float = 0.0
    name: str = ""

    @cached_property
    def symbols(self) -> frozenset[str]:
        if self.op == "sym":
            return frozenset((self.name,))
        return frozenset().union(*(a.symbols for a in self.args)) if self.args else frozenset()

    def __str__(self) -> str:
        return to_text(self)


def num(v: float) -> Expr:
    return Expr("num", value=float(v))


def sym(name: str) -> Expr:
    return Expr("sym", name=name)


ZERO, ONE = num(0.0), num(1.0)


def _is(e: Expr, v: float) -> bool:
    return e.op == "num" and e.value == v


def add(a: Expr, b: Expr) -> Expr:
    if _is(a, 0):
        return b
    if _is(b, 0):
        return a
    if a.op == b.op == "num":
        return num(a.value + b.value)
    return Expr("add", (a, b))


def neg(a: Expr) -> Expr:
    if a.op == "num":
        return num(-a.value)
    return a.args[0] if a.op == "neg" else Expr("neg", (a,))


def sub(a: Expr, b: Expr) -> Expr:
    if _is(b, 0):
        return a
    if _is(a, 0):
        return neg(b)
    if a.op == b.op == "num":
        return num(a.value - b.value)
    return Expr("sub", (a, b))


def mul(a: Expr, b: Expr) -> Expr:
    if _is(a, 0) or _is(b, 0):
        return ZERO
    if _is(a, 1):
        return b
    if _is(b, 1):
        return a
    if a.op == b.op == "num":
        return num(a.value * b.value)
    if _is(a, -1) or _is(b, -1):
        return neg(b if _is(a, -1) else a)
    if a.op == "neg":
        return neg(mul(a.args[0], b))
    if b.op == "neg":
        return neg(mul(a, b.args[0]))
    return Expr("mul", (a, b))


def div(a: Expr, b: Expr) -> Expr:
    if _is(a, 0):
        return ZERO
    if _is(b, 1):
        return a
    return Expr("div", (a, b))


def power(a: Expr, b: Expr) -> Expr:
    if _is(b, 0):
        return ONE
    if _is(b, 1):
        return a
    return Expr("pow", (a, b))


def call(fn: str, a: Expr) -> Expr:
    return Expr("log" if fn == "ln" else fn, (a,))


# ----------------------------------------------------------------------------- parsing

_BINOPS = {ast.Add: add, ast.Sub: sub, ast.Mult: mul, ast.Div: div, ast.Pow: power}


def _describe(node: ast.AST) -> str:
    kinds = {ast.Attribute: "attribute access", ast.Subscript: "indexing",
             ast.Compare: "a comparison", ast.Lambda: "a lambda", ast.BoolOp: "and/or",
             ast.IfExp: "if/else", ast.Starred: "a starred argument"}
    for kind, text in kinds.items():
        if isinstance(node, kind):
            return text
    if isinstance(node, ast.Constant):
        return f"the constant {node.value!r}"
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    return type(node).__name__


def _convert(node: ast.AST, text: str) -> Expr:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        if not math.isfinite(node.value):
            raise ScalingError(f"law formula {text!r}: the number {node.value!r} is not finite")
        return num(node.value)
    if isinstance(node, ast.Name):
        if node.id in FUNCTIONS:
            raise ScalingError(f"law formula {text!r}: {node.id!r} is a function; "
                               f"write {node.id}(x)")
        return sym(node.id)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_convert(node.left, text), _convert(node.right, text))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _convert(node.operand, text)
        return neg(inner) if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Call):
        fn = node.func.id if isinstance(node.func, ast.Name) else None
        if fn not in FUNCTIONS:
            shown = fn if fn else ast.unparse(node.func)
            raise ScalingError(f"law formula {text!r}: unknown function {shown!r}; the "
                               f"functions allowed are {', '.join(FUNCTIONS)}")
        if len(node.args) != 1 or node.keywords:
            raise ScalingError(f"law formula {text!r}: {fn}() takes exactly one argument")
        return call(fn, _convert(node.args[0], text))
    raise ScalingError(f"law formula {text!r}: {_describe(node)} is not allowed; use numbers, "
                       "names, + - * / ^ and log, exp, sqrt")


def _strip_lhs(text: str) -> str:
    """``"Y = ..."`` / ``"L = ..."`` -> ``"..."`` (one leading ``NAME =`` is a label)."""
    head, eq, rest = text.partition("=")
    if eq and head.strip().isidentifier() and "=" not in rest:
        return rest.strip()
    return text.strip()


def parse_expr(text: str) -> Expr:
    """The expression tree of ``text`` (whitelisted AST, ``^`` is power)."""
    if not isinstance(text, str) or not text.strip():
        raise ScalingError("law formula is empty; write e.g. 'E + A*N^-alpha + B*D^-beta'")
    if len(text) > MAX_LENGTH:
        raise ScalingError(f"law formula is {len(text)} characters long; the limit is "
                           f"{MAX_LENGTH}")
    body = _strip_lhs(text)
    try:
        tree = ast.parse(body.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise ScalingError(f"law formula {text!r} is not a valid expression ({exc.msg} at "
                           f"column {exc.offset}); write e.g. 'E + A*N^-alpha'") from None
    except (ValueError, RecursionError, MemoryError):
        raise ScalingError(f"law formula {text!r} cannot be parsed") from None
    try:
        return _convert(tree.body, text)
    except RecursionError:
        raise ScalingError(f"law formula {text!r} is nested too deeply") from None


# ----------------------------------------------------------------------------- calculus

def diff(e: Expr, p: str) -> Expr:
    """``d e / d p`` as a tree (sum, product, quotient, power and chain rules)."""
    if p not in e.symbols:
        return ZERO
    op, a = e.op, e.args
    if op == "sym":
        return ONE
    if op in ("add", "sub"):
        return (add if op == "add" else sub)(diff(a[0], p), diff(a[1], p))
    if op == "neg":
        return neg(diff(a[0], p))
    if op == "mul":
        return add(mul(diff(a[0], p), a[1]), mul(a[0], diff(a[1], p)))
    if op == "div":
        return div(sub(mul(diff(a[0], p), a[1]), mul(a[0], diff(a[1], p))),
                   power(a[1], num(2)))
    if op == "pow":
        base, ex = a
        if p not in ex.symbols:   # d u^c = c u^(c-1) du
            return mul(mul(ex, power(base, sub(ex, ONE))), diff(base, p))
        if p not in base.symbols:  # d b^v = b^v ln(b) dv
            return mul(mul(e, call("log", base)), diff(ex, p))
        return mul(e, add(mul(diff(ex, p), call("log", base)),
                          div(mul(ex, diff(base, p)), base)))
    inner = diff(a[0], p)
    if op == "log":
        return div(inner, a[0])
    if op == "exp":
        return mul(e, inner)
    if op == "sqrt":
        return div(inner, mul(num(2), e))
    raise AssertionError(op)


def substitute(e: Expr, values: Mapping[str, float]) -> Expr:
    """``e`` with the names in ``values`` replaced by numbers (and simplified)."""
    if not (e.symbols & values.keys()):
        return e
    if e.op == "sym":
        return num(values[e.name])
    args = [substitute(a, values) for a in e.args]
    builders = {"add": add, "sub": sub, "mul": mul, "div": div, "pow": power}
    if e.op in builders:
        return builders[e.op](*args)
    if e.op == "neg":
        return neg(args[0])
    return call(e.op, args[0])


def evaluate(e: Expr, env: Mapping[str, np.ndarray]) -> np.ndarray:
    """``e`` with numpy, names looked up in ``env`` (arrays broadcast together).

    When ``env`` also holds ``"ln:x"`` (the log of a positive axis ``x``), powers of ``x``
    are computed as ``exp(e * ln x)``, which is faster on large batches.
    """
    op, a = e.op, e.args
    if op == "num":
        return np.float64(e.value)
    if op == "sym":
        return env[e.name]
    if op == "neg":
        return -evaluate(a[0], env)
    if op in FUNCTIONS:
        return FUNCTIONS[op](evaluate(a[0], env))
    if op == "pow" and a[0].op == "sym" and "ln:" + a[0].name in env:
        return np.exp(evaluate(a[1], env) * env["ln:" + a[0].name])  # x^e = exp(e ln x)
    x, y = evaluate(a[0], env), evaluate(a[1], env)
    if op == "add":
        return x + y
    if op == "sub":
        return x - y
    if op == "mul":
        return x * y
    if op == "div":
        return x / y
    return np.power(x, y)


_PRECEDENCE = {"add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 3, "pow": 4}


def to_text(e: Expr) -> str:
    """Readable text of a tree (``^`` for power)."""
    if e.op == "num":
        return f"{e.value:g}"
    if e.op == "sym":
        return e.name
    if e.op in FUNCTIONS:
        return f"{e.op}({to_text(e.args[0])})"

    def part(child: Expr, right: bool = False) -> str:
        inner = to_text(child)
        mine, theirs = _PRECEDENCE[e.op], _PRECEDENCE.get(child.op, 9)
        tight = theirs < mine or (theirs == mine and (right or e.op == "pow")
                                  and e.op not in ("add", "mul"))
        return f"({inner})" if tight or (child.op == "num" and child.value < 0) else inner

    if e.op == "neg":
        return f"-{part(e.args[0])}"
    sign = {"add": " + ", "sub": " - ", "mul": "*", "div": "/", "pow": "^"}[e.op]
    return part(e.args[0]) + sign + part(e.args[1], right=True)


# ----------------------------------------------------------------------------- the law

@dataclass(frozen=True)
class Formula:
    """A parsed law over named axes: parameters, their linear/nonlinear split, derivatives.

    ``params`` are in order of first appearance in the text; ``linear`` parameters enter as
    ``Y = offset + sum_j linear_j * columns_j`` where neither ``offset`` nor the columns
    involve a linear parameter; ``nonlinear`` are the rest (exponents and the like).
    """

    text: str
    expr: Expr
    axes: tuple[str, ...]
    params: tuple[str, ...]
    linear: tuple[str, ...]
    nonlinear: tuple[str, ...]
    columns: tuple[Expr, ...]
    offset: Expr
    gradient: Mapping[str, Expr] = field(repr=False)

    def __call__(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """``Y`` at axis values and parameters given by name (numpy broadcasting)."""
        with np.errstate(all="ignore"):
            return np.asarray(evaluate(self.expr, values), float)

    def jacobian(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """``dY/dtheta``, shape ``(*broadcast, len(params))`` in ``params`` order."""
        with np.errstate(all="ignore"):
            cols = [evaluate(self.gradient[p], values) for p in self.params]
            shape = np.broadcast_shapes(*(np.shape(c) for c in cols),
                                        *(np.shape(values[a]) for a in self.axes))
            return np.stack([np.broadcast_to(c, shape) for c in cols], axis=-1)

    def basis(self, values: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Design matrix ``X`` ``(*broadcast, k)`` and ``offset`` at the given nonlinear
        parameters: ``Y = offset + X @ linear``."""
        with np.errstate(all="ignore"):
            cols = [evaluate(c, values) for c in self.columns]
            off = evaluate(self.offset, values)
            shape = np.broadcast_shapes(np.shape(off), *(np.shape(c) for c in cols),
                                        *(np.shape(values[a]) for a in self.axes))
            X = (np.stack([np.broadcast_to(c, shape) for c in cols], axis=-1) if cols
                 else np.zeros(shape + (0,)))
            return X, np.broadcast_to(off, shape)

    def default_bounds(self) -> dict[str, tuple[float, float | str]]:
        """See the module doc: ``"min_y"`` stands for the smallest observed ``Y``."""
        out: dict[str, tuple[float, float | str]] = {}
        for p in self.params:
            column = self.columns[self.linear.index(p)] if p in self.linear else None
            if column is not None and column.op == "num":
                out[p] = (0.0, "min_y") if self.nonlinear else (-INF, INF)
            else:
                out[p] = (0.0, INF)
        return out


def _linear_split(expr: Expr, params: tuple[str, ...]) -> tuple[list[str], dict[str, Expr]]:
    grads = {p: diff(expr, p) for p in params}
    linear: list[str] = []
    for p in params:
        if p in grads[p].symbols or grads[p].symbols & set(linear):
            continue
        if any(p in grads[q].symbols for q in linear):
            continue
        linear.append(p)
    return linear, grads


def parse(text: str, axes: Iterable[str]) -> Formula:
    """Parse a law formula over the bound ``axes`` (see the module doc)."""
    expr = parse_expr(text)
    axes = tuple(axes)
    order = _first_appearance(_strip_lhs(text))
    names = sorted(expr.symbols, key=lambda s: order.get(s, len(order)))
    used_axes = tuple(a for a in axes if a in expr.symbols)
    if not used_axes:
        raise ScalingError(f"law formula {text!r} uses none of the bound axes "
                           f"({', '.join(axes)}); bind a column with --axis NAME=COLUMN")
    params = tuple(n for n in names if n not in axes)
    if not params:
        raise ScalingError(f"law formula {text!r} has no parameters to fit")
    linear, grads = _linear_split(expr, params)
    columns = tuple(grads[p] for p in linear)
    offset = substitute(expr, dict.fromkeys(linear, 0.0))
    nonlinear = tuple(p for p in params if p not in linear)
    return Formula(_strip_lhs(text), expr, used_axes, params, tuple(linear), nonlinear,
                   columns, offset, grads)


def _first_appearance(body: str) -> dict[str, int]:
    """Position of each name's first occurrence in the source text."""
    try:
        tree = ast.parse(body.replace("^", "**"), mode="eval")
    except SyntaxError:  # pragma: no cover - parse_expr has already checked
        return {}
    hits = sorted((n.col_offset, n.id) for n in ast.walk(tree) if isinstance(n, ast.Name))
    out: dict[str, int] = {}
    for _, name in hits:
        out.setdefault(name, len(out))
    return out
