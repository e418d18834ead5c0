"""Derivatives, the forward/backward split, reference points and names (no TensorFlow)."""

from __future__ import annotations

import math
import re

import mpmath
import pytest
import sympy

from scaffold.analyze import DIRAC_NOTE, HEAVISIDE_NOTE, TIE_NOTE, analyze
from scaffold.errors import DerivativeError, DomainError, InputError, InvalidNameError
from scaffold.names import (
    check_name,
    check_weight_names,
    class_name_for,
    default_name,
    internal_names,
)
from scaffold.parse import ParsedExpression, parse
from scaffold.reference import references
from scaffold.spec import LayerSpec, build_spec

x = sympy.Symbol("x", real=True)
a = sympy.Symbol("a", real=True)


def analysis_of(text: str, **options):
    parsed = parse(text)
    return analyze(parsed, build_spec(parsed, **options))


def test_derivative_is_sympys():
    analysis = analysis_of("x*sin(x**2)")
    assert sympy.simplify(analysis.derivative - sympy.diff(x * sympy.sin(x**2), x)) == 0


def test_shared_subexpressions_are_computed_in_the_forward_pass():
    analysis = analysis_of("sin(x)**2")
    # sin(x) is needed by f and f': computed once, in the forward pass.
    assert [e for _, e in analysis.forward_temps] == [sympy.sin(x)]
    assert analysis.grad_temps == ()
    temp = analysis.forward_temps[0][0]
    assert temp in analysis.grad_outs[0].free_symbols


def test_temporaries_avoid_the_expressions_own_names():
    analysis = analysis_of("sin(t0)**2 + t0")
    names = {s.name for s, _ in analysis.forward_temps + analysis.grad_temps}
    assert "t0" not in names and names


def test_an_unevaluated_derivative_is_an_error():
    f = sympy.Function("f")(x)
    with pytest.raises(DerivativeError, match="closed form"):
        parsed = ParsedExpression(text="f(x)", expr=f, symbols=(x,))
        analyze(parsed, LayerSpec(inputs=(x,), weights=()))


def test_points_lie_in_the_domain_and_references_are_exact():
    refs = references(analysis_of("log(x)"))
    assert len(refs.points) >= 3 and all(p > 0 for (p,) in refs.points)
    for (p,), f, df in zip(refs.points, refs.forward, refs.derivative, strict=True):
        assert f == float(mpmath.log(p)) and math.isclose(df, 1 / p, rel_tol=1e-15)
    refs = references(analysis_of("asin(x)"))
    assert all(-1 < p < 1 for (p,) in refs.points)
    refs = references(analysis_of("log(sin(x))"))
    assert all(math.sin(p) > 0 for (p,) in refs.points)


def test_no_domain_is_a_clear_error():
    with pytest.raises(DomainError, match="test point"):
        references(analysis_of("sqrt(-1 - x**2)"))


@pytest.mark.parametrize(
    ("expression", "name"),
    [("sin(x)", "sin_x"), ("x**3", "x_3"), ("0.5*x", "layer_0_5_x"), ("log(x)", "log_x")],
)
def test_default_names(expression, name):
    assert default_name(expression) == name
    assert check_name(name, raise_error=False) is None


def test_a_default_name_is_never_a_variable_of_the_expression():
    assert default_name("x", {"x"}) == "layer_x"
    assert default_name("-y", {"y"}) == "layer_y"
    assert default_name("sin(x)", {"x"}) == "sin_x"


BAD_NAMES = ["Sine", "1abc", "class", "tf", "os", "test_x", "a-b", "", "x" * 61]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_are_refused(bad):
    with pytest.raises(InvalidNameError):
        check_name(bad)


def test_internal_names_step_aside_for_user_symbols():
    chosen = internal_names("op", {"y", "dy", "grad"})
    assert chosen == {"y": "y_1", "dy": "dy_1", "grad": "grad_1"}
    assert class_name_for("my_activation") == "MyActivation"


