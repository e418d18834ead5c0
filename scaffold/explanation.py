"""``scaffold explain``: how a formula becomes a derivative and then TensorFlow code.

Takes an expression and the same options as ``new-layer``; gives an ``Explanation`` (plain data)
and renders it as text (80 columns), Markdown (LaTeX in ``$...$``) or LaTeX. The derivation is
computed by walking the expression tree and naming the rule at each node (sum, constant factor,
product, quotient, power, exponential, chain, and the table entry of each function), and ends in
the derivative SymPy gives; the code section is the generated op with each line's math.
"""

from __future__ import annotations

import base64
import functools
import re
import textwrap
from dataclasses import dataclass

import sympy

from .analyze import HEAVISIDE_NOTE, abs_identity, analyze, tensorflow_conventions
from .api import Options
from .explain_reductions import REDUCTION_RULE
from .explain_reductions import derivations as reduction_derivations
from .functions import Maximum, Minimum, real_derivative
from .loss import loss_formula
from .mathtext import input_name, math_text
from .names import internal_names
from .parse import parse
from .plan import build_plan
from .reductions import has_reductions
from .reference import references
from .rows import row_references
from .spec import build_spec

FORMATS = ("text", "markdown", "latex")
WIDTH = 80


@dataclass(frozen=True)
class Step:
    """One rule applied at one node: ``d/dx [expr] = result`` (by ``rule``), at a depth.

    ``wrt``: the symbol differentiated by, when not the derivation's variable (a reduction's
    symbol r1). ``equation``: a step of the reverse pass through reductions, ``expr =
    result`` (``expr`` names what is computed, such as dr1).
    """

    depth: int
    rule: str
    expr: sympy.Expr
    result: sympy.Expr
    wrt: str = ""
    equation: bool = False


@dataclass(frozen=True)
class Explanation:
    """Everything ``explain`` shows, before formatting."""

    text: str
    tree: tuple[str, ...]
    derivations: tuple[tuple[str, tuple[Step, ...], sympy.Expr, sympy.Expr], ...]
    rewrites: tuple[str, ...]
    notes: tuple[str, ...]
    forward_code: tuple[tuple[str, str], ...]  # (code line, math it computes)
    grad_code: tuple[tuple[str, str], ...]
    reduces: bool = False  # derivations are reverse passes through reductions (dy in them)
    # What ``explain`` was asked, so a notebook can draw the plot: (expression, loss, options).
    request: tuple = ()

    def _repr_markdown_(self) -> str:
        """Jupyter: the Markdown rendering, with the plot (``scaffold plot``) embedded."""
        png, why_not = self._plot
        if png is None:
            return render(self, "markdown") + f"\n_{_markdown_text(why_not)}_\n"
        encoded = base64.b64encode(png).decode("ascii")
        image = f"![f, its derivatives and the code's error](data:image/png;base64,{encoded})"
        return render(self, "markdown") + f"\n## Plot\n\n{image}\n"

    def _repr_png_(self) -> bytes | None:
        """Jupyter: the plot of f, its derivatives and the code's error (None without one)."""
        return self._plot[0]

    @functools.cached_property
    def _plot(self) -> tuple[bytes | None, str]:
        """The PNG, or None and why there is none (no matplotlib, or nothing finite to draw)."""
        from .draw import render as draw
        from .errors import ScaffoldError
        from .picture import picture

        expression, loss, options = self.request
        try:
            return draw(picture(expression, loss=loss, **dict(options)), "png"), ""
        except ScaffoldError as err:
            return None, f"No plot: {err}" + (f" ({err.hint})" if err.hint else "")


