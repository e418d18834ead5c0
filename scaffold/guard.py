"""NaN-safe conditionals in the backward pass: the double-where.

Takes a backward expression and the layer's variables; gives an equal expression in which each
branch of a conditional that is not finite where it is not selected reads its variables through
an inner where: ``tf.where(x > 0, dy / tf.where(x > 0, x, 1), 0)``, not
``tf.where(x > 0, dy / x, 0)``. The values are the same. The difference is in autodiff of the
backward pass (a second derivative): ``tf.where`` sends a zero gradient to the branch it did
not select, and zero times that branch's infinite or NaN derivative is NaN (tensorflow#38349).
The inner where gives the branch a safe input there instead: a point, found by sampling with
mpmath as ``reference`` does, where the branch's own condition holds and the branch and its
derivatives are finite. When the branch's region is one bound of one input and the branch is
finite at the bound, a clamp does the same with one op: ``exp(min(x, 0))`` for exp(x) where
x <= 0 (ELU). Branches that are finite everywhere (``x**2``, constants) stay as they are, so
most conditionals cost nothing extra.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import mpmath
import sympy

from .functions import MPMATH_NAMESPACE, Maximum, Minimum, SafeInput, real_derivative
from .reductions import has_reductions

DIGITS = 30
#: Where a branch must be finite when it is not selected: a grid through 0, the integers and
#: halves, and extremes where exp overflows float32 (its derivative would be inf there).
SAMPLES = tuple(sympy.Rational(k, 2) for k in range(-8, 9)) + tuple(
    sympy.Integer(v) for v in (-1000, -100, -30, 30, 100, 1000)
)
#: Safe inputs, in order of preference: plain numbers read best in the generated code.
SAFE_VALUES = tuple(
    sympy.Rational(v)
    for v in ("1", "-1", "2", "-2", "1/2", "-1/2", "3/8", "-5/8", "11/8", "-15/8", "4", "-4")
)
LIMIT = 3.4028234663852886e38  # float32's largest value: beyond it the branch overflows


def guard(
    expr: sympy.Expr, inputs: tuple[sympy.Symbol, ...], weights: dict[sympy.Symbol, sympy.Expr]
) -> sympy.Expr:
    """``expr`` with the double-where around every branch that needs it (see the module).

    ``weights`` maps each weight to its initial value: branches are sampled there, and a weight
    in a guarded branch takes that value where the branch is not selected.
    """
    variables = (*inputs, *weights)
    if not expr.has(sympy.Piecewise):
        return expr

    def visit(node: sympy.Basic) -> sympy.Basic:
        if not node.args or isinstance(node, sympy.Symbol):
            return node
        args = tuple(visit(arg) for arg in node.args)
        if isinstance(node, sympy.Piecewise):
            return _guard_piecewise(args, inputs, weights, variables)
        return node.func(*args) if args != node.args else node

    return visit(expr)


def _guard_piecewise(args, inputs, weights, variables) -> sympy.Expr:
    pieces, earlier = [], []
    for value, condition in args:
        selected = sympy.And(*(sympy.Not(c) for c in earlier), condition)
        earlier.append(condition)
        used = [v for v in variables if v in value.free_symbols]
        # A branch or condition holding a reduction cannot be sampled elementwise: left as is
        # (the generated test's second-order check runs through it at the test rows).
        row = has_reductions(value) or has_reductions(selected)
        if (
            used
            and not row
            and selected is not sympy.true
            and _unsafe(value, selected, inputs, weights)
        ):
            value = _clamped(value, selected, used, inputs, weights) or _double_where(
                value, selected, used, inputs, weights
            )
        pieces.append((value, condition))
    return sympy.Piecewise(*pieces)


_CLAMPS = {"<": Minimum, "<=": Minimum, ">": Maximum, ">=": Maximum}


def _clamped(value, selected, used, inputs, weights) -> sympy.Expr | None:
    """The branch with its input clamped to its region, if that is one bound of one variable.

    exp(x) selected where x <= 0 becomes exp(min(x, 0)): the same values where it is selected,
    finite elsewhere, one elementwise op instead of a comparison and a where. Only when the
    branch and its derivatives are finite at the bound itself (not 1/x at x = 0).
    """
    if not isinstance(selected, sympy.core.relational.Relational) or selected.rel_op not in _CLAMPS:
        return None
    variable, bound, relation = selected.lhs, selected.rhs, selected
    if variable.is_number:
        variable, bound, relation = bound, variable, selected.reversed
    if used != [variable] or not bound.is_number:
        return None  # the branch reads other variables too: the double-where guards them all
    funcs = _functions(value, used, (*inputs, *weights))
    with mpmath.workdps(DIGITS):
        # The other inputs do not appear in the branch: any value does.
        at_bound = [mpmath.mpf(float(bound)) if v == variable else mpmath.mpf(0) for v in inputs]
        if not _finite(funcs, at_bound + [mpmath.mpf(float(w)) for w in weights.values()]):
            return None
    return value.xreplace({variable: _CLAMPS[relation.rel_op](variable, bound)})


def _double_where(value, selected, used, inputs, weights) -> sympy.Expr:
    """The branch reading each of its variables through where(selected, v, safe value)."""
    safe = _safe_point(value, selected, used, inputs, weights)
    if safe is None:
        return value
    return value.xreplace({v: SafeInput(v, selected, safe[v]) for v in used})


def _functions(value: sympy.Expr, used, variables) -> list:
    """The branch and its first derivatives, evaluable with mpmath."""
    exprs = [value] + [real_derivative(value, v) for v in used]
    exprs = [e.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero) for e in exprs]
    modules = [MPMATH_NAMESPACE, "mpmath"]
    return [sympy.lambdify(variables, e, modules=modules) for e in exprs]


def _unsafe(value, selected, inputs, weights) -> bool:
    """True when the branch or a derivative is not finite somewhere it is not selected."""
    variables = (*inputs, *weights)
    used = [v for v in variables if v in value.free_symbols]
    funcs = _functions(value, used, variables)
    is_selected = sympy.lambdify(variables, selected, modules=[MPMATH_NAMESPACE, "mpmath"])
    with mpmath.workdps(DIGITS):
        for point in _points(SAMPLES, len(inputs)):
            arguments = _arguments(point, weights)
            if _holds(is_selected, arguments) is False and not _finite(funcs, arguments):
                return True
    return False


def _safe_point(value, selected, used, inputs, weights) -> dict | None:
    """Values for the branch's variables where it is selected and finite with its derivatives.

    None if no sample is (the branch then stays as it is: its first derivative is right, only
    autodiff through it may be NaN where it is not selected).
    """
    variables = (*inputs, *weights)
    funcs = _functions(value, used, variables)
    is_selected = sympy.lambdify(variables, selected, modules=[MPMATH_NAMESPACE, "mpmath"])
    with mpmath.workdps(DIGITS):
        for point in _points(SAFE_VALUES + SAMPLES, len(inputs)):
            arguments = _arguments(point, weights)
            if _holds(is_selected, arguments) and _finite(funcs, arguments):
                safe = dict(zip(inputs, point, strict=True))
                safe.update(weights)
                return safe
    return None


def _points(values: tuple, n_inputs: int) -> Iterator[tuple]:
    """All inputs equal first, then inputs apart (input i offset by 3 i in ``values``)."""
    for value in values:
        yield (value,) * n_inputs
    if n_inputs > 1:
        for j in range(len(values)):
            yield tuple(values[(j + 3 * i) % len(values)] for i in range(n_inputs))


def _arguments(point: tuple, weights: dict) -> list:
    """The inputs at ``point`` and the weights (as the layer holds them), in mpmath."""
    return [mpmath.mpf(p.p) / p.q for p in point] + [mpmath.mpf(float(w)) for w in weights.values()]


def _holds(condition, arguments) -> bool | None:
    try:
        return bool(condition(*arguments))
    except (ValueError, TypeError, ArithmeticError):
        return None


def _finite(funcs, arguments) -> bool:
    for func in funcs:
        try:
            value = func(*arguments)
        except (ValueError, TypeError, ArithmeticError):
            return False
        if isinstance(value, mpmath.mpc):
            if abs(value.imag) > abs(value) * mpmath.mpf(10) ** (5 - DIGITS):
                return False
            value = value.real
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            return False
        if not math.isfinite(number) or abs(number) > LIMIT:
            return False
    return True
