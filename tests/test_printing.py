"""Unit tests for scaffold.printing: SymPy -> TensorFlow source text (no TensorFlow needed)."""

from __future__ import annotations

import ast
import math
import types

import pytest
import sympy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scaffold import errors
from scaffold.mathtext import math_text
from scaffold.parse import FUNCTIONS, parse
from scaffold.printing import TensorFlowPrinter, supported_functions, to_printable
from scaffold.reductions import BY_WORD

x = sympy.Symbol("x", real=True)

#: Names that exist in TensorFlow 2.x; printed code may use nothing else from ``tf``.
KNOWN_TF = {
    *(f"tf.math.{name}" for name in ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh")),
    *(f"tf.math.{name}" for name in ("tanh", "asinh", "acosh", "atanh", "exp", "log", "sqrt")),
    *(f"tf.math.{name}" for name in ("erf", "erfc", "lgamma", "digamma", "polygamma", "abs")),
    *(f"tf.math.{name}" for name in ("sign", "floor", "ceil", "round", "maximum", "minimum")),
    *(f"tf.math.{name}" for name in ("equal", "not_equal", "logical_and", "logical_or")),
    *(f"tf.math.{name}" for name in ("sigmoid", "softplus", "log1p", "expm1")),
    *("tf.math.logical_not", "tf.where", "tf.zeros_like", "tf.ones_like", "tf.constant"),
    *(f"tf.math.reduce_{name}" for name in ("sum", "mean", "max", "min", "logsumexp")),
    *("tf.norm", "tf.nn.log_softmax", "tf.nn.softmax", "tf.math.divide_no_nan", "tf.math.rsqrt"),
    "tf.float64",
    "tf.raw_ops.SoftplusGrad",
}


def _printer(*, float64_only: bool = False) -> TensorFlowPrinter:
    # ``like``: the tensor constant branches of a conditional borrow shape and dtype from.
    return TensorFlowPrinter(like="x", float64_only=float64_only)


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _check_code(code: str, printer: TensorFlowPrinter, variables: set[str]) -> None:
    """Printed code compiles, and every name it uses is TensorFlow, math, a helper or a variable."""
    compile(code, "<test>", "eval")
    allowed_names = variables | {"tf", "math"} | {f"_{h}" for h in printer.helpers}
    for node in ast.walk(ast.parse(code, mode="eval")):
        if isinstance(node, ast.Name):
            assert node.id in allowed_names, f"unexpected name {node.id!r} in {code}"
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            assert dotted is not None, f"attribute of an expression in {code}"
            if dotted.startswith("tf."):
                prefix = dotted in ("tf.math", "tf.raw_ops")
                assert dotted in KNOWN_TF or prefix, f"{dotted} in {code}"
            else:
                assert dotted.startswith("math.") and hasattr(math, dotted[5:]), code


def _applied(name: str) -> sympy.Expr:
    constructor, arities = FUNCTIONS[name]
    if name == "polygamma":  # polygamma(n, x): the order first
        return constructor(1, x)
    return constructor(x, *[sympy.Rational(1, 2)] * (min(arities) - 1))


@pytest.mark.parametrize("name", sorted(set(FUNCTIONS) - set(BY_WORD)))
def test_every_user_function_and_its_derivative_print(name):
    expr = _applied(name)
    printer = _printer()
    code = printer.doprint(expr)
    _check_code(code, printer, {"x"})
    assert "tf.math." in code or any(f"_{h}(" in code for h in printer.helpers), code
    # analyze() drops DiracDelta terms (TensorFlow's gradient convention); the printer itself
    # refuses DiracDelta, see test_unsupported_functions_are_refused_with_the_supported_list.
    derivative = sympy.diff(expr, x).replace(sympy.DiracDelta, lambda *args: sympy.S.Zero)
    derivative_code = printer.doprint(derivative)
    _check_code(derivative_code, printer, {"x"})


@pytest.mark.parametrize("word", sorted(BY_WORD))
def test_every_reduction_prints_over_the_axis_keeping_it(word):
    """Reductions are differentiated by the reverse pass (tests/test_reductions.py), never
    by SymPy: here only their code."""
    printer = _printer()
    code = printer.doprint(BY_WORD[word](x**2))
    _check_code(code, printer, {"x", "AXIS"})
    assert code.endswith("(x*x, axis=AXIS, keepdims=True)"), code
    test_code = TensorFlowPrinter(like="x", float64_only=True, axis="-1").doprint(BY_WORD[word](x))
    assert test_code.endswith("(x, axis=-1, keepdims=True)"), test_code


def test_constants_stay_python_numbers():
    printer = _printer()
    code = printer.doprint(sympy.sqrt(2) * x)
    assert "math.sqrt(2)" in code
    assert "tf.math.sqrt(2" not in code
    assert printer.uses_math is True
    derivative = sympy.diff(sympy.erf(x / sympy.sqrt(2)), x)
    derivative_code = _printer().doprint(derivative)
    assert "tf.math.sqrt(2" not in derivative_code
    assert "math.sqrt(2)" in derivative_code or "math.sqrt(math.pi)" in derivative_code


def test_rational_only_code_does_not_use_math():
    printer = _printer()
    assert printer.doprint(x**3 / 3) == "(x*x*x)/3"  # small powers: multiplications
    assert printer.uses_math is False
    assert printer.helpers == set()


@pytest.mark.parametrize(
    ("func", "base"), [(sympy.sec, sympy.cos), (sympy.csc, sympy.sin), (sympy.cot, sympy.tan)]
)
def test_reciprocal_trigonometric_functions_are_rewritten(func, base):
    code = _printer().doprint(func(x))
    assert f"tf.math.{base.__name__}(x)" in code
    assert func.__name__ not in code
    assert to_printable(func(x)) == 1 / base(x)
    assert _evaluate(code, 0.7) == pytest.approx(1 / getattr(math, base.__name__)(0.7))


def test_loggamma_is_computed_in_float32_unless_float64_only():
    printer = _printer()
    assert printer.doprint(sympy.loggamma(x)) == "_in_float32(tf.math.lgamma, x)"
    assert printer.helpers == {"in_float32"}
    plain = _printer(float64_only=True)
    assert plain.doprint(sympy.loggamma(x)) == "tf.math.lgamma(x)"
    assert plain.helpers == set()


def test_loggamma_derivatives_print_digamma_then_polygamma():
    first = _printer()
    assert first.doprint(sympy.diff(sympy.loggamma(x), x)) == "_in_float32(tf.math.digamma, x)"
    second = _printer()
    assert second.doprint(sympy.diff(sympy.loggamma(x), x, 2)) == "_polygamma(1, x)"
    assert second.helpers == {"polygamma", "in_float32"}
    plain = _printer(float64_only=True)
    assert plain.doprint(sympy.polygamma(1, x)) == (
        "tf.math.polygamma(tf.constant(1, tf.float64), x)"
    )


@pytest.mark.parametrize(
    "expr",
    [
        sympy.besselj(0, x),
        sympy.Function("f")(x),
        sympy.gamma(x),
        sympy.zeta(x),
        sympy.DiracDelta(x),
    ],
    ids=str,
)
def test_unsupported_functions_are_refused_with_the_supported_list(expr):
    with pytest.raises(errors.UnsupportedError) as info:
        _printer().doprint(expr)
    assert type(expr).__name__ in info.value.message
    assert info.value.hint.startswith("supported functions:")
    listed = info.value.hint.split(":", 1)[1].split(", ")
    assert [name.strip() for name in listed] == supported_functions()


def test_supported_functions_is_sorted_and_covers_the_table():
    names = supported_functions()
    assert names == sorted(names)
    assert {"sin", "sec", "loggamma", "polygamma", "sqrt", "erfc"} <= set(names)


def test_complex_constant_is_refused():
    with pytest.raises(errors.UnsupportedError, match="not a real number"):
        _printer().doprint(sympy.I * x)


def _stand_in_tf() -> types.SimpleNamespace:
    names = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "asinh")
    names += ("acosh", "atanh", "exp", "log", "sqrt", "erf", "erfc", "lgamma")
    functions = {name: getattr(math, name) for name in names}
    functions.update(abs=abs, maximum=max, minimum=min, equal=float.__eq__)
    functions.update(not_equal=float.__ne__, logical_not=lambda a: not a)
    functions.update(logical_and=lambda a, b: a and b, logical_or=lambda a, b: a or b)
    functions.update(sigmoid=lambda u: 1 / (1 + math.exp(-u)), rsqrt=lambda u: 1 / math.sqrt(u))
    return types.SimpleNamespace(
        raw_ops=types.SimpleNamespace(
            SoftplusGrad=lambda gradients, features: gradients / (1 + math.exp(-features))
        ),
        math=types.SimpleNamespace(**functions),
        where=lambda condition, a, b: a if condition else b,
        ones_like=lambda _: 1.0,
        zeros_like=lambda _: 0.0,
    )


