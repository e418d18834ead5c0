"""Reductions over the feature axis: the nodes, their transpose rules and the reverse pass.

A formula such as ``exp(x - logsumexp(x))`` (softmax) or ``(x - mean(x))/sqrt(var + eps)``
(layer norm) mixes elementwise terms with reductions over one axis, whose results keep that
axis (length 1) and broadcast back against the elementwise terms. Each reduction is a node
here (``ReduceSum`` ... ``Norm``) with a transpose rule in ``TRANSPOSES``: given the node's
argument h, its value r and the adjoint a of r, the adjoint of h, elementwise. SymPy does
the elementwise partials; ``vjp`` runs the reverse pass over the nodes (each is a symbol
while SymPy differentiates; its adjoint is summed over the axis, then sent through the
transpose into its argument) and returns vector-Jacobian products: expressions in the
forward values and the upstream gradient, never a Jacobian. Adding a reduction is a node
and its transpose rule.

Conventions (stated in the generated docstring, checked by the generated tests): ties of
``amax``/``amin`` share the gradient equally, as TensorFlow's ``reduce_max`` does; the
norm's gradient at a zero vector is 0 (the subgradient PyTorch and JAX use), and
``u/norm(u)`` is 0 there (``DivideNoNan``).

``explicit`` writes the same formula for a row of n named values, every reduction spelt out
(sums of n terms): the reference values of the generated tests come from it, by SymPy's
ordinary differentiation, independently of the reverse pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import mpmath
import sympy

from .functions import real_derivative


class Reduction(sympy.Function):
    """A reduction of its one argument over the feature axis, keeping that axis (size 1)."""

    nargs = 1
    word = ""  # the name users type

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real

    def _latex(self, printer, exp=None) -> str:
        text = rf"\operatorname{{{self.word}}}\left({printer._print(self.args[0])}\right)"
        return text if exp is None else rf"\left({text}\right)^{{{exp}}}"

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Never called: ``vjp`` differentiates through reductions (see the module)."""
        raise TypeError(f"{type(self).__name__} is differentiated by reductions.vjp only")


class ReduceSum(Reduction):
    """sum(u): the sum over the axis."""

    word = "sum"

    @classmethod
    def eval(cls, arg: sympy.Expr) -> sympy.Expr | None:
        """sum(0) is 0 (a derivative's DiracDelta terms taken as 0 leave such sums)."""
        return sympy.S.Zero if arg.is_zero else None


class ReduceMean(Reduction):
    """mean(u): the mean over the axis."""

    word = "mean"


class ReduceMax(Reduction):
    """amax(u): the largest value over the axis; ties share the gradient equally."""

    word = "amax"


class ReduceMin(Reduction):
    """amin(u): the smallest value over the axis; ties share the gradient equally."""

    word = "amin"


class LogSumExp(Reduction):
    """logsumexp(u) = log(sum(exp(u))), computed shifted by the largest value."""

    word = "logsumexp"


class Norm(Reduction):
    """norm(u) = sqrt(sum(u**2)), the L2 norm; its gradient at a zero vector is 0."""

    word = "norm"

    def _eval_is_nonnegative(self) -> bool | None:
        return True if self.args[0].is_real else None


class LogSoftmax(sympy.Function):
    """LogSoftmax(u) = u - logsumexp(u), computed as (u - max) - log(sum(exp(u - max))).

    Not a reduction (one value per element), and never differentiated: the reverse pass
    sees u - logsumexp(u); ``shifted`` writes this node into the code afterwards. In
    float32, u - logsumexp(u) at u = 1000 loses the rounding of logsumexp (~6e-5, a
    relative error of 3e-5 in softmax); u - max is exact there.
    """

    nargs = 1

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


