"""The user's request beyond the formula: inputs, parameters, state, surrogates, updates.

``build_spec`` takes the parsed forward expression and the option strings (``--inputs x,y``,
``--param a=0.25``, ``--state n=0``, ``--param-shape a=channel``, ``--grad "1"`` or
``--grad x=...``, ``--update "s=s+1"``) and gives a checked ``LayerSpec``. Every value and
expression goes through the same safe parser as the formula. What is legal but likely a mistake
(several inputs inferred without ``--inputs``: a forgotten ``--param``?) is a warning in
``LayerSpec.warnings``, not an error.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

import sympy

from .errors import ExpressionError, InputError
from .mathtext import math_text
from .parse import ParsedExpression, parse
from .reductions import has_reductions, nodes, row_constant

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
SHAPES = ("scalar", "channel")


@dataclass(frozen=True)
class Weight:
    """A layer weight: a trainable parameter or non-trainable state."""

    symbol: sympy.Symbol
    default: sympy.Expr  # an exact number
    trainable: bool
    shape: str = "scalar"  # scalar | channel (one value per last-axis channel)


#: What the forward pass keeps for the backward pass (``--save``):
#: reuse       the values both passes need (shared subexpressions): the least work;
#: derivative  only df/dv for each variable v, computed in the forward pass: one tensor each;
#: inputs      nothing it computed: the backward pass recomputes from the inputs.
SAVE_POLICIES = ("reuse", "derivative", "inputs")
#: What the generated op is written with (``--backend``): TensorFlow (``tf.custom_gradient``,
#: ``tf.math``), or ``keras.ops`` and ``keras.ops.custom_gradient``, which run on every Keras 3
#: backend (TensorFlow, JAX, PyTorch).
BACKENDS = ("tensorflow", "keras")
#: Names the keras.ops code uses itself (the ops module, the grad function's arguments).
KERAS_NAMES = frozenset({"ops", "args", "upstream"})


@dataclass(frozen=True)
class LayerSpec:
    """Inputs in call order, weights in declaration order, surrogates and updates by symbol."""

    inputs: tuple[sympy.Symbol, ...]
    weights: tuple[Weight, ...]
    surrogates: tuple[tuple[sympy.Symbol, ParsedExpression], ...] = ()
    updates: tuple[tuple[sympy.Symbol, ParsedExpression], ...] = ()
    stabilize: bool = True  # apply the stable rewrites (see stabilize.py)
    save: str = "reuse"  # what the forward pass keeps for the backward pass (SAVE_POLICIES)
    warnings: tuple[str, ...] = ()  # said to the user; generation goes on (see plan.warnings)
    axis: int = -1  # the feature axis the reductions run over (reductions.py)
    backend: str = "tensorflow"  # what the code is written with (BACKENDS)

    @property
    def variables(self) -> tuple[sympy.Symbol, ...]:
        """Arguments of the generated function: inputs first, then weights."""
        return self.inputs + tuple(w.symbol for w in self.weights)


def build_spec(
    parsed: ParsedExpression,
    *,
    inputs: str | None = None,
    params: tuple[str, ...] = (),
    states: tuple[str, ...] = (),
    param_shapes: tuple[str, ...] = (),
    grads: tuple[str, ...] = (),
    updates: tuple[str, ...] = (),
    stabilize: bool = True,
    save: str = "reuse",
    axis: int = -1,
    backend: str = "tensorflow",
    unused_inputs: bool = False,
) -> LayerSpec:
    """Check the options against the expression and each other; raise ``InputError``.

    ``unused_inputs``: ``--inputs`` may name inputs the formula does not use (a loss's
    target, in a regulariser of the prediction alone).
    """
    if save not in SAVE_POLICIES:
        raise InputError(
            f"--save must be one of {', '.join(SAVE_POLICIES)}, not {save!r}",
            hint="reuse (default): share work between the passes; derivative: keep only df/dv;"
            " inputs: keep nothing, recompute",
        )
    if backend not in BACKENDS:
        raise InputError(
            f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}",
            hint="tensorflow (default): tf.custom_gradient; keras: keras.ops, for every Keras"
            " 3 backend",
        )
    if backend == "keras":
        _check_keras_functions(parsed)
    clash = sorted({s.name for s in parsed.symbols} & KERAS_NAMES) if backend == "keras" else []
    if clash:
        raise InputError(
            f"symbol '{clash[0]}' would clash with a name of the keras.ops code"
            f" ({', '.join(sorted(KERAS_NAMES))})",
            hint="rename the symbol, e.g. 'x' or 'u'",
        )
    free = {s.name: s for s in parsed.symbols}
    # A weight may appear only in a surrogate or an update (an annealed surrogate slope).
    grad_pairs = [_grad_option(text) for text in grads]
    update_texts = [_split(text, "--update", "--update s=s+1") for text in updates]
    update_pairs = [(name, _parse_option(e, f"--update {name}")) for name, e in update_texts]
    elsewhere = {s.name: s for _, p in (*grad_pairs, *update_pairs) for s in p.symbols}
    weights = [_weight(text, "--param", free, elsewhere, trainable=True) for text in params]
    weights += [_weight(text, "--state", free, elsewhere, trainable=False) for text in states]
    weight_names = [w.symbol.name for w in weights]
    _no_duplicates(weight_names, "--param/--state")
    weights = _apply_shapes(weights, param_shapes)
    input_symbols = _inputs(inputs, free, set(weight_names), parsed, unused_inputs)
    warnings = []
    if input_symbols[0].name not in free and not unused_inputs:
        name = input_symbols[0].name
        warnings.append(
            f"f does not depend on its input {name}: the layer outputs f's value in the shape"
            f" of {name}, and {name}'s gradient is 0"
        )
    if inputs is None and len(input_symbols) > 1:
        warnings.append(_inferred_inputs_warning([s.name for s in input_symbols]))
    warnings += [
        _untrained_weight_warning(w.symbol.name)
        for w in weights
        if w.trainable and w.symbol.name not in free
    ]
    variables = {s.name: s for s in (*input_symbols, *(w.symbol for w in weights))}
    surrogates = _surrogates(grad_pairs, input_symbols, variables)
    update_pairs = _updates(update_pairs, weights)
    trained = [
        s.name for s, _ in update_pairs if any(w.symbol == s and w.trainable for w in weights)
    ]
    if backend == "keras" and trained:
        raise InputError(
            f"--update {trained[0]}=...: with --backend keras an updated weight must be a --state:"
            " under JAX, Keras keeps only the optimizer's changes to a trainable weight, and an"
            " update inside the layer's call would be lost",
            hint=f"declare it with --state {trained[0]}=VALUE (or use --backend tensorflow)",
        )
    channel = tuple(w.symbol for w in weights if w.shape == "channel")
    _check_reductions(parsed, axis, save, grad_pairs, update_pairs, input_symbols, channel)
    return LayerSpec(
        inputs=input_symbols,
        weights=tuple(weights),
        surrogates=surrogates,
        updates=update_pairs,
        stabilize=stabilize,
        save=save,
        warnings=tuple(warnings),
        axis=axis,
        backend=backend,
    )


def _check_keras_functions(parsed: ParsedExpression) -> None:
    """Refuse, by the name typed, a function keras.ops lacks (before its derivative shows)."""
    from .keras_printing import missing_hint

    lacking = {sympy.loggamma: "loggamma", sympy.polygamma: "polygamma (digamma)"}
    for function, name in lacking.items():
        if parsed.expr.has(function):
            raise InputError(f"keras.ops has no {name}, used in {parsed.text}", hint=missing_hint())


def _check_reductions(parsed, axis, save, grads, updates, inputs, channel) -> None:
    """Reductions only where they mean something: in f, over a feature axis, of a row."""
    elementwise = frozenset((*inputs, *channel))
    found = nodes(parsed.expr)
    if not found:
        if axis != -1:
            raise InputError(
                f"--axis {axis}: the formula has no reduction to run over it",
                hint="--axis chooses the axis of sum, mean, amax, amin, logsumexp and norm",
            )
        return
    if axis == 0:
        raise InputError(
            "--axis 0 is the batch axis: a layer must not mix the samples of a batch",
            hint="the feature axis is -1 (the default); channels-first data has it at 1",
        )
    if axis != -1 and channel:
        raise InputError(
            f"--param-shape {channel[0].name}=channel puts one value per channel on the last axis,"
            f" and --axis {axis} reduces over another",
            hint="keep the features on the last axis (the default --axis -1) for per-channel"
            " weights",
        )
    for option, pairs in (("--grad", grads), ("--update", updates)):
        for _, expression in pairs:
            if has_reductions(expression.expr):
                raise InputError(
                    f"{option} {expression.text!r}: reductions (sum, mean, ...) are supported"
                    " in the formula only",
                    hint="surrogates and updates are elementwise",
                )
    if grads:
        raise InputError(
            "--grad with reductions in the formula is not supported yet",
            hint="the layer's gradient is the exact vector-Jacobian product of the formula",
        )
    if save == "derivative":
        raise InputError(
            "--save derivative needs an elementwise formula: through a reduction the gradient"
            " depends on the upstream gradient of the whole row, so there is no df/dx to keep",
            hint="use --save reuse (the default) or --save inputs",
        )
    for node in found:
        (argument,) = node.args
        if not row_constant(argument, elementwise):
            continue
        inner = nodes(argument)
        if inner:
            raise InputError(
                f"{node.word}({math_text(argument)}) reduces a value that is already one per"
                f" row ({inner[-1].word}(...) reduced it)",
                hint="reduce an elementwise expression, e.g. mean((x - mean(x))**2)",
            )
        raise InputError(
            f"{node.word}({math_text(argument)}) reduces something that does not depend on an"
            " input or a per-channel weight: there is no feature axis to reduce",
            hint="reduce an expression of the inputs, e.g. sum(x**2)",
        )


def _inferred_inputs_warning(names: list[str]) -> str:
    """Several symbols and no --inputs: often a forgotten --param (``beta*x``)."""
    weight = next((n for n in names if n != "x"), names[0])
    listed = ", ".join(names[:-1]) + f" and {names[-1]}"
    return (
        f"the layer has {len(names)} inputs, {listed} (alphabetical order, as --inputs is not"
        f" given), and is called on a list [{', '.join(names)}]; if {weight} is a weight,"
        f" declare it with --param {weight}=VALUE (trainable) or --state {weight}=VALUE;"
        f" to keep them all as inputs, pass --inputs {','.join(names)}, which silences this"
        " warning"
    )


def _untrained_weight_warning(name: str) -> str:
    return (
        f"--param {name} is not in the expression, only in --grad/--update: f does not depend on"
        f" it, so its gradient is 0 and training never changes it; declare it with --state"
        f" {name}=VALUE (non-trainable) if that is intended"
    )


def _split(text: str, option: str, example: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not value or not _IDENTIFIER.fullmatch(name) or keyword.iskeyword(name):
        raise InputError(f"{option} {text!r} must look like NAME=VALUE", hint=f"e.g. {example}")
    return name, value


def _weight(text: str, option: str, free: dict, elsewhere: dict, *, trainable: bool) -> Weight:
    name, value_text = _split(text, option, f"{option} a=0.25")
    symbol = free.get(name) or elsewhere.get(name)
    if symbol is None:
        raise InputError(
            f"{option} {name}: the expression has no symbol '{name}', and no --grad or --update"
            " uses it",
            hint=f"symbols in the expression: {', '.join(sorted(free)) or 'none'}",
        )
    value = _number(value_text, option, name)
    return Weight(symbol=symbol, default=value, trainable=trainable)


def _number(text: str, option: str, name: str) -> sympy.Expr:
    try:
        value = parse(text).expr
    except ExpressionError as err:
        raise InputError(f"{option} {name}={text}: {err.message}", hint=err.hint) from None
    if value.free_symbols or not value.is_real or not value.is_finite:
        raise InputError(f"{option} {name}={text}: the value must be a real number")
    return value


def _apply_shapes(weights: list[Weight], param_shapes: tuple[str, ...]) -> list[Weight]:
    shapes = {}
    for text in param_shapes:
        name, shape = _split(text, "--param-shape", "--param-shape a=channel")
        if shape not in SHAPES:
            raise InputError(f"--param-shape {name}={shape}: the shape is one of {SHAPES}")
        if name not in {w.symbol.name for w in weights}:
            raise InputError(f"--param-shape {name}: declare it first with --param {name}=VALUE")
        shapes[name] = shape
    return [
        Weight(w.symbol, w.default, w.trainable, shapes.get(w.symbol.name, w.shape))
        for w in weights
    ]


def _inputs(
    text: str | None,
    free: dict,
    weight_names: set[str],
    parsed: ParsedExpression,
    unused_allowed: bool = False,
) -> tuple[sympy.Symbol, ...]:
    if text is None:
        names = sorted(set(free) - weight_names)
        if "e" in names:
            raise InputError(
                "'e' is a variable here, not Euler's number",
                hint="for Euler's number write E or exp(x); to make e an input, pass --inputs",
            )
    else:
        names = [n.strip() for n in text.split(",") if n.strip()]
        _no_duplicates(names, "--inputs")
        for name in names:
            if not _IDENTIFIER.fullmatch(name):
                raise InputError(f"--inputs: {name!r} is not a variable name")
            if name in weight_names:
                raise InputError(
                    f"'{name}' is both an input (--inputs) and a weight (--param/--state)",
                    hint="a symbol is either an input of the layer or one of its weights",
                )
        unlisted = sorted(set(free) - weight_names - set(names))
        if unlisted:
            raise InputError(
                f"symbol(s) {', '.join(unlisted)} are neither inputs nor weights",
                hint="list them in --inputs, or declare them with --param NAME=VALUE",
            )
        unused = [n for n in names if n not in free]
        used = [n for n in names if n in free]
        if unused and used and not unused_allowed:
            raise InputError(
                f"--inputs {', '.join(unused)}: the expression does not use"
                f" {' or '.join(repr(n) for n in unused)}; the layer would ignore the input"
                " and give it the gradient 0",
                hint=f"remove it from the list: --inputs {','.join(used)}",
            )
        if not used and len(names) > 1:
            raise InputError(
                f"--inputs {', '.join(names)}: the expression uses none of them",
                hint="a formula of weights only takes one input, which gives its output shape",
            )
        # One unused input: a formula of weights only, whose output takes the input's shape.
    if not names:
        raise ExpressionError(
            "the expression has no input variable",
            text=parsed.text,
            hint="use a variable, e.g. 'sin(x)'",
        )
    return tuple(free.get(n) or sympy.Symbol(n, real=True) for n in names)


def _grad_option(text: str) -> tuple[str | None, ParsedExpression]:
    """``--grad NAME=EXPR`` -> (NAME, EXPR parsed); ``--grad EXPR`` -> (None, EXPR parsed)."""
    name, sep, expression = text.partition("=")
    if sep and _IDENTIFIER.fullmatch(name.strip()) and "=" not in expression[:1]:
        return name.strip(), _parse_option(expression.strip(), "--grad")
    return None, _parse_option(text, "--grad")


def _surrogates(
    grads: list[tuple[str | None, ParsedExpression]],
    inputs: tuple[sympy.Symbol, ...],
    variables: dict,
) -> tuple[tuple[sympy.Symbol, ParsedExpression], ...]:
    result: dict[sympy.Symbol, ParsedExpression] = {}
    for target_name, parsed in grads:
        if target_name is not None:
            if target_name not in variables:
                raise InputError(
                    f"--grad {target_name}=...: '{target_name}' is not an input or parameter",
                    hint=f"variables: {', '.join(variables)}",
                )
            target = variables[target_name]
        else:
            if len(inputs) != 1:
                raise InputError(
                    "--grad EXPR needs exactly one input; with several, write --grad NAME=EXPR"
                )
            target = inputs[0]
        if target in result:
            raise InputError(f"--grad for '{target.name}' is given twice")
        _check_symbols(
            parsed,
            allowed=set(variables),
            unknown=f"--grad {parsed.text!r} uses unknown symbol(s) {{}}",
            hint=f"a surrogate gradient may use only {', '.join(variables)}",
        )
        result[target] = parsed
    return tuple(result.items())


def _updates(
    updates: list[tuple[str, ParsedExpression]], weights: list[Weight]
) -> tuple[tuple[sympy.Symbol, ParsedExpression], ...]:
    result: dict[sympy.Symbol, ParsedExpression] = {}
    by_name = {w.symbol.name: w.symbol for w in weights}
    for name, parsed in updates:
        if name not in by_name:
            raise InputError(
                f"--update {name}=...: '{name}' is not a declared weight",
                hint=f"declare it with --param {name}=VALUE or --state {name}=VALUE",
            )
        if by_name[name] in result:
            raise InputError(f"--update for '{name}' is given twice")
        _check_symbols(
            parsed,
            allowed=set(by_name),
            unknown=f"--update {name}={parsed.text}: may use only weights, not {{}}",
            hint="an update runs once per training call, from the layer's weights",
        )
        result[by_name[name]] = parsed
    return tuple(result.items())


def _parse_option(text: str, option: str) -> ParsedExpression:
    """Parse an option's expression with the formula's parser, errors naming the option."""
    try:
        return parse(text)
    except ExpressionError as err:
        raise InputError(f"{option}: {err}", hint=err.hint) from None


def _check_symbols(parsed: ParsedExpression, *, allowed: set[str], unknown: str, hint: str):
    """An option's expression may use only the ``allowed`` symbols."""
    extra = sorted(s.name for s in parsed.symbols if s.name not in allowed)
    if extra:
        raise InputError(unknown.format(", ".join(extra)), hint=hint)


def _no_duplicates(names: list[str], option: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise InputError(f"{option}: '{name}' is given twice")
        seen.add(name)
