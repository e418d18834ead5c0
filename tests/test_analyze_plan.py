"""Derivatives, the forward/backward split, reference points and names (no TensorFlow)."""

from __future__ import annotations

import math

import mpmath
import pytest
import sympy

from scaffold.analyze import analyze
from scaffold.errors import DerivativeError, DomainError, InvalidNameError
from scaffold.parse import ParsedExpression, parse
from scaffold.plan import check_name, class_name_for, default_name, internal_names
from scaffold.reference import references

x = sympy.Symbol("x", real=True)


def test_derivative_is_sympys():
    analysis = analyze(parse("x*sin(x**2)"))
    assert sympy.simplify(analysis.derivative - sympy.diff(x * sympy.sin(x**2), x)) == 0


def test_shared_subexpressions_are_computed_in_the_forward_pass():
    analysis = analyze(parse("sin(x)**2"))
    # sin(x) is needed by f and f': computed once, in the forward pass.
    assert [e for _, e in analysis.forward_temps] == [sympy.sin(x)]
    assert analysis.grad_temps == ()
    temp = analysis.forward_temps[0][0]
    assert temp in analysis.grad_out.free_symbols


def test_temporaries_avoid_the_expressions_own_names():
    parsed = parse("sin(t0)**2 + t0")
    analysis = analyze(parsed)
    names = {s.name for s, _ in analysis.forward_temps + analysis.grad_temps}
    assert "t0" not in names and names


def test_an_unevaluated_derivative_is_an_error():
    f = sympy.Function("f")(x)
    with pytest.raises(DerivativeError, match="closed form"):
        analyze(ParsedExpression(text="f(x)", expr=f, symbols=(x,)))


def test_points_lie_in_the_domain_and_references_are_exact():
    refs = references(analyze(parse("log(x)")))
    assert len(refs.points) >= 3 and all(p > 0 for p in refs.points)
    for p, f, df in zip(refs.points, refs.forward, refs.derivative, strict=True):
        assert f == float(mpmath.log(p)) and math.isclose(df, 1 / p, rel_tol=1e-15)
    refs = references(analyze(parse("asin(x)")))
    assert all(-1 < p < 1 for p in refs.points)
    refs = references(analyze(parse("log(sin(x))")))
    assert all(math.sin(p) > 0 for p in refs.points)


def test_no_domain_is_a_clear_error():
    with pytest.raises(DomainError, match="test point"):
        references(analyze(parse("sqrt(-1 - x**2)")))


@pytest.mark.parametrize(
    ("expression", "name"),
    [("sin(x)", "sin_x"), ("x**3", "x_3"), ("0.5*x", "layer_0_5_x"), ("log(x)", "log_x")],
)
def test_default_names(expression, name):
    assert default_name(expression) == name
    assert check_name(name, raise_error=False) is None


BAD_NAMES = ["Sine", "1abc", "class", "tf", "os", "test_x", "a-b", "", "x" * 61]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_bad_names_are_refused(bad):
    with pytest.raises(InvalidNameError):
        check_name(bad)


def test_internal_names_step_aside_for_user_symbols():
    chosen = internal_names("op", {"y", "dy", "grad"})
    assert chosen == {"y": "y_1", "dy": "dy_1", "grad": "grad_1"}
    assert class_name_for("my_activation") == "MyActivation"