def _evaluate(code: str, value: float) -> float:
    # Our own printed code, evaluated with floats standing in for tensors; never user text.
    return eval(code, {"__builtins__": {}, "tf": _stand_in_tf(), "math": math, "x": value})


NUMERIC = [
    x**3 / 3,
    1 / sympy.sqrt(x),
    x ** (-2),
    sympy.exp(-(x**2) / 2) * x,
    2**x,
    sympy.Rational(1, 3) * sympy.pi * x,
    sympy.sqrt(2) * x - sympy.sqrt(3),
    -x / 3 + sympy.E,
    sympy.sec(x) + sympy.cot(x),
    sympy.log(x, 2),
    x ** sympy.Rational(3, 2),
    sympy.diff(sympy.erf(x / sympy.sqrt(2)), x),
    sympy.diff(sympy.atan(x) * sympy.acosh(x + 1), x),
    sympy.Max(x, sympy.Rational(1, 2)) * sympy.Abs(x - 1),
]


@pytest.mark.parametrize("expr", NUMERIC, ids=str)
def test_printed_code_computes_the_expression(expr):
    code = _printer().doprint(expr)
    expected = float(expr.subs(x, 0.7))
    assert _evaluate(code, 0.7) == pytest.approx(expected, rel=1e-12, abs=1e-12), code