def explain(expression: str, loss: bool = False, **options) -> Explanation:
    """Explain ``expression``; ``options`` as for ``api.Options`` (params, inputs, grads...).

    ``loss``: the formula of a loss (``new-loss``), per sample, over the last axis.
    """
    parsed = parse(expression)
    if loss:
        formula = loss_formula(parsed, Options(**options))
        parsed, options = formula.parsed, {**options, "inputs": formula.inputs}
    spec = build_spec(parsed, **options, unused_inputs=loss)
    names = internal_names("op", {s.name for s in spec.variables})
    analysis = analyze(parsed, spec, reserved_names=frozenset({"op", *names.values()}))
    reduces = has_reductions(analysis.forward)
    refs = row_references(analysis) if reduces else references(analysis)
    plan = build_plan(analysis, refs, name="op", names=names)
    derivations = []
    if reduces:
        derivations = reduction_derivations(analysis, _Derivation, Step)
    for index, variable in enumerate(() if reduces else spec.variables):
        if analysis.surrogate[index]:
            continue
        walker = _Derivation(variable)
        # The same conventions at kinks and ties as the generated code.
        ours, _ = tensorflow_conventions(abs_identity(walker.derive(analysis.stable)))
        shown = analysis.shown_gradients[index]
        derivations.append((variable.name, tuple(walker.steps), ours, shown))
    forward_code = [(f"{line.name} = {line.code}", line.math) for line in plan.forward_lines]
    forward_code.append((f"{plan.output} = {plan.forward_return}", math_text(analysis.forward)))
    grad_code = [(f"{line.name} = {line.code}", line.math) for line in plan.grad_lines]
    grad_code += [
        (
            f"grad[{v.name}] = {v.grad_code}",
            v.grad_text if reduces else f"{plan.upstream} * ({v.grad_text})",
        )
        for v in plan.variables
    ]
    return Explanation(
        text=parsed.text,
        tree=tuple(_tree(parsed.expr)),
        derivations=tuple(derivations),
        rewrites=analysis.rewrites,
        notes=((REDUCTION_RULE,) if reduces else ())
        + analysis.notes
        + tuple(
            f"The gradient for {v.name} is the surrogate {v.grad_text}, not a derivative:"
            " forward and backward differ on purpose."
            for v in plan.variables
            if v.surrogate
        ),
        forward_code=tuple(forward_code),
        grad_code=tuple(grad_code),
        reduces=reduces,
        request=(expression, loss, tuple(sorted(options.items()))),
    )


def _tree(expr: sympy.Basic, depth: int = 0) -> list[str]:
    """The expression tree, one node a line: operator or function, then its arguments."""
    if not expr.args or isinstance(expr, (sympy.Symbol, sympy.Number)):
        return [f"{'  ' * depth}{math_text(expr)}"]
    lines = [f"{'  ' * depth}{input_name(expr)}"]
    for arg in expr.args:
        lines.extend(_tree(arg, depth + 1))
    return lines


