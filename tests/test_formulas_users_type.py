"""Formulas and commands users type, each found broken once: now a correct layer or a clear refusal.

Each case is a command line. A case that generates must exit 0 and its layer must agree with
independent references (mpmath's value and numerical derivative of the formula as typed, and
TensorFlow's autodiff, in the one TensorFlow process of ``test_property``); a case that is
refused must exit 2 with a message saying what to do. None may exit 4. The layers whose
generated tests matter most (ties, conditionals' second derivatives, weights only, constants)
also run their full generated tests in ``test_generated``.
"""

from __future__ import annotations

import re
import shlex

import pytest
from independent import Server, verify_layer
from typer.testing import CliRunner

from scaffold.cli import app

#: (command after "scaffold new-layer", None to generate | a pattern the refusal must match)
CASES = [
    # Constant subtrees that look like stable patterns.
    ("'x/(1+exp(-1))'", None),
    ("'x*log(1+exp(2))'", None),
    ("'x*log(cosh(1))'", None),
    ("'x + exp(2) - 1'", None),
    ("'x*round(pi)'", None),
    ("'x*log(1+pi)'", None),
    ("'Abs(x + 1/(1+exp(-1)))'", None),  # found by the property test
    # Weights with exact symbolic values.
    ("'sin(a*x)' --param a=pi/4", None),
    ("'a*x' --param a=sqrt(2)", None),
    ("'cos(a*x)' --param a=2*pi", None),
    # Irrational factors.
    ("'pi*x'", None),
    ("'x*pi'", None),
    ("'E*x'", None),
    ("'exp(1)*x'", None),
    ("'100000*x**2'", None),
    # A leading minus sign.
    ("'-log(1+exp(-x))' --name neg_softplus", None),
    ("--name neg_xlogx -- '-x*log(x)'", None),
    # Names users type.
    ("'x*sigmoid(b*x)' --param b=1", None),
    ("'softplus(x) - log(2)'", None),
    ("'relu(x) + 0.1*x'", None),
    ("'log1p(x**2)'", None),
    ("'expm1(x)/2'", None),
    ("'pow(x, 3)'", None),
    ("'Heaviside(x, 0)' --grad '1/(1+(pi*x)**2)'", None),
    ("'lambda*x'", r"keyword"),
    ("'x²'", r"x\*\*2"),
    ("'|x|'", r"abs\(x\)"),
    ("'2x'", r"2\*x"),
    ("'sin x'", r"sin\(x\)"),
    ("'sin(x)' --name swish-beta", r"swish_beta"),
    # Shapes.
    ("'a*b' --param a=1 --param b=2 --inputs x", None),
    ("'sin(x)' --inputs x,y", r"does not use 'y'"),
    ("'x*X' --inputs x,X", None),
    # Ties and conditionals.
    ("'Max(x, y)' --inputs x,y", None),
    ("'Max(x, a*x)' --param a=0.25", None),
    ("'Piecewise((log(x), x > 0), (0, True))'", None),
    # Surrogates with a weight of their own.
    ("'Heaviside(x)' --state k=10 --grad '1/(1+k*abs(x))**2'", None),
    # Piecewise-constant formulas: generated, with a warning that the gradient is zero.
    ("'round(x)'", None),
    # Removable singularities (the limit, in value and gradient) and a pole.
    ("'sin(x)/x'", None),
    ("'(exp(x)-1)/x'", None),
    ("'log(1+x)/x'", None),
    ("'(1-cos(x))/x**2'", None),
    ("'x/tanh(x)'", None),
    ("'1/x'", None),
    # Towers finite on part of the line only; cancellation (SquarePlus).
    ("'exp(exp(exp(x)))'", None),
    ("'x**x**x'", None),
    ("'exp(x**9 - 3*x**7)'", None),
    ("'(x + sqrt(x**2 + 4))/2'", None),
    ("'exp(exp(exp(exp(exp(exp(exp(x)))))))'", r"found only 0 test point"),
]


def _run(command: str, tmp_path):
    args = ["new-layer", *shlex.split(command), "--out", str(tmp_path / "out")]
    if "--name" not in args:
        args += ["--name", "layer_under_test"]
    return CliRunner().invoke(app, args)


@pytest.mark.parametrize(("command", "refused"), CASES, ids=[c for c, _ in CASES])
def test_generates_or_refuses_clearly(command, refused, tmp_path):
    result = _run(command, tmp_path)
    assert result.exit_code != 4, result.output
    if refused is None:
        assert result.exit_code == 0, result.output
        assert (tmp_path / "out").is_dir()
    else:
        assert result.exit_code == 2, result.output
        assert re.search(refused, result.output), result.output
        assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def server():
    process = Server()
    yield process
    process.close()


@pytest.mark.slow
def test_generated_cases_agree_with_independent_references(tmp_path, server):
    """Every case that generates: its layer against mpmath and TensorFlow's autodiff."""
    for index, (command, refused) in enumerate(CASES):
        if refused is None:
            folder = tmp_path / f"case_{index}"
            result = _run(command, folder)
            assert result.exit_code == 0, result.output
            (module,) = [
                p
                for p in (folder / "out").glob("*.py")
                if p.name != "scaffold_checks.py" and not p.name.startswith("test_")
            ]
            verify_layer(module, server)