def test_kinks_follow_tensorflow_conventions():
    relu = analysis_of("Max(x, 0)")
    assert relu.derivative == sympy.Piecewise((0, x <= 0), (1, True))
    assert relu.derivative.subs(x, 0) == 0  # relu'(0) = 0 (the constant wins), not SymPy's 1/2
    assert TIE_NOTE in relu.notes and HEAVISIDE_NOTE not in relu.notes
    # A Heaviside of the formula keeps its value at 0 in the derivative, and the docstring
    # says which it is.
    step = analysis_of("x*Heaviside(x)")
    assert step.derivative == sympy.Heaviside(x) and HEAVISIDE_NOTE in step.notes
    assert analysis_of("x*Heaviside(x, 1)").derivative.subs(x, 0) == 1
    step = analysis_of("x*sign(x)")
    assert not step.derivative.has(sympy.DiracDelta)
    assert DIRAC_NOTE in step.notes
    assert analysis_of("floor(x) + x").derivative == 1


def test_parameters_and_inputs_are_differentiated_in_order():
    prelu = analysis_of("Max(x, a*x)", params=("a=0.25",))
    assert prelu.spec.variables == (x, a)
    # At the tie x == a*x (x = 0) the first argument, x, takes the gradient.
    assert prelu.gradients[0] == sympy.Piecewise((1, x >= a * x), (a, True))
    assert prelu.gradients[1] == sympy.Piecewise((0, x >= a * x), (x, True))
    two = analysis_of("x*sin(y)", inputs="y,x")
    assert [s.name for s in two.spec.inputs] == ["y", "x"]


def test_surrogate_replaces_only_its_variable():
    spike = analysis_of("Heaviside(x)", grads=("1/(1+(pi*x)**2)",))
    assert spike.surrogate == (True,)
    assert spike.derivative == 1 / (1 + (sympy.pi * x) ** 2)
    assert not spike.smooth


def test_points_avoid_kinks_and_references_follow_weights():
    refs = references(analysis_of("Max(x, a*x)", params=("a=0.25",)))
    for (point,), value, dx, da in zip(
        refs.points, refs.forward, refs.gradients[0], refs.gradients[1], strict=True
    ):
        assert abs(point) > 1 / 64
        assert value == max(point, 0.25 * point)
        assert dx == (1 if point > 0 else 0.25)
        assert da == (0 if point > 0 else point)
    rounded = references(analysis_of("round(x)", grads=("1",)))
    assert all(abs(p - round(p)) != 0.5 for (p,) in rounded.points)
    safe = references(analysis_of("Piecewise((log(x), x > 0), (0, True))"))
    assert (0.0,) in safe.grid_points and (-1.0,) in safe.grid_points
    assert safe.grid_gradients[0][safe.grid_points.index((0.0,))] == 0  # not 1/x


@pytest.mark.parametrize(
    ("text", "options", "message"),
    [
        ("x*y", {"params": ("z=1",)}, "no symbol 'z'"),
        ("x*a", {"params": ("a=1",), "inputs": "x,a"}, "both an input"),
        ("Heaviside(x)", {"grads": ("1/(1+q)",)}, "unknown symbol(s) q"),
        ("x*s", {"params": ("s=0",), "updates": ("t=s+1",)}, "not a declared weight"),
        ("x*s", {"params": ("s=0",), "updates": ("s=s+x",)}, "only weights"),
        ("x*a", {"params": ("a=x",)}, "real number"),
        ("x*a", {"params": ("a",)}, "NAME=VALUE"),
        ("x*a", {"params": ("a=1", "a=2")}, "given twice"),
        ("x*y", {"grads": ("1",)}, "exactly one input"),
        ("x*y", {"inputs": "x"}, "neither inputs nor weights"),
        ("x*a", {"params": ("a=1",), "param_shapes": ("a=matrix",)}, "scalar"),
    ],
)
def test_bad_options_are_clear_errors(text, options, message):
    with pytest.raises(InputError, match=re.escape(message)):
        build_spec(parse(text), **options)


def test_weights_may_not_shadow_layer_attributes():
    with pytest.raises(InvalidNameError, match="Keras Layer attribute"):
        check_weight_names(["name"])
    check_weight_names(["alpha", "s"])


