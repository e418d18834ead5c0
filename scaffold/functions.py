"""SymPy functions scaffold adds: TensorFlow's conventions and numerically stable blocks.

Non-smooth: SymPy leaves the derivative of ``floor`` unevaluated and has no ``round`` expression
at all; TensorFlow registers a zero gradient for floor, ceil and round. These subclasses make
SymPy differentiate them the way TensorFlow does, and print (through the class hierarchy) as
their SymPy parents do.

Stable: ``Sigmoid``, ``Softplus``, ``Log1p``, ``Expm1``, ``LogCosh``, ``LogAddExp`` replace
formulas that overflow or cancel in floating point (see ``stabilize``); their derivatives are
written in terms of stable blocks too. With constant arguments they evaluate to numbers through
their defining formulas, so a constant block prints as a Python number.
"""

from __future__ import annotations

import mpmath
import sympy
from sympy.core.evalf import prec_to_dps
from sympy.core.logic import fuzzy_and


class Floor(sympy.floor):
    """floor(u), whose derivative is 0 (TensorFlow's registered gradient)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return 0: the derivative TensorFlow registers."""
        return sympy.S.Zero


class Ceiling(sympy.ceiling):
    """ceiling(u), whose derivative is 0 (TensorFlow's registered gradient)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return 0: the derivative TensorFlow registers."""
        return sympy.S.Zero


class Round(sympy.Function):
    """round(u) to the nearest integer, halves to even (``tf.math.round``); derivative 0."""

    @classmethod
    def eval(cls, arg: sympy.Expr) -> sympy.Expr | None:
        """Evaluate numbers, halves to even as tf.math.round does."""
        if arg.is_Rational:
            return sympy.Integer(round(sympy.Rational(arg)))  # Fraction rounding: halves to even
        if arg.is_number and arg.is_real:
            # SymPy's floor decides exactly (round(pi) = 3); a tie is a half-integer.
            shifted = arg + sympy.S.Half
            nearest = sympy.floor(shifted)
            if nearest.is_Integer:
                tie = (shifted - nearest).is_zero
                return nearest - 1 if tie and nearest % 2 else nearest
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return 0: the derivative TensorFlow registers."""
        return sympy.S.Zero

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


def relu(u: sympy.Expr) -> sympy.Expr:
    """Return Max(u, 0), whose derivative at u = 0 is 0, as tf.nn.relu's."""
    return sympy.Max(u, 0)


# Numerically stable building blocks. Each knows its derivative in terms of itself (or another
# stable block), so derivatives reuse forward values and never form inf/inf or inf*0.
class StableBlock(sympy.Function):
    """A stable form of ``definition()``: the same number, computed without overflow."""

    def definition(self) -> sympy.Expr:
        """The plain formula this block stands for."""
        raise NotImplementedError

    def _eval_evalf(self, prec: int) -> sympy.Expr | None:
        # Constant blocks (sigmoid(2), from a formula such as x*sigmoid(2)) become numbers.
        if not self.is_number:
            return None
        return self.definition().evalf(prec_to_dps(prec))

    def _eval_is_real(self) -> bool | None:
        return fuzzy_and(arg.is_real for arg in self.args)


class Sigmoid(StableBlock):
    """1/(1+exp(-u)); derivative sigmoid(u)*sigmoid(-u), which does not cancel."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return sigmoid(u) * sigmoid(-u)."""
        return Sigmoid(self.args[0]) * Sigmoid(-self.args[0])

    def definition(self) -> sympy.Expr:
        """1/(1+exp(-u))."""
        return 1 / (1 + sympy.exp(-self.args[0]))

    def _eval_rewrite_as_exp(self, arg: sympy.Expr, **kwargs) -> sympy.Expr:
        return 1 / (1 + sympy.exp(-arg))


class Softplus(StableBlock):
    """log(1+exp(u)), computed as max(u, 0) + log1p(exp(-|u|)); derivative sigmoid(u)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return sigmoid(u)."""
        return Sigmoid(self.args[0])

    def definition(self) -> sympy.Expr:
        """log(1+exp(u))."""
        return sympy.log(1 + sympy.exp(self.args[0]))

    def _eval_rewrite_as_exp(self, arg: sympy.Expr, **kwargs) -> sympy.Expr:
        return sympy.log(1 + sympy.exp(arg))


class Log1p(StableBlock):
    """log(1+u), accurate for small u; derivative 1/(1+u)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return 1/(1+u)."""
        return 1 / (1 + self.args[0])

    def definition(self) -> sympy.Expr:
        """log(1+u)."""
        return sympy.log(1 + self.args[0])

    def _eval_is_real(self) -> bool | None:
        return (1 + self.args[0]).is_positive  # real only above -1

    def _eval_rewrite_as_log(self, arg: sympy.Expr, **kwargs) -> sympy.Expr:
        return sympy.log(1 + arg)


class Expm1(StableBlock):
    """exp(u)-1, accurate for small u; derivative exp(u)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return exp(u)."""
        return sympy.exp(self.args[0])

    def definition(self) -> sympy.Expr:
        """exp(u)-1."""
        return sympy.exp(self.args[0]) - 1

    def _eval_rewrite_as_exp(self, arg: sympy.Expr, **kwargs) -> sympy.Expr:
        return sympy.exp(arg) - 1


class LogCosh(StableBlock):
    """log(cosh(u)), computed as |u| + log1p(exp(-2|u|)) - log(2); derivative tanh(u)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return tanh(u)."""
        return sympy.tanh(self.args[0])

    def definition(self) -> sympy.Expr:
        """log(cosh(u))."""
        return sympy.log(sympy.cosh(self.args[0]))

    def _eval_rewrite_as_cosh(self, arg: sympy.Expr, **kwargs) -> sympy.Expr:
        return sympy.log(sympy.cosh(arg))


class LogAddExp(StableBlock):
    """log(exp(a)+exp(b)), computed as max(a, b) + log1p(exp(-|a-b|)); the same number."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return sigmoid(a-b) for a, sigmoid(b-a) for b."""
        a, b = self.args
        return Sigmoid(a - b) if argindex == 1 else Sigmoid(b - a)

    def definition(self) -> sympy.Expr:
        """log(exp(a)+exp(b))."""
        return sympy.log(sympy.exp(self.args[0]) + sympy.exp(self.args[1]))

    def _eval_rewrite_as_exp(self, a: sympy.Expr, b: sympy.Expr, **kwargs) -> sympy.Expr:
        return sympy.log(sympy.exp(a) + sympy.exp(b))


STABLE_FUNCTIONS = (Sigmoid, Softplus, Log1p, Expm1, LogCosh, LogAddExp)


#: Names lambdify needs for evaluating these with mpmath (reference values), from their
#: defining formulas at 40 digits, independent of the stable forms the generated code uses.
MPMATH_NAMESPACE = {
    "Floor": mpmath.floor,
    "Ceiling": mpmath.ceil,
    "Round": mpmath.nint,
    "Sigmoid": lambda u: 1 / (1 + mpmath.exp(-u)),
    "Softplus": lambda u: mpmath.log(1 + mpmath.exp(u)),
    "Log1p": mpmath.log1p,
    "Expm1": mpmath.expm1,
    "LogCosh": lambda u: mpmath.log(mpmath.cosh(u)),
    "LogAddExp": lambda a, b: mpmath.log(mpmath.exp(a) + mpmath.exp(b)),
}