class AxisSize(sympy.Function):
    """The length of the feature axis of its arguments broadcast together.

    A number at run time: how many elements a value of one per row stands for, where it
    meets them.
    """

    is_real = True
    is_positive = True

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return 0: a size does not change with the values."""
        return sympy.S.Zero


class IsExtreme(sympy.Function):
    """IsExtreme(h, r): 1 where h equals the extremum r of its row, else 0 (a tie mask)."""

    nargs = 2
    is_real = True

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """Return 0: the mask is piecewise constant."""
        return sympy.S.Zero


class DivideNoNan(sympy.Function):
    """DivideNoNan(a, b) = a/b, and 0 where b is 0 (``tf.math.divide_no_nan``)."""

    nargs = 2

    @classmethod
    def eval(cls, a: sympy.Expr, b: sympy.Expr) -> sympy.Expr | None:
        """Numbers evaluate; 0/b is 0."""
        if a.is_zero:
            return sympy.S.Zero
        if b.is_number and a.is_number:
            return sympy.S.Zero if b.is_zero else a / b
        return None

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real and self.args[1].is_real

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        """d/da = DivideNoNan(1, b), d/db = -DivideNoNan(a, b**2): 0 where b is 0, too."""
        a, b = self.args
        return DivideNoNan(1, b) if argindex == 1 else -DivideNoNan(a, b**2)


REDUCTIONS: tuple[type[Reduction], ...] = (
    ReduceSum,
    ReduceMean,
    ReduceMax,
    ReduceMin,
    LogSumExp,
    Norm,
)
#: The names users type -> the node (NumPy's names: ``amax`` cannot be confused with ``max``).
BY_WORD = {cls.word: cls for cls in REDUCTIONS}


def _tie_share(h: sympy.Expr, r: sympy.Expr, adjoint: sympy.Expr) -> sympy.Expr:
    mask = IsExtreme(h, r)
    return adjoint * mask / ReduceSum(mask)


#: node -> (h, r, a, size) -> the adjoint of h: a is r's adjoint, size the axis length.
TRANSPOSES: dict[type[Reduction], Callable[..., sympy.Expr]] = {
    ReduceSum: lambda h, r, a, size: a,
    ReduceMean: lambda h, r, a, size: a / size,
    ReduceMax: lambda h, r, a, size: _tie_share(h, r, a),
    ReduceMin: lambda h, r, a, size: _tie_share(h, r, a),
    LogSumExp: lambda h, r, a, size: a * sympy.exp(h - r),
    Norm: lambda h, r, a, size: a * DivideNoNan(h, r),
}


def shifted(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` with each u - logsumexp(u) as ``LogSoftmax(u)``.

    So each softmax, exp(u - logsumexp(u)), is computed from u - max(u), which is exact.
    """

    def is_candidate(node: sympy.Basic) -> bool:
        return isinstance(node, sympy.Add) and any(
            isinstance(term, sympy.Mul)
            and term.args[0] == -1
            and isinstance(term.args[1], LogSumExp)
            for term in node.args
        )

    def rewrite(node: sympy.Add) -> sympy.Expr:
        for term in node.args:
            if (
                isinstance(term, sympy.Mul)
                and term.args[0] == -1
                and isinstance(term.args[1], LogSumExp)
            ):
                (u,) = term.args[1].args
                # Every term of u among the node's own: u - logsumexp(u) + c, never
                # a - logsumexp(x) as a + (x - logsumexp(x)) - x (one value per element).
                if set(sympy.Add.make_args(u)) <= set(node.args):
                    return LogSoftmax(u) + (node - term - u)
        return node

    return expr.replace(is_candidate, rewrite)


def has_reductions(expr: sympy.Basic) -> bool:
    """Whether ``expr`` reduces over the feature axis anywhere."""
    return bool(expr.atoms(Reduction, LogSoftmax))


def nodes(expr: sympy.Basic) -> list[Reduction]:
    """The reductions of ``expr``, each once, every node after the nodes inside it."""
    seen: dict[Reduction, None] = {}
    for node in sympy.postorder_traversal(expr):
        if isinstance(node, Reduction):
            seen.setdefault(node, None)
    return list(seen)


def row_constant(expr: sympy.Expr, elementwise: frozenset[sympy.Symbol]) -> bool:
    """Whether ``expr`` has one value per row: no ``elementwise`` symbol outside reductions."""
    hidden = expr.replace(lambda n: isinstance(n, (Reduction, AxisSize)), lambda n: sympy.S.One)
    return not (hidden.free_symbols & elementwise)


