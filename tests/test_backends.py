"""--backend keras: keras.ops code that runs on every Keras 3 backend, and its validation.

The printer and refusals are checked in-process; the slow tests run the generated tests of
portable layers, a loss and a layer inside a package, under TensorFlow, JAX and (where it is
installed) torch, through ``scaffold validate``.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scaffold import sync, validate
from scaffold.api import LOSS, Options, generate, render_layer
from scaffold.cli import app
from scaffold.keras_printing import KERAS_FUNCTIONS, KERAS_OPS, KERAS_REDUCTIONS
from scaffold.report import CaseResult

REPO = Path(__file__).resolve().parents[1]
KERAS = Options(backend="keras")
#: Every function of the keras.ops table, the conditionals and the reductions, in formulas.
FORMULAS = {
    "trig": "sin(x) + cos(x) + tan(x/4) + asin(x/4) + acos(x/4) + atan(x)",
    "hyperbolic": "sinh(x) + cosh(x) + tanh(x) + asinh(x) + acosh(x**2 + 2) + atanh(x/4)",
    "exponential": "exp(x) + log(x**2 + 1) + erf(x) + erfc(x) + log1p(x**2) + expm1(x)",
    "steps": "abs(x) + sign(x) + floor(x) + ceiling(x) + round(x)",
    "blocks": "sigmoid(x) + softplus(x) + log(cosh(x)) + log(exp(x) + exp(2*x)) + sqrt(x**2 + 1)",
    "kinks": "Max(x, 0) + Min(x, 1) + Heaviside(x) + Piecewise((x, x > 0), (0, True))",
    "rows": "x - logsumexp(x) + mean(x) + amax(x) - amin(x) + norm(x) + x/norm(x)",
    "softmax": "exp(x)/sum(exp(x))",
    "layer_norm": "(x - mean(x))/sqrt(mean((x - mean(x))**2) + 0.001)",
}


def _render(expression: str, tmp_path: Path, options: Options = KERAS, **kwargs) -> str:
    _, files = render_layer(expression, name="op", options=options, out=tmp_path, **kwargs)
    return files[tmp_path / "op.py"]


@pytest.mark.parametrize("formula", sorted(FORMULAS))
def test_the_keras_module_uses_keras_ops_only(tmp_path, formula):
    import keras

    source = _render(FORMULAS[formula], tmp_path)
    tree = ast.parse(source)
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"keras", "ops", "math"}, imported
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert not names & {"tf", "tensorflow", "jax", "jnp", "torch"}, names
    used = set(re.findall(r"\bops\.([a-z_]+)\(", source))
    assert used and all(hasattr(keras.ops, name) for name in used), used
    assert "@ops.custom_gradient" in source and "def grad(*args, upstream=None):" in source


def test_the_tables_name_only_functions_keras_ops_has():
    import keras

    names = [*KERAS_FUNCTIONS.values(), *KERAS_REDUCTIONS.values(), *KERAS_OPS.values()]
    missing = [name for name in names if not hasattr(keras.ops, name.removeprefix("ops."))]
    assert not missing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["loggamma(x)"], "keras.ops has no loggamma"),
        (["digamma(x)"], "polygamma"),
        (["ops*x"], "symbol 'ops' would clash"),
        (["upstream*x"], "symbol 'upstream' would clash"),
        (["x*exp(s)", "--param", "s=0", "--update", "s=s+1"], "must be a --state"),
        (["sin(x)", "--backend", "jax"], "--backend must be one of tensorflow, keras"),
    ],
)
def test_what_keras_ops_cannot_do_is_refused_with_a_hint(tmp_path, args, message):
    backend = [] if "--backend" in args else ["--backend", "keras"]
    result = CliRunner().invoke(app, ["new-layer", *args, *backend, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "hint:" in result.output
    assert not list(tmp_path.iterdir())  # nothing written


def test_the_backend_is_recorded_and_sync_keeps_it(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "new-layer",
            "x*tanh(x)",
            "--name",
            "tanh_gate",
            "--backend",
            "keras",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "scaffold_keras_checks.py",
        "tanh_gate.py",
        "test_tanh_gate.py",
    ]
    module = tmp_path / "tanh_gate.py"
    assert "--backend keras" in module.read_text()
    assert '"backend": "keras"' in module.read_text()
    report = sync.check([tmp_path], timeout=None)
    assert report.modules == (module,) and not report.pending and not report.errors
    # A TensorFlow layer beside it keeps its own checks module.
    generate("sin(x)", name="sine", out=tmp_path)
    assert (tmp_path / "scaffold_checks.py").is_file()
    test = (tmp_path / "test_tanh_gate.py").read_text()
    assert "import scaffold_keras_checks as checks" in test


def test_explain_shows_the_keras_code():
    result = CliRunner().invoke(app, ["explain", "x*sigmoid(x)", "--backend", "keras"])
    assert result.exit_code == 0, result.output
    assert "ops.sigmoid(x)" in result.output and "tf." not in result.output


def test_a_loss_can_be_portable(tmp_path):
    _, files = render_layer(
        "(y_pred - y_true)**2", name="sq", options=KERAS, out=tmp_path, kind=LOSS
    )
    source = files[tmp_path / "sq.py"]
    assert "class Sq(keras.losses.Loss)" in source and "ops.squeeze(" in source
    names = {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)}
    assert "tf" not in names


def test_a_missing_backend_is_a_reported_skip(tmp_path, monkeypatch):
    generate("sin(x)", name="sine_k", out=tmp_path, options=KERAS)
    monkeypatch.setattr(validate, "KERAS_BACKENDS", ("tensorflow", "no_such_backend"))
    runs, missing = validate._runs([tmp_path / "test_sine_k.py"])
    assert [(backend, label) for _, backend, _, label in runs] == [("tensorflow", "tensorflow")]
    assert missing == [
        CaseResult(
            file=str(tmp_path / "test_sine_k.py"),
            name="test_backend_installed[no_such_backend]",
            device="no_such_backend",
            outcome="skipped",
            message=missing[0].message,
        )
    ]
    assert "no_such_backend is not installed" in missing[0].message


@pytest.fixture(scope="module")
def portable_project(tmp_path_factory) -> Path:
    """A project with portable layers in a package: per-channel weights over a reduction,
    the reductions' conventions, two broadcast inputs, a surrogate, and a loss."""
    root = tmp_path_factory.mktemp("portable")
    (root / "pyproject.toml").write_text('[project]\nname = "portable"\n')
    package = root / "src" / "portable"
    (package / "layers").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "layers" / "__init__.py").write_text("")
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "portable"\n[tool.pytest.ini_options]\npythonpath = ["src"]\n'
    )
    layers, tests = package / "layers", root / "tests"
    layer_norm = "(x - mean(x))/sqrt(mean((x - mean(x))**2) + 0.001)*gamma + beta"
    channels = Options(
        params=("gamma=1", "beta=0"),
        param_shapes=("gamma=channel", "beta=channel"),
        backend="keras",
    )
    generate(layer_norm, name="layer_norm_k", out=layers, tests=tests, options=channels)
    generate(
        "x*sin(y)",
        name="x_sin_y_k",
        out=layers,
        tests=tests,
        options=Options(inputs="x,y", backend="keras"),
    )
    # The conventions at the zero row and at ties: x/norm(x) is 0 there, amax's gradient shared.
    generate("x/norm(x) + amax(x)", name="conventions_k", out=layers, tests=tests, options=KERAS)
    generate(
        "Heaviside(x)",
        name="spike_k",
        out=layers,
        tests=tests,
        options=Options(grads=("1/(1+(pi*x)**2)",), backend="keras"),
    )
    # A loss of the prediction alone (an entropy regulariser): one value per row.
    generate(
        "-sum(y_pred*log(y_pred))",
        name="entropy_k",
        out=layers,
        tests=tests,
        options=KERAS,
        kind=LOSS,
    )
    return root


