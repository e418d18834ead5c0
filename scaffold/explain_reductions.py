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
from .reductions import ReduceMean, _over_axis, _tidy, axis_size, nodes

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
    ``derive``); ``make`` is ``explain.Step``.
    """

    def step(depth, rule, lhs, rhs):
        return make(depth, rule, lhs, rhs, equation=True)

    spec = analysis.spec
    forward = analysis.stable
    order = nodes(forward)
    symbols = {node: sympy.Symbol(f"r{index + 1}", real=True) for index, node in enumerate(order)}
    arguments = {node: node.args[0].xreplace(symbols) for node in order}
    outer = forward.xreplace(symbols)
    elementwise = elementwise_symbols(spec)
    per_element = elementwise | {DY} if not _row_constant(forward, elementwise) else elementwise
    setup = [
        step(0, f"{node.word} becomes a symbol", symbols[node], node.func(arguments[node]))
        for node in order
    ]
    setup.append(step(0, "f in terms of them", sympy.Symbol("f"), outer))
    results = []
    for index, variable in enumerate(spec.variables):
        steps = list(setup)
        direct = _partial(walker, outer, variable, steps, make)
        total = DY * direct
        rule = f"direct term: dy*df/d{variable}"
        if variable not in elementwise:  # one value per row: the sum of what each element sends
            total = _over_axis(total, per_element)
            rule += f", summed over the axis ({variable} is one value broadcast to the row)"
        steps.append(step(0, rule, _d(variable), total))
        partials = {node: _partial(walker, outer, symbols[node], steps, make) for node in order}
        adjoints = {node: _over_axis(DY * partials[node], per_element) for node in order}
        for node in reversed(order):
            r = symbols[node]
            steps.append(
                step(
                    0,
                    f"adjoint of {r}: the sum over the axis of what f (and every reduction"
                    f" around {r}) sends it",
                    _d(r),
                    adjoints[node],
                )
            )
            h = arguments[node]
            size = axis_size(node.args[0], elementwise)
            inner = _transpose(node, h, r, adjoints[node], size)
            steps.append(
                step(0, f"transpose of {node.word}: {TRANSPOSE_TEXT[node.word]}", _d("u"), inner)
            )
            through = inner * _partial(walker, h, variable, steps, make, depth=1)
            if variable not in elementwise:
                through = _over_axis(through, elementwise, size, broadcast=True)
            total += through
            steps.append(
                step(0, f"chain into {variable}: add du*du/d{variable}", _d(variable), total)
            )
            for other in order:
                if symbols[other] in h.free_symbols:
                    partial = _partial(walker, h, symbols[other], steps, make, depth=1)
                    adjoints[other] += _over_axis(
                        inner * partial, elementwise, size, broadcast=True
                    )
        values = {symbols[node]: node for node in order}
        means = {node.args[0]: node for node in order if isinstance(node, ReduceMean)}
        ours = _tidy(total.xreplace(values), DY, elementwise, means)
        shown = analysis.shown_gradients[index].xreplace({UPSTREAM: DY})
        results.append((variable.name, tuple(steps), ours, shown))
    return results


def _partial(walker, expr, symbol, steps, make, depth: int = 0) -> sympy.Expr:
    """D expr / d symbol by explain's rules, each step recorded (one level deeper)."""
    derivation = walker(symbol)
    result = derivation.derive(expr, depth)
    steps.extend(make(s.depth, s.rule, s.expr, s.result, wrt=symbol.name) for s in derivation.steps)
    return result


def _transpose(node, h, r, adjoint, size) -> sympy.Expr:
    from .reductions import TRANSPOSES

    return TRANSPOSES[type(node)](h, r, adjoint, size)


def _d(name) -> sympy.Symbol:
    """The adjoint's label: dx for x (what the reverse pass accumulates)."""
    return sympy.Symbol(f"d{name}")


def _row_constant(expr, elementwise) -> bool:
    from .reductions import row_constant

    return row_constant(expr, elementwise)
