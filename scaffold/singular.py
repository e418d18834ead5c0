"""Singular points: where the formula is undefined, and its limit there when it has one.

Takes the forward expression and the layer's spec; gives an equal expression in which each
removable singularity of the one input (sinc's 0/0 at 0, ``(exp(x) - 1)/x``, ``log(1 + x)/x``,
``(1 - cos(x))/x**2``) is covered by the function's Taylor polynomial around the point, plus the
singular points with no finite limit (``1/x`` at 0), which the docstring states.

JAX's ``jnp.sinc`` returns the Maclaurin value at exactly 0 and keeps the cancelling formula
beside it, so ``sinc'(1e-8)`` in float32 is whatever the cancellation leaves (8.0 with the plain
formula; the truth is ~0). Here the polynomial covers a neighbourhood ``|x - p| < r``: inside it
the polynomial is exact to float64 rounding (its degree is chosen so), outside it the formula
has lost at most about ``eps / r**2`` to cancellation. The gradient is the polynomial's
derivative, so value and gradient are exact at and near the point, and ``guard`` keeps the
formula's NaN at p out of the gradient.

Candidates are the grid points of the generated test (0, the halves to ±4) and the rational
zeros of polynomial denominators; a candidate is singular when the code is not finite there in
float64 (``numeric``) but is on both sides. A jump (``Abs(x)/x``: a limit on each side, not the
same) is no removable singularity. A formula with weights gets no polynomial: one exact at the
weights' initial values is not once they train; the docstring states such points instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy

from . import numeric
from .spec import LayerSpec

#: Radii tried for the polynomial's neighbourhood, largest first.
RADII = tuple(sympy.Rational(1, 2**k) for k in range(2, 7))
ORDER = 26  # terms of the series computed; the polynomial keeps those that matter
#: A term below this fraction of the polynomial's largest term is float64 rounding.
NEGLIGIBLE = 1e-17
SIDE = 1e-3  # "finite on both sides": at p ± SIDE


@dataclass(frozen=True)
class Patch:
    """f's Taylor polynomial around a removable singular point, used within a radius."""

    center: sympy.Rational
    radius: sympy.Rational
    coefficients: tuple[sympy.Expr, ...]  # of (x - center)**k, k = 0, 1, ...

    def condition(self, x: sympy.Symbol) -> sympy.Basic:
        """Where the polynomial replaces the formula."""
        return sympy.Abs(x - self.center) < self.radius

    def polynomial(self, x: sympy.Symbol, variable: sympy.Symbol | None = None) -> sympy.Expr:
        """The polynomial in Horner form, or its derivative for ``variable``."""
        t = x - self.center
        coefficients = list(self.coefficients)
        if variable == x:
            coefficients = [k * c for k, c in enumerate(coefficients)][1:]
        elif variable is not None:
            coefficients = [c.diff(variable) for c in coefficients]
        return _horner(coefficients or [sympy.S.Zero], t)


@dataclass(frozen=True)
class Singularities:
    """The singular points found, and the polynomials that cover the removable ones."""

    variable: sympy.Symbol | None
    patches: tuple[Patch, ...]
    poles: tuple[sympy.Rational, ...]  # points with no finite limit
    points: tuple[sympy.Rational, ...]  # every singular point found (for the test grid)
    # Points where f seems to have a limit that no trusted Taylor polynomial gives (the
    # formula has weights: sin(a*x)/x): the layer is NaN there, and the docstring says so.
    unresolved: tuple[sympy.Rational, ...] = ()

    def cover(self, expr: sympy.Expr, variable: sympy.Symbol | None = None) -> sympy.Expr:
        """``expr`` (f, or its derivative for ``variable``) with the polynomials around it."""
        if not self.patches:
            return expr
        x = self.variable
        pieces = [(p.polynomial(x, variable), p.condition(x)) for p in self.patches]
        return sympy.Piecewise(*pieces, (expr, True))

    def notes(self) -> tuple[str, ...]:
        """Sentences for the docstring: each covered point, then the points without a limit."""
        x = self.variable
        removed = tuple(
            f"At {x} = {p.center} the formula as typed is undefined (0/0 or the like) but has"
            f" a finite limit: within |{x - p.center}| < {p.radius} the code computes the"
            f" Taylor polynomial of degree {len(p.coefficients) - 1} around {p.center}"
            " instead (exact to float64 rounding there), in value and gradient."
            for p in self.patches
        )
        if self.unresolved:
            where = ", ".join(str(p) for p in self.unresolved)
            removed += (
                f"At {x} = {where} the formula as typed is undefined (0/0 or the like) and"
                " seems to have a finite limit, which scaffold does not compute: it depends"
                " on the weights, or no Taylor series agreed with the formula there. The"
                " layer is not finite there (the tests check that it is not); rewrite the"
                " formula without the 0/0 to avoid it.",
            )
        if not self.poles:
            return removed
        where = ", ".join(str(p) for p in self.poles)
        return (
            *removed,
            f"f has no finite limit at {self.variable} = {where} (a pole, or a jump from"
            " one side to the other): the layer is not defined there (the tests check that"
            " it is not finite there either).",
        )