CONDITIONAL = [
    sympy.Piecewise((x**2, x > 0), (-x, True)),
    sympy.Piecewise((sympy.pi, (x > 0) & (x < 1)), (-1, True)),
    sympy.Piecewise((0, sympy.Eq(x, sympy.Rational(3, 2))), (2 * x, sympy.Ne(x, 0)), (1, True)),
    sympy.Piecewise((1, ~(x >= -sympy.Rational(1, 2)) | (x > 1)), (0, True)),
    sympy.Heaviside(x - 1, 0) + sympy.Heaviside(x + 1),
]


@pytest.mark.parametrize("float64_only", [False, True])
@pytest.mark.parametrize("value", [0.7, -0.7, 1.5, 0.0])
@pytest.mark.parametrize("expr", CONDITIONAL, ids=str)
def test_conditionals_compute_the_expression(expr, value, float64_only):
    printer = _printer(float64_only=float64_only)
    code = printer.doprint(expr)
    _check_code(code, printer, {"x"})
    if expr.has(sympy.Heaviside) and not float64_only:
        assert "_heaviside(" in code  # a helper of the generated module, not evaluated here
        assert "heaviside" in printer.helpers
        return
    expected = float(expr.subs(x, value))
    assert _evaluate(code, value) == pytest.approx(expected, rel=1e-12, abs=1e-12), code


def test_constant_too_large_for_a_float_is_refused_or_evaluates():
    expr = x / (1 + sympy.exp(800))
    try:
        code = _printer().doprint(expr)
    except errors.UnsupportedError:
        return
    assert math.isfinite(_evaluate(code, 0.7))


def test_numeric_factors_fold_into_one_constant():
    # One multiplication by a Python float, not one pass over the tensor per factor.
    printer = _printer()
    assert printer.doprint(x * sympy.sqrt(2) / 2) == "((1/2)*math.sqrt(2))*x"
    assert printer.doprint(-(x**2) / 2) == "(-1/2)*(x*x)"
    assert printer.doprint(3 * x / 2) == "(3/2)*x"
    assert printer.doprint(x / 2) == "x/2" and printer.doprint(2 * x) == "2*x"