class _Derivation:
    """Differentiates by walking the tree and records the rule used at each node."""

    def __init__(self, variable: sympy.Symbol) -> None:
        self.x = variable
        self.steps: list[Step] = []

    def derive(self, expr: sympy.Expr, depth: int = 0) -> sympy.Expr:
        """D expr / d variable, recording the rule used at each node from ``depth`` on."""
        x = self.x
        if not expr.has(x):
            return self._record(depth, "constant: d/dx c = 0", expr, sympy.S.Zero)
        if expr == x:
            return self._record(depth, "d/dx x = 1", expr, sympy.S.One)
        if isinstance(expr, sympy.Add):
            index = len(self.steps)
            result = sympy.Add(*(self.derive(term, depth + 1) for term in expr.args))
            return self._record(depth, "sum rule: (u + v)' = u' + v'", expr, result, index)
        if isinstance(expr, sympy.Mul):
            return self._product(expr, depth)
        if isinstance(expr, sympy.Pow):
            return self._power(expr, depth)
        if isinstance(expr, sympy.Piecewise):
            index = len(self.steps)
            pieces = [(self.derive(e, depth + 1), c) for e, c in expr.args]
            return self._record(
                depth, "piecewise: differentiate each branch", expr, sympy.Piecewise(*pieces), index
            )
        if isinstance(expr, sympy.Function) and len(expr.args) == 1:
            return self._function(expr, depth)
        result = real_derivative(expr, x)  # Max, Min (the tie rule), two-argument functions
        rule = "the tie rule (below)" if isinstance(expr, (Maximum, Minimum)) else "SymPy's rule"
        return self._record(depth, f"{rule} for {input_name(expr)}", expr, result)

    def _product(self, expr: sympy.Mul, depth: int) -> sympy.Expr:
        x = self.x
        constant, rest = expr.as_independent(x, as_Add=False)
        index = len(self.steps)
        if constant != 1:
            result = constant * self.derive(rest, depth + 1)
            return self._record(depth, "constant factor: (c*u)' = c*u'", expr, result, index)
        numerator, denominator = sympy.fraction(expr)
        if denominator.has(x) and numerator != 1:
            du, dv = self.derive(numerator, depth + 1), self.derive(denominator, depth + 1)
            result = (du * denominator - numerator * dv) / denominator**2
            return self._record(
                depth, "quotient rule: (u/v)' = (u'v - uv')/v**2", expr, result, index
            )
        factors = expr.args
        terms = []
        for i, factor in enumerate(factors):
            others = sympy.Mul(*(f for j, f in enumerate(factors) if j != i))
            terms.append(self.derive(factor, depth + 1) * others)
        return self._record(
            depth, "product rule: (uv)' = u'v + uv'", expr, sympy.Add(*terms), index
        )

    def _power(self, expr: sympy.Pow, depth: int) -> sympy.Expr:
        x = self.x
        base, exponent = expr.args
        index = len(self.steps)
        if not exponent.has(x):
            inner = self.derive(base, depth + 1)
            result = exponent * base ** (exponent - 1) * inner
            rule = "power rule: (u**n)' = n*u**(n-1)*u'"
        elif not base.has(x):
            inner = self.derive(exponent, depth + 1)
            result = expr * sympy.log(base) * inner
            rule = "exponential rule: (a**u)' = a**u*log(a)*u'"
        else:
            du, dv = self.derive(base, depth + 1), self.derive(exponent, depth + 1)
            result = expr * (dv * sympy.log(base) + exponent * du / base)
            rule = "logarithmic differentiation: (u**v)' = u**v*(v'*log(u) + v*u'/u)"
        return self._record(depth, rule, expr, result, index)

    def _function(self, expr: sympy.Function, depth: int) -> sympy.Expr:
        (argument,) = expr.args
        u = sympy.Symbol("u", real=True)  # only in the table entry, never in the result
        outer = sympy.diff(expr.func(u), u)
        entry = f"table: d/du {math_text(expr.func(u))} = {math_text(outer)}"
        if argument == self.x:
            return self._record(depth, entry, expr, outer.subs(u, self.x))
        index = len(self.steps)
        inner = self.derive(argument, depth + 1)
        result = outer.subs(u, argument) * inner
        return self._record(depth, f"chain rule with {entry}", expr, result, index)

    def _record(
        self,
        depth: int,
        rule: str,
        expr: sympy.Expr,
        result: sympy.Expr,
        index: int | None = None,
    ) -> sympy.Expr:
        # A parent's step goes before its children's (recorded first, at ``index``).
        step = Step(depth, rule, expr, result)
        if index is None:
            self.steps.append(step)
        else:
            self.steps.insert(index, step)
        return result


# Rendering --------------------------------------------------------------------------------
def render(explanation: Explanation, fmt: str = "text") -> str:
    """The explanation as text, markdown or latex."""
    return {"text": _text, "markdown": _markdown, "latex": _latex}[fmt](explanation)


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(
        text,
        WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "    ",
        break_on_hyphens=False,
    ) or [indent]


def _text(e: Explanation) -> str:
    lines = [f"Explaining f = {e.text}", "", "Expression tree:"]
    lines += [f"  {line}"[:WIDTH] for line in e.tree]
    for name, steps, ours, sympys in e.derivations:
        if e.reduces:
            lines += ["", f"Gradient for {name} (upstream gradient dy), reduction by reduction:"]
        else:
            lines += ["", f"Derivative with respect to {name}, rule by rule:"]
        for step in steps:
            indent = "  " + "  " * step.depth
            if step.equation:
                lines += _wrap(f"{math_text(step.expr)}: {step.rule}", indent)
            else:
                wrt = step.wrt or name
                lines += _wrap(f"d/d{wrt} [{math_text(step.expr)}]  by {step.rule}", indent)
            lines += _wrap(f"= {math_text(step.result)}", indent + "  ")
        lines += ["", *_wrap(f"Result: {math_text(ours)}", "  ")]
        lines += _wrap(f"{_source(e)}: {math_text(sympys)}", "  ")
    if e.rewrites:
        lines += ["", "Stable rewrites, applied before differentiating (so both passes are"]
        lines += ["stable in floating point):"]
        lines += [f"  {r}" for r in e.rewrites]
    for note in e.notes:
        lines += ["", *_wrap(note)]
    for title, code in (("Forward pass", e.forward_code), ("Backward pass", e.grad_code)):
        lines += ["", f"{title} (generated code, with the math of each line):"]
        for line, math in code:
            lines += _wrap(line, "  ") + _wrap(f"# {math}", "      ")
    return "\n".join(lines) + "\n"


