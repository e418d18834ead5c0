"""The plan's part for formulas with reductions: their tables, laid out for the test.

Takes the ``Analysis`` and the ``RowReferences`` of a formula that reduces over the feature
axis; gives the ``LayerPlan`` fields of the reference tables (see ``plan._point_tables`` for
the elementwise ones): each test row as a tuple of cells, one line per cell (a row of inputs,
dy, f, a vector-Jacobian product), inside the test's ``# fmt: off`` block.
"""

from __future__ import annotations

import dataclasses

import sympy

from .analyze import STEPS, UPSTREAM, Analysis
from .reference import largest_constant
from .rows import RowReferences

LINE_WIDTH = 88  # black's line length
INDENT = 8  # a cell sits inside its row's tuple, inside the table's list


def named_upstream(analysis: Analysis, upstream: sympy.Symbol) -> Analysis:
    """``analysis`` with ``UPSTREAM`` named as the generated code names the upstream gradient."""
    named = {UPSTREAM: upstream}
    return dataclasses.replace(
        analysis,
        grad_temps=tuple((s, e.xreplace(named)) for s, e in analysis.grad_temps),
        grad_outs=tuple(e.xreplace(named) for e in analysis.grad_outs),
        forward_temps=tuple((s, e.xreplace(named)) for s, e in analysis.forward_temps),
    )


def row_tables(analysis: Analysis, refs: RowReferences) -> dict:
    """The reference tables of a layer with reductions, and what the test says of them."""
    constant = largest_constant(analysis)
    return dict(
        columns="(" + ", ".join(f'"{name}"' for name in refs.columns) + ")",
        point_rows=_table(refs.points),
        grid_rows=_table(refs.special),
        extreme_rows=_table(refs.extremes),
        excluded_rows=(),
        large_text="",
        held=tuple(f'"{dtype}": {list(rows)},' for dtype, rows in refs.held.items()),
        domain_text=_domain_text(analysis, refs),
        largest_constant=repr(constant) if constant else "",
        second_skip=_second_skip(analysis),
    )


def _table(rows: tuple[tuple, ...]) -> tuple[str, ...]:
    """Source lines of a table: each row a parenthesised tuple, one line per cell."""
    lines: list[str] = []
    for row in rows:
        lines.append("(")
        for cell in row:
            if isinstance(cell, tuple):
                lines += ["    " + line for line in _wrapped(cell)]
            else:
                lines.append(f"    {float(cell)!r},")
        lines.append("),")
    return tuple(lines)


def _wrapped(values: tuple[float, ...]) -> list[str]:
    """``(a, b, ...),`` over as many lines as LINE_WIDTH needs, continuation indented."""
    items = [repr(float(v)) for v in values]
    if len(items) == 1:
        items[0] += ","  # a tuple of one
    lines, line = [], "("
    for index, item in enumerate(items):
        item += ")," if index == len(items) - 1 else ","
        if INDENT + len(line) + len(item) + 1 > LINE_WIDTH and line != "(":
            lines.append(line)
            line = " " + item
        else:
            line += ("" if line in ("(", " ") else " ") + item
    lines.append(line)
    return lines


def lost_text(refs: RowReferences) -> str:
    """Where the code run in float32 misses the extreme check's tolerance ("" if nowhere)."""
    if not refs.lost:
        return ""
    shown = "; ".join("(" + ", ".join(f"{v:g}" for v in row) + ")" for row in refs.lost)
    return (
        f"In float32 this code loses precision at the rows {shown} (run in float32 it is NaN,"
        " infinite, or off by more than the extreme check's tolerance: overflow on the way,"
        " or rounding that is large against the result, such as the mean's against"
        " x - mean): the extreme-row test leaves them out. Use float64 there, or rescale or"
        " centre the input"
    )


def _domain_text(analysis: Analysis, refs: RowReferences) -> str:
    """Where the test rows lie when f is not finite at every candidate row ("" if it is)."""
    if not refs.dropped:
        return ""
    shown = ", ".join("(" + ", ".join(f"{v:g}" for v in row) + ")" for row in refs.dropped[:2])
    return (
        f"f or its gradient is not finite and real, or not computable in float64 within the"
        f" check's tolerance, at rows such as {shown}: the tests leave such rows out (see"
        " POINTS for the rows they use)."
    )


def _second_skip(analysis: Analysis) -> str:
    """Why the generated test does not check second derivatives ("" when it does)."""
    if analysis.forward.has(*STEPS):
        return (
            "f has steps (sign, Heaviside, floor, ceiling or round): their derivative is a"
            " convention (0) and its derivative a Dirac delta"
        )
    return ""
