"""Stable rewrites: formulas that overflow or cancel in floating point -> stable building blocks.

Takes a SymPy expression; gives an equal expression in which ``log(1+exp(u))`` is
``Softplus(u)``, ``1/(1+exp(-u))`` is ``Sigmoid(u)`` (also ``exp(u)/(1+exp(u))``), ``log(1+u)`` is
``Log1p(u)``, ``exp(u)-1`` is ``Expm1(u)``, ``log(cosh(u))`` is ``LogCosh(u)`` and
``log(exp(a)+exp(b))`` is ``LogAddExp(a, b)``, plus the names of the rewrites applied. Applied
before differentiation, so forward and backward are both stable: the blocks' derivatives are
written in stable blocks (softplus' = sigmoid, sigmoid' = sigmoid(u)*sigmoid(-u)). Faithfully
printing SymPy's derivative of the plain formula reproduces TensorFlow's own NaN at
softplus'(100) in float32; reusing ``e = exp(x)`` as ``e/(1+e)`` keeps it.

Constants are left alone: ``log(1+exp(2))`` is a number that Python computes once, and no rule
makes a block of constants only (``exp(2) - 1`` inside ``x + exp(2) - 1`` stays as it is).
"""

from __future__ import annotations

from collections.abc import Callable

import sympy

from .functions import Expm1, Log1p, LogAddExp, LogCosh, Sigmoid, Softplus, StableBlock

Rule = Callable[[sympy.Basic], sympy.Basic | None]


def stabilize(expr: sympy.Expr) -> tuple[sympy.Expr, tuple[str, ...]]:
    """Return the stable form of ``expr`` and the rewrites applied, in a stable order."""
    applied: set[str] = set()

    def visit(node: sympy.Basic) -> sympy.Basic:
        if not node.args or isinstance(node, sympy.Symbol) or not node.free_symbols:
            return node  # constants: nothing to stabilize, Python computes them once
        args = tuple(visit(arg) for arg in node.args)
        if args != node.args:
            node = node.func(*args)
        for name, rule in RULES:
            rewritten = rule(node)
            if rewritten is not None and not _constant_block(rewritten):
                applied.add(name)
                return visit(rewritten) if rewritten != node else rewritten
        return node

    result = visit(expr)
    return result, tuple(name for name, _ in RULES if name in applied)


def _constant_block(expr: sympy.Basic) -> bool:
    """True when ``expr`` holds a stable block of constants only (a number, not a function)."""
    return any(
        isinstance(node, StableBlock) and not node.free_symbols
        for node in sympy.preorder_traversal(expr)
    )


def _exp_argument(term: sympy.Basic) -> sympy.Expr | None:
    """``u`` if ``term`` is exp(u), else None."""
    return term.args[0] if isinstance(term, sympy.exp) else None


def _one_plus(node: sympy.Basic) -> sympy.Expr | None:
    """``rest`` if ``node`` is 1 + rest (an Add with the constant term 1), else None."""
    if isinstance(node, sympy.Add):
        constant, rest = node.as_coeff_Add()
        if constant == 1 and rest != 0:
            return rest
    return None


def _softplus(node: sympy.Basic) -> sympy.Basic | None:
    if isinstance(node, sympy.log) and len(node.args) == 1:
        rest = _one_plus(node.args[0])
        if rest is not None and _exp_argument(rest) is not None:
            return Softplus(_exp_argument(rest))
    return None


def _log_add_exp(node: sympy.Basic) -> sympy.Basic | None:
    if isinstance(node, sympy.log) and isinstance(node.args[0], sympy.Add):
        terms = node.args[0].args
        if len(terms) == 2 and all(_exp_argument(t) is not None for t in terms):
            return LogAddExp(*(_exp_argument(t) for t in terms))
    return None


def _log1p(node: sympy.Basic) -> sympy.Basic | None:
    if isinstance(node, sympy.log) and len(node.args) == 1:
        rest = _one_plus(node.args[0])
        if rest is not None:
            return Log1p(rest)
    return None


def _log_cosh(node: sympy.Basic) -> sympy.Basic | None:
    if isinstance(node, sympy.log) and isinstance(node.args[0], sympy.cosh):
        return LogCosh(node.args[0].args[0])
    return None


def _sigmoid(node: sympy.Basic) -> sympy.Basic | None:
    """1/(1+exp(v)) -> sigmoid(-v)."""
    if isinstance(node, sympy.Pow) and node.exp == -1:
        rest = _one_plus(node.base)
        if rest is not None and _exp_argument(rest) is not None:
            return Sigmoid(-_exp_argument(rest))
    return None


def _exp_times_sigmoid(node: sympy.Basic) -> sympy.Basic | None:
    """exp(u) * sigmoid(-u) = exp(u)/(1+exp(u)) -> sigmoid(u)."""
    if not isinstance(node, sympy.Mul):
        return None
    factors = list(node.args)
    for i, factor in enumerate(factors):
        u = _exp_argument(factor)
        if u is None:
            continue
        for j, other in enumerate(factors):
            if isinstance(other, Sigmoid) and sympy.expand(other.args[0] + u) == 0:
                rest = [f for k, f in enumerate(factors) if k not in (i, j)]
                return sympy.Mul(Sigmoid(u), *rest)
    return None


def _expm1(node: sympy.Basic) -> sympy.Basic | None:
    """c*exp(u) - c -> c*expm1(u) (SymPy distributes c*(exp(u) - 1) into that form)."""
    if isinstance(node, sympy.Add):
        constant, rest = node.as_coeff_Add()
        if constant == 0:
            return None
        terms = sympy.Add.make_args(rest)
        for i, term in enumerate(terms):
            coefficient, factor = term.as_coeff_Mul()
            exponential = _exp_argument(factor) is not None and factor.free_symbols
            if coefficient == -constant and exponential:
                others = terms[:i] + terms[i + 1 :]
                return sympy.Add(coefficient * Expm1(_exp_argument(factor)), *others)
    return None


#: Tried in order at every node, children first.
RULES: tuple[tuple[str, Rule], ...] = (
    ("log(1+exp(u)) -> softplus(u)", _softplus),
    ("log(exp(a)+exp(b)) -> logaddexp(a, b)", _log_add_exp),
    ("log(cosh(u)) -> logcosh(u)", _log_cosh),
    ("log(1+u) -> log1p(u)", _log1p),
    ("1/(1+exp(-u)) -> sigmoid(u)", _sigmoid),
    ("exp(u)/(1+exp(u)) -> sigmoid(u)", _exp_times_sigmoid),
    ("exp(u)-1 -> expm1(u)", _expm1),
)
