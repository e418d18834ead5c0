"""Formulas users type: each gives a correct plan, or a clear refusal, never a crash (no TF).

The examples of issue 12 (math part): constant subtrees, weights with exact symbolic values,
constant gradients, large values, the names scaffold computes with, ties of Max/Min, NaN-safe
conditionals under second derivatives, and the output shape of formulas that do not use every
input. The generated tests of layers built from these run in test_generated.py.
"""

from __future__ import annotations

import ast
import math
import re

import pytest
import sympy

from scaffold.analyze import HEAVISIDE_NOTE, TIE_NOTE, analyze
from scaffold.api import Options, render_layer
from scaffold.errors import ExpressionError, InputError
from scaffold.functions import (
    Expm1,
    Log1p,
    LogCosh,
    Maximum,
    Minimum,
    SafeInput,
    Sigmoid,
    Softplus,
    StableBlock,
)
from scaffold.guard import guard
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
    return plan, {path.name: content for path, content in files.items()}


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
    _, files = plan_of(text)
    # The slope is a constant: the gradient's reference is that number at every point.
    derivative = references(analysis_of(text)).derivative
    assert all(math.isclose(v, CONSTANT_SUBTREES[text], rel_tol=1e-15) for v in derivative)
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
    refs = references(analysis_of("a*x + sin(x)", params=(f"a={value}",)))
    for (point,), f in zip(refs.points, refs.forward, strict=True):
        assert f == pytest.approx(number * point + math.sin(point), 1e-15)


# 3. Constant gradients ------------------------------------------------------------------------
@pytest.mark.parametrize("text", ["pi*x", "x*pi", "E*x", "exp(1)*x", "pi*x/2"])
def test_constant_gradients_of_irrational_slope(text):
    refs = references(analysis_of(text))
    slope = float(parse(text).expr.diff(x))
    assert len(refs.points) == 8 and set(refs.derivative) == {slope}


# 4. Large values ------------------------------------------------------------------------------
def test_large_values_are_tested_and_their_magnitude_is_given():
    plan, files = plan_of("100000*x**2")
    refs = references(analysis_of("100000*x**2"))
    assert len(refs.forward) == 8
    for (point,), value, gradient, magnitude in zip(
        refs.points, refs.forward, refs.derivative, refs.magnitudes, strict=True
    ):
        assert value == 100000 * point**2
        # The constant 200000 of the gradient does not fit float16 beside any point.
        assert magnitude == max(abs(value), abs(gradient), 200000.0)
    assert min(refs.magnitudes) > 65504
    assert plan.largest_constant == "200000.0"  # the generated test skips float16 for it
    assert "100000.0 * (x * x)" in files["op.py"]  # a float literal: no int overflow
    assert "f(x) = 100000*x**2" in files["op.py"]


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


def test_heaviside_value_at_zero_is_stated_and_can_be_chosen():
    plan, files = plan_of("Heaviside(x)", grads=("1",))
    assert plan.notes == (HEAVISIDE_NOTE,)
    assert "At u = 0, Heaviside(u) is 1/2" in " ".join(files["op.py"].split())
    assert "_heaviside(x, 1/2)" in files["op.py"].replace(" / ", "/")
    for value in ("0", "1"):
        plan, files = plan_of(f"Heaviside(x, {value})", grads=("1",))
        (note,) = plan.notes
        assert note.startswith(f"At u = 0, Heaviside(u, {value}) is {value},")
        assert f"_heaviside(x, {value})" in files["op.py"]
    with pytest.raises(ExpressionError, match="value at x = 0: a number"):
        parse("Heaviside(x, y)")


