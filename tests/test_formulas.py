"""Formulas users type: each gives a correct plan, or a clear refusal, never a crash (no TF).

The examples of issue 12 (math part). The generated tests of layers built from these run in
test_generated.py.
"""

from __future__ import annotations

import math
import re

import pytest
import sympy

from scaffold.analyze import analyze
from scaffold.api import Options, render_layer
from scaffold.errors import ExpressionError
from scaffold.functions import Expm1, Log1p, LogCosh, Sigmoid, Softplus, StableBlock
from scaffold.parse import parse
from scaffold.reference import PREFERRED_MAGNITUDE, references
from scaffold.spec import build_spec
from scaffold.stabilize import stabilize

x, y, z, a = sympy.symbols("x y z a", real=True)


def analysis_of(text: str, **options):
    parsed = parse(text)
    return analyze(parsed, build_spec(parsed, **options))


def plan_of(text: str, **options):
    plan, files = render_layer(text, name="op", options=Options(**options), timeout=None)
    return plan, files


# 1. Constant subtrees -------------------------------------------------------------------------
CONSTANT_SUBTREES = {
    "x/(1+exp(-1))": 1 / (1 + math.exp(-1)),
    "x*log(1+exp(2))": math.log(1 + math.exp(2)),
    "x*log(cosh(1))": math.log(math.cosh(1)),
    "x + exp(2) - 1": 1.0,
    "x*round(pi)": 3.0,
    "x*log(1+pi)": math.log(1 + math.pi),
    "x*sigmoid(2)": 1 / (1 + math.exp(-2)),
    "x*softplus(-1) + expm1(1)*x": math.log(1 + math.exp(-1)) + math.e - 1,
}


@pytest.mark.parametrize("text", CONSTANT_SUBTREES)
def test_constant_subtrees_are_numbers_in_the_code(text):
    plan, files = plan_of(text)
    # The slope is a constant: the gradient's reference is that number at every point.
    assert set(plan.inputs[0].reference) == {repr(CONSTANT_SUBTREES[text])} or all(
        math.isclose(float(v), CONSTANT_SUBTREES[text], rel_tol=1e-15)
        for v in plan.inputs[0].reference
    )
    module = files["op.py"]
    assert "tf.math.softplus(2" not in module and "tf.math.log1p(math" not in module
    compile(module, "op.py", "exec")


def test_rules_do_not_rewrite_constants_but_still_rewrite_beside_them():
    for text in ("x/(1+exp(-1))", "x*log(1+exp(2))", "x*log(cosh(1))", "x*log(1+pi)"):
        rewritten, applied = stabilize(parse(text).expr)
        assert applied == () and rewritten == parse(text).expr
    # exp(x) - 1 becomes expm1(x) even when a constant exponential stands beside it.
    rewritten, _ = stabilize(parse("exp(2) + exp(x) - 1").expr)
    assert rewritten == Expm1(x) + sympy.exp(2)


@pytest.mark.parametrize("block", [Sigmoid, Softplus, Log1p, Expm1, LogCosh])
def test_stable_blocks_of_constants_evaluate_to_numbers(block):
    value = block(sympy.Rational(3, 2))
    assert isinstance(value, StableBlock) and value.is_real
    expected = float(value.definition())
    assert float(value) == pytest.approx(expected, rel=1e-15)
    assert value.evalf(30).is_Float


def test_round_of_a_constant_is_exact_and_halves_go_to_even():
    assert parse("round(pi)").expr == 3
    assert parse("round(-pi)").expr == -3
    assert parse("round(5/2)").expr == 2 and parse("round(7/2)").expr == 4


# 2. Weights with exact symbolic values ------------------------------------------------------
@pytest.mark.parametrize("value", ["pi/4", "sqrt(2)", "2*pi"])
def test_weights_with_symbolic_values(value):
    plan, files = plan_of("a*x + sin(x)", params=(f"a={value}",))
    number = float(parse(value).expr)
    (weight,) = plan.weights
    assert weight.default == repr(number)
    assert f"def __init__(self, a={number!r}, **kwargs)" in files["op.py"]
    # References use the float64 value the layer holds.
    for point, f in zip(plan.points[0], plan.forward_reference, strict=True):
        assert float(f) == pytest.approx(number * float(point) + math.sin(float(point)), 1e-15)


# 3. Constant gradients ------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["pi*x", "x*pi", "E*x", "exp(1)*x", "pi*x/2"])
def test_constant_gradients_of_irrational_slope(text):
    refs = references(analysis_of(text))
    slope = float(parse(text).expr.diff(x))
    assert len(refs.points) == 8 and set(refs.derivative) == {slope}


# 4. Large values ------------------------------------------------------------------------------
def test_large_values_are_tested_and_their_magnitude_is_given():
    plan, files = plan_of("100000*x**2")
    assert len(plan.forward_reference) == 8
    magnitudes = [float(m) for m in plan.point_magnitudes]
    for point, value, gradient, magnitude in zip(
        plan.points[0], plan.forward_reference, plan.inputs[0].reference, magnitudes, strict=True
    ):
        assert float(value) == 100000 * float(point) ** 2
        # The constant 200000 of the gradient does not fit float16 beside any point.
        assert magnitude == max(abs(float(value)), abs(float(gradient)), 200000.0)
    assert min(magnitudes) > 65504
    assert "100000.0 * (x * x)" in files["op.py"]  # a float literal: no int overflow


def test_points_every_dtype_holds_are_preferred():
    # exp(12.75) = 344551 is a legal value, but exp has enough points below 1e4.
    refs = references(analysis_of("exp(x)"))
    assert max(refs.magnitudes) <= PREFERRED_MAGNITUDE
    assert 12.75 not in [p for (p,) in refs.points]
    # A weight's gradient sums over the points: its magnitude counts that sum.
    refs = references(analysis_of("a*x", params=("a=1",)))
    for (point,), magnitude in zip(refs.points, refs.magnitudes, strict=True):
        assert magnitude == max(1.0, abs(point) * len(refs.points))


# 5. Names users type --------------------------------------------------------------------------
def test_swish_from_its_paper_and_the_other_names_generate():
    _, files = plan_of("x*sigmoid(b*x)", params=("b=1",))
    assert "tf.math.sigmoid(" in files["op.py"] and "b * x" in files["op.py"]
    _, files = plan_of("relu(x) + softplus(x) + log1p(x**2) + expm1(x/4) + pow(x, 3)")
    for code in ("tf.math.maximum(x, 0)", "tf.math.softplus(x)", "tf.math.log1p(", "expm1("):
        assert code in files["op.py"]


def test_names_are_the_stable_blocks_and_keep_their_bounds():
    assert parse("sigmoid(x) + softplus(x)").expr == Sigmoid(x) + Softplus(x)
    assert parse("log1p(x)*expm1(x)").expr == Log1p(x) * Expm1(x)
    assert parse("pow(x, 3)").expr == x**3 and parse("polygamma(1, x)").expr == sympy.polygamma(
        1, x
    )
    for text, message in (
        ("pow(9, 9**9)", "exponent larger than 1000"),
        ("polygamma(x, x)", "must be an integer from 0 to 10"),
        ("expm1(5000)", "larger than 1000"),
        ("Heaviside(x, y)", "value at x = 0: a number"),
    ):
        with pytest.raises(ExpressionError, match=re.escape(message)):
            parse(text)
    assert parse("Heaviside(x, 0)").expr == sympy.Heaviside(x, 0)
    _, files = plan_of("Heaviside(x, 0)", grads=("1",))
    assert "_heaviside(x, 0)" in files["op.py"]