def test_conditionals_take_the_upstream_gradient_into_their_branches():
    from scaffold.api import render_layer

    plan, _ = render_layer("Piecewise((x, x > 0), (exp(x) - 1, True))", name="elu", timeout=None)
    # where(c, dy, dy*exp(x)), not dy*where(c, ones_like(x), exp(x)): one pass and a tensor less.
    # (exp(x) reads x clamped to its branch: it overflows at large x, where it is not selected.)
    guarded = "tf.math.exp(tf.math.minimum(x, 0))"
    assert plan.inputs[0].grad_code == f"tf.where(t0, dy, dy*{guarded})"
    # A coefficient stays outside, where it multiplies once rather than once per branch.
    plan, _ = render_layer("3*Piecewise((x, x > 0), (exp(x) - 1, True))", name="elu3", timeout=None)
    assert plan.inputs[0].grad_code == f"3*tf.where(t0, dy, dy*{guarded})"


def test_the_fused_sigmoid_kernel_is_used_only_without_broadcasting():
    from scaffold.api import Options, render_layer
    from scaffold.plan import FUSED_SIGMOID_NOTE

    plan, _ = render_layer("x/(1+exp(-x))", name="silu", timeout=None)
    assert "tf.raw_ops.SoftplusGrad(" in plan.inputs[0].grad_code
    assert FUSED_SIGMOID_NOTE in plan.notes
    # Two inputs broadcast against each other; SoftplusGrad would refuse unequal shapes.
    options = Options(inputs="x,s")
    plan, _ = render_layer("x/(1+exp(-s))", name="gate", options=options, timeout=None)
    assert not any("SoftplusGrad" in v.grad_code for v in plan.inputs)
    assert FUSED_SIGMOID_NOTE not in plan.notes


def test_save_policies_decide_what_the_backward_pass_reads():
    from scaffold.api import Options, render_layer

    gelu = "0.5*x*(1+erf(x/sqrt(2)))"
    plans = {
        save: render_layer(gelu, name="gelu", options=Options(save=save), timeout=None)[0]
        for save in ("reuse", "derivative", "inputs")
    }
    # reuse: the backward pass reads the forward pass's erf and scaled input, and x.
    assert plans["reuse"].saved == ("t1", "t2", "x")
    # derivative: the forward pass computes df/dx; the backward pass only scales it.
    derivative = plans["derivative"]
    assert derivative.saved == ("df_dx",) and derivative.grad_lines == ()
    assert derivative.forward_lines[-1].name == "df_dx"
    assert derivative.inputs[0].grad_code == "df_dx*dy"
    assert "--save derivative" in derivative.command
    # inputs: nothing computed in the forward pass is read by the backward pass, and the
    # forward pass runs on a stop_gradient view of x, so no tape records its values.
    inputs = plans["inputs"]
    assert inputs.saved == ("x",)
    assert (inputs.forward_lines[0].name, inputs.forward_lines[0].code) == (
        "x_stopped",
        "tf.stop_gradient(x)",
    )
    assert all(not re.search(r"\bx\b", line.code) for line in inputs.forward_lines[1:])
    assert not re.search(r"\bx\b", inputs.forward_return)
    forward_names = {line.name for line in inputs.forward_lines}
    backward_names = {s for v in inputs.variables for s in re.findall(r"\w+", v.grad_code)}
    assert not forward_names & backward_names


def test_saved_derivative_names_step_aside_and_weights_are_summed():
    from scaffold.api import Options, render_layer

    options = Options(params=("df_dx=0.5",), save="derivative")
    plan, _ = render_layer("sin(x) + df_dx*x", name="op", options=options, timeout=None)
    # df_dx is the user's weight: the saved derivative for x takes another name.
    assert [line.name for line in plan.forward_lines] == ["df_dx_1"]
    assert plan.inputs[0].grad_code == "df_dx_1*dy"
    (weight,) = plan.weights
    # df/d(df_dx) is x itself: nothing new to save; summed over the batch to the weight's shape.
    assert weight.grad_code == "_sum_to_shape(dy*x, df_dx)"


def test_an_unknown_save_policy_is_refused():
    with pytest.raises(InputError, match="--save must be one of reuse, derivative, inputs"):
        build_spec(parse("sin(x)"), save="everything")


def test_warnings_flow_from_the_spec_to_the_plan():
    from scaffold.api import render_layer

    spec = build_spec(parse("beta*x"))
    (warning,) = spec.warnings
    assert "--param beta=VALUE" in warning
    plan, _ = render_layer("beta*x", name="scaled", timeout=None)
    assert plan.warnings == spec.warnings
    assert build_spec(parse("beta*x"), inputs="beta,x").warnings == ()
    assert build_spec(parse("sin(x)")).warnings == ()


