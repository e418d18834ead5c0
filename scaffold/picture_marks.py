"""Marks along a picture's line: kinks, what f and its derivatives do across them, singular points.

Takes a line (``picture_lines``) and a range; gives ``Mark`` values: each kink where f or a
backward expression jumps (located by bisection on the kink functions of f), the one-sided
limits there (unbounded ones as inf: log(x) at 0) and the values the generated code takes at
the kink itself; the removable singular points with the limit the code takes; the poles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import mpmath

from .picture_lines import DIGITS, value

#: One-sided limits at a kink come from the values at these distances (relative to its size).
DISTANCES = (1e-6, 1e-9, 1e-12)
#: Values that change by less than this factor of their last change per step converge (as
#: |x|**p for p > 0.03 does); others grow without bound (log(x) and 1/x at 0).
CONVERGING = 0.8
#: A kink function this small at a grid point is 0 there: sin(4*pi) is 1e-30 at 30 digits.
ZERO = 1e-20


@dataclass(frozen=True)
class Mark:
    """A point on the x axis: a kink, a singular point or a test point, and what holds there.

    ``values``: (curve key, value) pairs the code takes there (drawn as dots), ``text`` the sentence
    the figure's notes state.
    """

    x: float
    kind: str  # "kink", "singular", "test"
    text: str = ""
    values: tuple[tuple[str, float], ...] = ()


def kinks(functions, lo: float, hi: float, samples: int) -> list[float]:
    """Where a kink function changes sign or vanishes on [lo, hi], located by bisection."""
    found = set()
    step = (hi - lo) / samples
    grid = [lo + k * step for k in range(samples + 1)]
    for g in functions:
        with mpmath.workdps(DIGITS):
            signs = [value(g, t) for t in grid]
            for a, b, ga, gb in zip(grid, grid[1:], signs, signs[1:], strict=False):
                if abs(ga) < ZERO:
                    found.add(_snap(a))
                elif math.isfinite(ga) and math.isfinite(gb) and ga * gb < 0 and abs(gb) >= ZERO:
                    found.add(_snap(_bisect(g, a, b, ga)))
            if abs(signs[-1]) < ZERO:  # floor(x) at the range's end
                found.add(_snap(grid[-1]))
    return sorted(found)


def _bisect(g, a: float, b: float, ga: float) -> float:
    for _ in range(60):
        middle = (a + b) / 2
        gm = value(g, middle)
        if gm == 0 or not math.isfinite(gm):
            return middle
        if (gm > 0) == (ga > 0):
            a, ga = middle, gm
        else:
            b = middle
    return (a + b) / 2


def _snap(t: float) -> float:
    """A root found by bisection, on the nearest multiple of 1/64 when that close."""
    nearest = round(t * 64) / 64
    return nearest if abs(nearest - t) < 1e-9 * max(1.0, abs(t)) else t


def _sides(line, kink: float) -> tuple[list, list]:
    """Every curve's one-sided limits at ``kink``, left and right: (limit, uncertainty) pairs.

    A limit is inf (signed) where the values grow without bound, NaN where f is undefined.
    """
    scale = max(1.0, abs(kink))
    found = []
    for sign in (-1, 1):
        rows = [line.exact(kink + sign * d * scale) for d in DISTANCES]
        found.append([_limit(*values) for values in zip(*rows, strict=True)])
    return found[0], found[1]


def _limit(far: float, near: float, nearest: float) -> tuple[float, float]:
    """The limit of values at shrinking distances, and how far it may still be from the last.

    Unbounded (signed inf) when the values grow in size by steps that do not shrink (log(x)
    and 1/x at 0). Limits approached as slowly as 1/log(x) are beyond three values.
    """
    if math.isnan(far) or math.isnan(near) or math.isnan(nearest):
        return math.nan, 0.0
    if math.isinf(nearest):
        return nearest, 0.0
    first, second = abs(near - far), abs(nearest - near)
    if second == 0:
        return nearest, 0.0
    growing = abs(far) < abs(near) < abs(nearest)
    if growing and second >= CONVERGING * first:
        return math.copysign(math.inf, nearest), 0.0
    ratio = min(second / first, 0.95) if first else 0.5
    return nearest, second * ratio / (1 - ratio)  # what a geometric tail still adds


def jumps(line, kink: float) -> bool:
    """Whether f or a backward expression changes at ``kink``: a jump, or unbounded there.

    A kink of the formula's pieces need not be one of f: Abs(d) in where(Abs(d) <= 1, ...).
    """
    left, right = _sides(line, kink)
    return any(_change(a, b) for a, b in zip(left, right, strict=True))


def _change(a: tuple[float, float], b: tuple[float, float]) -> str:
    """What a curve does across a kink, from its one-sided limits; "" where it goes on smoothly.

    A jump beyond the limits' uncertainty, a value on one side only, or a value that grows
    without bound (sqrt(abs(x))' at 0: from -inf to inf; cbrt's: inf on both sides).
    """
    (u, du), (v, dv) = a, b
    if math.isnan(u) and math.isnan(v):
        return ""
    if math.isinf(u) and u == v:
        return f"is unbounded ({short(u)}) on both sides"
    if math.isnan(u) or math.isnan(v) or math.isinf(u) or math.isinf(v):
        return f"jumps from {short(u)} to {short(v)}"
    if abs(u - v) > 1e-6 * (1 + abs(u) + abs(v)) + 2 * (du + dv):
        return f"jumps from {short(u)} to {short(v)}"
    return ""


def kink_mark(line, kink: float) -> Mark:
    """What f and the varied input's backward do across a kink, and what the code takes there.

    What the code takes is stated at a kink on a multiple of 1/64, an input that float64 and
    float32 hold exactly, where the code's comparison ties; elsewhere (Max(x, 1/3)) no input
    ties exactly with the rounded constant.
    """
    left, right = _sides(line, kink)
    parts = [
        f"{line.curves[i].label} {change}"
        for i in (0, line.varied)
        if (change := _change(left[i], right[i]))
    ]
    taken, said = _taken(line, kink) if (kink * 64).is_integer() else ((), "")
    if not parts:
        return Mark(kink, "kink", "", taken)
    return Mark(
        kink, "kink", f"At {line.variable} = {short(kink)}: {' and '.join(parts)}{said}.", taken
    )


def _taken(line, at: float) -> tuple[tuple, str]:
    """The values the code takes at ``at`` (by curve key), and a clause stating them."""
    code = line.code(at, "float64")
    if code is None:
        return (), ""
    f, g = code[0], code[line.varied]
    name = line.curves[line.varied].label
    said = f"; the code takes {line.curves[0].label} = {short(f)}, {name} = {short(g)} there"
    return (("f", f), (line.curves[line.varied].key, g)), said


def singular_marks(line, lo: float, hi: float) -> list[Mark]:
    """Removable singular points (the code's limit), unresolved ones and poles in [lo, hi]."""
    removable, unresolved, poles = line.singular()
    marks = []
    for at in removable:
        if lo <= at <= hi:
            taken, said = _taken(line, at)
            text = f"At {line.variable} = {short(at)} the formula is 0/0; it has a limit{said}."
            marks.append(Mark(at, "singular", text, taken))
    for at in unresolved:
        if lo <= at <= hi:
            taken, said = _taken(line, at)
            text = (
                f"At {line.variable} = {short(at)} the formula is 0/0 or the like and seems to"
                f" have a finite limit, which scaffold does not compute{said}."
            )
            marks.append(Mark(at, "singular", text, taken))
    for at in poles:
        if lo <= at <= hi:
            text = f"At {line.variable} = {short(at)} f has no finite value."
            marks.append(Mark(at, "singular", text))
    return marks


def short(number: float) -> str:
    """A value as the notes state it: 0.5, -1, 1.23457e+06, inf, undefined."""
    if math.isnan(number):
        return "undefined"
    return f"{number + 0.0:.6g}"  # + 0.0: -0.0 reads 0; inf and -inf as such
