"""Stage 3: ``Analysis`` -> ``LayerPlan``, the plain data the templates render.

Everything the templates need is decided here as strings and numbers: code for each line,
docstring math, the reference tables and the test's imports (the names themselves are chosen
and checked in ``names``). Templates then only loop and substitute.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import sympy

from .analyze import UPSTREAM, Analysis
from .keras_printing import printer_for
from .mathtext import math_text
from .names import class_name_for, fresh_name
from .pointplan import lost_text, point_tables
from .printing import TensorFlowPrinter
from .reductions import row_constant
from .reference import References
from .rowplan import lost_text as row_lost_text
from .rowplan import named_upstream, row_tables
from .rows import WIDTH, RowReferences, channel_values

#: The API of templates/scaffold_checks.py.jinja the test template is written for: bump it
#: with any change there that older generated tests cannot use.
CHECKS_API = 2


@dataclass(frozen=True)
class Assignment:
    """One line ``name = code`` of generated code, with the math it computes."""

    name: str
    code: str
    math: str


@dataclass(frozen=True)
class VariablePlan:
    """One argument of the generated function: an input, or a weight of the layer."""

    name: str
    kind: str  # input | param | state
    default: str  # Python literal of a weight's initial value; "" for inputs
    shape: str  # elementwise (inputs) | scalar | channel
    grad_code: str  # the gradient returned for it, already summed to its shape
    grad_text: str  # the backward expression, as math
    surrogate: bool
    update_code: str = ""  # new value assigned in Layer.call after each training call, or ""
    update_plain: str = ""  # the same with plain weight names, for the generated test
    update_text: str = ""
    test_values: str = ""  # rows: a per-channel weight's test value in each channel (tuple)

    @property
    def trainable(self) -> bool:
        """Whether the layer trains this weight."""
        return self.kind == "param"


@dataclass(frozen=True)
class LayerPlan:
    """Plain data for ``layer.py.jinja`` and ``test_layer.py.jinja``."""

    name: str
    class_name: str
    expression: str
    command: str
    inputs: tuple[VariablePlan, ...]
    weights: tuple[VariablePlan, ...]
    output: str
    upstream: str
    grad_function: str
    forward_text: str  # the formula as typed
    forward_latex: str
    stable_text: str  # the stable form the code computes, "" if no rewrite applied
    rewrites: tuple[str, ...]
    forward_lines: tuple[Assignment, ...]
    forward_return: str
    grad_lines: tuple[Assignment, ...]
    saved: tuple[str, ...]  # what the backward pass reads from the forward pass
    save: str  # the --save policy that chose it
    saved_derivatives: tuple[str, ...]  # --save derivative: the df/dv the forward pass computes
    kernel: str  # the tf.custom_gradient function the public op calls
    plain_forward: str
    notes: tuple[str, ...]
    smooth: bool
    uses_math: bool
    test_uses_math: bool
    helpers: tuple[str, ...]
    columns: str  # the reference tables' column names, as a Python tuple literal
    point_rows: tuple[str, ...]  # source lines of the test points' rows (inputs, f, gradients)
    grid_rows: tuple[str, ...]  # ... of the grid through 0 and the kinks
    extreme_rows: tuple[str, ...]  # ... of the extreme inputs representable in float32
    excluded_rows: tuple[str, ...]  # grid points left out: f or a gradient is not finite there
    large_text: str  # grid points left out as too large to compare, as text ("" if none)
    held: tuple[str, ...]  # lines of a dict literal: dtype -> indices of the points it holds
    domain_text: str  # where the tests look when f is not finite at every candidate ("")
    # The largest constant of the code (100000 in 100000*x**2), "" if none: a dtype whose
    # largest finite value is below it cannot run the layer at all (float16: 65504).
    largest_constant: str
    second_skip: str  # why second derivatives are not checked, or ""
    uses_tf_in_test: bool  # the test's own code (formula, updates) calls TensorFlow
    imports: tuple[str, ...]  # the test's import lines for the layer and the checks (layout)
    record: str  # the module's record, a Python dict literal (record.py)
    checks_api: int  # the API of the shared checks module the test is written for
    warnings: tuple[str, ...] = ()  # the spec's, then the analysis's: the CLI prints them
    axis: str = ""  # the axis the reductions run over (a Python int literal); "": elementwise
    loss: bool = False  # a Keras loss (``new-loss``), not a layer
    averaged: bool = False  # a loss's elementwise formula, averaged over the last axis
    row_valued: bool = False  # f has one value per row: the output's axis has size 1
    width: int = 0  # the length of the test rows' axis (``rows.WIDTH``); 0: elementwise
    # Indices of the inputs f reads only through reductions: their axis is 1 in f's shape.
    reduced_inputs: tuple[int, ...] = ()
    backend: str = "tensorflow"  # the code's target: tensorflow | keras (keras.ops)

    @property
    def variables(self) -> tuple[VariablePlan, ...]:
        """Arguments of the generated function, in call order."""
        return self.inputs + self.weights

    @property
    def surrogate(self) -> bool:
        """Whether any gradient is a surrogate rather than the derivative."""
        return any(v.surrogate for v in self.variables)

    @property
    def noqa_names(self) -> str:
        """A comment for a def naming the user's upper-case symbols (pep8-naming's N803)."""
        return _noqa(self.variables)

    @property
    def noqa_weights(self) -> str:
        """The same for a def naming only the weights (the layer's ``__init__``)."""
        return _noqa(self.weights)

    @property
    def activation(self) -> bool:
        """One input and no weights: the op also works as a Keras activation."""
        return len(self.inputs) == 1 and not self.weights


def _noqa(variables: tuple[VariablePlan, ...]) -> str:
    upper = any(not v.name.islower() for v in variables)
    return "  # noqa: N803" if upper else ""


def build_plan(
    analysis: Analysis,
    refs: References,
    *,
    name: str,
    names: dict[str, str],
    imports: tuple[str, ...] = (),
    record: str = "{}",
    loss=None,
) -> LayerPlan:
    """Turn the analysis and reference values into the templates' plain data.

    ``imports`` are the test's import lines (``layout``), ``record`` the module's record;
    ``loss`` the ``loss.LossFormula`` of a loss (None for a layer).
    """
    spec = analysis.spec
    first = spec.inputs[0].name
    reduces = isinstance(refs, RowReferences)
    one_shape = len(spec.inputs) == 1 and not spec.weights and not reduces
    target = printer_for(spec.backend)
    printer = target(like=first, one_shape=one_shape)
    taken = {s.name for s in spec.variables} | set(names.values()) | {name, class_name_for(name)}
    taken |= {s.name for s, _ in (*analysis.forward_temps, *analysis.grad_temps)}
    upstream = sympy.Symbol(names["dy"], real=True)
    if reduces:  # vector-Jacobian products: the upstream gradient is in them already
        analysis = named_upstream(analysis, upstream)
    forward_temps, forward_out, stop_lines = _stopped_forward(analysis, taken, printer)
    forward_lines = stop_lines + tuple(_assignment(printer, s, e) for s, e in forward_temps)
    grad_lines = tuple(_assignment(printer, s, e) for s, e in analysis.grad_temps)
    # One elementwise input and no broadcast: its gradient already has its shape.
    exact_shape = len(spec.inputs) == 1
    variables = []
    weights_by_symbol = {w.symbol: w for w in spec.weights}
    updates = dict(analysis.updates)
    # --save derivative: the forward pass computes df/dv and the backward pass only scales it.
    derivative_lines = []
    backward_uses = set()  # what the backward pass reads: its temporaries' inputs and its own
    for index, symbol in enumerate(spec.variables):
        grad_out = analysis.grad_outs[index]
        weight = weights_by_symbol.get(symbol)
        if spec.save == "derivative" and grad_out.free_symbols and not grad_out.is_Symbol:
            saved_name = fresh_name(f"df_d{symbol.name.lower()}", taken)
            code = printer.doprint(grad_out)
            derivative_lines.append(Assignment(saved_name, code, f"df/d{symbol.name}"))
            grad_out = sympy.Symbol(saved_name, real=True)
        backward_uses |= grad_out.free_symbols
        if grad_out == 0:
            grad_code = printer.call("zeros_like", symbol.name)
        elif reduces:
            printer.helpers.add("fit_to_shape")
            grad_code = f"_fit_to_shape({printer.doprint(grad_out)}, {symbol.name})"
        else:
            grad_code = printer.doprint(_times_upstream(upstream, grad_out))
            if weight is not None or not exact_shape:
                printer.helpers.add("sum_to_shape")
                grad_code = f"_sum_to_shape({grad_code}, {symbol.name})"
        update = updates.get(symbol)
        variables.append(
            VariablePlan(
                name=symbol.name,
                kind="input" if weight is None else ("param" if weight.trainable else "state"),
                default="" if weight is None else _literal(weight.default),
                shape="elementwise" if weight is None else weight.shape,
                grad_code=grad_code,
                grad_text=math_text(analysis.shown_gradients[index].xreplace({UPSTREAM: upstream})),
                surrogate=analysis.surrogate[index],
                update_code="" if update is None else _update_code(target, update, symbol.name),
                update_plain=("" if update is None else target(like=symbol.name).doprint(update)),
                update_text="" if update is None else math_text(update),
                test_values=(
                    repr(channel_values(weight.default))
                    if reduces and weight is not None and weight.shape == "channel"
                    else ""
                ),
            )
        )
    backward_uses |= {s for _, e in analysis.grad_temps for s in e.free_symbols}
    grad_only = {s.name for s, _ in analysis.grad_temps} | {upstream.name}
    saved = sorted({s.name for s in backward_uses} - grad_only)
    forward_lines += tuple(derivative_lines)
    test_printer = target(like=first, float64_only=True, axis=str(spec.axis))
    # The formula as typed: the generated test compares with the backend's autodiff of it.
    # In the op's shape: with reductions, not broadcast to inputs it does not read (a loss
    # of y_pred alone has one value per row, as the op has).
    plain_forward = (
        test_printer.doprint_shaped(analysis.parsed.expr)
        if reduces
        else _broadcast_to_inputs(
            test_printer, analysis.parsed.expr, analysis.parsed.expr, spec.inputs
        )
    )
    n_inputs = len(spec.inputs)
    tables = row_tables(analysis, refs) if reduces else point_tables(analysis, refs)
    return LayerPlan(
        name=name,
        class_name=class_name_for(name),
        expression=analysis.parsed.text,
        command=_command(analysis, name, loss),
        inputs=tuple(variables[:n_inputs]),
        weights=tuple(variables[n_inputs:]),
        output=names["y"],
        upstream=upstream.name,
        grad_function=names["grad"],
        forward_text=math_text(analysis.parsed.expr),
        forward_latex=sympy.latex(analysis.parsed.expr),
        stable_text=math_text(analysis.stable) if analysis.rewrites else "",
        rewrites=analysis.rewrites,
        forward_lines=forward_lines,
        forward_return=(
            printer.doprint_shaped(forward_out)
            if reduces  # f's shape is its inputs' with the reduced axis kept where it reduces
            else _broadcast_to_inputs(printer, forward_out, analysis.forward, spec.inputs)
        ),
        grad_lines=grad_lines,
        saved=tuple(saved),
        save=spec.save,
        saved_derivatives=tuple(line.name for line in derivative_lines),
        kernel=f"_{name}_with_gradient",
        plain_forward=plain_forward,
        notes=analysis.notes + ((FUSED_SIGMOID_NOTE,) if printer.fused_sigmoid else ()),
        smooth=analysis.smooth,
        uses_math=printer.uses_math,
        test_uses_math=test_printer.uses_math,
        helpers=tuple(sorted(printer.helpers)),
        **tables,
        uses_tf_in_test=_uses_backend(target, plain_forward, variables),
        backend=spec.backend,
        imports=imports,
        record=record,
        checks_api=CHECKS_API,
        warnings=spec.warnings
        + analysis.warnings
        + _lost(analysis, refs),  # the docstring shows warnings too
        axis=str(spec.axis) if reduces else "",
        row_valued=reduces and refs.row_valued,
        width=WIDTH if reduces else 0,
        reduced_inputs=tuple(
            i
            for i, x in enumerate(spec.inputs)
            if reduces
            and x in analysis.forward.free_symbols
            and row_constant(analysis.forward, {x})
        ),
        loss=loss is not None,
        averaged=loss is not None and loss.averaged,
    )


def _lost(analysis: Analysis, refs) -> tuple[str, ...]:
    """The warning that float32 loses precision somewhere, if it does."""
    if isinstance(refs, RowReferences):
        return (row_lost_text(refs),) if refs.lost else ()
    return (lost_text(analysis, refs),) if refs.lost else ()


def _uses_backend(target, plain_forward: str, variables: list[VariablePlan]) -> bool:
    """Whether the test's own code (formula, updates) calls the backend's operations."""
    prefix = target.OPS["where"].split(".")[0] + "."
    return prefix in plain_forward + "".join(v.update_plain for v in variables)


def _broadcast_to_inputs(
    printer: TensorFlowPrinter,
    value: sympy.Expr,
    forward: sympy.Expr,
    inputs: tuple[sympy.Symbol, ...],
) -> str:
    """The forward output with the broadcast shape of all inputs, even those f does not use.

    ``a*b`` with input x would otherwise return a scalar, and ``sin(x)`` with inputs x, y the
    shape of x, while the layer reports the broadcast shape. A constant f already has the first
    input's shape (``tf.ones_like``).
    """
    code = printer.doprint_shaped(value)
    used = forward.free_symbols or {inputs[0]}
    if all(symbol in used for symbol in inputs):
        return code
    return printer.broadcast_to(code, [symbol.name for symbol in inputs])


def _stopped_forward(analysis: Analysis, taken: set[str], printer: TensorFlowPrinter):
    """--save inputs: the forward pass computed on tf.stop_gradient views of its arguments.

    The backward pass recomputes everything from the arguments themselves, so nothing of the
    forward pass needs a gradient path. In eager mode tf.custom_gradient runs the forward
    function under the caller's tape, which would otherwise keep every intermediate alive until
    the backward pass (second derivatives stay right: they go through the backward pass).
    Returns the forward temporaries and output to print, and the stop_gradient lines.
    """
    forward_temps, forward_out = analysis.forward_temps, analysis.forward_out
    if analysis.spec.save != "inputs":
        return forward_temps, forward_out, ()
    used = forward_out.free_symbols.union(*(e.free_symbols for _, e in forward_temps))
    stopped = {
        v: sympy.Symbol(fresh_name(f"{v.name.lower()}_stopped", taken), real=True)
        for v in analysis.spec.variables
        if v in used
    }
    lines = tuple(
        Assignment(
            s.name, printer.call("stop_gradient", v.name), "no tape records the forward pass"
        )
        for v, s in stopped.items()
    )
    temps = tuple((s, e.xreplace(stopped)) for s, e in forward_temps)
    return temps, forward_out.xreplace(stopped), lines


def _times_upstream(upstream: sympy.Symbol, grad_out: sympy.Expr) -> sympy.Expr:
    """The upstream gradient times a gradient, moved into the branches of a conditional.

    c*where(cond, dy, dy*g), not c*dy*where(cond, ones, g), which costs one more pass over the
    data and a tensor of ones. A numeric coefficient c stays outside: inside, each branch would
    multiply by it again.
    """
    coefficient, rest = grad_out.as_coeff_Mul()
    if isinstance(rest, sympy.Piecewise):
        branches = sympy.Piecewise(*((upstream * e, c) for e, c in rest.args))
        return sympy.Mul(coefficient, branches, evaluate=False) if coefficient != 1 else branches
    return upstream * grad_out


FUSED_SIGMOID_NOTE = (
    "tf.raw_ops.SoftplusGrad(gradients=g, features=u) computes g*sigmoid(u) in one TensorFlow"
    " kernel (it is the gradient kernel of softplus): the code uses it for products with a"
    " sigmoid, which saves a pass over the data outside XLA."
)


def _command(analysis: Analysis, name: str, loss=None) -> str:
    """The command that regenerates this layer (or loss), options normalised."""
    spec = analysis.spec
    command = "new-layer" if loss is None else "new-loss"
    parts = ["scaffold", command, shlex.quote(analysis.parsed.text), "--name", name]
    default = "y_true,y_pred" if loss is not None else None
    if len(spec.inputs) > 1 and ",".join(s.name for s in spec.inputs) != default:
        parts += ["--inputs", ",".join(s.name for s in spec.inputs)]
    for weight in spec.weights:
        option = "--param" if weight.trainable else "--state"
        parts += [option, f"{weight.symbol.name}={_literal(weight.default)}"]
        if weight.shape != "scalar":
            parts += ["--param-shape", f"{weight.symbol.name}={weight.shape}"]
    for symbol, parsed in spec.surrogates:
        parts += ["--grad", shlex.quote(f"{symbol.name}={parsed.text}")]
    for symbol, parsed in spec.updates:
        parts += ["--update", shlex.quote(f"{symbol.name}={parsed.text}")]
    if not spec.stabilize:
        parts.append("--no-stabilize")
    if spec.save != "reuse":
        parts += ["--save", spec.save]
    if spec.axis != -1:
        parts += ["--axis", str(spec.axis)]
    if spec.backend != "tensorflow":
        parts += ["--backend", spec.backend]
    return " ".join(parts)


def _literal(value: sympy.Expr) -> str:
    """A Python float literal for an exact number: 1/4 -> '0.25'."""
    return repr(float(value))


def _update_code(target: type[TensorFlowPrinter], update: sympy.Expr, weight: str) -> str:
    """Code for a weight update inside ``Layer.call``, where weight ``w`` is ``self.w``."""
    attributes = {s: sympy.Symbol(f"self.{s.name}", real=True) for s in update.free_symbols}
    return target(like=f"self.{weight}").doprint(update.xreplace(attributes))


def _assignment(printer: TensorFlowPrinter, symbol: sympy.Symbol, expr: sympy.Expr) -> Assignment:
    return Assignment(name=symbol.name, code=printer.doprint(expr), math=math_text(expr))
