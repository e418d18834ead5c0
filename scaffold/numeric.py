"""The generated code's arithmetic, run in float64, float32, float16 or bfloat16 without TensorFlow.

Takes SymPy expressions in the printable form the code is printed from (an ``Analysis``'s
temporaries and outputs, or any expression) and a point; gives every value the code computes
there, each operation rounded to the dtype as the tensor op would round it. That answers, in
microseconds and before any 40-digit work, the questions a test point has to pass:

- is every value the code meets finite, and how large is the largest (``x**9`` is -1.4e5 at
  x = -3.75, beyond float16, though f there is 0)?
- how much precision does a dtype lose against the exact value (``x + sqrt(x**2 + 4)`` at
  x = -1000 in float32)?

Python floats are float64; a float32 (float16, bfloat16) result is the float64 result rounded to
the dtype, which for + - * / and sqrt is exactly the correctly rounded op, and for exp, sin and
friends is within an ulp of TensorFlow's kernels. Overflow gives inf and a domain error NaN, as
in TensorFlow. Where the code computes both branches of a ``tf.where`` only the selected one is
evaluated here: the other does not reach the result (``guard`` keeps it out of gradients too).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import mpmath
import sympy

from .functions import (
    Expm1,
    Log1p,
    LogAddExp,
    LogCosh,
    Maximum,
    Minimum,
    Round,
    SafeInput,
    Sigmoid,
    Softplus,
)

INF = math.inf
NAN = math.nan
#: The largest finite value of each dtype.
LARGEST = {
    "float64": 1.7976931348623157e308,
    "float32": 3.4028234663852886e38,
    "float16": 65504.0,
    "bfloat16": 3.3895313892515355e38,
}
#: Unit roundoff (half an ulp at 1) of each dtype.
EPSILON = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}


class Unsupported(Exception):
    """A node this evaluator has no rule for; callers fall back to doing without it."""


@dataclass(frozen=True)
class Evaluation:
    """The outputs at one point, and what the code met on the way."""

    outputs: tuple[float, ...]
    largest: float  # the largest magnitude of any value computed (inf after an overflow)
    finite: bool  # no value computed was NaN or infinite


def _pack(fmt: str) -> Callable[[float], float]:
    def rounded(value: float) -> float:
        try:
            return struct.unpack(fmt, struct.pack(fmt, value))[0]
        except OverflowError:
            return math.copysign(INF, value)

    return rounded


TINY32 = 1.1754943508222875e-38  # float32's (and bfloat16's) smallest normal value


def _float32(value: float) -> float:
    """Rounded to float32, subnormals flushed to zero as TensorFlow's CPU kernels do."""
    single = _pack("<f")(value)
    return math.copysign(0.0, single) if abs(single) < TINY32 else single


def _bfloat16(value: float) -> float:
    single = _float32(value)
    if not math.isfinite(single):
        return single
    bits = struct.unpack("<I", struct.pack("<f", single))[0]
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000  # to nearest, ties to even
    return struct.unpack("<f", struct.pack("<I", bits))[0]


ROUND: dict[str, Callable[[float], float]] = {
    "float64": float,
    "float32": _float32,
    "float16": _pack("<e"),
    "bfloat16": _bfloat16,
}


def _safe(function: Callable[..., float], overflow_sign: Callable[..., float] | None = None):
    """``function`` with TensorFlow's answers for errors: NaN off the domain, inf on overflow."""

    def call(*args: float) -> float:
        if any(math.isnan(a) for a in args):
            return NAN
        try:
            value = function(*args)
        except OverflowError:
            return math.copysign(INF, overflow_sign(*args)) if overflow_sign else INF
        except (ValueError, ZeroDivisionError):
            return _pole(function, args)
        return value.real if isinstance(value, complex) and not value.imag else value

    return call


def _pole(function: Callable[..., float], args: Sequence[float]) -> float:
    """The infinity TensorFlow gives at a pole; NaN anywhere else off the domain.

    Poles: log(0), log1p(-1), atanh(±1), lgamma at the non-positive integers.
    """
    u = args[0]
    if (function is math.log and u == 0) or (function is math.log1p and u == -1):
        return -INF
    if function is math.atanh and abs(u) == 1:
        return math.copysign(INF, u)
    if function is math.lgamma and u == math.floor(u):
        return INF
    return NAN


def _sigmoid(u: float) -> float:
    if u >= 0:
        return 1 / (1 + math.exp(-u))
    e = math.exp(u)
    return e / (1 + e)


