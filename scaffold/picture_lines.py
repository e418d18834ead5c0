"""The lines a picture is drawn along: one input of an elementwise formula, or one element of a row.

A ``Line`` gives, at a value t of what varies, f and each variable's backward expression
exactly (mpmath at 30 digits; NaN where undefined) and as the generated code computes them in
a dtype (``numeric`` / ``rowscreen``: each op rounded as the tensor op rounds it), and the
kink functions of f along it. ``picture`` samples a line into a panel.

- ``ElementLine``: an elementwise formula, one input varied, the others and the weights held.
- ``RowLine``: a formula with reductions, the first element of one input's row varied, the rest
  of the row held at a test row; f is the row's first output (or its one value per row), the
  backward expressions the vector-Jacobian products with the upstream gradient (1, 0, ...),
  i.e. df_0/dx_0, at the first element (a scalar weight's summed over the row, as the layer's).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import mpmath
import sympy

from . import numeric
from .analyze import (
    Analysis,
    abs_identity,
    elementwise_symbols,
    kink_functions,
    tensorflow_conventions,
)
from .errors import DomainError
from .functions import MPMATH_NAMESPACE, real_derivative
from .reductions import MPMATH_NAMESPACE as EXPLICIT_NAMESPACE
from .reductions import explicit, row_constant
from .rows import ROWS, WIDTH, CodeRows, channel_values, per_element_symbols, row_references

DIGITS = 30
DRAWABLE = 1e300  # larger values count as beyond float64's range
MODULES = [MPMATH_NAMESPACE, "mpmath"]


@dataclass(frozen=True)
class CurveSpec:
    """A curve before it has values: its key (unique in a panel), label and role."""

    key: str
    label: str
    role: str  # f, derivative, surrogate, exact


def value(func: Callable, t: float) -> float:
    """``func`` at ``t`` (mpmath, the caller's precision) as a float; NaN where undefined."""
    try:
        found = func(mpmath.mpf(t))
    except (ValueError, ZeroDivisionError, ArithmeticError, TypeError):
        return math.nan
    return real(found)


def real(found) -> float:
    """An mpmath (or Python) number as a float; NaN where it is not real or not a number.

    Values near or beyond float64's range (exp(800)) and unbounded ones are ±inf: defined,
    not drawable (a figure's transforms overflow near 1.8e308).
    """
    if isinstance(found, mpmath.mpc):
        # Complex on the way: 0*sqrt(-1) is a complex 0 to mpmath, NaN to the code.
        if found == 0 or abs(found.imag) > abs(found) * mpmath.mpf(10) ** (5 - DIGITS):
            return math.nan
        found = found.real
    try:
        number = float(found)  # nan stays nan
    except (TypeError, ValueError):
        return math.nan
    return math.copysign(math.inf, number) if abs(number) > DRAWABLE else number


class ElementLine:
    """An elementwise formula along input ``x``, the other variables at ``fixed``."""

    def __init__(self, analysis: Analysis, x: sympy.Symbol, fixed: dict) -> None:
        spec = analysis.spec
        self.analysis = analysis
        self.x = x
        self.fixed = fixed
        self.others = {s: v for s, v in fixed.items() if s != x}
        self.variable = x.name
        self.held = tuple(f"{s.name} = {v:g}" for s, v in self.others.items())
        self.varied = 1 + spec.variables.index(x)
        self.outputs = 1 + len(spec.variables)
        specs, exprs = _element_curves(analysis)
        self.curves = tuple(specs)
        self._funcs = [self._along(e) for e in exprs]

    def _along(self, expr: sympy.Expr) -> Callable:
        return sympy.lambdify([self.x], sympy.sympify(expr).subs(self.others), modules=MODULES)

    def exact(self, t: float) -> list[float]:
        """Every curve's exact value at ``t``."""
        with mpmath.workdps(DIGITS):
            return [value(f, t) for f in self._funcs]

    def code(self, t: float, dtype: str) -> list[float] | None:
        """F and the backward outputs as the code computes them in ``dtype``; None if it can't."""
        analysis = self.analysis
        try:
            found = numeric.evaluate(
                (analysis.forward_out, *analysis.grad_outs),
                {**self.fixed, self.x: t},
                dtype,
                analysis.forward_temps + analysis.grad_temps,
            )
        except (numeric.Unsupported, ValueError, OverflowError):
            return None
        return [v + 0.0 for v in found.outputs]

    def kink_functions(self) -> list[Callable]:
        """Functions of t that are zero where f has a kink or a step."""
        return [self._along(k) for k in kink_functions(self.analysis.stable)]

    def singular(self) -> tuple[list[float], list[float], list[float]]:
        """Singular points on the line: removable (the code takes the limit), unresolved, poles.

        Unresolved: f seems to have a limit there that no trusted polynomial gives (see
        ``singular``); the code computes the formula as typed there.
        """
        singular = self.analysis.singular
        if singular is None or singular.variable != self.x:
            return [], [], []
        return (
            [float(p.center) for p in singular.patches],
            [float(p) for p in singular.unresolved],
            [float(p) for p in singular.poles],
        )


def _element_curves(analysis: Analysis) -> tuple[list[CurveSpec], list[sympy.Expr]]:
    """F and each variable's backward expression; then the derivatives surrogates replace."""
    spec = analysis.spec
    specs, exprs = [CurveSpec("f", "f", "f")], [analysis.parsed.expr]
    exact_specs, exact_exprs = [], []
    for i, v in enumerate(spec.variables):
        name = "f'" if len(spec.variables) == 1 else f"df/d{v.name}"
        if analysis.surrogate[i]:
            specs.append(CurveSpec(f"surrogate-{v.name}", f"surrogate for {name}", "surrogate"))
            exprs.append(analysis.gradients[i])
            derivative = real_derivative(analysis.stable, v).replace(
                sympy.DiracDelta, lambda *a: sympy.S.Zero
            )
            exact_specs.append(CurveSpec(f"exact-{v.name}", f"exact {name}", "exact"))
            exact_exprs.append(tensorflow_conventions(abs_identity(derivative))[0])
        else:
            specs.append(CurveSpec(f"d-{v.name}", name, "derivative"))
            exprs.append(analysis.shown_gradients[i])
    return specs + exact_specs, exprs + exact_exprs


class RowLine:
    """A formula with reductions along the first element of input ``x``'s row."""

    def __init__(self, analysis: Analysis, x: sympy.Symbol, rows: tuple) -> None:
        spec = analysis.spec
        self.analysis = analysis
        self.x = x
        self.index = spec.inputs.index(x)
        elementwise = elementwise_symbols(spec)
        row_valued = row_constant(analysis.forward, elementwise)
        self._code = CodeRows(analysis, elementwise, row_valued)
        self.rows = rows
        self.dy = (1.0,) if row_valued else (1.0,) + (0.0,) * (WIDTH - 1)
        self.variable = f"{x.name}_0"
        row = ", ".join(f"{v:g}" for v in self.rows[self.index][1:])
        self.held = (
            f"{x.name} = ({x.name}_0, {row})",
            *(
                f"{s.name} = ({', '.join(f'{v:g}' for v in self.rows[k])})"
                for k, s in enumerate(spec.inputs)
                if s != x
            ),
        )
        self.held += tuple(
            (
                f"{w.symbol.name} = ({', '.join(f'{v:g}' for v in channel_values(w.default))})"
                if w.symbol in elementwise
                else f"{w.symbol.name} = {float(w.default):g}"
            )
            for w in spec.weights
        )
        self.varied = 1 + spec.variables.index(x)
        self.outputs = 1 + len(spec.variables)
        out = "f" if row_valued else "f_0"
        self.curves = (
            CurveSpec("f", out, "f"),
            *(
                CurveSpec(
                    f"d-{v.name}",
                    f"d{out}/d{v.name}{'_0' if v in elementwise else ''}",
                    "derivative",
                )
                for v in spec.variables
            ),
        )
        per_element = per_element_symbols(elementwise)
        t = per_element[x][0]
        held = _held_values(spec, per_element, rows, t)
        first = explicit(analysis.forward, 0, WIDTH, per_element)
        exprs = [first] + [
            tensorflow_conventions(real_derivative(first, per_element.get(v, [v])[0]))[0]
            for v in spec.variables
        ]
        modules = [{**MPMATH_NAMESPACE, **EXPLICIT_NAMESPACE}, "mpmath"]
        self._funcs = [sympy.lambdify([t], e.subs(held), modules=modules) for e in exprs]
        self._kinks = [
            sympy.lambdify([t], explicit(kink, j, WIDTH, per_element).subs(held), modules=modules)
            for kink in kink_functions(analysis.forward)
            for j in range(WIDTH)
        ]

    def _rows_at(self, t: float) -> tuple:
        rows = list(self.rows)
        rows[self.index] = (t, *rows[self.index][1:])
        return tuple(rows)

    def exact(self, t: float) -> list[float]:
        """F's first output and df_0/dv at ``t``: the row written out, differentiated by SymPy.

        Independent of the code's reverse pass (``reductions.vjp``), which ``code`` runs.
        """
        with mpmath.workdps(DIGITS):
            return [value(f, t) for f in self._funcs]

    def code(self, t: float, dtype: str) -> list[float] | None:
        """The same values as the code computes them in ``dtype``; None if it cannot be run."""
        found = self._code.cells((*self._rows_at(t), self.dy), dtype)
        if found is None:
            return None
        values = [found[0][0]] + [c[0] if isinstance(c, tuple) else c for c in found[1:]]
        return [v + 0.0 for v in values]

    def kink_functions(self) -> list[Callable]:
        """Functions of t that are zero where an element of the row meets a kink of f."""
        return self._kinks

    def singular(self) -> tuple[list[float], list[float], list[float]]:
        """No singular points are searched for with reductions."""
        return [], [], []


def test_rows(analysis: Analysis) -> tuple[tuple, tuple]:
    """The rows to draw along (the first test row of each input) and every test row's cells.

    Without test rows (``DomainError``), the first candidate rows and none.
    """
    n = len(analysis.spec.inputs)
    try:
        found = row_references(analysis).points
    except DomainError:
        return tuple(ROWS[k % len(ROWS)] for k in range(n)), ()
    return tuple(tuple(found[0][k]) for k in range(n)), found


def _held_values(spec, per_element: dict, rows, t: sympy.Symbol) -> dict:
    """Exact values for every symbol of the written-out row but ``t``: rows, weights."""
    held = {}
    for k, s in enumerate(spec.inputs):
        held |= {
            symbol: sympy.Rational(rows[k][j])
            for j, symbol in enumerate(per_element[s])
            if symbol != t
        }
    for w in spec.weights:
        if w.symbol in per_element:
            values = channel_values(w.default)
            held |= {
                s: sympy.Rational(v) for s, v in zip(per_element[w.symbol], values, strict=True)
            }
        else:
            held[w.symbol] = sympy.Rational(float(w.default))
    return held
