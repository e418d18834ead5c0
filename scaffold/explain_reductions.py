"""``scaffold explain`` for formulas with reductions: the reverse pass, step by step.

Takes the ``Analysis`` of a formula that reduces over the feature axis and the rule-by-rule
differentiator of ``explain``; gives one derivation per variable, as ``explain`` shows them:
each reduction becomes a symbol (r1, r2, ...), the elementwise partials are derived rule by
rule, and the reverse pass runs over the reductions, outermost first, naming at each step the
reduction rule: a value broadcast along the axis gets the sum of its adjoint over the axis,
and each reduction sends its adjoint back into its argument by its transpose rule. The result
is the vector-Jacobian product the generated code computes (``reductions.vjp``).
"""

from __future__ import annotations

from collections.abc import Callable

import sympy

from .analyze import UPSTREAM, Analysis, elementwise_symbols
from .reductions import vjp

#: The reduction rule, as explain states it once before the steps.
REDUCTION_RULE = (
    "The reduction rule: for y = f(x, r) with r = sum(h(x)) over the axis, r is one value per"
    " row, broadcast to every element, so its adjoint is the sum over the axis:"
    " dx = dy*df/dx + h'(x)*sum(dy*df/dr). mean divides that adjoint by n; logsumexp"
    " multiplies it by exp(h - r) (the softmax); norm by h/r (0 at a zero row); amax and amin"
    " share it among the elements equal to r."
)
#: How each reduction sends the adjoint a of its value r back into its argument u.
TRANSPOSE_TEXT = {
    "sum": "the adjoint of u is a, on every element",
    "mean": "the adjoint of u is a/n",
    "logsumexp": "the adjoint of u is a*exp(u - r), the softmax of u times a",
    "norm": "the adjoint of u is a*u/r (0 where r = 0: the subgradient)",
    "amax": "the adjoint of u is a, shared equally by the elements where u = r",
    "amin": "the adjoint of u is a, shared equally by the elements where u = r",
}
DY = sympy.Symbol("dy", real=True)


def derivations(analysis: Analysis, walker: Callable, make: Callable) -> list[tuple]:
    """One ``(name, steps, ours, shown)`` per variable, as ``explain.Explanation`` holds them.

    ``walker(variable)`` gives explain's rule-by-rule differentiator (its ``steps`` and
    ``derive``); ``make`` is ``explain.Step``. The pass is ``reductions.vjp`` itself, run
    once per variable with that differentiator and its steps recorded.
    """
    spec = analysis.spec
    elementwise = elementwise_symbols(spec)
    results = []
    for index, variable in enumerate(spec.variables):
        steps: list = []
        outer: list = []  # f with the reductions as symbols: its partials are not indented

        def derive(expr, symbol, steps=steps, outer=outer):
            derivation = walker(symbol)
            depth = 0 if outer and expr == outer[0] else 1
            result = derivation.derive(expr, depth)
            steps.extend(
                make(s.depth, s.rule, s.expr, s.result, wrt=symbol.name) for s in derivation.steps
            )
            return result

        def note(kind, subject, value, steps=steps, outer=outer):
            if kind == "f":
                outer.append(value)
                steps.append(make(0, "f in terms of them", sympy.Symbol("f"), value, equation=True))
                return
            lhs, rule = _NOTES[kind](subject, value)
            if kind == "direct" and subject not in elementwise:
                rule += f", summed over the axis ({subject} is one value broadcast to the row)"
            steps.append(
                make(0, rule, lhs, value.rhs if kind == "symbol" else value, equation=True)
            )

        (ours,) = vjp(
            analysis.stable,
            [variable],
            DY,
            elementwise,
            derive=derive,
            note=note,
            name=lambda i: sympy.Symbol(f"r{i + 1}", real=True),
        )
        shown = analysis.shown_gradients[index].xreplace({UPSTREAM: DY})
        results.append((variable.name, tuple(steps), ours, shown))
    return results


#: vjp's steps -> (what is computed, the rule named).
_NOTES = {
    "symbol": lambda node, eq: (eq.lhs, f"{node.word} becomes a symbol"),
    "direct": lambda v, value: (_d(v), f"direct term: dy*df/d{v}"),
    "adjoint": lambda r, value: (
        _d(r),
        f"adjoint of {r}: the sum over the axis of what f (and every reduction around {r})"
        " sends it",
    ),
    "transpose": lambda node, value: (
        _d("u"),
        f"transpose of {node.word}: {TRANSPOSE_TEXT[node.word]}",
    ),
    "chain": lambda v, value: (_d(v), f"chain into {v}: add du*du/d{v}"),
}


def _d(name) -> sympy.Symbol:
    """The adjoint's label: dx for x (what the reverse pass accumulates)."""
    return sympy.Symbol(f"d{name}")