def _markdown(e: Explanation) -> str:
    lines = [f"# Explaining $f = {sympy.latex(parse(e.text).expr)}$", "", "## Expression tree", ""]
    lines += ["```", *e.tree, "```"]
    for name, steps, ours, sympys in e.derivations:
        lines += ["", f"## Derivative with respect to ${name}$", ""]
        for step in steps:
            left = (
                sympy.latex(step.expr)
                if step.equation
                else f"\\frac{{d}}{{d{step.wrt or name}}}\\left[{sympy.latex(step.expr)}\\right]"
            )
            lines.append(  # the rule is code: (u**n)' would otherwise turn bold
                f"{'  ' * step.depth}- `{step.rule}`: ${left} = {sympy.latex(step.result)}$"
            )
        lines += ["", f"Result: $${sympy.latex(ours)}$$", ""]
        lines += [f"{_source(e, markdown=True)}: $${sympy.latex(sympys)}$$"]
    if e.rewrites:
        lines += ["", "## Stable rewrites", ""] + [f"- `{r}`" for r in e.rewrites]
    if e.notes:
        lines += ["", "## Conventions", ""] + [f"- {_markdown_text(note)}" for note in e.notes]
    for title, code in (("Forward pass", e.forward_code), ("Backward pass", e.grad_code)):
        lines += ["", f"## {title}", "", "```python"]
        lines += [f"{line}  # {math}" for line, math in code]
        lines += ["```"]
    return "\n".join(lines) + "\n"


def _source(e: Explanation, markdown: bool = False) -> str:
    """Where the result shown beside the derivation's comes from."""
    if e.reduces:
        return "The generated code's vector-Jacobian product (the same reverse pass)"
    return (
        "SymPy's `diff`, with the same conventions"
        if markdown
        else ("SymPy's diff, with the same conventions")
    )


def _markdown_text(text: str) -> str:
    """Prose with math in it (x**2, a*b): Markdown's emphasis and link characters escaped."""
    return re.sub(r"([\\`*_\[\]<>|~$])", r"\\\1", text)


def _latex(e: Explanation) -> str:
    lines = [
        f"\\section*{{Explaining $f = {sympy.latex(parse(e.text).expr)}$}}",
        "\\begin{verbatim}",
        *e.tree,
        "\\end{verbatim}",
    ]
    for name, steps, ours, _ in e.derivations:
        lines += [f"\\subsection*{{Derivative with respect to ${name}$}}", "\\begin{align*}"]
        rows = [
            (
                sympy.latex(s.expr)
                if s.equation
                else f"\\frac{{d}}{{d{s.wrt or name}}}\\left[{sympy.latex(s.expr)}\\right]"
            )
            + f" &= {sympy.latex(s.result)} && \\text{{{_latex_text(s.rule)}}}"
            for s in steps
        ]
        lines += [" \\\\\n".join(rows), "\\end{align*}"]
        lines += [f"Result: $${sympy.latex(ours)}$$"]
    if e.rewrites:
        lines += ["\\subsection*{Stable rewrites}", "\\begin{itemize}"]
        lines += [f"\\item \\verb|{r}|" for r in e.rewrites] + ["\\end{itemize}"]
    for note in e.notes:
        lines += [_latex_text(note), ""]
    for title, code in (("Forward pass", e.forward_code), ("Backward pass", e.grad_code)):
        lines += [f"\\subsection*{{{title}}}", "\\begin{verbatim}"]
        lines += [f"{line}  # {math}" for line, math in code] + ["\\end{verbatim}"]
    return "\n".join(lines) + "\n"


def _latex_text(text: str) -> str:
    for char, escaped in (("\\", "\\textbackslash{}"), ("_", "\\_"), ("&", "\\&"), ("#", "\\#")):
        text = text.replace(char, escaped)
    return text.replace("**", "\\^{}")


__all__ = ["FORMATS", "HEAVISIDE_NOTE", "Explanation", "explain", "render"]
