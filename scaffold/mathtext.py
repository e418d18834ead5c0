"""SymPy -> plain-text math in scaffold's input language, for docstrings, comments and output.

What it prints, ``parse`` reads back: functions by the names a user types, conditions with
``and``/``or``/``not``, fractions of large terms as the decimals typed. ``printing`` prints code.
"""

from __future__ import annotations

import functools
from fractions import Fraction

import sympy
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

from .functions import SafeInput, StableBlock
from .printing import large_term


@functools.cache
def _input_names() -> dict[type, str]:
    """Function class -> the name a user types for it (the first in ``parse.FUNCTIONS``)."""
    from .parse import FUNCTIONS  # parse does not import printing; imported late all the same

    names: dict[type, str] = {}
    for name, (constructor, _) in FUNCTIONS.items():
        if isinstance(constructor, type) and issubclass(constructor, sympy.Function):
            names.setdefault(constructor, name)
    return names


def input_name(expr: sympy.Basic) -> str:
    """The name a user types for ``expr``'s function (``Max``), else its SymPy class's."""
    names = _input_names()
    return next((names[c] for c in type(expr).__mro__ if c in names), type(expr).__name__)


class MathTextPrinter(StrPrinter):
    """Plain-text math in scaffold's input language: what it prints, ``parse`` reads back.

    Functions by the names a user types (``sigmoid``, ``round``, ``Max`` with the arguments in
    the order typed), other stable blocks as the code computes them (log-cosh as
    ``Abs(u) + log1p(exp(-2*Abs(u))) - log(2)``), conditions
    as ``x == 0``, ``and``/``or``/``not``; fractions of large terms as the decimals typed.
    """

    def _print_Function(self, expr: sympy.Function) -> str:
        names = _input_names()
        name = next((names[c] for c in type(expr).__mro__ if c in names), None)
        if name is None and isinstance(expr, StableBlock):
            return self._print(expr.stable_form())
        name = name or expr.func.__name__
        return f"{name}({self.stringify(expr.args, ', ')})"

    def _print_polygamma(self, expr: sympy.polygamma) -> str:
        order, arg = expr.args
        if order == 0:
            return f"digamma({self._print(arg)})"
        return self._print_Function(expr)

    def _print_SafeInput(self, expr: SafeInput) -> str:
        value, condition, safe = expr.args
        return f"where({self.stringify((condition, value, safe), ', ')})"

    def _print_LogSoftmax(self, expr: sympy.Basic) -> str:
        u = self._print(expr.args[0])
        return f"({u} - logsumexp({u}))"

    def _print_AxisSize(self, expr: sympy.Basic) -> str:
        # The length of the axis a reduction runs over (not "n": a user's symbol may be n).
        return f"len({self.stringify(expr.args, ', ')})"

    def _print_DivideNoNan(self, expr: sympy.Basic) -> str:
        return f"divide_no_nan({self.stringify(expr.args, ', ')})"

    def _print_IsExtreme(self, expr: sympy.Basic) -> str:
        return f"({self.stringify(expr.args, ' == ')})"

    def _print_EulerGamma(self, expr: sympy.Basic) -> str:
        return "(-digamma(1))"  # from digamma of integers; no name a user can type

    def _print_Relational(self, expr: sympy.core.relational.Relational) -> str:
        prec = PRECEDENCE["Relational"]
        lhs, rhs = self.parenthesize(expr.lhs, prec), self.parenthesize(expr.rhs, prec)
        return f"{lhs} {expr.rel_op} {rhs}"

    def _print_And(self, expr: sympy.And) -> str:
        return self._boolean(expr, " and ")

    def _print_Or(self, expr: sympy.Or) -> str:
        return self._boolean(expr, " or ")

    def _print_Not(self, expr: sympy.Not) -> str:
        return f"not {self._boolean_argument(expr.args[0])}"

    def _print_ITE(self, expr: sympy.ITE) -> str:
        return self._print(expr.to_nnf())

    def _boolean(self, expr: sympy.Basic, joiner: str) -> str:
        return joiner.join(self._boolean_argument(arg) for arg in expr.args)

    def _boolean_argument(self, arg: sympy.Basic) -> str:
        # Parentheses around every nested and/or/not: right for Python, and plain to read.
        text = self._print(arg)
        nested = isinstance(arg, (sympy.And, sympy.Or, sympy.Not, sympy.ITE))
        return f"({text})" if nested else text

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return _decimal(expr) if large_term(expr) else super()._print_Rational(expr)

    def _print_Mul(self, expr: sympy.Mul) -> str:
        coefficient, rest = expr.as_coeff_Mul()
        fraction = coefficient.is_Rational and not coefficient.is_Integer
        if fraction and rest != 1 and large_term(coefficient):
            prec = PRECEDENCE["Mul"]
            return f"{_decimal(coefficient)}*{self.parenthesize(rest, prec)}"
        return super()._print_Mul(expr)


def _decimal(number: sympy.Rational) -> str:
    """A fraction of large terms as the parser reads it back: the decimal typed (1.0507...).

    ``parse`` reads a decimal literal as the fraction of its shortest float text, so that is
    exact when the number is such a fraction; otherwise p/q when both are small enough to type
    (1953125/262144), else the nearest float (a product of long decimals, 17 digits kept).
    """
    text = repr(float(number))
    if Fraction(text) == Fraction(number.p, number.q) or max(abs(number.p), number.q) > 10**12:
        return text
    return f"({number.p}/{number.q})"


def math_text(expr: sympy.Basic) -> str:
    """Plain-text math for docstrings and comments, in the input language: 'x*sigmoid(x)'."""
    return MathTextPrinter({"order": "none"}).doprint(expr)
