"""Test rows and 40-digit reference values for formulas with reductions (``reductions``).

Takes an ``Analysis`` whose formula reduces over the feature axis; gives ``RowReferences``:
rows of ``WIDTH`` values per input, an upstream gradient per row, f along the row and the
vector-Jacobian products for every input and weight, by mpmath at 40 digits. The values come
from ``reductions.explicit`` (every reduction written out as a sum of ``WIDTH`` terms) and
SymPy's ordinary differentiation of it, so they check the reverse pass of ``reductions.vjp``
rather than repeat it. Weights hold their initial values, a per-channel weight the same value
in every channel, as the layer starts.

Three tables: ``points`` (rows away from ties, where every derivative is defined; the
numeric Jacobian is checked there), ``special`` (the zero row and, with amax or amin, rows
with ties: the conventions of the module docstring hold there) and ``extremes`` (rows
holding ±1000, ±100, ±30, checked in float32: where naive softmax and log-sum-exp are NaN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath
import sympy

from .analyze import (
    UPSTREAM,
    Analysis,
    elementwise_symbols,
    kink_functions,
    tensorflow_conventions,
)
from .errors import DomainError
from .functions import MPMATH_NAMESPACE, real_derivative
from .mathtext import math_text
from .precision import EXTREME_TOLERANCE
from .reductions import MPMATH_NAMESPACE as EXPLICIT_NAMESPACE
from .reductions import ReduceMax, ReduceMin, explicit, row_constant
from .rowscreen import RowScreen

DIGITS = 40
WIDTH = 5  # not 3 or 4 (the channels and width of the other checks' tensors): a mix-up shows
#: Rows in order of preference: distinct values (no ties), both signs, a few scales. Input
#: number k of a formula takes row (r + k) mod n as its row r.
ROWS = (
    (-1.5, 0.25, 2.0, -0.75, 1.25),
    (0.5, -2.25, 1.75, 0.125, -1.0),
    (3.0, -0.5, 0.875, -3.5, 2.5),
    (-0.25, -1.75, -3.0, 0.625, -0.125),
    (1.5, 2.75, -1.25, 0.375, 4.0),
    (0.0625, -0.3125, 0.1875, -0.4375, 0.5),
)
#: Where positive values are needed (log(x)): the same rows moved to (0.25, 4.25).
POSITIVE_ROWS = tuple(tuple(abs(v) + 0.25 for v in row) for row in ROWS)
#: Where a row of ROWS sits on a kink (abs(x - 0.25) at 0.25): the same rows moved by 3/32.
SHIFTED_ROWS = tuple(tuple(v + 0.09375 for v in row) for row in ROWS)
NEIGHBOUR = 1 / 64  # a test row's elements keep this far from every kink
MIN_ROWS = 3
ZERO_ROW = (0.0,) * WIDTH
TIE_ROWS = ((1.0, 2.0, 2.0, -1.0, 0.5), (-1.0, 0.25, -1.0, 3.0, -1.0))
EXTREME_ROWS = (
    (1000.0, 999.5, -1000.0, 0.25, 3.0),
    (-1000.0, -999.0, -998.5, -1000.25, -997.0),
    (100.0, -30.0, 30.0, -100.0, 0.5),
)
MAX_FINITE = 1e30  # as ``reference.MAX_FINITE``: representable in float32 with room to spare
CHANNEL_STEP = 0.125  # a per-channel weight's test values: its initial value plus k steps
WELL_INSIDE = 1e150  # a test row's values stay this far inside float64's range


@dataclass(frozen=True)
class RowReferences:
    """Rows and reference values as Python floats.

    Each row of a table is a tuple of cells in ``columns`` order: one tuple of ``WIDTH``
    values per input, the upstream gradient (one value per element, or one per row when f
    has one value per row), f (likewise), then each variable's vector-Jacobian product (a
    tuple per input and per-channel weight, one number for a scalar weight: its gradient
    summed over the row).
    """

    columns: tuple[str, ...]
    points: tuple[tuple, ...]
    special: tuple[tuple, ...]
    extremes: tuple[tuple, ...]
    dropped: tuple[tuple[float, ...], ...]  # candidate rows where f is not finite and real
    row_valued: bool  # f has one value per row (the output keeps the axis with size 1)
    # Per dtype, the indices of the points where the code run in it (``rowscreen``) is
    # within half the check's tolerance: its tests use those.
    held: dict[str, tuple[int, ...]]
    lost: tuple[tuple[float, ...], ...]  # extreme rows float32 cannot compute within tolerance


def row_references(analysis: Analysis) -> RowReferences:
    """Reference rows for ``analysis`` (see the module).

    Raises ``DomainError`` if f is not finite and real at enough of them.
    """
    spec = analysis.spec
    elementwise = elementwise_symbols(spec)
    row_valued = row_constant(analysis.forward, elementwise)
    values_at = _evaluator(analysis, elementwise, row_valued)
    near_kink = _kink_distance(analysis, elementwise)
    screen = CodeRows(analysis, elementwise, row_valued)
    found, dropped, on_kinks = [], [], 0
    for candidates in (ROWS, SHIFTED_ROWS, POSITIVE_ROWS):
        for index in range(len(candidates)):
            rows = tuple(candidates[(index + k) % len(candidates)] for k in range(len(spec.inputs)))
            if near_kink(rows):
                on_kinks += 1
                continue
            values = values_at(rows, _upstream(index, row_valued), WELL_INSIDE)
            # As at elementwise test points: a row where the code in float64 itself misses
            # the float64 check (x/mean(x) where the mean is 0) is no test of the code.
            if values is None or not screen.holds(values, "float64"):
                dropped.append(rows[0])
            else:
                found.append(values)
        if len(found) >= MIN_ROWS:
            break
    if len(found) < MIN_ROWS and on_kinks > len(dropped):
        kinks = ", ".join(f"{math_text(k)} = 0" for k in kink_functions(analysis.forward)[:3])
        raise DomainError(
            f"f has a kink or a step that a row of any values meets ({kinks}): at every test"
            " row an element sits on it, where the derivative is only a convention, so"
            " scaffold cannot check the gradient",
            hint="a kink at a row's own extremum (x - amax(x) = 0) always has an element on"
            " it; write the formula so that its kinks are at fixed values",
        )
    if len(found) < MIN_ROWS:
        raise DomainError(
            f"f or its gradient is not finite and real at enough test rows away from kinks"
            f" ({len(found)} of {len(ROWS) + len(SHIFTED_ROWS) + len(POSITIVE_ROWS)})",
            hint="check the formula's domain: the test rows hold values in [-3.5, 4.25]",
        )
    special_rows = [ZERO_ROW]
    if analysis.forward.atoms(ReduceMax, ReduceMin):
        special_rows += TIE_ROWS
    special = [
        values_at((row,) * len(spec.inputs), _upstream(index, row_valued), MAX_FINITE)
        for index, row in enumerate(special_rows)
    ]
    extremes = [
        values_at((row,) * len(spec.inputs), _upstream(index, row_valued), MAX_FINITE)
        for index, row in enumerate(EXTREME_ROWS)
    ]
    extremes = [cells for cells in extremes if cells is not None]
    kept = [cells for cells in extremes if screen.holds(cells, "float32", EXTREME_TOLERANCE)]
    held = {
        dtype: tuple(i for i, cells in enumerate(found) if screen.holds(cells, dtype))
        for dtype in ("float16", "bfloat16", "float32")
    }
    names = [s.name for s in spec.variables]
    columns = (
        *(s.name for s in spec.inputs),
        "dy",
        f"f({', '.join(names)})",
        *(f"df/d{name}" for name in names),
    )
    return RowReferences(
        columns=columns,
        points=tuple(found),
        special=tuple(v for v in special if v is not None),
        extremes=tuple(kept),
        dropped=tuple(dropped),
        row_valued=row_valued,
        held={dtype: rows for dtype, rows in held.items() if len(rows) < len(found)},
        lost=tuple(cells[0] for cells in extremes if cells not in kept),
    )


class CodeRows:
    """The generated code's arithmetic (``rowscreen``) at table rows, laid out as cells.

    ``cells(row, dtype)`` gives f and each variable's gradient as the layer returns them
    (a scalar weight's summed over the row), to compare with the row's reference cells.
    """

    def __init__(self, analysis: Analysis, elementwise: frozenset, row_valued: bool) -> None:
        self.screen = RowScreen(analysis, UPSTREAM)
        self.spec = analysis.spec
        self.elementwise = elementwise
        self.row_valued = row_valued
        self.weights = {w.symbol: float(w.default) for w in self.spec.weights}
        self.one_per_row = one_per_row(analysis, elementwise, row_valued)

    def _envs(self, cells: tuple) -> list[dict]:
        n = len(self.spec.inputs)
        dy = cells[n]
        channels = {
            w.symbol: channel_values(w.default)
            for w in self.spec.weights
            if w.symbol in self.elementwise
        }
        return [
            {
                **self.weights,
                **{symbol: values[j] for symbol, values in channels.items()},
                **{x: cells[k][j] for k, x in enumerate(self.spec.inputs)},
                UPSTREAM: dy[0] if self.row_valued else dy[j],
            }
            for j in range(WIDTH)
        ]

    def cells(self, row: tuple, dtype: str = "float64") -> tuple | None:
        """F and the gradients the code computes at a table row; None if it cannot run."""
        found = self.screen.run(self._envs(row), dtype)
        return None if found is None else self._cells(found)

    def holds(self, cells: tuple, dtype: str, tolerance=None) -> bool:
        """Whether the code in ``dtype`` gets the row's f and gradients (see RowScreen)."""
        n = len(self.spec.inputs)
        return self.screen.holds(self._envs(cells), cells[n + 1 :], dtype, self._cells, tolerance)

    def _cells(self, found: list[tuple[float, ...]]) -> tuple:
        cells = [tuple(e[0] for e in found[: 1 if self.row_valued else WIDTH])]
        for k, variable in enumerate(self.spec.variables, start=1):
            values = tuple(e[k] for e in found)
            if variable in self.elementwise:
                cells.append(values)
            else:  # a scalar weight: its gradient summed over the row, as _fit_to_shape does
                cells.append(values[0] if self.one_per_row[k - 1] else math.fsum(values))
        return tuple(cells)


def one_per_row(analysis: Analysis, elementwise: frozenset, row_valued: bool) -> tuple:
    """Per variable, whether the code's gradient has one value per row, not per element.

    (A scalar weight of ``a + amax(x)`` gets dy, a value per row; summing it over the row's
    elements, as a per-element gradient is, would count it n times.)
    """
    per_element = elementwise if row_valued else elementwise | {UPSTREAM}
    return tuple(row_constant(g, per_element) for g in analysis.gradients)


def _kink_distance(analysis: Analysis, elementwise: frozenset):
    """A function (rows) -> whether an element sits within NEIGHBOUR of a kink or a jump.

    The numeric Jacobian is meaningless across a kink, and the derivative there is a
    convention; the kinks (``analyze.kink_functions``) may hold reductions (max(norm(x), c)).
    """
    kinks = kink_functions(analysis.forward)
    if not kinks:
        return lambda rows: False
    spec = analysis.spec
    per_element = per_element_symbols(elementwise)
    exprs = [explicit(k, i, WIDTH, per_element) for k in kinks for i in range(WIDTH)]
    arguments = [s for symbols in per_element.values() for s in symbols]
    arguments += [w.symbol for w in spec.weights if w.symbol not in per_element]
    modules = [{**MPMATH_NAMESPACE, **EXPLICIT_NAMESPACE}, "mpmath"]
    function = sympy.lambdify(arguments, exprs, modules=modules)
    weights = {w.symbol: mpmath.mpf(float(w.default)) for w in spec.weights}

    def near(rows) -> bool:
        given = []
        for symbol in per_element:
            if symbol in spec.inputs:
                given += [mpmath.mpf(v) for v in rows[spec.inputs.index(symbol)]]
            else:
                given += [mpmath.mpf(v) for v in channel_values(weights[symbol])]
        given += [weights[w.symbol] for w in spec.weights if w.symbol not in per_element]
        try:
            values = function(*given)
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            return False  # the value check decides
        return any(_real_float(v) is not None and abs(_real_float(v)) < NEIGHBOUR for v in values)

    return near


def per_element_symbols(elementwise: frozenset) -> dict[sympy.Symbol, list[sympy.Symbol]]:
    """Each elementwise symbol's WIDTH symbols, one per element of a row (x -> x_0 ... x_4)."""
    return {
        s: [sympy.Symbol(f"{s.name}_{k}", real=True) for k in range(WIDTH)]
        for s in sorted(elementwise, key=lambda s: s.name)
    }


def channel_values(default) -> tuple[float, ...]:
    """A per-channel weight's value in each channel of the test rows.

    All different, so a gradient or a value sent to the wrong channel shows (the layer
    starts them equal).
    """
    return tuple(float(default) + CHANNEL_STEP * k for k in range(WIDTH))


def _upstream(index: int, row_valued: bool) -> tuple[float, ...]:
    """A non-uniform upstream gradient for row ``index``: both signs, never 0, exact."""
    values = tuple((1 + (2 * i + index) % WIDTH) / 4 - 0.625 for i in range(WIDTH))
    return values[:1] if row_valued else values


def _evaluator(analysis: Analysis, elementwise: frozenset, row_valued: bool):
    """A function (rows, upstream, limit) -> one table row, or None where it is not finite."""
    spec = analysis.spec
    per_element = per_element_symbols(elementwise)
    outputs = 1 if row_valued else WIDTH
    upstream = [sympy.Symbol(f"dy_{i}", real=True) for i in range(outputs)]
    f = [explicit(analysis.forward, i, WIDTH, per_element) for i in range(outputs)]
    exprs = list(f)
    for variable in spec.variables:
        targets = per_element.get(variable, [variable])
        for target in targets:
            product = sum(
                (dy * real_derivative(out, target) for dy, out in zip(upstream, f, strict=True)),
                sympy.S.Zero,
            )
            exprs.append(tensorflow_conventions(product)[0])
    arguments = [s for symbols in per_element.values() for s in symbols] + upstream
    scalars = [w.symbol for w in spec.weights if w.symbol not in per_element]
    modules = [{**MPMATH_NAMESPACE, **EXPLICIT_NAMESPACE}, "mpmath"]
    function = sympy.lambdify(arguments + scalars, exprs, modules=modules)
    exact = {w.symbol: sympy.Rational(w.default) for w in spec.weights}
    step = sympy.Rational(CHANNEL_STEP)
    shapes = [len(per_element.get(v, [v])) for v in spec.variables]

    def values_at(rows, dy, limit):
        with mpmath.workdps(DIGITS):
            return _values(rows, dy, limit)

    def _values(rows, dy, limit):
        defaults = {s: mpmath.mpf(r.p) / r.q for s, r in exact.items()}
        given = []
        for symbol in per_element:
            if symbol in spec.inputs:
                row = rows[spec.inputs.index(symbol)]
                given += [mpmath.mpf(v) for v in row]
            else:  # a per-channel weight: see channel_values
                given += [defaults[symbol] + mpmath.mpf(step.p) / step.q * k for k in range(WIDTH)]
        given += [mpmath.mpf(v) for v in dy]
        try:
            results = function(*given, *(defaults[s] for s in scalars))
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            return None
        floats = [_real_float(v) for v in results]
        if any(v is None or abs(v) > limit for v in floats):
            return None
        cells = [tuple(row) for row in rows] + [tuple(dy), tuple(floats[:outputs])]
        position = outputs
        for variable, size in zip(spec.variables, shapes, strict=True):
            values = tuple(floats[position : position + size])
            position += size
            cells.append(values if variable in per_element else values[0])
        return tuple(cells)

    return values_at


def _real_float(value) -> float | None:
    """``value`` as a float when it is finite and real, else None."""
    if isinstance(value, mpmath.mpc):
        if value.imag != 0:
            return None
        value = value.real
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