def axis_size(expr: sympy.Expr, elementwise: frozenset[sympy.Symbol]) -> sympy.Expr:
    """The axis length where ``expr`` has its elements: its elementwise symbols broadcast.

    Not the first input's: in a - mean(b) the mean runs over b's axis, which a may not share.
    """
    hidden = expr.replace(lambda n: isinstance(n, (Reduction, AxisSize)), lambda n: sympy.S.One)
    symbols = sorted(hidden.free_symbols & elementwise, key=lambda s: s.name)
    return AxisSize(*symbols)


def vjp(
    forward: sympy.Expr,
    variables: Sequence[sympy.Symbol],
    upstream: sympy.Expr,
    elementwise: frozenset[sympy.Symbol],
    derive: Callable[[sympy.Expr, sympy.Symbol], sympy.Expr] = real_derivative,
    note: Callable[[str, sympy.Basic, sympy.Expr], None] | None = None,
    name: Callable[[int], sympy.Symbol] | None = None,
) -> list[sympy.Expr]:
    """The vector-Jacobian product of ``forward`` with ``upstream``, for each variable.

    ``elementwise``: the symbols with a value per element (inputs, per-channel weights);
    everything else, and every reduction, has one value per row. The results hold the
    reduction nodes themselves, so the forward pass and the backward pass share them
    (``cse``). ``explain`` shows the pass step by step: ``derive`` is its rule-by-rule
    differentiator, ``note(kind, subject, value)`` hears each step ("symbol", "f",
    "direct", "adjoint", "transpose", "chain"), ``name(i)`` names the i-th reduction.
    """
    note = note or (lambda kind, subject, value: None)
    order = nodes(forward)
    symbols = {
        node: name(index) if name else sympy.Dummy(f"r{index}", real=True)
        for index, node in enumerate(order)
    }
    # Each node's argument, and f, with the reductions directly inside them as symbols.
    arguments = {node: node.args[0].xreplace(symbols) for node in order}
    outer = forward.xreplace(symbols)
    for node in order:
        note("symbol", node, sympy.Eq(symbols[node], node.func(arguments[node])))
    note("f", forward, outer)
    per_element = (
        elementwise | {upstream} if not row_constant(forward, elementwise) else elementwise
    )
    # A variable with one value per row (a scalar weight) is broadcast to every element like
    # a reduction's value: its gradient is a row value, the sum over the axis of what each
    # element sends it. Summing a mix of row and element terms later would count the row
    # terms n times (a + amax(a*x)).
    grads = {}
    for v in variables:
        grads[v] = upstream * derive(outer, v)
        if v not in elementwise:
            grads[v] = _over_axis(grads[v], per_element)
        note("direct", v, grads[v])
    adjoints = {
        node: _over_axis(upstream * derive(outer, symbols[node]), per_element) for node in order
    }
    for node in reversed(order):  # every node before the nodes inside it
        h, r = arguments[node], symbols[node]
        note("adjoint", r, adjoints[node])
        size = axis_size(node.args[0], elementwise)  # where h, and so its adjoint, lives
        inner = TRANSPOSES[type(node)](h, r, adjoints[node], size)
        note("transpose", node, inner)
        for v in variables:
            through = inner * derive(h, v)
            if v not in elementwise:
                through = _over_axis(through, elementwise, size, broadcast=True)
            grads[v] += through
            note("chain", v, grads[v])
        for other in order:
            if symbols[other] in h.free_symbols:
                partial = inner * derive(h, symbols[other])
                adjoints[other] += _over_axis(partial, elementwise, size, broadcast=True)
    values = {symbols[node]: node for node in order}
    means = {node.args[0]: node for node in order if isinstance(node, ReduceMean)}
    return [_tidy(grads[v].xreplace(values), upstream, elementwise, means) for v in variables]


def _tidy(expr, upstream, elementwise, means) -> sympy.Expr:
    """A vector-Jacobian product with fewer passes over the data.

    Sums of forward values only are expanded (the sum of x - mean(x) is 0: SymPy sees
    that once sum(x) is n*mean(x)), and numbers are factored out of sums of terms
    (2*x - 2*m stays 2*(x - m), which ``cse`` shares with x - m).
    """

    def expanded(node: ReduceSum) -> sympy.Expr:
        (argument,) = node.args
        if upstream in argument.free_symbols:
            return node
        size = axis_size(argument, elementwise)
        total = _over_axis(sympy.expand_mul(argument), elementwise, size, broadcast=True)
        total = total.replace(
            lambda n: isinstance(n, ReduceSum) and n.args[0] in means,
            lambda n: axis_size(n.args[0], elementwise) * means[n.args[0]],
        )
        return total if sympy.count_ops(total) <= sympy.count_ops(node) else node

    expr = expr.replace(lambda n: isinstance(n, ReduceSum), expanded)
    return sympy.factor_terms(expr)


