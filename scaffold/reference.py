"""Test points inside the function's domain, and high-precision reference values there.

Takes an ``Analysis``; gives ``References``: points where f and every backward expression are
finite and real, also a little to either side (so no point sits next to a pole or branch point),
and away from kinks and jumps; with f and the backward expressions evaluated by mpmath at 40
digits. Weights are held at their initial values, as the layer holds them (float64). The points
are dyadic fractions, exact in float16 and bfloat16 too, so every dtype is tested at the same
inputs as the reference. Large values are fine (``100000*x**2``); each point carries the largest
magnitude the code meets there, so a test can skip a dtype that cannot hold it (float16 stops at
65504), and points where every dtype can are preferred.

A numeric filter, not ``continuous_domain``: that raises for erf, Max and friends and is wrong for
log(sin(x)); evaluating the expression itself is never wrong about where it is real.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath
import sympy

from . import numeric
from .analyze import Analysis, kink_functions
from .errors import DomainError
from .functions import MPMATH_NAMESPACE, real_derivative
from .precision import EXTREME_TOLERANCE, Screen
from .singular import rational_zeros

DIGITS = 40
#: Candidate values, in order of preference: away from 0, ±1 and integers (where values such as
#: log(1) = 0 make relative errors meaningless), spread over both signs and a few scales. Input
#: number i of a point takes the candidate ``(j + 3 i) mod n``, so inputs differ within a point.
CANDIDATES = (
    "0.375", "-0.625", "1.375", "-1.875", "2.625", "-2.375", "0.8125", "-0.3125",
    "3.25", "-3.75", "0.0625", "1.0625", "-1.0625", "4.5", "6.25", "9.5", "12.75",
)  # fmt: skip
MAX_POINTS = 8
MIN_POINTS = 3
#: Points whose magnitude (see ``References.magnitudes``) stays below this are preferred: float16
#: (max 65504) holds f and the gradients there with room to spare, so every dtype tests them.
PREFERRED_MAGNITUDE = 1e4
NEIGHBOUR = mpmath.mpf(1) / 64
#: A test point's values stay this far inside float64's range (1.8e308), intermediates included:
#: squares and sums of them in the checks must not overflow either.
WELL_INSIDE = 1e150


#: Where the generated test checks that outputs and gradients are finite: a grid through 0 and
#: the integers, where kinks and unselected branches (log(x) at x <= 0) typically sit.
FINITE_GRID = tuple(sympy.Rational(k, 2) for k in range(-8, 9))
#: With several inputs the grid also holds ties, where all (or two) inputs are equal: Max(x, y)
#: decides there which argument takes the gradient.
TIE_VALUES = tuple(sympy.Rational(k, 2) for k in (-2, 0, 1, 4))
MAX_FINITE = 1e30  # representable in float32 with room to spare
EXTREMES = (-1000.0, -100.0, -30.0, 30.0, 100.0, 1000.0)
FLOAT32_MAX = 3.4028234663852886e38
_MPMATH_CONSTANT = type(mpmath.pi)  # mpmath's pi and e: evaluated lazily, not an mpf


@dataclass(frozen=True)
class References:
    """Test points (one tuple per input) and reference values there, as Python floats.

    ``gradients[i]`` holds the backward expression for ``spec.variables[i]`` at each point (the
    partial derivative, or the surrogate), before any sum over a weight's broadcast.
    """

    points: tuple[tuple[float, ...], ...]
    forward: tuple[float, ...]
    gradients: tuple[tuple[float, ...], ...]
    # Per point, the largest magnitude the code meets there: f, each input's gradient, each
    # weight's gradient times the number of points (the weight's gradient sums over them), and
    # every constant of the code. A dtype can test a point when its largest value exceeds this.
    magnitudes: tuple[float, ...]
    # Per dtype, the indices of the points where the code run in it (``numeric``) gets f and
    # the gradients within half the generated check's tolerance: its tests use those.
    held: dict[str, tuple[int, ...]]
    largest_constant: float  # the largest constant in f or a gradient (see largest_constant)
    # Candidate points where f, a gradient or a value the code computes is not finite and real
    # in float64 (log(x) at x < 0; a tower beyond its range): the docstring names them.
    undefined: tuple[tuple[float, ...], ...]
    grid_points: tuple[tuple[float, ...], ...]  # kinks included; f and gradients finite
    grid_forward: tuple[float, ...]
    grid_gradients: tuple[tuple[float, ...], ...]
    # Grid points left out because f or a gradient is not finite there (poles, log(x) at x <= 0,
    # overflow): the generated test checks that the layer is not finite there either.
    grid_excluded: tuple[tuple[float, ...], ...]
    # Grid points left out otherwise: f and the gradients are finite but some exceeds
    # MAX_FINITE (one tolerance scale cannot check them with the others), or only a weight's
    # gradient is not finite there (x**a at x < 0). The test file names them.
    grid_large: tuple[tuple[float, ...], ...]
    second: tuple[tuple[float, ...], ...]  # d2f/dx_i2 per input at the points; () if unknown
    extreme_points: tuple[tuple[float, ...], ...]  # ±30, ±100, ±1000 where float32 holds f, f'
    extreme_forward: tuple[float, ...]
    extreme_gradients: tuple[tuple[float, ...], ...]
    # Extreme points where f and the gradients are finite in float32 but the code run in float32
    # loses precision (x + sqrt(x**2 + 4) at x = -1000): left out of the extreme check, stated.
    lost: tuple[tuple[float, ...], ...] = ()

    @property
    def derivative(self) -> tuple[float, ...]:
        """Backward values for the first input."""
        return self.gradients[0]


def references(analysis: Analysis) -> References:
    """Choose test points in the domain and evaluate f and the gradients with mpmath."""
    spec = analysis.spec
    arguments = list(spec.variables)
    modules = [MPMATH_NAMESPACE, "mpmath"]
    values_at = [
        sympy.lambdify(arguments, expr, modules=modules)
        for expr in (analysis.forward, *analysis.gradients)
    ]
    kinks = [
        sympy.lambdify(arguments, kink, modules=modules)
        for kink in kink_functions(analysis.forward)
    ]
    n_inputs = len(spec.inputs)
    # The float64 value the layer holds (pi/4 becomes 0.7853981633974483), exactly.
    weights = [mpmath.mpf(float(w.default)) for w in spec.weights]
    constant = largest_constant(analysis)
    screen = Screen(analysis)
    found_points: list[tuple[tuple[str, ...], tuple[float, ...]]] = []
    undefined: list[tuple[float, ...]] = []
    with mpmath.workdps(DIGITS):
        for j in range(len(CANDIDATES)):
            point = tuple(CANDIDATES[(j + 3 * i) % len(CANDIDATES)] for i in range(n_inputs))
            here = [mpmath.mpf(c) for c in point]
            around = [[c + sign * NEIGHBOUR for c in here] for sign in (-1, 1)]
            # float64 first: a point where the code overflows costs no 40-digit work.
            inner = [screen(p, WELL_INSIDE) for p in (here, *around)]
            found = None if inner[0] is None else _finite_values(values_at, here + weights)
            if found is None:
                undefined.append(tuple(float(c) for c in point))
                continue
            if None in inner or any(_finite_values(values_at, p + weights) is None for p in around):
                continue
            if not _away_from_kinks(kinks, [here, *around], weights):
                continue
            if not screen.holds(here, found, "float64"):
                continue  # ill-conditioned: float64 itself cannot meet the check's tolerance
            found_points.append((point, (*found, inner[0])))
    chosen = _choose(found_points, n_inputs, constant)
    if len(chosen) < MIN_POINTS:
        raise DomainError(
            f"found only {len(chosen)} test point(s) in [-4, 13] where {analysis.forward} and"
            f" its gradient are finite, real, below {MAX_FINITE:g} in size and away from kinks",
            hint="scaffold tests the layer at points where it is defined; shift or scale the input",
        )
    points = [point for point, _ in chosen]
    values = [found for _, found in chosen]
    return References(
        points=tuple(tuple(float(c) for c in point) for point in points),
        forward=tuple(v[0] for v in values),
        gradients=tuple(tuple(v[k] for v in values) for k in range(1, len(values_at))),
        magnitudes=tuple(_magnitude(v, n_inputs, len(chosen), constant) for v in values),
        held={
            dtype: tuple(
                j for j, point in enumerate(points) if screen.holds(point, values[j][:-1], dtype)
            )
            for dtype in ("float16", "bfloat16", "float32")
        },
        largest_constant=constant,
        undefined=tuple(undefined),
        **_grid(values_at, n_inputs, weights, screen, special_points(analysis)),
        second=_second_derivatives(analysis, points, weights, modules),
        **_extremes(values_at, n_inputs, weights, screen),
    )


def _choose(found_points: list, n_inputs: int, constant: float) -> list:
    """Up to MAX_POINTS points, in candidate order: those every dtype holds, else all."""
    preferred = [
        (point, found)
        for point, found in found_points
        if _magnitude(found, n_inputs, MAX_POINTS, constant) <= PREFERRED_MAGNITUDE
    ]
    if len(preferred) >= MIN_POINTS:
        return preferred[:MAX_POINTS]
    return found_points[:MAX_POINTS]


def _magnitude(found: tuple[float, ...], n_inputs: int, n_points: int, constant: float) -> float:
    """The largest magnitude at a point (see ``References.magnitudes``).

    ``found`` is f, the gradients, then the largest value the code computes on the way.
    """
    per_point = [abs(v) for v in (*found[: 1 + n_inputs], found[-1])]
    summed = [abs(v) * n_points for v in found[1 + n_inputs : -1]]
    return max([*per_point, *summed, constant])


def largest_constant(analysis: Analysis) -> float:
    """The largest magnitude of a constant in f or a gradient (100000 in 100000*x**2)."""
    largest = 0.0
    for expr in (analysis.forward, *analysis.gradients):
        pending = [expr]
        while pending:
            node = pending.pop()
            if isinstance(node, sympy.Expr) and node.is_number:
                try:
                    largest = max(largest, abs(float(node.evalf(20))))
                except (TypeError, ValueError, OverflowError):
                    largest = math.inf
            else:
                pending.extend(node.args)
    return largest


def _second_derivatives(analysis: Analysis, points, weights, modules) -> tuple:
    """d2f/dx_i2 at the points for each input, if it is exact there and finite everywhere.

    Points are away from kinks and jumps, where DiracDelta terms vanish.
    """
    if not analysis.second_order:
        return ()
    arguments = list(analysis.spec.variables)
    columns = []
    with mpmath.workdps(DIGITS):
        for index, symbol in enumerate(analysis.spec.inputs):
            second = real_derivative(analysis.gradients[index], symbol)
            second = second.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero)
            func = sympy.lambdify(arguments, second, modules=modules)
            column = []
            for point in points:
                at = [mpmath.mpf(c) for c in point] + weights
                found = _finite_values([func], at, limit=MAX_FINITE)
                if found is None:
                    return ()
                column.append(found[0])
            columns.append(tuple(column))
    return tuple(columns)


def _extremes(values_at, n_inputs: int, weights, screen: Screen) -> dict:
    """Points at ±30, ±100, ±1000 where f and its gradients are finite in float32, with them.

    Those where the code run in float32 misses the check's tolerance go to ``lost``.
    """
    points, values, lost = [], [], []
    with mpmath.workdps(DIGITS):
        for j in range(len(EXTREMES)):
            point = [EXTREMES[(j + i) % len(EXTREMES)] for i in range(n_inputs)]
            if screen(point, numeric.LARGEST["float64"]) is None:
                continue
            found = _finite_values(
                values_at, [mpmath.mpf(c) for c in point] + weights, limit=FLOAT32_MAX
            )
            if found is None:
                continue
            if not screen.holds(point, found, "float32", EXTREME_TOLERANCE):
                lost.append(tuple(point))
                continue
            points.append(tuple(point))
            values.append(found)
    return {
        "lost": tuple(lost),
        "extreme_points": tuple(points),
        "extreme_forward": tuple(v[0] for v in values),
        "extreme_gradients": tuple(tuple(v[k] for v in values) for k in range(1, len(values_at))),
    }


def special_points(analysis: Analysis) -> tuple[sympy.Rational, ...]:
    """Singular points and rational kinks of a one-input layer that the grid misses.

    Weights at their initial values; the grid includes these points exactly.
    """
    spec = analysis.spec
    if len(spec.inputs) != 1:
        return ()
    (x,) = spec.inputs
    weights = {w.symbol: w.default for w in spec.weights}
    found = set(analysis.singular.points if analysis.singular else ())
    for kink in kink_functions(analysis.forward):
        found |= rational_zeros(kink.subs(weights), x)
    return tuple(sorted(p for p in found if p not in FINITE_GRID and abs(p) <= 16))


def _grid(values_at, n_inputs: int, weights, screen: Screen, special=()) -> dict:
    """Grid points (kinks and singular points included), their values, the points left out.

    Kept where f and every gradient are finite.

    At a kink the reference gradient follows the conventions ``analyze`` applied (Heaviside(0)
    = 0), so the generated test checks them too.
    """
    points, values, excluded, large = [], [], [], []
    with mpmath.workdps(DIGITS):
        for point in _grid_points(n_inputs, special):
            here = [mpmath.mpf(c.p) / c.q for c in point]
            at = tuple(float(c) for c in point)
            overflows = screen(here, math.inf) is None
            found = None if overflows else _finite_values(values_at, here + weights, math.inf)
            if found is not None and max(map(abs, found)) <= MAX_FINITE:
                points.append(at)
                values.append(found)
            elif found is None and _undefined(screen, values_at, here, weights, n_inputs):
                excluded.append(at)
            else:  # too large to compare, or only a weight's gradient is undefined there
                large.append(at)
    return {
        "grid_excluded": tuple(excluded),
        "grid_large": tuple(large),
        "grid_points": tuple(points),
        "grid_forward": tuple(v[0] for v in values),
        "grid_gradients": tuple(tuple(v[k] for v in values) for k in range(1, len(values_at))),
    }


def _undefined(screen: Screen, values_at, here, weights, n_inputs: int) -> bool:
    """Whether f or an input's gradient is undefined at ``here``.

    Undefined: not finite and real at 40 digits, or, where the code overflows float64
    (mpmath could take minutes there: a tower), not finite as the code computes it. The
    generated test checks that the layer is not finite there either; a point where only a
    weight's gradient is undefined is not one.
    """
    run = screen.run(here, "float64")
    if run is not None and not run.finite:
        return not all(math.isfinite(v) for v in run.outputs[: 1 + n_inputs])
    return _finite_values(values_at[: 1 + n_inputs], here + weights, limit=math.inf) is None


def _grid_points(n_inputs: int, special=()) -> list[list[sympy.Rational]]:
    """The grid, input i offset by 3 i steps; with several inputs, ties as well."""
    size = len(FINITE_GRID)
    points = [[FINITE_GRID[(j + 3 * i) % size] for i in range(n_inputs)] for j in range(size)]
    points = sorted(points + [[p] for p in special]) if special else points
    if n_inputs > 1:
        points += [[value] * n_inputs for value in TIE_VALUES]
    if n_inputs > 2:
        # Two inputs tied, the others apart: Max(x, y, z) at x == y > z.
        for first in range(n_inputs):
            for second in range(first + 1, n_inputs):
                point = [FINITE_GRID[(3 * i) % size] for i in range(n_inputs)]
                point[second] = point[first] = TIE_VALUES[-1]
                points.append(point)
    return points


def _away_from_kinks(kinks, positions, weights) -> bool:
    """True when no kink function changes sign, or vanishes, across the point's neighbourhood."""
    for kink in kinks:
        signs = set()
        for position in positions:
            value = kink(*position, *weights)
            if not isinstance(value, (mpmath.mpf, int, float)) or value == 0:
                return False
            signs.add(value > 0)
        if len(signs) > 1:
            return False
    return True


def _finite_values(funcs, arguments, limit=MAX_FINITE) -> tuple[float, ...] | None:
    """The functions' values as floats, or None if any is complex, infinite or huge."""
    out = []
    for func in funcs:
        try:
            value = func(*arguments)
        except (ValueError, ZeroDivisionError, ArithmeticError, TypeError):
            return None
        if isinstance(value, (int, float, _MPMATH_CONSTANT)):
            # A constant gradient: pi*x gives mpmath's pi, a lazy constant, not an mpf.
            value = +mpmath.mpf(value)
        if isinstance(value, mpmath.mpc):
            if abs(value.imag) > abs(value) * mpmath.mpf(10) ** (-DIGITS + 5):
                return None
            value = value.real
        if not isinstance(value, mpmath.mpf) or not mpmath.isfinite(value):
            return None
        as_float = float(value)
        if not math.isfinite(as_float) or abs(as_float) > limit:
            return None
        out.append(as_float)
    return tuple(out)
