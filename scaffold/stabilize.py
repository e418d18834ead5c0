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
from .reductions import (
    AxisSize,
    DivideNoNan,
    LogSumExp,
    Norm,
    ReduceMean,
    ReduceSum,
    Reduction,
)

Rule = Callable[[sympy.Basic], sympy.Basic | None]


def stabilize(
    expr: sympy.Expr, rules: tuple[tuple[str, Rule], ...] = ()
) -> tuple[sympy.Expr, tuple[str, ...]]:
    """Return the stable form of ``expr`` and the rewrites applied, in a stable order.

    ``rules`` come after ``RULES``: rewrites that are not always better, tried when
    ``numeric`` finds that the plain stable form loses precision (see ``ON_DEMAND``).
    """
    applied: set[str] = set()
    rules = RULES + tuple(rules)

    def visit(node: sympy.Basic) -> sympy.Basic:
        if not node.args or isinstance(node, sympy.Symbol) or not node.free_symbols:
            return node  # constants: nothing to stabilize, Python computes them once
        args = tuple(visit(arg) for arg in node.args)
        if args != node.args:
            node = node.func(*args)
        for name, rule in rules:
            rewritten = rule(node)
            if rewritten is not None and not _constant_block(rewritten):
                applied.add(name)
                if rewritten == node or rewritten.has(node):
                    return rewritten  # a rewrite that keeps the node as a branch: done
                return visit(rewritten)
        return node

    result = visit(expr)
    return result, tuple(name for name, _ in rules if name in applied)


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
    """1/(1+exp(v))**n -> sigmoid(-v)**n."""
    if isinstance(node, sympy.Pow) and node.exp.is_Integer and node.exp < 0:
        rest = _one_plus(node.base)
        if rest is not None and _exp_argument(rest) is not None:
            return Sigmoid(-_exp_argument(rest)) ** -node.exp
    return None


def _log_sigmoid(node: sympy.Basic) -> sympy.Basic | None:
    """log(sigmoid(u)) -> -softplus(-u): log of a value that underflows to 0 is -inf."""
    if isinstance(node, sympy.log) and isinstance(node.args[0], Sigmoid):
        return -Softplus(-node.args[0].args[0])
    return None


def _asinh(node: sympy.Basic) -> sympy.Basic | None:
    """log(u + sqrt(u**2 + 1)) -> asinh(u): cancels for u < 0, overflows for large |u|."""
    if isinstance(node, sympy.log) and isinstance(node.args[0], sympy.Add):
        for term in node.args[0].args:
            if isinstance(term, sympy.Pow) and term.exp == sympy.S.Half:
                u = node.args[0] - term
                if sympy.expand(term.base - u**2) == 1:
                    return sympy.asinh(u)
    return None


def _rationalized(node: sympy.Basic) -> sympy.Basic | None:
    """A + c*sqrt(B) -> (A**2 - c**2*B)/(A - c*sqrt(B)) where A and c*sqrt(B) differ in sign.

    x + sqrt(x**2 + 4) at x = -1000 is a difference of nearly equal numbers (float32 gives
    0.001007 for 0.000999999); the rationalised form divides instead. Kept where the signs
    agree, so each branch is used where it does not cancel.
    """
    if not isinstance(node, sympy.Add):
        return None
    for term in node.args:
        c, root = term.as_coeff_Mul()
        if not (isinstance(root, sympy.Pow) and root.exp == sympy.S.Half and root.free_symbols):
            continue
        rest = node - term
        if not rest.free_symbols:
            continue
        numerator = sympy.expand(rest**2 - c**2 * root.base)
        if sympy.count_ops(numerator) > sympy.count_ops(sympy.expand(rest**2)):
            continue  # nothing cancels symbolically: no gain
        same_sign = rest >= 0 if c > 0 else rest <= 0
        return sympy.Piecewise((node, same_sign), (numerator / (rest - term), True))
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


def _constant_minus(node: sympy.Basic, matches) -> tuple | None:
    """For c + ... - c*g(u) + ...: (c, g(u), the other terms), where ``matches(g(u))``."""
    if not isinstance(node, sympy.Add):
        return None
    constant, rest = node.as_coeff_Add()
    if constant == 0:
        return None
    terms = sympy.Add.make_args(rest)
    for i, term in enumerate(terms):
        coefficient, factor = term.as_coeff_Mul()
        if coefficient == -constant and matches(factor):
            return constant, factor, terms[:i] + terms[i + 1 :]
    return None


def _expm1(node: sympy.Basic) -> sympy.Basic | None:
    """c*exp(u) - c -> c*expm1(u) (SymPy distributes c*(exp(u) - 1) into that form)."""
    found = _constant_minus(node, lambda f: _exp_argument(f) is not None and f.free_symbols)
    if found is None:
        return None
    constant, factor, others = found
    return sympy.Add(-constant * Expm1(_exp_argument(factor)), *others)


def _sum_exp(node: sympy.Basic) -> sympy.Basic | None:
    """sum(exp(u)) -> exp(logsumexp(u)).

    So log(sum(exp(u))) becomes logsumexp(u), and exp(u)/sum(exp(u)) becomes
    exp(u - logsumexp(u)), which is at most 1 (softmax).
    """
    if isinstance(node, ReduceSum) and _exp_argument(node.args[0]) is not None:
        return sympy.exp(LogSumExp(_exp_argument(node.args[0])))
    return None


