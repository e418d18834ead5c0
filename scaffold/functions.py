"""SymPy functions scaffold adds: TensorFlow's conventions and numerically stable blocks.

Non-smooth: SymPy leaves the derivative of ``floor`` unevaluated and has no ``round`` expression
at all; TensorFlow registers a zero gradient for floor, ceil and round. These subclasses make
SymPy differentiate them the way TensorFlow does, and print (through the class hierarchy) as
their SymPy parents do.

Ties: ``Maximum`` and ``Minimum`` are Max and Min that keep their arguments in the order typed
(SymPy's own sort them) and differentiate by the tie rule: exactly one argument takes the
gradient, a constant against anything else, otherwise the first argument typed, as
``tf.maximum``/``tf.minimum`` do (x gets it where x >= y). ``relu(u)`` is ``Maximum(u, 0)``.

Stable: ``Sigmoid``, ``Softplus``, ``Log1p``, ``Expm1``, ``LogCosh``, ``LogAddExp`` replace
formulas that overflow or cancel in floating point (see ``stabilize``); their derivatives are
written in terms of stable blocks too. With constant arguments they evaluate to numbers through
their defining formulas, so a constant block prints as a Python number.

``SafeInput(v, c, s)`` is v where the condition c holds and the number s elsewhere: the inner
``tf.where`` of a double-where (see ``guard``).
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


class _Extremum(sympy.Function):
    """Max or Min over arguments kept in the order typed, differentiated by the tie rule."""

    _numbers = staticmethod(sympy.Max)  # the extremum of numbers

    @staticmethod
    def _beats(a: sympy.Expr, b: sympy.Expr, strict: bool) -> sympy.Basic:
        raise NotImplementedError

    @classmethod
    def eval(cls, *args: sympy.Expr) -> sympy.Expr | None:
        """Numbers evaluate; repeated arguments and all numbers but the extremum drop out."""
        numbers = [arg for arg in args if arg.is_number]
        if len(numbers) == len(args):
            return cls._numbers(*args)
        kept = list(dict.fromkeys(args))  # first occurrence, order kept
        if len(numbers) > 1:
            extremum = cls._numbers(*numbers)
            first = kept.index(next(arg for arg in kept if arg.is_number))
            kept = [arg for arg in kept if not arg.is_number]
            kept.insert(first, extremum)
        if len(kept) == 1:
            return kept[0]
        return cls(*kept) if tuple(kept) != args else None

    def _eval_is_real(self) -> bool | None:
        return fuzzy_and(arg.is_real for arg in self.args)

    def winning_conditions(self) -> list[tuple[sympy.Expr, sympy.Basic]]:
        """``(argument, where it takes the gradient)`` pairs; exactly one condition holds.

        Priority at a tie: a constant first (relu'(0) = 0, as tf.nn.relu), then the arguments in
        the order typed (tf.maximum(x, y) gives the gradient to x where x >= y). An argument wins
        where it beats every argument of higher priority strictly and every other one or ties.
        """
        order = sorted(range(len(self.args)), key=lambda i: (not self.args[i].is_number, i))
        ranked = [self.args[i] for i in order]
        pairs = []
        for rank, arg in enumerate(ranked[:-1]):
            condition = sympy.And(
                *(self._beats(arg, other, strict=True) for other in ranked[:rank]),
                *(self._beats(arg, other, strict=False) for other in ranked[rank + 1 :]),
            )
            pairs.append((arg, condition))
        pairs.append((ranked[-1], sympy.true))
        return pairs

    def _eval_derivative(self, symbol: sympy.Symbol) -> sympy.Expr:
        # One branch per argument: the gradient goes to the winner only, never split or lost.
        return sympy.Piecewise(
            *((arg.diff(symbol), condition) for arg, condition in self.winning_conditions())
        )

    def _latex(self, printer, exp=None) -> str:
        name = "max" if isinstance(self, Maximum) else "min"
        text = rf"\{name}\left({', '.join(printer._print(arg) for arg in self.args)}\right)"
        return text if exp is None else rf"\left({text}\right)^{{{exp}}}"


class Maximum(_Extremum):
    """Max(a, b, ...) with the arguments in the order typed; see ``winning_conditions``."""

    _numbers = staticmethod(sympy.Max)

    @staticmethod
    def _beats(a: sympy.Expr, b: sympy.Expr, strict: bool) -> sympy.Basic:
        if a.is_number and not b.is_number:
            return sympy.Lt(b, a) if strict else sympy.Le(b, a)
        return sympy.Gt(a, b) if strict else sympy.Ge(a, b)


class Minimum(_Extremum):
    """Min(a, b, ...) with the arguments in the order typed; see ``winning_conditions``."""

    _numbers = staticmethod(sympy.Min)

    @staticmethod
    def _beats(a: sympy.Expr, b: sympy.Expr, strict: bool) -> sympy.Basic:
        if a.is_number and not b.is_number:
            return sympy.Gt(b, a) if strict else sympy.Ge(b, a)
        return sympy.Lt(a, b) if strict else sympy.Le(a, b)


def relu(u: sympy.Expr) -> sympy.Expr:
    """Return Max(u, 0), whose derivative at u = 0 is 0, as tf.nn.relu's."""
    return Maximum(u, 0)


class SafeInput(sympy.Function):
    """``SafeInput(v, c, s)``: v where c holds, else the number s (the inner where of a guard).

    The code prints it as ``tf.where(c, v, s)``. Guarding a conditional that holds another
    conditional samples the inner one's derivative too: v's, where c holds.
    """

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real

    def _eval_derivative(self, symbol: sympy.Symbol) -> sympy.Expr:
        variable, condition, _ = self.args
        return sympy.Piecewise((variable.diff(symbol), condition), (0, True))


class _RealAbs(sympy.Function):
    """|u| of a real u: derivative sign(u)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return sign(u)."""
        return sympy.sign(self.args[0])


class _RealSign(sympy.Function):
    """sign(u) of a real u: derivative 2*DiracDelta(u)."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return 2*DiracDelta(u)."""
        return 2 * sympy.DiracDelta(self.args[0])


def real_derivative(expr: sympy.Expr, variable: sympy.Symbol) -> sympy.Expr:
    """D expr / d variable, with Abs and sign differentiated as functions of a real.

    SymPy gives Abs(u)' = sign(u)*u' only when it can prove u real (not for acos(x) or
    digamma(x)); otherwise the derivative holds re, im and unevaluated derivatives. scaffold
    computes with real values: its test points are where f is real.
    """
    real = expr.replace(sympy.Abs, _RealAbs).replace(sympy.sign, _RealSign)
    derivative = sympy.diff(real, variable)
    return derivative.replace(_RealAbs, sympy.Abs).replace(_RealSign, sympy.sign)


# Numerically stable building blocks. Each knows its derivative in terms of itself (or another
# stable block), so derivatives reuse forward values and never form inf/inf or inf*0.
class StableBlock(sympy.Function):
    """A stable form of ``definition()``: the same number, computed without overflow."""

    def definition(self) -> sympy.Expr:
        """The plain formula this block stands for."""
        raise NotImplementedError

    def stable_form(self) -> sympy.Expr:
        """How the generated code computes it, in functions a user can type."""
        return self.definition()

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

    def stable_form(self) -> sympy.Expr:
        """|u| + log1p(exp(-2|u|)) - log(2)."""
        magnitude = sympy.Abs(self.args[0])
        return magnitude + Log1p(sympy.exp(-2 * magnitude)) - sympy.log(2)

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

    def stable_form(self) -> sympy.Expr:
        """max(a, b) + log1p(exp(-|a-b|))."""
        a, b = self.args
        return Maximum(a, b) + Log1p(sympy.exp(-sympy.Abs(a - b)))

    def _eval_rewrite_as_exp(self, a: sympy.Expr, b: sympy.Expr, **kwargs) -> sympy.Expr:
        return sympy.log(sympy.exp(a) + sympy.exp(b))


STABLE_FUNCTIONS = (Sigmoid, Softplus, Log1p, Expm1, LogCosh, LogAddExp)


#: Names lambdify needs for evaluating these with mpmath (reference values), from their
#: defining formulas at 40 digits, independent of the stable forms the generated code uses.
MPMATH_NAMESPACE = {
    "SafeInput": lambda variable, condition, safe: variable if condition else safe,
    "Floor": mpmath.floor,
    "Ceiling": mpmath.ceil,
    "Round": mpmath.nint,
    "Maximum": lambda *args: max(args),
    "Minimum": lambda *args: min(args),
    "Sigmoid": lambda u: 1 / (1 + mpmath.exp(-u)),
    "Softplus": lambda u: mpmath.log(1 + mpmath.exp(u)),
    "Log1p": mpmath.log1p,
    "Expm1": mpmath.expm1,
    "LogCosh": lambda u: mpmath.log(mpmath.cosh(u)),
    "LogAddExp": lambda a, b: mpmath.log(mpmath.exp(a) + mpmath.exp(b)),
    # tf.math.lgamma (like scipy's gammaln) is log|gamma|: real where gamma < 0 (x in (-1, 0),
    # ...), where SymPy's loggamma is complex. Its derivative, digamma, is the same for both.
    "loggamma": lambda u: mpmath.log(abs(mpmath.gamma(u))),
}