@pytest.mark.parametrize(
    "expression", ["round(x)", "floor(x)", "ceiling(x)", "sign(x)", "Heaviside(x)", "2*sign(x)**3"]
)
def test_a_gradient_that_is_zero_everywhere_is_a_warning(expression):
    analysis = analysis_of(expression)
    assert analysis.gradients == (0,)
    (warning,) = analysis.warnings
    assert "gradient for x is 0 everywhere" in warning
    assert "--grad EXPR" in warning and "e.g. --grad 1" in warning


def test_zero_gradient_warnings_name_the_variable_and_skip_what_does_not_train():
    weight = analysis_of("x + floor(a)", params=("a=1.5",))
    (warning,) = weight.warnings
    assert "gradient for a is 0" in warning and "never changes the weight a" in warning
    assert "--grad a=EXPR" in warning
    two = analysis_of("x*floor(y)", inputs="x,y")
    assert len(two.warnings) == 1 and "--grad y=EXPR" in two.warnings[0]
    # Not a warning: a derivative that is not zero, a surrogate, a non-trainable state.
    assert analysis_of("x + floor(x)").warnings == ()
    assert analysis_of("round(x)", grads=("1",)).warnings == ()
    assert analysis_of("x + floor(n)", states=("n=1.5",)).warnings == ()


def test_an_input_the_expression_does_not_use_is_refused():
    with pytest.raises(InputError, match="does not use 'z'") as info:
        build_spec(parse("x*y"), inputs="x,y,z")
    assert info.value.hint == "remove it from the list: --inputs x,y"
    with pytest.raises(InputError, match="does not use 'u' or 'v'"):
        build_spec(parse("sin(x)"), inputs="u,x,v")


def test_a_formula_of_weights_only_takes_its_one_input_for_the_shape():
    spec = build_spec(parse("a*b"), inputs="x", params=("a=1", "b=2"))
    assert [s.name for s in spec.inputs] == ["x"]
    assert any("does not depend on its input x" in w for w in spec.warnings)
    with pytest.raises(InputError, match="uses none of them"):
        build_spec(parse("a*b"), inputs="x,y", params=("a=1", "b=2"))


def test_a_weight_may_appear_only_in_a_surrogate_or_an_update():
    k = sympy.Symbol("k", real=True)
    spec = build_spec(parse("Heaviside(x)"), states=("k=10",), grads=("1/(1+k*abs(x))**2",))
    assert spec.variables == (x, k) and spec.warnings == ()
    assert spec.surrogates[0][1].expr == 1 / (1 + k * sympy.Abs(x)) ** 2
    analysis = analyze(parse("Heaviside(x)"), spec)
    assert analysis.gradients[1] == 0 and analysis.warnings == ()
    counter = build_spec(parse("sin(x)"), states=("n=0",), updates=("n=n+1",))
    assert [w.symbol.name for w in counter.weights] == ["n"]
    # Trainable, but f does not depend on it: it never trains, and a warning says so.
    (warning,) = build_spec(
        parse("Heaviside(x)"), params=("k=10",), grads=("1/(1+k*abs(x))**2",)
    ).warnings
    assert "--param k is not in the expression" in warning and "--state k=VALUE" in warning
    # A weight nothing uses is still refused.
    with pytest.raises(InputError, match="no symbol 'k', and no --grad or --update uses it"):
        build_spec(parse("Heaviside(x)"), states=("k=10",), grads=("1/(1+abs(x))**2",))


@pytest.mark.parametrize(
    ("bad", "suggested"),
    [
        ("swish-beta", "swish_beta"),
        ("Swish", "swish"),
        ("SwishBeta", "swish_beta"),
        ("2layer", "layer_2layer"),
        ("my layer", "my_layer"),
        ("class", "layer_class"),
        ("tf", "layer_tf"),
        ("test_sin", "layer_test_sin"),
        ("x" * 61, "x" * 54),
    ],
)
def test_a_bad_name_gets_the_nearest_usable_one(bad, suggested):
    with pytest.raises(InvalidNameError) as info:
        check_name(bad)
    assert info.value.hint == f"did you mean --name {suggested}?"
    assert check_name(suggested, raise_error=False) is None