# 6. Ties of Max and Min -----------------------------------------------------------------------
def test_at_a_tie_exactly_one_argument_takes_the_gradient():
    analysis = analysis_of("Max(x, y)")
    dx, dy = analysis.gradients
    for u, v in [(1, 1), (0, 0), (2, 1), (1, 2)]:
        gx, gy = dx.subs({x: u, y: v}), dy.subs({x: u, y: v})
        assert gx + gy == 1 and {gx, gy} == {0, 1}
    assert dx.subs({x: 1, y: 1}) == 1  # the first argument, as tf.maximum(x, y)
    # The order typed decides, not SymPy's canonical order.
    swapped = analysis_of("Min(y, x)", inputs="x,y")
    assert swapped.gradients[1].subs({x: 1, y: 1}) == 1
    assert TIE_NOTE in analysis.notes


@pytest.mark.parametrize(
    ("text", "at", "expected"),
    [
        ("Max(x, 0)", 0, 0),  # a constant wins: relu'(0) = 0, as tf.nn.relu
        ("Max(0, x)", 0, 0),
        ("Min(x, 1)", 1, 0),
        ("Max(-1, Min(1, x))", 1, 0),  # hardtanh at both ends, as tf.nn.relu6
        ("Max(-1, Min(1, x))", -1, 0),
        ("Max(x, 2*x)", 0, 1),  # no constant: the first argument takes it all
        ("Max(2*x, x)", 0, 2),
        ("Max(x, x, 3)", 3, 0),
    ],
)
def test_tie_rule_against_constants_and_between_expressions(text, at, expected):
    assert analysis_of(text).derivative.subs(x, at) == expected


def test_prelu_gradient_at_zero_lies_in_its_subgradient():
    analysis = analysis_of("Max(x, a*x)", params=("a=0.25",))
    dx, da = analysis.gradients
    assert dx.subs({x: 0, a: sympy.Rational(1, 4)}) == 1 and da.subs(x, 0) == 0
    refs = references(analysis)
    assert refs.grid_gradients[0][refs.grid_points.index((0.0,))] == 1.0


def test_max_keeps_the_typed_order_and_simplifies_like_sympys():
    assert parse("Max(y, x)").expr.args == (y, x)
    assert parse("max(x, 2, y, 1)").expr == Maximum(x, 2, y)
    assert parse("Max(x, x)").expr == x and parse("Min(3, pi)").expr == 3
    assert sympy.latex(Minimum(x, y)) == r"\min\left(x, y\right)"


def test_the_grid_holds_ties_for_several_inputs():
    refs = references(analysis_of("Max(x, y, z)"))
    ties = [p for p in refs.grid_points if p[0] == p[1] == p[2]]
    assert len(ties) >= 3
    for point in ties:
        index = refs.grid_points.index(point)
        assert [g[index] for g in refs.grid_gradients] == [1.0, 0.0, 0.0]
    pairs = [p for p in refs.grid_points if p[1] == p[2] != p[0]]
    assert pairs  # two tied, one apart


# 7. Conditionals under second derivatives -----------------------------------------------------
def test_the_backward_pass_guards_branches_that_are_not_finite_where_unselected():
    plan, _ = plan_of("Piecewise((log(x), x > 0), (0, True))")
    assert plan.inputs[0].grad_code == "tf.where(t0, dy/tf.where(t0, x, 1), tf.zeros_like(x))"
    plan, _ = plan_of("Piecewise((sqrt(x), x > 0), (0, True))")
    assert "tf.math.sqrt(tf.where(t0, x, 1))" in plan.inputs[0].grad_code
    # A branch finite everywhere needs no guard.
    plan, _ = plan_of("Piecewise((x**2, x > 0), (x, True))")
    assert plan.inputs[0].grad_code.count("tf.where") == 1


