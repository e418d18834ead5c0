"""Independent references for generated layers: one TensorFlow process runs each layer, and its
values and gradients are compared with the formula as typed, evaluated by mpmath at 40 digits
(its value and numerical derivatives, never SymPy's derivative), and with TensorFlow's autodiff
of the formula. Shared by the property test and the tests of formulas users type.
"""

from __future__ import annotations

import ast
import collections
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import mpmath
import sympy

from scaffold.api import Options, render_layer
from scaffold.errors import InternalError, ScaffoldError
from scaffold.functions import MPMATH_NAMESPACE
from scaffold.parse import parse
from scaffold.record import read_record

#: How the layers checked so far ended (for a summary, and to see the search generates).
OUTCOMES: collections.Counter = collections.Counter()
_names = itertools.count()

_SERVER = r"""
import importlib, json, sys
import numpy as np
import tensorflow as tf

for line in sys.stdin:
    request = json.loads(line)
    try:
        # A layer of the same name generated before (another case) must not be reused.
        for name in (request["test"], request["test"].removeprefix("test_")):
            sys.modules.pop(name, None)
        sys.path.insert(0, request["folder"])
        test = importlib.import_module(request["test"])
        sys.path.pop(0)
        layer = test.LAYER
        arguments = layer.arguments(tf.float64, layer.points)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(arguments)
            y = layer.op(*arguments)
            plain = layer.plain_formula(*arguments) * tf.ones_like(y)
        ours = tape.gradient(y, arguments)
        theirs = tape.gradient(plain, arguments)
        reply = {
            "y": y.numpy().tolist(),
            "grads": [g.numpy().reshape(-1).tolist() if g.shape.rank else [float(g)] for g in ours],
            "autodiff": [None if g is None else np.ravel(g.numpy()).tolist() for g in theirs],
        }
    except Exception as error:
        reply = {"error": f"{type(error).__name__}: {error}"}
    print("@reply " + json.dumps(reply), flush=True)
"""


class Server:
    """The one TensorFlow process that imports and runs every generated layer."""

    def __init__(self):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "SCAFFOLD_DEVICES": "cpu"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )

    def run(self, folder: Path, test: str) -> dict:
        self.process.stdin.write(json.dumps({"folder": str(folder), "test": test}) + "\n")
        self.process.stdin.flush()
        for line in self.process.stdout:
            if line.startswith("@reply "):
                return json.loads(line.removeprefix("@reply "))
        raise RuntimeError("the TensorFlow process ended")

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)
        self.process.stdout.close()


def check_layer(formula: str, options: Options, server, folder: Path, name=None) -> None:
    """Generate ``formula``: a refusal must be exit 2; a layer must import and agree with
    independent references (see the module docstring) at its own test points."""
    name = name or f"random_{next(_names):05d}"
    try:
        _, files = render_layer(formula, name=name, options=options, out=folder, timeout=8)
    except InternalError:
        raise  # exit 4: a bug in scaffold, whatever the formula
    except ScaffoldError as error:
        assert error.exit_code == 2, (formula, str(error))
        OUTCOMES["refused: " + type(error).__name__] += 1
        return
    OUTCOMES["generated"] += 1
    for path, content in files.items():
        path.write_text(content)
    verify_layer(folder / f"{name}.py", server)