def candidates(expr: sympy.Expr, variable: sympy.Symbol) -> list[sympy.Rational]:
    """The grid points and the rational zeros of polynomial denominators, sorted."""
    found = {sympy.Rational(k, 2) for k in range(-8, 9)}
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Pow) and node.exp.is_number and node.exp.is_negative:
            found |= rational_zeros(node.base, variable)
    return sorted(found)


def rational_zeros(expr: sympy.Expr, variable: sympy.Symbol) -> set[sympy.Rational]:
    """The rational zeros of ``expr`` if it is a polynomial in ``variable`` alone, else none."""
    if expr.free_symbols != {variable} or not expr.is_polynomial(variable):
        return set()
    try:
        poly = sympy.Poly(expr, variable)
        if poly.degree() > 6:
            return set()
        return {root for root in sympy.roots(poly, filter="Q") if abs(root) <= 16}
    except (sympy.PolynomialError, NotImplementedError):
        return set()


def find(forward: sympy.Expr, plain: sympy.Expr, spec: LayerSpec) -> Singularities:
    """The singular points of ``forward`` (``plain``: the same formula as typed).

    With a polynomial patch for each removable one. Only layers with one input are searched.
    """
    if len(spec.inputs) != 1:
        return Singularities(None, (), (), ())
    (x,) = spec.inputs
    weights = {w.symbol: float(w.default) for w in spec.weights}
    try:
        singular = [p for p in candidates(plain, x) if _singular(forward, x, p, weights)]
    except numeric.Unsupported:
        return Singularities(x, (), (), ())
    patches, poles, unresolved = [], [], []
    for p in singular:
        if not _converges(forward, x, p, weights):
            poles.append(p)
        elif patch := _patch(plain, x, p, weights, [q for q in singular if q != p]):
            patches.append(patch)
        else:
            unresolved.append(p)
    return Singularities(x, tuple(patches), tuple(poles), tuple(singular), tuple(unresolved))


def _finite(expr, x, at: float, weights) -> bool:
    found = numeric.evaluate([expr], {x: at, **weights})
    return found.finite


def _singular(expr, x, p, weights) -> bool:
    at = float(p)
    return not _finite(expr, x, at, weights) and all(
        _finite(expr, x, at + side, weights) for side in (-SIDE, SIDE)
    )


def _converges(expr, x, p, weights) -> bool:
    """Whether f seems to tend to a limit at p.

    Its changes must shrink as the step does (f at p + 1e-2, 1e-3, 1e-4, each side). A cheap
    filter before SymPy's series, which can run for minutes at a pole (loggamma at 0): 1/x
    and log|x| fail it, sinc passes.
    """
    sides = []
    for sign in (-1, 1):
        values = [
            numeric.evaluate([expr], {x: float(p) + sign * h, **weights}).outputs[0]
            for h in (1e-2, 1e-3, 1e-4)
        ]
        if not all(math.isfinite(v) for v in values):
            return False
        first, second = abs(values[1] - values[0]), abs(values[2] - values[1])
        if second > 0.2 * first + 1e-12 * max(1.0, abs(values[2])):
            return False
        sides.append(values[2])
    # A jump (Abs(x)/x, Max(x, 0)/x) has a limit on each side, but not the same one.
    return abs(sides[0] - sides[1]) <= 1e-2 * max(1.0, abs(sides[0]), abs(sides[1]))


