"""Formulas users type: each gives a correct plan, or a clear refusal, never a crash (no TF).

The examples of issue 12 (math part). The generated tests of layers built from these run in
test_generated.py.
"""

from __future__ import annotations

import math

import pytest
import sympy

from scaffold.analyze import analyze
from scaffold.api import Options, render_layer
from scaffold.functions import Expm1, Log1p, LogCosh, Sigmoid, Softplus, StableBlock
from scaffold.parse import parse
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