def _over_axis(
    expr: sympy.Expr,
    elementwise: frozenset[sympy.Symbol],
    size: sympy.Expr | None = None,
    broadcast: bool = False,
) -> sympy.Expr:
    """The sum of ``expr`` over the axis: the adjoint of a value broadcast along it.

    Factors with one value per row come out of the sum. A term with no elementwise factor
    is summed as n copies when it stands for a broadcast value (``broadcast``), and is the
    adjoint itself when f has one value per row (then the upstream gradient has one too).
    """
    if expr == 0:
        return sympy.S.Zero
    total = []
    for term in sympy.Add.make_args(expr):
        constant, rest = [], []
        for factor in sympy.Mul.make_args(term):
            (constant if row_constant(factor, elementwise) else rest).append(factor)
        if rest:
            total.append(sympy.Mul(*constant) * ReduceSum(sympy.Mul(*rest)))
        else:
            total.append(term * size if broadcast else term)
    return sympy.Add(*total)


# The formula for one row of n named values: every reduction written out.
class _ExplicitMax(sympy.Function):
    """max of its arguments; the gradient is shared equally among the arguments tied at it."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return _TieShare(argindex - 1, self, *self.args)


class _ExplicitMin(_ExplicitMax):
    pass


class _TieShare(sympy.Function):
    """TieShare(j, m, *args): 1/count where args[j] is the extremum m (of count ties), else 0."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return sympy.S.Zero


class _ExplicitNorm(sympy.Function):
    """sqrt(sum of squares of its arguments), with the gradient 0 at the zero vector."""

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return DivideNoNan(self.args[argindex - 1], self)


def _tie_share_value(j, m, *args):
    ties = [a for a in args if a == m]
    return mpmath.mpf(1) / len(ties) if args[int(j)] == m else mpmath.mpf(0)


#: How the mpmath references evaluate the explicit forms.
MPMATH_NAMESPACE = {
    "_ExplicitMax": lambda *args: max(args),
    "_ExplicitMin": lambda *args: min(args),
    "_TieShare": _tie_share_value,
    "_ExplicitNorm": lambda *args: mpmath.sqrt(mpmath.fsum(a * a for a in args)),
    "DivideNoNan": lambda a, b: mpmath.mpf(0) if b == 0 else a / b,
}


def explicit(
    expr: sympy.Expr, position: int, width: int, per_element: dict[sympy.Symbol, list]
) -> sympy.Expr:
    """``expr`` at element ``position`` of a row of ``width``, every reduction written out.

    ``per_element`` maps each elementwise symbol to its ``width`` symbols, one per element.
    """
    here = {s: values[position] for s, values in per_element.items()}

    def spelt(node: sympy.Basic, at: dict) -> sympy.Basic:
        if isinstance(node, Reduction):
            terms = [
                spelt(node.args[0], {s: v[k] for s, v in per_element.items()}) for k in range(width)
            ]
            return _SPELT[type(node)](terms)
        if isinstance(node, AxisSize):
            return sympy.Integer(width)
        if isinstance(node, LogSoftmax):
            (u,) = node.args
            return spelt(u - LogSumExp(u), at)
        if isinstance(node, sympy.Symbol):
            return at.get(node, node)
        if not node.args:
            return node
        return node.func(*(spelt(arg, at) for arg in node.args))

    return spelt(expr, here)


_SPELT: dict[type[Reduction], Callable[[list], sympy.Expr]] = {
    ReduceSum: lambda terms: sympy.Add(*terms),
    ReduceMean: lambda terms: sympy.Add(*terms) / len(terms),
    ReduceMax: lambda terms: _ExplicitMax(*terms),
    ReduceMin: lambda terms: _ExplicitMin(*terms),
    LogSumExp: lambda terms: sympy.log(sympy.Add(*(sympy.exp(t) for t in terms))),
    Norm: lambda terms: _ExplicitNorm(*terms),
}
