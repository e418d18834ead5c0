"""Singular points, precision lost in float32, and per-dtype test points (no TensorFlow).

The generated code's arithmetic is emulated by ``numeric``; these tests pin what generation
decides from it. That the generated tests then pass (and catch a layer that is NaN at 0) is in
test_generated.py (``HARD`` and ``mutant_singular``).
"""

from __future__ import annotations

import ast
import math
import struct

import pytest
import sympy

from scaffold import numeric
from scaffold.analyze import analyze
from scaffold.api import Options, render_layer
from scaffold.parse import parse
from scaffold.precision import EXTREME_TOLERANCE, TOLERANCE
from scaffold.reference import references
from scaffold.spec import build_spec


def _refs(text: str, **options):
    parsed = parse(text)
    analysis = analyze(parsed, build_spec(parsed, **options))
    return analysis, references(analysis)


def _grid(refs) -> dict[float, tuple[float, ...]]:
    return {
        point[0]: (refs.grid_forward[j], *(g[j] for g in refs.grid_gradients))
        for j, point in enumerate(refs.grid_points)
    }


@pytest.mark.parametrize("value", [0.1, 1 / 3, 65519.0, 65520.0, 1e39, -2.5e-8, 3.0e38])
def test_rounding_matches_the_dtypes(value):
    single = struct.unpack("<f", struct.pack("<f", value))[0] if abs(value) < 3.4e38 else math.inf
    assert numeric.ROUND["float32"](value) == single
    half = numeric.ROUND["float16"](value)
    assert half == (struct.unpack("<e", struct.pack("<e", value))[0] if value < 65520 else math.inf)
    assert abs(numeric.ROUND["bfloat16"](value) - value) <= abs(value) * 2**-8 or value > 3.39e38


@pytest.mark.parametrize(
    ("text", "limit", "slope"),
    [
        ("sin(pi*x)/(pi*x)", 1.0, 0.0),
        ("(exp(x)-1)/x", 1.0, 0.5),
        ("log(1+x)/x", 1.0, -0.5),
        ("(1-cos(x))/x**2", 0.5, 0.0),
        ("x/sin(x)", 1.0, 0.0),
    ],
)
def test_removable_singularities_get_their_limit_in_value_and_gradient(text, limit, slope):
    analysis, refs = _refs(text)
    assert [p.center for p in analysis.singular.patches] == [0]
    assert _grid(refs)[0.0] == pytest.approx((limit, slope), abs=1e-15)
    assert (0.0,) not in refs.grid_excluded
    x = analysis.spec.inputs[0]
    code = (analysis.forward_out, *analysis.grad_outs)
    temps = analysis.forward_temps + analysis.grad_temps
    for dtype in ("float64", "float32"):
        at_zero = numeric.evaluate(code, {x: 0.0}, dtype, temps).outputs
        near = numeric.evaluate(code, {x: 1e-8}, dtype, temps).outputs
        assert at_zero == pytest.approx((limit, slope), abs=1e-6), dtype
        assert near == pytest.approx((limit, slope), abs=1e-6), dtype


def test_poles_are_stated_and_left_out_of_the_grid_where_the_layer_is_not_finite():
    analysis, refs = _refs("1/x")
    assert analysis.singular.poles == (0,)
    assert any("no finite limit at x = 0" in note for note in analysis.notes)
    assert refs.grid_excluded == ((0.0,),)
    _, files = render_layer("1/x", name="reciprocal", timeout=None)
    test = next(text for path, text in files.items() if path.name == "test_reciprocal.py")
    assert "EXCLUDED = [" in test and "def test_not_finite_where_f_is_undefined" in test


def test_poles_of_special_functions_are_found_without_series():
    analysis, refs = _refs("loggamma(x)")
    assert analysis.singular.poles == (-4, -3, -2, -1, 0)
    assert {p[0] for p in refs.grid_excluded} >= {-4.0, -3.0, -2.0, -1.0, 0.0}


def test_squareplus_is_rewritten_where_float32_cancels():
    """x + sqrt(x**2 + 4) loses most digits at x = -1000 in float32: the rewrite is measured
    to hold there, so every extreme point stays in the test."""
    analysis, refs = _refs("(x + sqrt(x**2 + 4))/2")
    assert analysis.rewrites == ()
    assert (-1000.0,) in refs.lost
    _, files = render_layer("(x + sqrt(x**2 + 4))/2", name="squareplus", timeout=None)
    module = next(text for path, text in files.items() if path.name == "squareplus.py")
    assert "a+sqrt(b) -> (a**2-b)/(a-sqrt(b))" in module
    test = next(text for path, text in files.items() if path.name == "test_squareplus.py")
    assert "(-1000.0, 0.000999999" in test


def test_precision_that_no_rewrite_restores_is_stated_and_left_out():
    """cosh(x) - sinh(x) is exp(-x): in float32 inf - inf = NaN at x = 100."""
    plan, files = render_layer("cosh(x) - sinh(x)", name="hard", timeout=None)
    assert any("loses precision at x = 100" in w for w in plan.warnings), plan.warnings
    module = next(text for path, text in files.items() if path.name == "hard.py")
    assert "loses precision at x = 100" in module
    test = next(text for path, text in files.items() if path.name == "test_hard.py")
    extremes = test.split("EXTREMES = [")[1].split("]")[0]
    assert "(100.0," not in extremes and "(30.0," in extremes