def test_constants_come_after_tensors_in_binary_ops():
    # tf.math.minimum(1, x) fails in graph mode for a float x (1 becomes int32).
    printer = _printer()
    code = printer.doprint(sympy.Max(-1, sympy.Min(1, x)))
    assert code == "tf.math.maximum(tf.math.minimum(x, 1), -1)"


def test_products_with_a_sigmoid_use_the_fused_kernel_only_when_shapes_agree():
    # SoftplusGrad(g, u) = g*sigmoid(u) in one kernel; it does not broadcast.
    from scaffold.functions import Sigmoid

    y = sympy.Symbol("y", real=True)
    expr = 3 * y * x * Sigmoid(-x)
    fused = TensorFlowPrinter(like="x", one_shape=True)
    code = fused.doprint(expr)
    assert code == "tf.raw_ops.SoftplusGrad(gradients=3*x*y, features=-x)"
    assert fused.fused_sigmoid
    _check_code(code, fused, {"x", "y"})
    value = eval(code, {"__builtins__": {}, "tf": _stand_in_tf(), "x": 0.7, "y": -1.3})
    assert value == pytest.approx(3 * -1.3 * 0.7 / (1 + math.exp(0.7)), rel=1e-14)
    plain = _printer()
    assert "SoftplusGrad" not in plain.doprint(expr) and not plain.fused_sigmoid
    # Nothing to fuse with: a lone sigmoid, or one times a number, stays a sigmoid.
    assert fused.doprint(Sigmoid(x)) == "tf.math.sigmoid(x)"
    assert fused.doprint(2 * Sigmoid(x)) == "2*tf.math.sigmoid(x)"


# Math text in the input language ------------------------------------------------------------
INPUT_LANGUAGE = {
    "Piecewise((1, Eq(x, 0)), (x, True))": "Piecewise((1, x == 0), (x, True))",
    "Piecewise((x, (x > 0) & (x < 1) | (x < -2)), (0, True))": (
        "Piecewise((x, x < -2 or (x > 0 and x < 1)), (0, True))"
    ),
    "Piecewise((x, ~((x > 0) & (y > 0))), (0, True))": (
        "Piecewise((x, not (x > 0 and y > 0)), (0, True))"
    ),
    "Round(x)": "round(x)",
    "Floor(x) + Ceiling(x)": "floor(x) + ceiling(x)",
    "Softplus(x)*Sigmoid(x)": "sigmoid(x)*softplus(x)",
    "Log1p(x) + Expm1(x)": "expm1(x) + log1p(x)",
    "LogCosh(x)": "-log(2) + Abs(x) + log1p(exp(-2*Abs(x)))",
    "LogAddExp(x, y)": "log1p(exp(-Abs(x - y))) + Max(x, y)",
    "Heaviside(x, 0)": "Heaviside(x, 0)",
    "Heaviside(x)": "Heaviside(x)",
    "polygamma(0, x) + polygamma(1, x)": "digamma(x) + polygamma(1, x)",
    "Maximum(y, x)": "Max(y, x)",
    "SafeInput(x, x > 0, 1)": "where(x > 0, x, 1)",
    "10507009873554805*x/10000000000000000": "1.0507009873554805*x",
}


@pytest.mark.parametrize("internal", INPUT_LANGUAGE)
def test_math_text_prints_the_input_language(internal):
    from scaffold import functions

    y = sympy.Symbol("y", real=True)
    classes = {name: value for name, value in vars(functions).items() if isinstance(value, type)}
    names = classes | {"x": x, "y": y}
    expr = sympy.sympify(internal, locals=names)  # our own test strings, not user text
    text = math_text(expr)
    assert text == INPUT_LANGUAGE[internal]
    reparsed = parse(text).expr
    if not expr.has(functions.LogCosh, functions.LogAddExp, functions.SafeInput):
        assert reparsed == expr


