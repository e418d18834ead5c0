"""Stage 2: SymPy expression + ``LayerSpec`` -> derivatives and shared subexpressions.

Takes the parsed formula and the checked options; gives an ``Analysis``: the forward expression
in stable form (``stabilize``), one backward expression per function argument (the exact
derivative, or the user's surrogate), the conventions applied at kinks, and a
common-subexpression split into what the forward pass computes (and the gradient reuses) and
what only the gradient needs; conditionals in the backward pass are NaN-safe under autodiff
(``guard``), so second derivatives through it are finite. No ``simplify``: it has no
time bound (seconds on a 4th derivative of mish); ``cse`` does the sharing in milliseconds.
A gradient that is 0 everywhere (a step without ``--grad``) is a warning in
``Analysis.warnings``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import sympy

from .errors import DerivativeError
from .functions import Maximum, Minimum, Round, real_derivative
from .guard import guard
from .mathtext import math_text
from .parse import ParsedExpression
from .printing import to_printable
from .reductions import (
    DivideNoNan,
    Norm,
    ReduceMax,
    ReduceMin,
    has_reductions,
    shifted,
    vjp,
)
from .singular import Singularities, find
from .spec import LayerSpec
from .stabilize import stabilize

#: Conventions at kinks and steps, stated in the generated docstring where they apply.
TIE_NOTE = (
    "At a tie of Max or Min exactly one argument takes the gradient, never lost and never split:"
    " a constant against anything else (so relu'(0) = 0, as tf.nn.relu), otherwise the first"
    " argument as typed, as tf.maximum and tf.minimum do (x gets it where x >= y)."
)
HEAVISIDE_NOTE = (
    "At u = 0, Heaviside(u) is 1/2 (SymPy's convention; Heaviside(u, h0) sets the value h0),"
    " in f and wherever it appears in the derivatives."
)
DIRAC_NOTE = (
    "DiracDelta terms of the derivative (from steps such as sign or Heaviside) are taken as 0,"
    " as TensorFlow's gradients of sign, floor and round are 0."
)


@dataclass(frozen=True)
class Analysis:
    """What the layer computes, before any code exists.

    ``gradients[i]`` is the backward expression for ``spec.variables[i]``: d forward /
    d variable, or the user's surrogate where ``surrogate[i]``. ``forward_temps`` are
    ``(symbol, expression)`` pairs the forward pass computes, in order; ``grad_temps`` only the
    gradient needs. ``forward_out`` and ``grad_outs`` use the variables and those temporaries.
    """

    parsed: ParsedExpression
    spec: LayerSpec
    forward: sympy.Expr  # what the code computes: parsed.expr in stable form, singularities covered
    rewrites: tuple[str, ...]  # the stable rewrites applied to get ``forward``
    gradients: tuple[sympy.Expr, ...]
    surrogate: tuple[bool, ...]
    notes: tuple[str, ...]
    forward_temps: tuple[tuple[sympy.Symbol, sympy.Expr], ...]
    grad_temps: tuple[tuple[sympy.Symbol, sympy.Expr], ...]
    forward_out: sympy.Expr
    grad_outs: tuple[sympy.Expr, ...]
    updates: tuple[tuple[sympy.Symbol, sympy.Expr], ...]
    warnings: tuple[str, ...] = ()  # said to the user; generation goes on (see plan.warnings)
    stable: sympy.Expr | None = None  # the stable form, before singular points were covered
    singular: Singularities | None = None  # the singular points of f found (see ``singular``)
    shown_gradients: tuple[sympy.Expr, ...] = ()  # ``gradients`` as math, without the patches

    @property
    def derivative(self) -> sympy.Expr:
        """The backward expression for the first input."""
        return self.gradients[0]

    @property
    def smooth(self) -> bool:
        """No kinks, steps, conditionals or surrogates."""
        return not any(self.surrogate) and not kink_functions(self.forward)

    @property
    def second_order(self) -> bool:
        """Second derivatives are exact away from kinks: no surrogates, no steps.

        Kinks (Max, Min, Abs) and conditionals are fine: away from them f is as smooth as its
        pieces, and the backward pass is NaN-safe under autodiff (``guard``). Steps (sign,
        Heaviside, floor, ceiling, round) have a derivative that is a convention.
        """
        return not any(self.surrogate) and not self.forward.has(*STEPS)


def analyze(
    parsed: ParsedExpression,
    spec: LayerSpec,
    reserved_names: frozenset[str] = frozenset(),
    rules: tuple = (),
) -> Analysis:
    """Differentiate ``parsed`` for every variable of ``spec``; share work between the passes.

    ``reserved_names`` are names the generated code already uses (the function's name, ...);
    temporaries avoid them and every symbol of the expression. ``rules``: stable rewrites to
    try beyond the standard ones (``stabilize.ON_DEMAND``).
    """
    forward, rewrites = stabilize(parsed.expr, rules) if spec.stabilize else (parsed.expr, ())
    stable = forward
    rows = has_reductions(stable)
    singular = find(forward, parsed.expr, spec) if spec.stabilize and not rows else None
    forward = singular.cover(stable) if singular else stable
    surrogates = dict(spec.surrogates)
    trained = set(spec.inputs) | {w.symbol for w in spec.weights if w.trainable}
    gradients, shown, surrogate, notes, warnings, chain_notes = [], [], [], set(), [], []
    products = vector_jacobian_products(stable, spec) if rows else {}
    for variable in spec.variables:
        if rows:
            derivative, applied = tensorflow_conventions(products[variable])
            gradients.append(derivative)
            shown.append(derivative)
            surrogate.append(False)
            notes |= applied
            continue
        if variable in surrogates:
            gradients.append(surrogates[variable].expr)
            shown.append(surrogates[variable].expr)
            surrogate.append(True)
            continue
        derivative = real_derivative(stable, variable)
        if derivative.has(sympy.Derivative, sympy.Subs):
            raise DerivativeError(
                f"SymPy cannot differentiate {stable} in closed form (it gives {derivative})",
                hint="rewrite the expression with functions whose derivatives are known,"
                " or give a surrogate with --grad",
            )
        derivative, applied = tensorflow_conventions(abs_identity(derivative))
        if derivative.has(sympy.zoo, sympy.nan):
            raise DerivativeError(f"the derivative of {stable} is undefined ({derivative})")
        chained = None
        if derivative == 0 and variable not in spec.inputs:
            chained = chained_surrogate(stable, variable, spec.inputs, surrogates)
        if chained is not None:
            derivative, note = chained
            chain_notes.append(note)
        shown.append(derivative)
        if singular:
            derivative = singular.cover(derivative, variable)
        gradients.append(derivative)
        surrogate.append(chained is not None)
        notes |= applied
        if derivative == 0 and variable in trained and variable in parsed.expr.free_symbols:
            warnings.append(_zero_gradient_warning(variable, spec))
    taken = {s.name for s in spec.variables} | set(reserved_names)
    weights = {w.symbol: w.default for w in spec.weights}
    backward = [guard(to_printable(e), spec.inputs, weights) for e in gradients]
    if rows and spec.stabilize:  # u - logsumexp(u) from u - max(u): reductions.LogSoftmax
        forward, backward = shifted(forward), [shifted(e) for e in backward]
    forward_temps, grad_temps, forward_out, grad_outs = _share(
        to_printable(forward), backward, spec.save, taken
    )
    if forward.atoms(Maximum, Minimum) and not all(surrogate):
        notes.add(TIE_NOTE)
    heaviside = heaviside_note(forward)
    chain_notes += reduction_notes(forward)
    return Analysis(
        parsed=parsed,
        spec=spec,
        forward=forward,
        rewrites=rewrites,
        gradients=tuple(gradients),
        surrogate=tuple(surrogate),
        notes=tuple(
            note
            for note in (TIE_NOTE if TIE_NOTE in notes else "", heaviside, DIRAC_NOTE)
            if note and (note in notes or note == heaviside)
        )
        + tuple(chain_notes)
        + (singular.notes() if singular else ()),
        forward_temps=forward_temps,
        grad_temps=grad_temps,
        forward_out=forward_out,
        grad_outs=grad_outs,
        updates=tuple((symbol, parsed_update.expr) for symbol, parsed_update in spec.updates),
        warnings=tuple(warnings),
        stable=stable,
        singular=singular,
        shown_gradients=tuple(shown),
    )


#: Stands for the upstream gradient in vector-Jacobian products; ``plan`` names it.
UPSTREAM = sympy.Symbol("upstream", real=True)


def elementwise_symbols(spec: LayerSpec) -> frozenset[sympy.Symbol]:
    """The symbols with a value per element: the inputs and the per-channel weights."""
    return frozenset(spec.inputs) | {w.symbol for w in spec.weights if w.shape == "channel"}


def vector_jacobian_products(forward: sympy.Expr, spec: LayerSpec) -> dict:
    """Each variable's gradient through the reductions of ``forward``.

    ``UPSTREAM`` times the Jacobian, by the reverse pass of ``reductions.vjp``.
    """
    products = vjp(forward, spec.variables, UPSTREAM, elementwise_symbols(spec))
    return dict(zip(spec.variables, products, strict=True))


def reduction_notes(forward: sympy.Expr) -> list[str]:
    """The conventions of the reductions in ``forward``, for the docstring."""
    notes = []
    if forward.atoms(ReduceMax, ReduceMin):
        notes.append(
            "Where several elements of a row tie for amax or amin, they share its gradient"
            " equally, as tf.math.reduce_max and reduce_min do."
        )
    if forward.atoms(Norm, DivideNoNan):
        notes.append(
            "At a zero vector the norm's gradient is 0 (the subgradient PyTorch and JAX use),"
            " and u/norm(u) is 0 with gradient 0 (tf.math.divide_no_nan), so neither pass is"
            " NaN there."
        )
    return notes


def chained_surrogate(
    forward: sympy.Expr, weight: sympy.Symbol, inputs: tuple[sympy.Symbol, ...], surrogates: dict
) -> tuple[sympy.Expr, str] | None:
    """A surrogate for an input, carried to a weight inside the same step by the chain rule.

    A surrogate is the derivative of the step itself (snntorch's definition), so for
    f = F(H(u)) with the surrogate g for x, df/dx = g and df/dw = g * (du/dw) / (du/dx):
    Heaviside(x - th) with --grad g trains th with -g. Applies when x and w reach f only
    through steps of one argument u; returns (df/dw, the docstring's note), or None.
    """
    steps = {n for n in sympy.preorder_traversal(forward) if isinstance(n, STEPS)}
    arguments = {n.args[0] for n in steps if weight in n.args[0].free_symbols}
    if len(arguments) != 1:
        return None
    (u,) = arguments
    marker = sympy.Dummy("step")
    outside = forward.xreplace({n: marker for n in steps if n.args[0] == u})
    if weight in outside.free_symbols:
        return None
    for x in inputs:
        if x not in surrogates or x in outside.free_symbols or u.diff(x) == 0:
            continue
        ratio = sympy.cancel(u.diff(weight) / u.diff(x))
        note = (
            f"The surrogate for {x} reaches the weight {weight} by the chain rule:"
            f" df/d{weight} = (df/d{x}) * (du/d{weight}) / (du/d{x}) with u = {math_text(u)},"
            " as a surrogate is the derivative of the step itself (snntorch's definition)."
        )
        return surrogates[x].expr * ratio, note
    return None


def _zero_gradient_warning(variable: sympy.Symbol, spec: LayerSpec) -> str:
    """A step function (round, floor, sign, Heaviside) without --grad trains nothing."""
    name = variable.name
    option = "--grad EXPR" if spec.variables == (variable,) else f"--grad {name}=EXPR"
    example = "--grad 1" if spec.variables == (variable,) else f"--grad {name}=1"
    if variable in spec.inputs:
        effect = f"so nothing before this layer learns through {name}"
    else:
        effect = f"so training never changes the weight {name}"
    return (
        f"f is piecewise constant in {name}: its gradient for {name} is 0 everywhere, {effect};"
        f" give a surrogate or straight-through gradient with {option}, e.g. {example}"
    )


def _share(forward: sympy.Expr, gradients: list[sympy.Expr], save: str, taken: set[str]):
    """Shared subexpressions as temporaries, placed in the passes the ``--save`` policy says.

    reuse: one ``cse`` over both passes; the forward pass computes what it needs and the
    backward pass reuses it. derivative: the same, but the forward pass computes every
    temporary (plan adds df/dv there). inputs: each pass shares work only within itself.
    Returns (forward temporaries, backward temporaries, forward output, gradient outputs).
    """
    symbols = _fresh_symbols("t", taken)
    if save == "inputs":
        forward_temps, (forward_out,) = _cse([forward], symbols)
        grad_temps, grad_outs = _cse(gradients, symbols)
        return tuple(forward_temps), tuple(grad_temps), forward_out, tuple(grad_outs)
    replacements, reduced = _cse([forward, *gradients], symbols)
    forward_out, grad_outs = reduced[0], tuple(reduced[1:])
    if save == "derivative":
        return tuple(replacements), (), forward_out, grad_outs
    needed = _dependencies(forward_out, replacements)
    return (
        tuple((s, e) for s, e in replacements if s in needed),
        tuple((s, e) for s, e in replacements if s not in needed),
        forward_out,
        grad_outs,
    )


def _cse(exprs: list[sympy.Expr], symbols: Iterator[sympy.Symbol]):
    """``sympy.cse`` that leaves constants whole: a temporary is never a number.

    A temporary ``t0 = exp(2)`` would be a Python float, and ``log(1 + t0)`` a float32 tensor
    that meets a float64 input. Constants stay in the expressions, where the printer turns each
    into one Python number.
    """
    hidden: dict[sympy.Expr, sympy.Dummy] = {}
    for expr in exprs:
        pending = [expr]
        while pending:
            node = pending.pop()
            if isinstance(node, sympy.Expr) and node.is_number and node.args:
                hidden.setdefault(node, sympy.Dummy(real=True))
            else:
                pending.extend(node.args)
    shown = {dummy: constant for constant, dummy in hidden.items()}
    replacements, reduced = sympy.cse([e.xreplace(hidden) for e in exprs], symbols=symbols)
    # cse can leave a temporary's own expression in place where it stands alone in a sum
    # (gamma*dy - t4*sum(t5) with t5 = gamma*dy): use the temporary there too.
    for index, (symbol, expr) in enumerate(replacements):
        found = {expr: symbol}
        reduced = [e.xreplace(found) for e in reduced]
        replacements[index + 1 :] = [(s, e.xreplace(found)) for s, e in replacements[index + 1 :]]
    return (
        [(symbol, e.xreplace(shown)) for symbol, e in replacements],
        [e.xreplace(shown) for e in reduced],
    )


def heaviside_note(forward: sympy.Expr) -> str:
    """The value of each Heaviside of ``forward`` at 0, stated for the docstring ("" if none)."""
    values = sorted({h.args[1] for h in forward.atoms(sympy.Heaviside)}, key=str)
    if values == [sympy.S.Half]:
        return HEAVISIDE_NOTE
    if not values:
        return ""
    parts = [
        "Heaviside(u) is 1/2" if h0 == sympy.S.Half else f"Heaviside(u, {h0}) is {h0}"
        for h0 in values
    ]
    return f"At u = 0, {' and '.join(parts)}, in f and wherever it appears in the derivatives" + (
        " (1/2 is SymPy's convention)." if sympy.S.Half in values else "."
    )


def tensorflow_conventions(derivative: sympy.Expr) -> tuple[sympy.Expr, set[str]]:
    """DiracDelta = 0 in derivatives, as TensorFlow's gradients of sign, floor, round are 0.

    Ties of Max and Min need nothing here: ``functions.Maximum`` differentiates by the tie rule.
    A Heaviside in a derivative is the forward's own (x*Heaviside(x) gives Heaviside(x)) and
    keeps its value at 0, as TensorFlow's autodiff of the same formula would.
    """
    applied = set()
    if derivative.has(sympy.DiracDelta):
        derivative = derivative.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero)
        applied.add(DIRAC_NOTE)
    return derivative, applied


def abs_identity(derivative: sympy.Expr) -> sympy.Expr:
    """u*sign(u) -> |u|, then one common denominator if that is shorter.

    d/dx x/(1+|x|) comes out as 1/(1+|x|) - x*sign(x)/(1+|x|)**2, which cancels
    catastrophically at large |x| (2.6e-5 relative error at x = 1000 in float32); the
    identity turns it into 1/(1+|x|)**2.
    """

    def is_product_with_own_sign(node: sympy.Basic) -> bool:
        return isinstance(node, sympy.Mul) and any(
            isinstance(f, sympy.sign) and f.args[0] in node.args for f in node.args
        )

    def merge(node: sympy.Mul) -> sympy.Expr:
        factors = list(node.args)
        for factor in node.args:
            if isinstance(factor, sympy.sign) and factor.args[0] in factors:
                factors.remove(factor)
                factors.remove(factor.args[0])
                factors.append(sympy.Abs(factor.args[0]))
        return sympy.Mul(*factors)

    merged = derivative.replace(is_product_with_own_sign, merge)
    if merged == derivative:
        return derivative
    together = sympy.together(merged)
    return together if sympy.count_ops(together) <= sympy.count_ops(merged) else merged


def kink_functions(expr: sympy.Expr) -> list[sympy.Expr]:
    """Expressions that are zero exactly where ``expr`` has a kink or a jump.

    Test points keep away from their zeros: the derivative there is a convention, and a numeric
    derivative across a jump is meaningless.
    """
    kinks: list[sympy.Expr] = []
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, (sympy.Abs, sympy.sign, sympy.Heaviside)):
            kinks.append(node.args[0])
        elif isinstance(node, (sympy.Max, sympy.Min, Maximum, Minimum)):
            kinks.extend(a - b for i, a in enumerate(node.args) for b in node.args[i + 1 :])
        elif isinstance(node, (sympy.floor, sympy.ceiling)):
            kinks.append(sympy.sin(sympy.pi * node.args[0]))
        elif isinstance(node, Round):
            kinks.append(sympy.cos(sympy.pi * node.args[0]))
        elif isinstance(node, sympy.core.relational.Relational):
            kinks.append(node.lhs - node.rhs)
    return kinks


#: Functions whose derivative is a convention (0 almost everywhere, a Dirac delta at the jump).
STEPS = (sympy.sign, sympy.Heaviside, sympy.floor, sympy.ceiling, Round)


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