def test_the_safe_value_satisfies_the_branch_and_keeps_it_finite():
    # 1/(x - 4) is selected where x > 4: 1 and 2 would do, but 4 itself would not (no clamp).
    backward = guard(sympy.Piecewise((1 / (x - 4), x > 4), (0, True)).diff(x), (x,), weights={})
    (safe_input,) = backward.atoms(SafeInput)
    value, condition, safe = safe_input.args
    assert value == x and condition == (x > 4) and safe > 4
    # Finite at its bound: clamped instead, one op (ELU's exp(x) where x <= 0).
    backward = guard(sympy.Piecewise((x, x > 0), (sympy.exp(x), True)), (x,), weights={})
    assert backward == sympy.Piecewise((x, x > 0), (sympy.exp(Minimum(x, 0)), True))
    backward = guard(sympy.Piecewise((1 / (x - 3), x > 4), (0, True)), (x,), weights={})
    assert backward == sympy.Piecewise((1 / (Maximum(x, 4) - 3), x > 4), (0, True))
    # A weight in a guarded branch takes its initial value where the branch is not selected.
    backward = guard(
        sympy.Piecewise((sympy.sqrt(a * x), a * x > 0), (0, True)), (x,), {a: sympy.Integer(2)}
    )
    safe = {s.args[0]: s.args[2] for s in backward.atoms(SafeInput)}
    assert safe[a] == 2 and safe[x] * 2 > 0


def test_second_derivatives_are_checked_for_conditionals_and_kinks_not_for_steps():
    for text in (
        "Piecewise((log(x), x > 0), (0, True))",
        "Piecewise((x, x > 0), (exp(x) - 1, True))",
        "Max(x, a*x)",
        "Abs(x)**3",
    ):
        options = {"params": ("a=0.25",)} if "a" in text else {}
        plan, _ = plan_of(text, **options)
        assert plan.second_skip == "" and "d2f/dx2" in plan.columns, text
    safe_log = references(analysis_of("Piecewise((log(x), x > 0), (0, True))"))
    for (point,), second in zip(safe_log.points, safe_log.second[0], strict=True):
        assert second == (-1 / point**2 if point > 0 else 0.0)
    for text in ("x*Heaviside(x)", "round(x) + x", "x*sign(x)"):
        plan, _ = plan_of(text)
        assert "steps" in plan.second_skip, text
    plan, _ = plan_of("round(x)", grads=("1",))
    assert "surrogate" in plan.second_skip


# 8. Output shape ------------------------------------------------------------------------------
def test_the_output_has_the_broadcast_shape_of_every_input():
    plan, _ = plan_of("a*b", params=("a=1", "b=2"), inputs="x")
    assert plan.forward_return == "tf.broadcast_to(a*b, tf.shape(x))"
    assert plan.plain_forward == "tf.broadcast_to(a*b, tf.shape(x))"
    assert plan.inputs[0].grad_code == "tf.zeros_like(x)"
    # An input the formula does not use beside one it uses is refused (a typo, mostly).
    with pytest.raises(InputError, match="does not use 'y'"):
        plan_of("sin(x)", inputs="x,y")
    # Every input used: nothing to add.
    plan, _ = plan_of("x*sin(y)", inputs="x,y")
    assert "broadcast_to" not in plan.forward_return


def _broadcast_shapes():
    """The generated module's shape helper, without importing TensorFlow."""
    _, files = plan_of("x*sin(y)", inputs="x,y")
    tree = ast.parse(files["op.py"])
    (helper,) = [n for n in tree.body if getattr(n, "name", "") == "_broadcast_shapes"]
    namespace: dict = {}
    exec(compile(ast.Module([helper], []), "op.py", "exec"), namespace)  # our generated code
    return namespace["_broadcast_shapes"]


def test_the_layers_shape_helper_broadcasts_as_numpy_does():
    broadcast = _broadcast_shapes()
    assert broadcast((2, 3), (3,)) == (2, 3)
    assert broadcast((None, 1), (4,)) == (None, 4)
    assert broadcast((None, 4), (1,), (5, 1, 1)) == (5, None, 4)
    assert broadcast((None,), (None,)) == (None,)
    with pytest.raises(ValueError, match="do not broadcast"):
        broadcast((2, 3), (4,))