def _softplus(u: float) -> float:
    return max(u, 0.0) + math.log1p(math.exp(-abs(u)))


def _log_cosh(u: float) -> float:
    return abs(u) + math.log1p(math.exp(-2 * abs(u))) - math.log(2)


def _log_add_exp(a: float, b: float) -> float:
    return max(a, b) + math.log1p(math.exp(-abs(a - b)))


def _polygamma(order: float, u: float) -> float:
    return float(mpmath.polygamma(int(order), u))


def _exp_inf(u: float) -> float:
    return INF if u == INF else 0.0 if u == -INF else math.exp(u)


#: SymPy (or scaffold) function -> its value in float64 (rounded to the dtype afterwards).
FUNCTIONS: dict[type, Callable[..., float]] = {
    sympy.sin: _safe(math.sin),
    sympy.cos: _safe(math.cos),
    sympy.tan: _safe(math.tan),
    sympy.sec: _safe(lambda u: 1 / math.cos(u)),
    sympy.csc: _safe(lambda u: 1 / math.sin(u)),
    sympy.cot: _safe(lambda u: 1 / math.tan(u)),
    sympy.asin: _safe(math.asin),
    sympy.acos: _safe(math.acos),
    sympy.atan: _safe(math.atan),
    sympy.sinh: _safe(math.sinh, lambda u: u),
    sympy.cosh: _safe(math.cosh),
    sympy.tanh: _safe(math.tanh),
    sympy.asinh: _safe(math.asinh),
    sympy.acosh: _safe(math.acosh),
    sympy.atanh: _safe(math.atanh),
    sympy.exp: _safe(_exp_inf),
    sympy.log: _safe(math.log),
    sympy.erf: _safe(math.erf),
    sympy.erfc: _safe(math.erfc),
    sympy.loggamma: _safe(math.lgamma),
    sympy.polygamma: _safe(_polygamma),
    sympy.Abs: abs,
    sympy.sign: lambda u: NAN if math.isnan(u) else float((u > 0) - (u < 0)),
    sympy.floor: _safe(lambda u: float(math.floor(u)) if math.isfinite(u) else u),
    sympy.ceiling: _safe(lambda u: float(math.ceil(u)) if math.isfinite(u) else u),
    Round: _safe(lambda u: float(round(u)) if math.isfinite(u) else u),
    Sigmoid: _safe(_sigmoid),
    Softplus: _safe(_softplus, lambda u: u),
    Log1p: _safe(math.log1p),
    Expm1: _safe(math.expm1),
    LogCosh: _safe(_log_cosh),
    LogAddExp: _safe(_log_add_exp),
    sympy.Heaviside: lambda u, h0: NAN if math.isnan(u) else 1.0 if u > 0 else 0.0 if u < 0 else h0,
}
for _extremum, _pick in ((Maximum, max), (sympy.Max, max), (Minimum, min), (sympy.Min, min)):
    FUNCTIONS[_extremum] = lambda *args, pick=_pick: (
        NAN if any(map(math.isnan, args)) else pick(args)
    )

_RELATIONS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}
_constants: dict[sympy.Expr, float] = {}


def constant(node: sympy.Expr) -> float:
    """A numeric node's value as the nearest float64 (as the printed Python literal is)."""
    if node not in _constants:
        try:
            value = complex(node.evalf(30))
        except (TypeError, ValueError) as err:
            raise Unsupported(f"the constant {node}") from err
        if value.imag:
            raise Unsupported(f"the complex constant {node}")
        _constants[node] = value.real
    return _constants[node]


