"""The generated code of a formula with reductions, run on one row in a dtype (``numeric``).

``numeric`` runs the code at one point; a reduction needs the whole row. Here each element of
the row has its own run, and a reduction node asks every run of the row for its argument,
then combines the values as TensorFlow's kernel does, each operation rounded to the dtype
(sum in order, mean as sum / n, logsumexp shifted by the row's max, norm as the square root
of the sum of squares). ``RowScreen.holds`` answers what ``rows`` asks of a table row: does
the code run in float32 (float16, bfloat16) get f and the vector-Jacobian products within
half the generated check's tolerance there? (A layer norm of (-1000, -999, -998.5, ...)
does not in float32: the mean's rounding error is a large part of x - mean.)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from . import numeric
from .precision import TOLERANCE, within
from .reductions import (
    AxisSize,
    DivideNoNan,
    IsExtreme,
    LogSoftmax,
    LogSumExp,
    Norm,
    ReduceMax,
    ReduceMean,
    ReduceMin,
    ReduceSum,
    Reduction,
)

if TYPE_CHECKING:
    from .analyze import Analysis


def _sum(values, rounded):
    total = values[0]
    for value in values[1:]:
        total = rounded(total + value)
    return total


def _log_sum_exp(values, rounded):
    top = max(values)
    if not math.isfinite(top):
        return top
    exps = [rounded(math.exp(rounded(v - top))) for v in values]
    return rounded(top + rounded(math.log(_sum(exps, rounded))))


#: node -> (the argument's values along the row, rounding) -> the reduction, as the kernel.
KERNELS = {
    ReduceSum: _sum,
    ReduceMean: lambda values, rounded: rounded(_sum(values, rounded) / len(values)),
    ReduceMax: lambda values, rounded: max(values),
    ReduceMin: lambda values, rounded: min(values),
    LogSumExp: _log_sum_exp,
    Norm: lambda values, rounded: rounded(
        math.sqrt(_sum([rounded(v * v) for v in values], rounded))
    ),
}


class _ElementRun(numeric._Run):
    """The run of one element of a row; reductions read the whole row."""

    def __init__(self, env, dtype, row) -> None:
        super().__init__(env, dtype)
        self.row = row  # every element's run, this one included

    def _compute(self, node):
        if isinstance(node, Reduction):
            values = [run.value(node.args[0]) for run in self.row]
            if any(math.isnan(v) for v in values):
                return numeric.NAN
            return KERNELS[type(node)](values, self.round)
        if isinstance(node, AxisSize):
            return float(len(self.row))
        if isinstance(node, LogSoftmax):  # as tf.nn.log_softmax: from u - max(u)
            values = [run.value(node.args[0]) for run in self.row]
            top = max(values)
            shift = self.round(self.value(node.args[0]) - top)
            exps = [self.round(math.exp(self.round(v - top))) for v in values]
            return self.round(shift - self.round(math.log(_sum(exps, self.round))))
        if isinstance(node, IsExtreme):
            return 1.0 if self.value(node.args[0]) == self.value(node.args[1]) else 0.0
        if isinstance(node, DivideNoNan):
            a, b = (self.value(arg) for arg in node.args)
            return 0.0 if b == 0 else numeric._divide(a, b)
        return super()._compute(node)


def evaluate_row(outputs, envs, dtype, temporaries=()) -> list[tuple[float, ...]]:
    """The outputs at each element of a row (``envs``: symbol -> value, one per element)."""
    row: list[_ElementRun] = []
    row.extend(_ElementRun(env, dtype, row) for env in envs)
    for symbol, expr in temporaries:
        for run in row:
            run.values[symbol] = run.value(expr)
    return [tuple(float(run.value(expr)) for expr in outputs) for run in row]


class RowScreen:
    """The code of ``analysis`` run on table rows; see the module."""

    def __init__(self, analysis: Analysis, upstream) -> None:
        self.analysis = analysis
        self.upstream = upstream  # the symbol standing for dy in the code
        self.outputs = (analysis.forward_out, *analysis.grad_outs)
        self.temporaries = analysis.forward_temps + analysis.grad_temps

    def run(self, envs, dtype: str) -> list[tuple[float, ...]] | None:
        """F and each variable's gradient at each element; None if the code cannot be run."""
        try:
            return evaluate_row(self.outputs, envs, dtype, self.temporaries)
        except numeric.Unsupported:
            return None

    def holds(self, envs, exact: tuple, dtype: str, shape, tolerance=None) -> bool:
        """Whether the code run in ``dtype`` is within half the check's tolerance.

        ``exact``: the cells f, then each variable's gradient. ``shape(found)`` turns the values
        per element into cells as the layer returns them (a scalar weight's gradient summed).
        True when the code cannot be run here.
        """
        found = self.run(envs, dtype)
        if found is None:
            return True
        actual = _flat(shape(found))
        wanted = _flat(exact)
        if tolerance is None:
            rtol = TOLERANCE[dtype]
            tolerance = (rtol, rtol * max(1.0, *map(abs, wanted)))
        return within(actual, wanted, tolerance[0] / 2, tolerance[1] / 2)


def _flat(cells) -> list[float]:
    return [v for cell in cells for v in (cell if isinstance(cell, tuple) else (cell,))]
