"""The generated code run in a dtype at a point, against the exact values there.

Takes an ``Analysis`` (its temporaries and outputs, the code's dataflow) and a point; answers
what ``reference`` asks before it spends any 40-digit work, and what the generated test's
per-dtype points are: is every value the code computes finite (and how large is the largest),
and does the code run in float64, float32, float16 or bfloat16 get f and the gradients within
the generated check's tolerance there. The arithmetic is ``numeric``'s.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from . import numeric

if TYPE_CHECKING:
    from .analyze import Analysis

#: The generated checks' tolerances, rendered into scaffold_checks.py (one source): a point
#: counts as held by a dtype when the code run in it (``numeric``) is within half of it.
TOLERANCE = {"float16": 1e-2, "bfloat16": 6e-2, "float32": 2e-5, "float64": 1e-12}
#: The extreme-input check's tolerance in float32 (relative, absolute).
EXTREME_TOLERANCE = (1e-4, 1e-6)


def within(actual: tuple[float, ...], exact: tuple[float, ...], rtol: float, atol: float) -> bool:
    """Every value finite and within ``rtol`` relative / ``atol`` absolute of the exact one."""
    return all(
        math.isfinite(a) and abs(a - e) <= atol + rtol * abs(e)
        for a, e in zip(actual, exact, strict=True)
    )


class Screen:
    """The generated code run in float64 (``numeric``) at a point, before any 40-digit work."""

    def __init__(self, analysis: Analysis) -> None:
        self.outputs = (analysis.forward_out, *analysis.grad_outs)
        self.temporaries = analysis.forward_temps + analysis.grad_temps
        self.variables = analysis.spec.variables
        self.weights = [float(w.default) for w in analysis.spec.weights]
        self.usable = True
        self._runs: dict[tuple, numeric.Evaluation] = {}

    def __call__(self, point, limit: float) -> float | None:
        """The largest value the code computes at ``point`` (inputs), or None.

        None where a value is NaN, infinite or above ``limit``. Code it cannot run passes with 0.
        """
        found = self.run(point, "float64")
        if found is None:
            return 0.0
        return found.largest if found.finite and found.largest <= limit else None

    def run(self, point, dtype: str) -> numeric.Evaluation | None:
        """The code's outputs at ``point`` in ``dtype``; None if it cannot be run.

        Remembered: a point is screened, then judged, then its grid status decided.
        """
        if not self.usable:
            return None
        key = (tuple(map(float, point)), dtype)
        if key not in self._runs:
            values = dict(zip(self.variables, [*key[0], *self.weights], strict=True))
            try:
                self._runs[key] = numeric.evaluate(self.outputs, values, dtype, self.temporaries)
            except numeric.Unsupported:
                self.usable = False
                return None
        return self._runs[key]

    def holds(self, point, exact: tuple[float, ...], dtype: str, tolerance=None) -> bool:
        """Whether the code run in ``dtype`` gets f and the gradients right at ``point``.

        Right means within half the check's tolerance: ``(rtol, atol)``, or by default the dtype's
        rtol with an absolute part scaled by the largest value. True when the code cannot
        be run here.
        """
        found = self.run(point, dtype)
        if found is None:
            return True
        if tolerance is None:
            rtol = TOLERANCE[dtype]
            tolerance = (rtol, rtol * max(1.0, *map(abs, exact)))
        return within(found.outputs, exact, tolerance[0] / 2, tolerance[1] / 2)


def checks_literals() -> dict[str, str]:
    """TOLERANCE and EXTREME_TOLERANCE as Python literals for the checks template."""
    rtol, atol = EXTREME_TOLERANCE
    return {
        "tolerance": "{" + ", ".join(f'"{k}": {v!r}' for k, v in TOLERANCE.items()) + "}",
        "extreme_tolerance": f'{{"rtol": {rtol!r}, "atol": {atol!r}}}',
    }