def test_each_dtype_is_tested_where_the_code_holds_it():
    """exp(x**9 - 3*x**7): at x = -3.75, x**9 is -1.4e5 (beyond float16) while f is 0."""
    analysis, refs = _refs("exp(x**9 - 3*x**7)")
    assert refs.held["float32"] == tuple(range(len(refs.points)))
    x = analysis.spec.inputs[0]
    for j, point in enumerate(refs.points):
        inner = numeric.evaluate(
            (analysis.forward_out, *analysis.grad_outs),
            {x: point[0]},
            "float16",
            analysis.forward_temps + analysis.grad_temps,
        )
        if not inner.finite:
            assert j not in refs.held["float16"], point


@pytest.mark.parametrize(
    "text", ["exp(exp(exp(exp(exp(x)))))", "x**x**x**x**x**x**x**x", "cosh(cosh(cosh(x)))"]
)
def test_towers_are_tested_where_they_are_finite(text):
    _, refs = _refs(text)
    assert len(refs.points) >= 3
    assert all(math.isfinite(v) and abs(v) < 1e150 for v in refs.forward)


def test_generation_judges_dtypes_by_the_generated_checks_tolerances():
    """The checks module is rendered with precision's tolerances: HELD is chosen against
    exactly the tolerances the generated tests apply."""
    _, files = render_layer("sin(x)", name="sine", timeout=None)
    checks = next(text for path, text in files.items() if path.name == "scaffold_checks.py")
    values = {}
    for line in checks.splitlines():
        if line.startswith(("TOLERANCE = ", "EXTREME_TOLERANCE = ")):
            name, literal = line.split(" = ", 1)
            values[name] = ast.literal_eval(literal)
    assert values["TOLERANCE"] == TOLERANCE
    assert tuple(values["EXTREME_TOLERANCE"].values()) == EXTREME_TOLERANCE


def test_a_surrogate_reaches_a_weight_inside_the_same_step():
    """Heaviside(x - th) with a surrogate for x: th trains with -surrogate (snntorch's
    definition: the surrogate is the step's own derivative), and the docstring says so."""
    plan, files = render_layer(
        "Heaviside(x - th)",
        name="spike",
        options=Options(params=("th=1",), grads=("1/(1+10*abs(x-th))**2",)),
        timeout=None,
    )
    (threshold,) = plan.weights
    assert threshold.surrogate and threshold.grad_text == "-1/(1 + 10*Abs(th - x))**2"
    assert not plan.warnings
    module = next(text for path, text in files.items() if path.name == "spike.py")
    assert "reaches the weight th by the chain rule" in module


def test_a_weight_outside_the_step_keeps_its_zero_gradient_warning():
    plan, _ = render_layer(
        "x*Heaviside(x - th)",
        name="gated",
        options=Options(params=("th=1",), grads=("x=1",)),
        timeout=None,
    )
    assert any("its gradient for th is 0 everywhere" in w for w in plan.warnings)


def test_a_singular_point_that_moves_with_a_weight_is_stated_not_patched():
    """sin(x - th)/(x - th) is 0/0 at x = th: a polynomial around x = 1 would be wrong once
    th trains, so the layer keeps NaN there and says so (the test checks it is not finite)."""
    analysis, refs = _refs("sin(x - th)/(x - th)", params=("th=1",))
    assert analysis.singular.unresolved == (1,) and not analysis.singular.patches
    assert any("which scaffold does not compute" in note for note in analysis.notes)
    assert (1.0,) in refs.grid_excluded


@pytest.mark.parametrize("text", ["Max(x, 0)/x", "Abs(x)/x", "(x + Abs(x))/(2*x)"])
def test_a_jump_is_no_removable_singularity(text):
    """A limit on each side, not the same: stated as a point without a limit, never given a
    polynomial (SymPy's series of Max(x, 0)/x at 0 is 0, which would make f(0.1) = 0)."""
    analysis, refs = _refs(text)
    assert not analysis.singular.patches and analysis.singular.poles == (0,)
    assert (0.0,) in refs.grid_excluded
    assert _grid(refs)[0.5][0] == pytest.approx(1.0)


def test_a_formula_with_weights_gets_no_polynomial():
    """A polynomial exact at a = 2 is off by 3.8 at a = 30: sin(a*x)/x states its 0 instead."""
    analysis, refs = _refs("sin(a*x)/x", params=("a=2",))
    assert analysis.singular.unresolved == (0,) and not analysis.singular.patches
    assert (0.0,) in refs.grid_excluded


def test_only_points_where_f_or_an_input_gradient_is_undefined_are_excluded():
    """x**a: the weight's gradient x**a*log(x) is complex for x < 0, f and df/dx are not."""
    _, refs = _refs("x**a", params=("a=2",))
    assert (-1.0,) not in refs.grid_excluded and (-1.0,) in refs.grid_large


def test_the_emulation_divides_by_the_product_as_the_code_does():
    """a/(b*c) in float16 with b*c beyond 65504 is 0, as the printed code computes it."""
    a, b, c = sympy.symbols("a b c", real=True)
    found = numeric.evaluate([a / (b * c)], {a: 1.0, b: 300.0, c: 300.0}, "float16")
    assert found.outputs == (0.0,)
