"""The plan's part for elementwise formulas: their reference tables, laid out for the test.

Takes the ``Analysis`` and the ``References`` of an elementwise formula; gives the
``LayerPlan`` fields of the reference tables (see ``rowplan`` for formulas with reductions):
one tuple per test point, wrapped within black's line length inside the test's ``# fmt: off``
block, and what the docstring says of the domain and of lost precision.
"""

from __future__ import annotations

from .analyze import Analysis
from .reference import References

ROW_WIDTH = 88  # black's line length: reference rows are laid out by hand (black skips them)


def point_tables(analysis: Analysis, refs: References) -> dict:
    """The reference tables of an elementwise layer, and what the test says of them."""
    return dict(
        columns=_columns(analysis, refs),
        point_rows=_rows(refs.points, refs.forward, refs.gradients, refs.second),
        grid_rows=_rows(refs.grid_points, refs.grid_forward, refs.grid_gradients),
        extreme_rows=_rows(refs.extreme_points, refs.extreme_forward, refs.extreme_gradients),
        excluded_rows=_rows(refs.grid_excluded, None, ()),
        large_text=", ".join(
            "(" + ", ".join(f"{v:g}" for v in point) + ")" for point in refs.grid_large
        ),
        held=tuple(f'"{dtype}": {list(held)},' for dtype, held in refs.held.items()),
        domain_text=domain_text(analysis, refs),
        largest_constant=repr(refs.largest_constant) if refs.largest_constant else "",
        second_skip=_second_skip(analysis, refs),
    )


def _columns(analysis: Analysis, refs: References) -> str:
    """Column names of the reference tables: inputs, f(...), df/dv..., d2f/dx2... ."""
    variables = [s.name for s in analysis.spec.variables]
    names = [s.name for s in analysis.spec.inputs]
    names += [f"f({', '.join(variables)})", *(f"df/d{v}" for v in variables)]
    if refs.second:
        names += [f"d2f/d{s.name}2" for s in analysis.spec.inputs]
    return "(" + ", ".join(f'"{n}"' for n in names) + ")"


def _rows(points, forward, gradients, second=()) -> tuple[str, ...]:
    """Source lines of a reference table: one tuple per point, wrapped within ROW_WIDTH.

    ``forward`` None: the points alone.

    The test template places them in a ``# fmt: off`` block, indented by four spaces: a
    table reads better with one point per line than black's one value per line.
    """
    lines: list[str] = []
    for j, point in enumerate(points):
        values = [*point, *(() if forward is None else (forward[j],))]
        values += [*(g[j] for g in gradients), *(d[j] for d in second)]
        items = [repr(float(v)) for v in values]
        items[-1] += "," if len(items) == 1 else ""  # a tuple of one
        line = "("
        for k, item in enumerate(items):
            item += ")," if k == len(items) - 1 else ","
            if len(line) + len(item) + 5 > ROW_WIDTH and line != "(":
                lines.append(line)
                line = " " + item
            else:
                line += ("" if line in ("(", " ") else " ") + item
        lines.append(line)
    return tuple(lines)


def _points_text(names: list[str], points) -> str:
    if len(names) == 1:
        return f"{names[0]} = " + ", ".join(f"{p[0]:g}" for p in sorted(points))
    return (
        "("
        + ", ".join(names)
        + ") = "
        + ", ".join("(" + ", ".join(f"{v:g}" for v in p) + ")" for p in points)
    )


def domain_text(analysis: Analysis, refs: References) -> str:
    """Where the test points lie, and where the layer is undefined ("" if nothing to say).

    The first when f is not finite at every candidate; the second when no singular-point
    search ran (several inputs, --no-stabilize).
    """
    names = [s.name for s in analysis.spec.inputs]
    parts = []
    if refs.undefined:
        parts.append(
            f"The tests check f at {_points_text(names, refs.points)}: f, a gradient or a"
            " value the code computes is not finite and real (in float64) at the other"
            f" candidate points, {_points_text(names, refs.undefined)}."
        )
    if refs.grid_excluded and (analysis.singular is None or analysis.singular.variable is None):
        parts.append(
            "The layer is not finite (NaN or Inf) where f or its gradient is undefined,"
            f" e.g. at {_points_text(names, refs.grid_excluded[:8])} (the tests check it);"
            " scaffold looks for limits at such points only in layers of one input with"
            " stable rewrites on."
        )
    return "\n\n".join(parts)


def lost_text(analysis: Analysis, refs: References) -> str:
    """Where the code run in float32 misses the extreme check's tolerance ("" if nowhere)."""
    if not refs.lost:
        return ""
    names = [s.name for s in analysis.spec.inputs]
    where = "; ".join(
        ", ".join(f"{n} = {v:g}" for n, v in zip(names, p, strict=True)) for p in refs.lost
    )
    return (
        f"In float32 this code loses precision at {where} (cancellation or overflow on the"
        " way; scaffold found no stable rewrite that holds there): the extreme-input test"
        " leaves these points out. Use float64 there, or rescale the input"
    )


def _second_skip(analysis: Analysis, refs: References) -> str:
    """Why the generated test does not check second derivatives ("" when it does)."""
    if any(analysis.surrogate):
        return "the gradient is a surrogate, not a derivative: it has no second derivative to check"
    if not analysis.second_order:
        return (
            "f has steps (sign, Heaviside, floor, ceiling or round): their derivative is a"
            " convention (0) and its derivative a Dirac delta"
        )
    if not refs.second:
        return "the second derivative is not finite at every test point"
    return ""
