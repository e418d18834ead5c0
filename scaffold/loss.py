"""``scaffold new-loss``: a loss formula -> the per-sample formula the op computes.

Takes the parsed formula in the target and the prediction (``y_true`` and ``y_pred``, or the
two names of ``--inputs``, target first) and gives the formula of the op: one value per
sample, over the last axis, as Keras's own losses give them. An elementwise formula is
averaged over the last axis, as ``keras.losses.MeanSquaredError``, ``Huber`` and
``BinaryCrossentropy`` do; a formula that already reduces over it (categorical
cross-entropy, ``-sum(y_true*(y_pred - logsumexp(y_pred)))``) is not averaged again. The
reduction over the batch and ``sample_weight`` are the ``keras.losses.Loss`` base class's.
"""

from __future__ import annotations

import dataclasses

from .errors import InputError
from .parse import ParsedExpression
from .reductions import ReduceMean, row_constant

DEFAULT_INPUTS = "y_true,y_pred"
#: What a loss cannot have: it has no weights, surrogates or updates, and reduces the last axis.
LAYER_ONLY = {
    "params": "--param",
    "states": "--state",
    "param_shapes": "--param-shape",
    "grads": "--grad",
    "updates": "--update",
}


@dataclasses.dataclass(frozen=True)
class LossFormula:
    """The op's formula (per sample, keeping the last axis) and how it came from the text."""

    parsed: ParsedExpression  # the user's text, with the per-sample formula as ``expr``
    inputs: str  # the target's and the prediction's names, "t,p"
    averaged: bool  # the formula was elementwise: the op averages it over the last axis


def loss_formula(parsed: ParsedExpression, options) -> LossFormula:
    """Check a loss's formula and options; average an elementwise formula (see the module)."""
    for field, option in LAYER_ONLY.items():
        if getattr(options, field):
            raise InputError(
                f"{option} is for layers: a loss has no weights, surrogates or updates",
                hint="write constants as numbers in the formula, e.g. 0.25*(1 - y_pred)**2",
            )
    if options.axis != -1:
        raise InputError(
            "--axis is for layers: a loss reduces over the last axis, as Keras's losses do"
        )
    inputs = options.inputs or DEFAULT_INPUTS
    names = [name.strip() for name in inputs.split(",")]
    if len(names) != 2:
        raise InputError(
            f"--inputs {inputs!r}: a loss takes two inputs, the target and the prediction",
            hint="e.g. --inputs t,p (target first)",
        )
    unknown = sorted(s.name for s in parsed.symbols if s.name not in names)
    if unknown:
        raise InputError(
            f"the loss's formula uses {', '.join(unknown)}, which is not {names[0]} or"
            f" {names[1]}",
            hint="a loss is a formula in the target and the prediction (--inputs t,p names"
            " them); write constants as numbers",
        )
    if not parsed.symbols:
        raise InputError(
            f"the loss's formula uses neither {names[0]} nor {names[1]}: it is a constant",
            hint=f"a loss compares the prediction {names[1]} with the target {names[0]}",
        )
    symbols = {s.name: s for s in parsed.symbols}
    elementwise = frozenset(symbols[name] for name in names if name in symbols)
    averaged = not row_constant(parsed.expr, elementwise)
    expr = ReduceMean(parsed.expr) if averaged else parsed.expr
    return LossFormula(
        parsed=dataclasses.replace(parsed, expr=expr), inputs=",".join(names), averaged=averaged
    )