def _patch(plain, x, p, weights, others) -> Patch | None:
    """The Taylor polynomial at ``p`` and where it is exact; None: none that can be trusted.

    None when the formula has weights: a polynomial exact at their initial values loses
    accuracy as they train (sin(a*x)/x: 3e-8 at a = 10 for a patch made at a = 2, 3.8 at
    a = 30), and the point itself may move (sin(x - th)/(x - th)). The layer is then NaN at
    p, and says so. None too when SymPy's series gives no polynomial, or one that does not
    agree with the formula near p (``_agrees``).
    """
    if plain.free_symbols & set(weights):
        return None  # the polynomial's error grows as the weights train (sin(a*x)/x, a = 30)
    coefficients = _coefficients(plain, x, p, ORDER)
    if coefficients is None:
        return None
    try:
        values = [abs(complex(c.evalf(20))) for c in coefficients]
    except (TypeError, ValueError):
        return None
    if not all(math.isfinite(v) for v in values):
        return None
    nearest = min((abs(q - p) for q in others), default=sympy.oo)
    for radius in RADII:
        if 2 * radius > nearest:
            continue
        degree = _degree([v * float(radius) ** k for k, v in enumerate(values)])
        if degree is None:
            continue
        kept = tuple(_float64(c.evalf(20)) for c in coefficients[: degree + 1])
        patch = Patch(center=p, radius=radius, coefficients=kept)
        return patch if _agrees(patch, plain, x) else None
    return None


def _agrees(patch: Patch, plain: sympy.Expr, x: sympy.Symbol) -> bool:
    """Whether the polynomial equals the formula near the point, both in float64.

    Compared at half the radius and at the radius on each side: a series SymPy got wrong
    (as for Max(x, 0)/x) is never used.
    """
    polynomial = patch.polynomial(x)
    for fraction in (-1, -0.5, 0.5, 1):
        at = {x: float(patch.center + fraction * patch.radius)}
        ours = numeric.evaluate([polynomial], at).outputs[0]
        theirs = numeric.evaluate([plain], at).outputs[0]
        if not abs(ours - theirs) <= 1e-8 * max(1.0, abs(theirs)):
            return False
    return True


def _coefficients(expr, x, p, order: int) -> list[sympy.Expr] | None:
    """Taylor coefficients of ``expr`` around ``x = p`` up to ``order`` (exclusive).

    None where SymPy's series is not a polynomial there (a pole, a log term) or fails.
    """
    t = sympy.Dummy("t", real=True)
    try:
        series = sympy.series(expr.subs(x, t + p), t, 0, order).removeO()
        coefficients = sympy.Poly(series, t).all_coeffs()[::-1]
    except (MemoryError, RecursionError):
        raise
    except Exception:
        return None
    if series.has(sympy.log) or any(
        c.has(sympy.zoo, sympy.oo, sympy.nan, sympy.Order) for c in coefficients
    ):
        return None
    return coefficients + [sympy.S.Zero] * (order - len(coefficients))


def _degree(terms: list[float]) -> int | None:
    """The lowest degree whose omitted terms (and their derivatives) are float64 rounding."""
    scale = max(terms)
    for d in range(len(terms) - 2):
        rest = range(d + 1, len(terms))
        if (
            max(terms[k] for k in rest) <= NEGLIGIBLE * scale
            and max(k * terms[k] for k in rest) <= NEGLIGIBLE * scale
        ):
            return d
    return None


def _float64(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with each number the nearest float64, shown as repr shows it (0.1666...7)."""
    return expr.xreplace({f: sympy.Float(repr(float(f)), 17) for f in expr.atoms(sympy.Float)})


def _horner(coefficients, t: sympy.Expr) -> sympy.Expr:
    """c0 + t*(c1 + t*(c2 + ...)), evaluated inside out: few operations, little rounding."""
    result = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        result = c + t * result if result != 0 else c
    return result