def _mean_exp(node: sympy.Basic) -> sympy.Basic | None:
    """mean(exp(u)) -> exp(logsumexp(u) - log(len(u))).

    So log(mean(exp(u))) (a smooth max) becomes logsumexp(u) - log(len(u)), finite at a
    row holding 1000.
    """
    if isinstance(node, ReduceMean) and _exp_argument(node.args[0]) is not None:
        u = _exp_argument(node.args[0])
        size = AxisSize(*sorted(u.free_symbols, key=lambda s: s.name))
        return sympy.exp(LogSumExp(u) - sympy.log(size))
    return None


def _log_of_exp(node: sympy.Basic) -> sympy.Basic | None:
    """log(exp(v)*c) -> v + log(c) where v holds a reduction (log(exp(L)/len(x)))."""
    if not (isinstance(node, sympy.log) and isinstance(node.args[0], sympy.Mul)):
        return None
    factors = node.args[0].args
    for index, factor in enumerate(factors):
        if isinstance(factor, sympy.exp) and factor.args[0].atoms(Reduction):
            rest = sympy.Mul(*(f for i, f in enumerate(factors) if i != index))
            return factor.args[0] + sympy.log(rest)
    return None


def _exp_product(node: sympy.Basic) -> sympy.Basic | None:
    """exp(a)*exp(b) -> exp(a+b) where one of them holds a reduction.

    exp(u)*exp(-L) is inf*0 at a row holding 1000; exp(u - L) is not.
    """
    if not isinstance(node, sympy.Mul):
        return None
    exps = [f for f in node.args if isinstance(f, sympy.exp)]
    if len(exps) < 2 or not any(f.atoms(Reduction) for f in exps):
        return None
    rest = [f for f in node.args if not isinstance(f, sympy.exp)]
    return sympy.Mul(sympy.exp(sympy.Add(*(f.args[0] for f in exps))), *rest)


def _norm(node: sympy.Basic) -> sympy.Basic | None:
    """sqrt(sum(u**2)) -> norm(u), whose gradient at u = 0 is 0 (not 0/0)."""
    if not (isinstance(node, sympy.Pow) and node.exp in (sympy.S.Half, -sympy.S.Half)):
        return None
    base = node.base
    if isinstance(base, (ReduceSum, ReduceMean)) and isinstance(base.args[0], sympy.Pow):
        u, power = base.args[0].as_base_exp()
        if power != 2:
            return None
        root = Norm(u)  # sqrt(mean(u**2)) = norm(u)/sqrt(len(u))
        if isinstance(base, ReduceMean):
            root = root / sympy.sqrt(AxisSize(*sorted(u.free_symbols, key=lambda s: s.name)))
        return root if node.exp > 0 else 1 / root
    return None


def _normalized(node: sympy.Basic) -> sympy.Basic | None:
    """u*c/norm(u) -> divide_no_nan(u*c, norm(u)): 0 at u = 0, as tf.math.l2_normalize."""
    if not isinstance(node, sympy.Mul):
        return None
    for factor in node.args:
        if isinstance(factor, sympy.Pow) and factor.exp == -1 and isinstance(factor.base, Norm):
            (u,) = factor.base.args
            if u in node.args:
                others = [f for f in node.args if f is not factor]
                return DivideNoNan(sympy.Mul(*others), factor.base)
    return None


def _one_minus_sigmoid(node: sympy.Basic) -> sympy.Basic | None:
    """Rewrite 1 - sigmoid(u) (times any constant) as sigmoid(-u).

    1 - sigmoid(30) is 0 in float32, sigmoid(-30) is not; and log(1 - sigmoid(u)) becomes
    -softplus(u) (binary cross-entropy from logits).
    """
    found = _constant_minus(node, lambda f: isinstance(f, Sigmoid))
    if found is None:
        return None
    constant, factor, others = found
    return sympy.Add(constant * Sigmoid(-factor.args[0]), *others)


#: Tried in order at every node, children first.
RULES: tuple[tuple[str, Rule], ...] = (
    ("log(1+exp(u)) -> softplus(u)", _softplus),
    ("log(exp(a)+exp(b)) -> logaddexp(a, b)", _log_add_exp),
    ("log(cosh(u)) -> logcosh(u)", _log_cosh),
    ("log(1+u) -> log1p(u)", _log1p),
    ("1/(1+exp(-u)) -> sigmoid(u)", _sigmoid),
    ("1-sigmoid(u) -> sigmoid(-u)", _one_minus_sigmoid),
    ("log(sigmoid(u)) -> -softplus(-u)", _log_sigmoid),
    ("log(u+sqrt(u**2+1)) -> asinh(u)", _asinh),
    ("exp(u)/(1+exp(u)) -> sigmoid(u)", _exp_times_sigmoid),
    ("exp(u)-1 -> expm1(u)", _expm1),
    ("sum(exp(u)) -> exp(logsumexp(u))", _sum_exp),
    ("mean(exp(u)) -> exp(logsumexp(u) - log(len(u)))", _mean_exp),
    ("log(exp(a)*b) -> a + log(b)", _log_of_exp),
    ("exp(a)*exp(b) -> exp(a+b)", _exp_product),
    ("sqrt(sum(u**2)) -> norm(u), sqrt(mean(u**2)) -> norm(u)/sqrt(len(u))", _norm),
    ("u/norm(u) -> u/norm(u), 0 where u = 0", _normalized),
)

#: Rewrites tried one at a time when the code run in float32 loses precision (``numeric``):
#: each trades a few operations (and a conditional) for accuracy somewhere.
ON_DEMAND: tuple[tuple[str, Rule], ...] = (
    ("a+sqrt(b) -> (a**2-b)/(a-sqrt(b)) where they cancel", _rationalized),
)
