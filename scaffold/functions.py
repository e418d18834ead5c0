"""SymPy functions with TensorFlow's conventions, for the non-smooth functions users may type.

SymPy leaves the derivative of ``floor`` unevaluated and has no ``round`` expression at all;
TensorFlow registers a zero gradient for floor, ceil and round. These subclasses make SymPy
differentiate them the way TensorFlow does, so the derivative is closed-form code, and print
(through the class hierarchy) as their SymPy parents do.
"""

from __future__ import annotations

import mpmath
import sympy


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
        """Evaluate rational arguments, halves to even as tf.math.round does."""
        if arg.is_Rational:
            return sympy.Integer(round(sympy.Rational(arg)))  # Fraction rounding: halves to even
        return None

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return 0: the derivative TensorFlow registers."""
        return sympy.S.Zero

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


#: Names lambdify needs for evaluating these with mpmath (reference values).
MPMATH_NAMESPACE = {"Floor": mpmath.floor, "Ceiling": mpmath.ceil, "Round": mpmath.nint}