class _Run:
    """One evaluation: the values of the nodes met so far, rounded to one dtype."""

    def __init__(self, env: dict[sympy.Symbol, float], dtype: str) -> None:
        self.round = ROUND[dtype]
        self.values: dict[sympy.Basic, float | bool] = {
            symbol: self.round(value) for symbol, value in env.items()
        }
        self.largest = 0.0
        self.finite = True

    def value(self, node: sympy.Basic) -> float | bool:
        found = self.values.get(node)
        if found is None:
            found = self._compute(node)
            if not isinstance(found, bool):
                found = self.round(found)
                magnitude = abs(found)
                if magnitude != magnitude or magnitude == INF:
                    self.finite = False
                    self.largest = INF
                elif magnitude > self.largest:
                    self.largest = magnitude
            self.values[node] = found
        return found

    def _compute(self, node: sympy.Basic) -> float | bool:
        if isinstance(node, sympy.Symbol):
            raise Unsupported(f"no value for {node}")
        if node is sympy.true or node is sympy.false:
            return bool(node)
        if isinstance(node, sympy.Expr) and node.is_number:
            return constant(node)
        if isinstance(node, sympy.Add):
            total = self.value(node.args[0])
            for arg in node.args[1:]:
                total = self.round(total + self.value(arg))
            return total
        if isinstance(node, sympy.Mul):
            return self._product(node.args)
        if isinstance(node, sympy.Pow):
            return self._power(*node.args)
        if isinstance(node, sympy.Piecewise):
            for branch, condition in node.args:
                if self.value(condition):
                    return self.value(branch)
            return NAN
        if isinstance(node, SafeInput):
            variable, condition, safe = node.args
            return self.value(variable) if self.value(condition) else self.value(safe)
        if isinstance(node, sympy.core.relational.Relational):
            return _RELATIONS[node.rel_op](self.value(node.lhs), self.value(node.rhs))
        if isinstance(node, sympy.And):
            return all(self.value(arg) for arg in node.args)
        if isinstance(node, sympy.Or):
            return any(self.value(arg) for arg in node.args)
        if isinstance(node, sympy.Not):
            return not self.value(node.args[0])
        if isinstance(node, sympy.ITE):  # a condition on a conditional, folded by SymPy
            condition, then, otherwise = node.args
            return self.value(then) if self.value(condition) else self.value(otherwise)
        for kind in type(node).__mro__:
            if kind in FUNCTIONS:
                return FUNCTIONS[kind](*(self.value(arg) for arg in node.args))
        raise Unsupported(f"{type(node).__name__}")

    def _product(self, factors: Iterable[sympy.Expr]) -> float:
        numerator, denominator = [], []
        for factor in factors:
            base, exponent = factor.as_base_exp()
            if exponent.is_number and exponent.is_negative and factor.is_Pow:
                denominator.append(sympy.Pow(base, -exponent))
            else:
                numerator.append(factor)
        # As the code is printed: a/(b*c), the denominator's product first.
        result = self._multiply(numerator) if numerator else 1.0
        if denominator:
            result = self.round(_divide(result, self._multiply(denominator)))
        return result

    def _multiply(self, factors: list[sympy.Expr]) -> float:
        result = self.value(factors[0])
        for factor in factors[1:]:
            result = self.round(result * self.value(factor))
        return result

    def _power(self, base: sympy.Expr, exponent: sympy.Expr) -> float:
        if exponent.is_number and exponent.is_negative:
            return _divide(1.0, self.value(sympy.Pow(base, -exponent)))
        b = self.value(base)
        if exponent == sympy.S.Half:
            return NAN if b < 0 else math.sqrt(b) if b != INF else INF
        if exponent.is_Integer and 2 <= exponent <= 4:
            result = b
            for _ in range(int(exponent) - 1):
                result = self.round(result * b)
            return result
        e = self.value(exponent)
        try:
            value = b**e
        except OverflowError:
            odd = e == math.floor(e) and int(e) % 2 == 1
            return -INF if b < 0 and odd else INF
        except ZeroDivisionError:
            return INF
        return NAN if isinstance(value, complex) else float(value)


def _divide(a: float, b: float) -> float:
    if b == 0:
        return NAN if a == 0 or math.isnan(a) else math.copysign(INF, a) * math.copysign(1, b)
    return a / b


def evaluate(
    outputs: Sequence[sympy.Expr],
    values: dict[sympy.Symbol, float],
    dtype: str = "float64",
    temporaries: Sequence[tuple[sympy.Symbol, sympy.Expr]] = (),
) -> Evaluation:
    """The outputs at the point ``values`` (symbol -> float) as code in ``dtype`` computes them.

    The, the temporaries first in order. Raises ``Unsupported`` for an unknown node.
    """
    run = _Run(values, dtype)
    for symbol, expr in temporaries:
        run.values[symbol] = run.value(expr)
    results = tuple(float(run.value(expr)) for expr in outputs)
    return Evaluation(outputs=results, largest=run.largest, finite=run.finite)


def relative_error(actual: float, exact: float, floor: float) -> float:
    """|actual - exact| relative to |exact|, or to ``floor`` where |exact| is smaller."""
    if not math.isfinite(actual):
        return INF
    return abs(actual - exact) / max(abs(exact), floor)