def verify_layer(module: Path, server) -> None:
    """A generated layer (module, with its test beside it) against independent references."""
    record = read_record(module)
    formula, options = record.expression, Options.from_given(record.options)
    test_file = module.with_name(f"test_{module.name}")
    columns, points = _table(test_file.read_text())
    inputs = columns[: columns.index(next(c for c in columns if c.startswith("f(")))]
    weights = _weights(options)
    variables = [*inputs, *weights]
    surrogates = dict(_surrogates(options, inputs))
    exact = _independent_references(formula, inputs, weights, surrogates, points, columns)
    reply = server.run(module.parent, test_file.stem)
    assert "error" not in reply, (formula, reply.get("error"))
    channels = 3 if any("=channel" in shape for shape in options.param_shapes) else 1
    tile = lambda values: [v for v in values for _ in range(channels)]  # noqa: E731
    # The generated code against the formula's own value, at 40 digits.
    _close(reply["y"], tile([row[0] for row in exact]), 1e-10, formula, "f")
    for k, variable in enumerate(variables):
        reference = [row[1 + k] for row in exact]
        embedded = [row[columns.index(f"df/d{variable}")] for row in points]
        # The generated test's own references (SymPy's derivative) and the code's gradient,
        # against mpmath's numerical derivative of the formula as typed (or the surrogate).
        _close(embedded, reference, 1e-8, formula, f"embedded df/d{variable}")
        ours = reply["grads"][k]
        if variable in weights:  # summed over the points (and held per channel)
            summed = [math.fsum(reference)] * (channels if len(ours) == channels else 1)
            _close(ours, summed, 1e-8, formula, f"df/d{variable}")
            continue
        _close(ours, tile(reference), 1e-8, formula, f"df/d{variable}")
        theirs = reply["autodiff"][k]
        if theirs is not None and variable not in surrogates:
            finite = [(o, t) for o, t in zip(ours, theirs, strict=True) if math.isfinite(t)]
            _close([o for o, _ in finite], [t for _, t in finite], 1e-8, formula, "autodiff")


def _weights(options: Options) -> dict[str, mpmath.mpf]:
    """The weights' initial values, exactly as parsed (at 40 digits)."""
    weights = {}
    for text in (*options.params, *options.states):
        name, _, value = text.partition("=")
        with mpmath.workdps(40):
            weights[name.strip()] = mpmath.mpf(sympy.N(parse(value).expr, 45))
    return weights


def _surrogates(options: Options, inputs: list[str]):
    for text in options.grads:
        name, sep, expression = text.partition("=")
        if sep and name.strip().isidentifier() and "=" not in expression[:1]:
            yield name.strip(), expression
        else:
            yield inputs[0], text


def _table(source: str) -> tuple[list[str], list[tuple]]:
    values = {}
    for node in ast.parse(source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id in ("COLUMNS", "POINTS"):
            values[target.id] = ast.literal_eval(node.value)
    return list(values["COLUMNS"]), values["POINTS"]


def _independent_references(formula, inputs, weights, surrogates, points, columns):
    """f and its numerical partial derivatives (or the surrogates) at the points, at 40
    digits, from the formula as parsed: not its stable form, not SymPy's derivative."""
    symbols = [sympy.Symbol(v, real=True) for v in (*inputs, *weights)]
    modules = [MPMATH_NAMESPACE, "mpmath"]
    function = sympy.lambdify(symbols, parse(formula).expr, modules=modules)
    given = {
        v: sympy.lambdify(symbols, parse(e).expr, modules=modules) for v, e in surrogates.items()
    }
    rows = []
    with mpmath.workdps(40):
        for row in points:
            at = [mpmath.mpf(row[columns.index(v)]) for v in inputs] + list(weights.values())
            partials = []
            for k, variable in enumerate((*inputs, *weights)):
                if variable in given:
                    partials.append(float(given[variable](*at)))
                    continue
                order = [0] * len(at)
                order[k] = 1
                partials.append(float(mpmath.diff(function, at, tuple(order))))
            rows.append((float(mpmath.re(function(*at))), *partials))
    return rows


def _close(actual, expected, rtol, formula, what) -> None:
    assert len(actual) == len(expected), (formula, what, actual, expected)
    scale = max([1.0, *(abs(e) for e in expected)])
    for got, want in zip(actual, expected, strict=True):
        assert math.isfinite(got), (formula, what, got, want)
        assert abs(got - want) <= rtol * scale, (formula, what, got, want)