_ATOMS = st.sampled_from(["x", "y", "2", "3", "0.5", "1.25", "0.1", "pi", "E"])
_UNARY = sorted(name for name, (_, arities) in FUNCTIONS.items() if 1 in arities)
_CONDITIONS = st.sampled_from(
    ["x > 0", "x <= y", "x == 0", "x != 1", "0 < x < 1", "x > 0 and y < 1", "x < -1 or x > 1",
     "not x > y"]
)  # fmt: skip


def _formulas():
    def combine(children):
        return st.one_of(
            st.builds(lambda f, u: f"{f}({u})", st.sampled_from(_UNARY), children),
            st.builds(
                lambda u, op, v: f"({u}) {op} ({v})",
                children,
                st.sampled_from(["+", "-", "*", "/", "**"]),
                children,
            ),
            st.builds(
                lambda f, u, v: f"{f}({u}, {v})",
                st.sampled_from(["Max", "Min"]),
                children,
                children,
            ),
            st.builds(lambda c, u, v: f"where({c}, {u}, {v})", _CONDITIONS, children, children),
            st.builds(
                lambda u, v, c: f"Piecewise(({u}, {c}), ({v}, True))",
                children,
                children,
                _CONDITIONS,
            ),
            st.builds(
                lambda u, h: f"Heaviside({u}, {h})", children, st.sampled_from(["0", "1", "0.5"])
            ),
            st.builds(lambda u, v: f"pow({u}, {v})", children, children),
            st.builds(lambda u: f"log({u}, 2)", children),
            st.builds(lambda u: f"polygamma(1, {u})", children),
        )

    return st.recursive(_ATOMS, combine, max_leaves=6)


def _assert_reads_back(expr, expected) -> None:
    """The same expression, or one SymPy writes otherwise: -(x + y)*z becomes (-x - y)*z."""
    text = math_text(expr)
    reparsed = parse(text).expr
    assert reparsed == expected or sympy.expand(reparsed - expected) == 0, text


def _typeable(expr) -> bool:
    """False for numbers the parser refuses by design, which SymPy makes from typed formulas:
    a number to an irrational power (2**pi from pow(where(x > 0, x, 2), pi)) and fractions of
    terms beyond the 1e12 literal limit (polygamma(1, 27) = pi**2/6 - 1.607...); math text
    shows those as the nearest float."""
    if any(p.base.is_number and not p.exp.is_Rational for p in expr.atoms(sympy.Pow)):
        return False
    if expr.has(sympy.I):  # sqrt of a negative constant in a branch: refused when printed
        return False
    return all(max(abs(r.p), r.q) <= 10**12 for r in expr.atoms(sympy.Rational))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(_formulas())
def test_math_text_reads_back_as_the_same_expression(text):
    """parse(math_text(e)) == e for formulas of the whole language, and their derivatives."""
    from scaffold.analyze import abs_identity, tensorflow_conventions
    from scaffold.functions import LogAddExp, LogCosh
    from scaffold.stabilize import stabilize

    try:
        expr = parse(text).expr
    except errors.ScaffoldError:
        assume(False)  # a refusal (division by zero, a complex constant): not this test's case

    # SymPy writes a condition on a conditional as ITE(a, b, c), printed with and/or/not; and
    # stable blocks without a name of their own print as the code computes them.
    def typed(e):
        e = e.replace(lambda node: isinstance(node, sympy.ITE), lambda node: node.to_nnf())
        return e.replace(
            lambda node: isinstance(node, (LogCosh, LogAddExp)), lambda node: node.stable_form()
        )

    assume(_typeable(expr))
    # loggamma of an integer-valued conditional: SymPy writes log(gamma(...)), no typed name.
    assume(not expr.has(sympy.gamma))
    _assert_reads_back(expr, typed(expr))
    stable, _ = stabilize(expr)
    for symbol in expr.free_symbols:
        derivative = tensorflow_conventions(abs_identity(sympy.diff(stable, symbol)))[0]
        assume(not derivative.has(sympy.Derivative, sympy.Subs, sympy.zoo, sympy.nan))
        # Abs of a function SymPy cannot prove real (acos) differentiates into re/im.
        assume(not derivative.has(sympy.re, sympy.im))
        assume(_typeable(derivative))
        _assert_reads_back(derivative, typed(derivative))