@pytest.mark.slow
def test_portable_layers_validate_under_every_installed_backend(portable_project):
    """One command; a column per backend and device; saved under each backend, loaded under
    another; a GPU reported missing per backend."""
    run = subprocess.run(
        [sys.executable, "-m", "scaffold", "validate", "tests", "-j", "2", "--json", "r.json"],
        cwd=portable_project,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert (portable_project / "r.json").is_file(), run.stdout[-2000:] + run.stderr[-2000:]
    report = json.loads((portable_project / "r.json").read_text())
    assert "jax CPU:1" in run.stdout  # the matrix printed
    failures = [c for c in report["cases"] if c["outcome"] in ("failed", "error")]
    assert run.returncode == 0 and report["ok"], (failures[:5], run.stderr[-2000:])
    backends = ["tensorflow", "jax"] + (["torch"] if importlib.util.find_spec("torch") else [])
    columns = set(report["devices"])
    for backend in ("tensorflow", "jax"):
        assert {f"{backend} CPU:0", f"{backend} CPU:1", backend} <= columns, columns
    for file in report["files"]:
        passed = {
            (c["name"].split("[")[0], (c["device"] or "").split(" ")[0])
            for c in report["cases"]
            if c["file"].endswith(Path(file).name) and c["outcome"] == "passed"
        }
        for backend in backends:
            assert ("test_gradient_matches_reference", backend) in passed, (file, backend)
            if "conventions" in file:  # the zero row and the tie rows
                assert ("test_values_and_gradients_on_a_grid_through_kinks", backend) in passed
            if "entropy" in file:
                assert ("test_loss_trains_a_model", backend) in passed
            else:
                assert ("test_keras_training_sends_gradients_through_the_op", backend) in passed
                assert ("test_keras_file_loads_under_another_backend", backend) in passed
    reasons = " ".join(report["skipped"])
    assert "no GPU visible to Keras on jax" in reasons
    assert "no GPU visible to Keras on tensorflow" in reasons


def test_portable_files_pass_black_and_ruff():
    files = sorted(str(p) for p in (REPO / "generated_examples").glob("portable_*/*.py"))
    assert len(files) == 3 * 6
    black = subprocess.run(
        # Black's defaults, as in a user's project: not this repository's line length.
        [sys.executable, "-m", "black", "--check", "--quiet", "--line-length", "88", *files],
        capture_output=True,
        text=True,
    )
    assert black.returncode == 0, black.stderr
    strict = ["--select", "E,F,W,B,UP,SIM,N", "--ignore", "E501"]
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", *strict, *files],
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout


@pytest.mark.slow
def test_a_tensorflow_layers_tests_skip_under_another_keras_backend(tmp_path):
    """Beside portable layers, a --backend tensorflow layer's tests say why they do not run
    under KERAS_BACKEND=jax (one CI job per backend stays green), never fail or pass."""
    generate("sin(x)", name="sine_tf", out=tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "test_sine_tf.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "KERAS_BACKEND": "jax"},
    )
    # 5: pytest collected no test that runs (beside a portable layer's tests it exits 0).
    assert run.returncode == 5, run.stdout[-2000:]
    assert "1 skipped" in run.stdout and "passed" not in run.stdout
    assert "Keras's TensorFlow backend only, not 'jax'" in run.stdout
