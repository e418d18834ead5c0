"""Stage 2: SymPy expression -> derivative and shared subexpressions (an ``Analysis``).

Takes a ``ParsedExpression``; gives the forward expression, its exact derivative and a
common-subexpression split into what the forward pass computes (and the gradient reuses) and what
only the gradient needs. No ``simplify``: it has no time bound (seconds on a 4th
derivative of mish); ``cse`` does the sharing in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import sympy

from .errors import DerivativeError, ExpressionError, UnsupportedError
from .parse import ParsedExpression
from .printing import to_printable


@dataclass(frozen=True)
class Analysis:
    """What the expression means, before any code exists.

    ``forward_temps`` are ``(symbol, expression)`` pairs computed in the forward pass, in order;
    ``grad_temps`` are only needed by the gradient. ``forward_out`` and ``grad_out`` are written in
    terms of the input and those temporaries.
    """

    parsed: ParsedExpression
    input: sympy.Symbol
    forward: sympy.Expr
    derivative: sympy.Expr
    forward_temps: tuple[tuple[sympy.Symbol, sympy.Expr], ...]
    grad_temps: tuple[tuple[sympy.Symbol, sympy.Expr], ...]
    forward_out: sympy.Expr
    grad_out: sympy.Expr


def analyze(parsed: ParsedExpression, reserved_names: frozenset[str] = frozenset()) -> Analysis:
    """Differentiate ``parsed`` and split shared work between the forward and backward pass.

    ``reserved_names`` are names the generated code already uses (the function's name, ...);
    temporaries avoid them and every symbol of the expression.
    """
    input_symbol = _single_input(parsed)
    forward = parsed.expr
    derivative = sympy.diff(forward, input_symbol)
    if derivative.has(sympy.Derivative, sympy.Subs):
        raise DerivativeError(
            f"SymPy cannot differentiate {forward} in closed form (it gives {derivative})",
            hint="rewrite the expression with functions whose derivatives are known",
        )
    if derivative.has(sympy.zoo, sympy.nan):
        raise DerivativeError(f"the derivative of {forward} is undefined ({derivative})")
    forward_p, derivative_p = to_printable(forward), to_printable(derivative)
    taken = {s.name for s in parsed.symbols} | set(reserved_names)
    replacements, (forward_out, grad_out) = sympy.cse(
        [forward_p, derivative_p], symbols=_fresh_symbols("t", taken)
    )
    needed = _dependencies(forward_out, replacements)
    forward_temps = tuple((s, e) for s, e in replacements if s in needed)
    grad_temps = tuple((s, e) for s, e in replacements if s not in needed)
    return Analysis(
        parsed=parsed,
        input=input_symbol,
        forward=forward,
        derivative=derivative,
        forward_temps=forward_temps,
        grad_temps=grad_temps,
        forward_out=forward_out,
        grad_out=grad_out,
    )


def _single_input(parsed: ParsedExpression) -> sympy.Symbol:
    symbols = parsed.symbols
    if len(symbols) == 1:
        return symbols[0]
    if not symbols:
        raise ExpressionError(
            "the expression has no input variable",
            text=parsed.text,
            hint="use a variable, e.g. 'sin(x)'",
        )
    names = ", ".join(s.name for s in symbols)
    hint = "layers of one input variable are supported; rename all inputs to one symbol"
    if "e" in {s.name for s in symbols}:
        hint = "for Euler's number write E or exp(1)"
    raise UnsupportedError(f"the expression has {len(symbols)} variables ({names})", hint=hint)


def _fresh_symbols(prefix: str, taken: set[str]) -> Iterator[sympy.Symbol]:
    index = 0
    while True:
        name = f"{prefix}{index}"
        index += 1
        if name not in taken:
            yield sympy.Symbol(name, real=True)


def _dependencies(
    expr: sympy.Expr, replacements: list[tuple[sympy.Symbol, sympy.Expr]]
) -> set[sympy.Symbol]:
    """The temporaries ``expr`` needs, directly or through other temporaries."""
    definitions = dict(replacements)
    needed: set[sympy.Symbol] = set()
    pending = [s for s in expr.free_symbols if s in definitions]
    while pending:
        symbol = pending.pop()
        if symbol not in needed:
            needed.add(symbol)
            pending.extend(s for s in definitions[symbol].free_symbols if s in definitions)
    return needed
