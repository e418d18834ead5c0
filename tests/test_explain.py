"""scaffold explain: named rules, SymPy's result, three formats (no TensorFlow)."""

from __future__ import annotations

import markdown
import pytest
import sympy
from typer.testing import CliRunner

from scaffold.analyze import tensorflow_conventions
from scaffold.cli import app
from scaffold.examples import EXAMPLES
from scaffold.explanation import WIDTH, explain, render


def test_product_and_chain_rules_lead_to_sympys_derivative():
    explanation = explain("x*sin(x**2)")
    ((name, steps, ours, _),) = explanation.derivations
    rules = " ".join(step.rule for step in steps)
    assert name == "x"
    assert "product rule" in rules and "chain rule" in rules and "power rule" in rules
    x = sympy.Symbol("x", real=True)
    assert sympy.simplify(ours - (sympy.sin(x**2) + 2 * x**2 * sympy.cos(x**2))) == 0
    text = render(explanation, "text")
    assert "product rule" in text and "chain rule" in text
    assert "2*x**2*cos(x**2) + sin(x**2)" in text


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: e.folder)
def test_every_catalog_derivation_ends_in_sympys_derivative(example):
    options = example.options
    explanation = explain(
        example.expression,
        inputs=options.inputs,
        params=options.params,
        grads=options.grads,
        loss=example.kind == "loss",
    )
    for _, steps, ours, sympys in explanation.derivations:
        assert steps, "no rule was shown"
        # Through reductions: the code's vector-Jacobian product, in the same reduction nodes
        # (which simplify cannot differentiate).
        same = sympy.expand if explanation.reduces else sympy.simplify
        assert same(ours - sympys) == 0, (ours, sympys)


def test_softmax_and_layer_norm_backward_are_derived_step_by_step():
    """The reduction rule, a symbol per reduction, each transpose named, and the result:
    softmax's y*(dy - sum(dy*y)), layer norm's two sums, ending at the code."""
    softmax = explain("exp(x)/sum(exp(x))")
    text = render(softmax, "text")
    assert "The reduction rule" in text and "logsumexp becomes a symbol" in text
    assert "transpose of logsumexp" in text
    assert "Result: (dy - sum(dy*exp(x - logsumexp(x))))*exp(x - logsumexp(x))" in text
    assert "grad[x] = _fit_to_shape(t0*(dy - tf.math.reduce_sum(dy*t0" in text
    layer_norm = explain(
        "(x - mean(x))/sqrt(mean((x - mean(x))**2) + 0.001)*g + b",
        params=("g=1", "b=0"),
        param_shapes=("g=channel", "b=channel"),
    )
    (name, steps, ours, _), *_ = layer_norm.derivations
    assert (
        name == "x"
        and [s.rule for s in steps if s.rule.startswith("transpose")]
        == ["transpose of mean: the adjoint of u is a/n"] * 2
    )
    assert str(ours).count("ReduceSum") == 2  # the sum of x - mean(x) is gone: it is 0
    for fmt in ("text", "markdown", "latex"):
        assert "reduction" in render(layer_norm, fmt)
    assert max(len(line) for line in render(layer_norm, "text").splitlines()) <= WIDTH


def test_quotient_exponential_and_logarithmic_rules_are_named():
    rules = {
        "sin(x)/x": "quotient rule",
        "2**x": "exponential rule",
        "x**x": "logarithmic differentiation",
        "3*cos(x)": "constant factor",
        "x + exp(x)": "sum rule",
    }
    for expression, rule in rules.items():
        ((_, steps, ours, sympys),) = explain(expression, stabilize=False).derivations
        assert rule in steps[0].rule, (expression, steps[0].rule)
        assert sympy.simplify(ours - sympys) == 0


def test_conventions_rewrites_and_surrogates_are_explained():
    softplus = render(explain("log(1+exp(x))"), "text")
    assert "log(1+exp(u)) -> softplus(u)" in softplus
    relu = explain("Max(x, 0)")
    assert any("relu'(0) = 0" in note for note in relu.notes)
    ((_, _, ours, sympys),) = relu.derivations
    assert ours == tensorflow_conventions(sympys)[0]
    spike = explain("Heaviside(x)", grads=("1/(1+x**2)",))
    assert spike.derivations == ()
    assert any("surrogate" in note for note in spike.notes)


def test_code_lines_carry_their_math():
    explanation = explain("x*sin(x**2)")
    assert ("t0 = (x*x)", "x**2") in explanation.forward_code
    assert any("tf.math.cos" in line for line, _ in explanation.grad_code)


@pytest.mark.parametrize("expression", ["x*sin(x**2)", "0.5*x*(1+erf(x/sqrt(2)))", "x*a*exp(-x)"])
def test_text_fits_an_80_column_terminal(expression):
    options = {"params": ("a=2",)} if "a" in expression else {}
    text = render(explain(expression, **options), "text")
    assert max(len(line) for line in text.splitlines()) <= WIDTH


def test_markdown_renders_with_math():
    source = render(explain("x*sin(x**2)"), "markdown")
    html = markdown.markdown(source, extensions=["fenced_code"])
    assert "<h2>Derivative with respect to $x$</h2>" in html
    assert "$\\frac{d}{dx}\\left[x \\sin{\\left(x^{2} \\right)}\\right]" in html
    assert '<code class="language-python">' in html
    assert "product rule" in html


def test_latex_format_has_align_blocks():
    source = render(explain("x*sin(x**2)"), "latex")
    assert source.count("\\begin{align*}") == source.count("\\end{align*}") == 1
    assert "\\subsection*{Derivative with respect to $x$}" in source


def test_cli_explain_and_its_errors():
    runner = CliRunner()
    result = runner.invoke(app, ["explain", "x*sin(x**2)"])
    assert result.exit_code == 0, result.output
    assert "chain rule" in result.output
    result = runner.invoke(app, ["explain", "x", "--format", "html"])
    assert result.exit_code == 2 and "--format" in result.output
    result = runner.invoke(app, ["explain", "sine(x)"])
    assert result.exit_code == 2 and "did you mean 'sin'" in result.output


@pytest.mark.parametrize(
    ("expression", "options"),
    [
        ("x**3", {}),
        ("x*y*z", {"inputs": "x,y,z"}),
        ("Heaviside(x)", {"grads": ("1/(1+x**2)**2",)}),
        ("Max(x, a*x)", {"params": ("a=0.25",)}),
        ("log(1+exp(x))*x_1*y_2", {"inputs": "x,x_1,y_2"}),
    ],
)
def test_markdown_has_no_accidental_emphasis(expression, options):
    source = render(explain(expression, **options), "markdown")
    html = markdown.markdown(source, extensions=["fenced_code"])
    assert "<strong>" not in html and "<em>" not in html, html
    if expression == "x**3":
        assert "<code>power rule: (u**n)' = n*u**(n-1)*u'</code>" in html
    if "grads" in options:
        assert "surrogate (1 + x**2)**(-2), not a derivative" in html
