"""Test points inside the function's domain, and high-precision reference values there.

Takes an ``Analysis``; gives ``References``: points where f and f' are finite and real (also a
little to either side, so no point sits next to a pole or branch point), with f(p) and f'(p)
evaluated by mpmath at 40 digits. The points are dyadic fractions, exact in float16 and bfloat16
too, so every dtype is tested at the same inputs as the reference.

A numeric filter, not ``continuous_domain``: that raises for erf, Max and friends and is wrong for
log(sin(x)); evaluating the expression itself is never wrong about where it is real.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath
import sympy

from .analyze import Analysis
from .errors import DomainError

DIGITS = 40
#: Candidate points, in order of preference: away from 0, ±1 and integers (where values such as
#: log(1) = 0 make relative errors meaningless), spread over both signs and a few scales.
CANDIDATES = (
    "0.375", "-0.625", "1.375", "-1.875", "2.625", "-2.375", "0.8125", "-0.3125",
    "3.25", "-3.75", "0.0625", "1.0625", "-1.0625", "4.5", "6.25", "9.5", "12.75",
)  # fmt: skip
MAX_POINTS = 8
MIN_POINTS = 3
MAX_MAGNITUDE = 1e4  # keeps float16 (max 65504) meaningful for f and f'
NEIGHBOUR = sympy.Rational(1, 64)


@dataclass(frozen=True)
class References:
    """Test points and the reference f and f' there, as Python floats (float64-exact inputs)."""

    points: tuple[float, ...]
    forward: tuple[float, ...]
    derivative: tuple[float, ...]


def references(analysis: Analysis) -> References:
    """Choose test points in the domain and evaluate f and f' there with mpmath."""
    x = analysis.input
    funcs = [
        sympy.lambdify(x, expr, modules="mpmath")
        for expr in (analysis.forward, analysis.derivative)
    ]
    points, values = [], []
    with mpmath.workdps(DIGITS):
        for text in CANDIDATES:
            p = mpmath.mpf(text)
            here = _finite_values(funcs, p)
            if here is None:
                continue
            step = mpmath.mpf(NEIGHBOUR.p) / NEIGHBOUR.q
            if _finite_values(funcs, p - step) is None or _finite_values(funcs, p + step) is None:
                continue
            points.append(float(text))
            values.append(here)
            if len(points) == MAX_POINTS:
                break
    if len(points) < MIN_POINTS:
        raise DomainError(
            f"found only {len(points)} test point(s) in [-4, 13] where {analysis.forward} and its"
            f" derivative are finite, real and below {MAX_MAGNITUDE:g} in size",
            hint="scaffold tests the layer at points where it is defined; shift or scale the input",
        )
    return References(
        points=tuple(points),
        forward=tuple(v[0] for v in values),
        derivative=tuple(v[1] for v in values),
    )


def _finite_values(funcs, point) -> tuple[float, ...] | None:
    """The functions' values at ``point`` as floats, or None if any is complex, infinite or huge."""
    out = []
    for func in funcs:
        try:
            value = func(point)
        except (ValueError, ZeroDivisionError, ArithmeticError, TypeError):
            return None
        if isinstance(value, (int, float)):
            value = mpmath.mpf(value)
        if isinstance(value, mpmath.mpc):
            if abs(value.imag) > abs(value) * mpmath.mpf(10) ** (-DIGITS + 5):
                return None
            value = value.real
        if not isinstance(value, mpmath.mpf) or not mpmath.isfinite(value):
            return None
        as_float = float(value)
        if not math.isfinite(as_float) or abs(as_float) > MAX_MAGNITUDE:
            return None
        out.append(as_float)
    return tuple(out)
