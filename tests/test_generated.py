"""Generated code, judged by running it: golden files, lint, determinism, and real validation runs.

The validation runs are real pytest subprocesses importing TensorFlow; all generated layers share
one run (one TensorFlow start-up) to keep the suite fast.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scaffold import sync
from scaffold.api import Options, generate, render_layer
from scaffold.examples import EXAMPLES, differences
from scaffold.validate import validate

REPO = Path(__file__).resolve().parents[1]

#: name -> expression (or (expression, Options)): layers whose generated tests must pass.
LAYERS = {
    "expo": "exp(x)",
    "tanh_act": "tanh(x)",
    "cube": "x**3",
    "gelu_layer": "0.5*x*(1+erf(x/sqrt(2)))",
    "logarithm": "log(x)",
    "square_root": "sqrt(x)",
    "arcsine": "asin(x)",
    "arctangent": "atan(x)",
    "comp_error": "erfc(x)",
    "log_gamma": "loggamma(x)",
    # A constant first argument: tf.math.minimum(1, x) fails in graph mode, (x, 1) does not.
    "hardtanh": "Max(-1, Min(1, x))",
    # Symbols named like the generated code's own variables: renamed there, still correct.
    "renamed": "grad*sin(dy) + y*variables",
    "self_named": "sin(self)*upstream",
    # Inputs whose names differ only in case (distinct columns and model inputs), and an
    # upper-case weight (pep8-naming's N803 is silenced where the names are the user's).
    "case_names": ("X*sin(T*x)", Options(inputs="x,X", params=("T=2",))),
    # The other --save policies, where they change the most: shared temporaries, kinks,
    # per-channel weights, two broadcast inputs.
    "mish_derivative": ("x*tanh(log(1+exp(x)))", Options(save="derivative")),
    "elu_derivative": ("Piecewise((x, x > 0), (exp(x) - 1, True))", Options(save="derivative")),
    "prelu_derivative": (
        "Max(x, a*x)",
        Options(params=("a=0.25",), param_shapes=("a=channel",), save="derivative"),
    ),
    "gelu_inputs": ("0.5*x*(1+erf(x/sqrt(2)))", Options(save="inputs")),
    "product_inputs": ("x*sin(y)", Options(inputs="x,y", save="inputs")),
    # A state only the surrogate uses, sharpened after each training call.
    "annealed_spike": (
        "Heaviside(x)",
        Options(states=("k=2",), grads=("1/(1+k*abs(x))**2",), updates=("k=k+1",)),
    ),
    # Issue 12. Constant subtrees that look like stable patterns are numbers in the code.
    "constant_blocks": (
        "x/(1+exp(-1)) + x*log(1+exp(2)) + x*log(cosh(1)) + exp(2) - 1 + x*round(pi)"
        " + x*log(1+pi)"
    ),
    # A constant irrational slope.
    "pi_times_x": "pi*x",
    # The names scaffold computes with, and a weight with an exact symbolic value.
    "named_functions": (
        "x*sigmoid(b*x) + softplus(x) + log1p(x**2) + expm1(x/4) + pow(x, 2)/4 + relu(x)",
        Options(params=("b=pi/4",)),
    ),
    # Weights only: the output has the input's shape.
    "weights_only": ("a*b", Options(params=("a=1", "b=2"), inputs="x")),
    # Ties on the grid: x takes the gradient where x == y, as tf.maximum(x, y).
    "max_xy": ("Max(x, y)", Options(inputs="x,y")),
    # Second derivatives through a conditional whose branch is NaN where not selected.
    "sqrt_branch": "Piecewise((sqrt(x), x > 0), (0, True))",
    # Reductions over another axis than the last (the tests lay their rows along it), one
    # whose whole value is a reduction (its output keeps the axis with size 1), and one of
    # two inputs with a kink.
    "softmax_axis_2": ("exp(x)/sum(exp(x))", Options(axis=2)),
    "logsumexp_axis_m2": ("logsumexp(x)", Options(axis=-2)),
    "hinge_rows": ("mean(relu(1 - t*y))", Options(inputs="t,y")),
}
RUNTIME_IMPORTS = {"math", "keras", "tensorflow"}
#: The shared checks: the standard library, and TensorFlow, NumPy and pytest; never scaffold.
CHECKS_IMPORTS = RUNTIME_IMPORTS | {"numpy", "pytest"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    for name, layer in LAYERS.items():
        expression, options = layer if isinstance(layer, tuple) else (layer, None)
        generate(expression, name=name, out=root / name, options=options)
    return root


def test_golden_examples_match_a_fresh_generation():
    assert differences(REPO / "generated_examples") == []


def test_catalog_records_regenerate_the_catalog():
    """The records in the catalog's modules are enough to regenerate it, as sync does."""
    report = sync.check([REPO / "generated_examples"])
    assert len(report.modules) == len(EXAMPLES)
    assert report.pending == ()


def test_generated_files_pass_black_and_ruff(generated):
    files = sorted(str(p) for p in generated.rglob("*.py"))
    assert len(files) == 3 * len(LAYERS)
    black = subprocess.run(
        [sys.executable, "-m", "black", "--check", "--quiet", *files],
        capture_output=True,
        text=True,
    )
    assert black.returncode == 0, black.stderr
    # Not I (isort): whether the layer module is first-party depends on the user's project.
    strict = ["--select", "E,F,W,B,UP,SIM,N", "--ignore", "E501"]
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", *strict, *files],
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout
    # Line length: only the user's formula (in docstrings and comments) may exceed 88.
    short = [str(p) for p in generated.glob("cube/*.py")]
    ruff = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--isolated", "--select", "E501", *short],
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    return names


def test_generated_code_needs_only_tensorflow(generated):
    for name in LAYERS:
        folder = generated / name
        assert _imports(folder / f"{name}.py") <= RUNTIME_IMPORTS
        # The test: the layer and the checks beside it (relatively or by name), pytest, tf.
        layer_and_checks = {"", name, "scaffold_checks"}
        assert _imports(folder / f"test_{name}.py") <= {"math", "pytest", "tensorflow"} | (
            layer_and_checks
        )
        third_party = _imports(folder / "scaffold_checks.py") - set(sys.stdlib_module_names)
        assert third_party <= CHECKS_IMPORTS


def test_generation_is_deterministic_across_processes(tmp_path):
    """Byte-identical output under different hash seeds (set and dict order must not leak)."""
    script = (
        "import sys; from scaffold.api import render_layer\n"
        "for expr in ('0.5*x*(1+erf(x/sqrt(2)))', 'loggamma(x)', 'x*tanh(log(1+exp(x)))'):\n"
        "    _, files = render_layer(expr)\n"
        "    for name in sorted(files): sys.stdout.write(files[name])\n"
    )
    outputs, cache = [], tmp_path
    for seed in ("1", "2"):
        # A fresh cache each: a cached black output must not hide a difference.
        env = {**os.environ, "PYTHONHASHSEED": seed, "SCAFFOLD_CACHE_DIR": f"{cache}/{seed}"}
        run = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
        )
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout)
    assert outputs[0] == outputs[1]
    assert "tf.custom_gradient" in outputs[0]


def test_sin_is_the_seed_example_done_right():
    """The seed's first example: forward sin(x), backward dy * cos(x), and a Keras layer."""
    _, files = render_layer("sin(x)", name="my_activation")
    module = files[Path("my_activation.py")]
    assert "def my_activation(x):\n" in module
    assert "    return _my_activation_with_gradient(x)\n" in module
    assert "@tf.custom_gradient\ndef _my_activation_with_gradient(x):\n" in module
    assert "    y = tf.math.sin(x)\n" in module
    assert "        return dy * tf.math.cos(x)\n" in module
    assert "    return y, grad\n" in module
    assert "        return my_activation(inputs)\n" in module
    assert '@keras.saving.register_keras_serializable(package="scaffold")' in module


@pytest.mark.slow
def test_generated_tests_pass_for_every_required_function(generated, tmp_path):
    # The catalog's examples run in the same process: one TensorFlow start-up for all.
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO / "generated_examples", catalog)
    report = validate([generated, catalog], timeout=900, jobs=2)
    failures = [c for c in report.cases if c.outcome in ("failed", "error")]
    assert report.ok, (failures[:5], report.output_tail)
    expected_files = {f"{name}/test_{name}.py" for name in LAYERS} | {
        f"{example.folder}/test_{example.name}.py" for example in EXAMPLES
    }
    # Every layer ran its device tests on both logical CPUs, a portable one under every
    # installed Keras backend (torch shows Keras its one device); the missing GPU is reported.
    portable = {f"{e.folder}/test_{e.name}.py" for e in EXAMPLES if e.options.backend == "keras"}
    assert len(portable) >= 6
    for file in expected_files:
        passed = [c for c in report.cases if c.file.endswith(file) and c.outcome == "passed"]
        devices = {"CPU:0", "CPU:1"}
        if file in portable:
            devices = {f"{b} {d}" for b in ("tensorflow", "jax") for d in devices}
            devices |= {"torch CPU:0"} if importlib.util.find_spec("torch") else set()
        assert {c.device for c in passed} >= devices, (file, passed)
    assert any("no GPU visible" in reason for reason in report.skipped_reasons())
    assert len(report.cases) >= 20 * len(expected_files)


#: Mutants of correct layers: (expression, options, correct code, wrong code, checks that
#: must fail). Each edits the generated module as a careless hand edit or a scaffold bug would.
MUTANTS = {
    # A gradient 0.1 % off, one that ignores dy, a parameter gradient not summed to the
    # parameter's shape (TensorFlow accepts it silently).
    "mutant_scaled": (
        "sin(x)",
        None,
        "dy * tf.math.cos(x)",
        "dy * 1.001 * tf.math.cos(x)",
        {"test_gradient_matches_reference"},
    ),
    "mutant_upstream": (
        "sin(x)",
        None,
        "dy * tf.math.cos(x)",
        "tf.math.cos(x)",
        {"test_gradient_matches_reference"},
    ),
    "mutant_unsummed": (
        "a*sin(x)",
        Options(params=("a=1.5",)),
        "_sum_to_shape(dy * t0, a)",
        "dy * t0",
        {"test_gradient_matches_reference"},
    ),
    # Per-channel weights summed over every channel at once: right in total, wrong per channel.
    "mutant_channels": (
        "Max(x, a*x)",
        Options(params=("a=0.25",), param_shapes=("a=channel",)),
        "_sum_to_shape(tf.where(t1, tf.zeros_like(x), dy * x), a)",
        "tf.reduce_sum(tf.where(t1, tf.zeros_like(x), dy * x)) / 3 * tf.ones_like(a)",
        {"test_gradient_matches_reference", "test_gradient_matches_numeric_jacobian"},
    ),
    # No custom gradient at all: TensorFlow's autodiff of the forward pass gives the same
    # values for an exact derivative, so only the checks of the gradient itself can tell.
    "mutant_autodiff": (
        "sin(x)",
        None,
        "@tf.custom_gradient\ndef _mutant_autodiff_with_gradient(x):",
        "def _mutant_autodiff_with_gradient(x):",
        {
            "test_op_has_a_custom_gradient",
            "test_keras_save_and_load_keep_outputs_and_gradients",
            "test_saved_model_keeps_the_custom_gradient_in_a_fresh_process",
            "test_keras_file_loads_in_a_fresh_process",
        },
    ),
    # Ties: at x == y the gradient is lost (both arguments 0, as Heaviside(0) = 0 had it).
    "mutant_tie_lost": (
        "Max(x, y)",
        Options(inputs="x,y"),
        "tf.where(t0, dy, tf.zeros_like(x))",
        "tf.where(x > y, dy, tf.zeros_like(x))",
        {"test_values_and_gradients_on_a_grid_through_kinks"},
    ),
    # PReLU at x = 0 gives the slope a, not x's 1 (the first argument takes a tie).
    "mutant_prelu_tie": (
        "Max(x, a*x)",
        Options(params=("a=0.25",)),
        "t1 = x >= t0",
        "t1 = x > t0",
        {"test_values_and_gradients_on_a_grid_through_kinks"},
    ),
    # The backward pass without the double-where: right first derivatives, NaN second ones.
    "mutant_unguarded": (
        "Piecewise((sqrt(x), x > 0), (0, True))",
        None,
        "tf.math.sqrt(tf.where(t0, x, 1))",
        "tf.math.sqrt(x)",
        {"test_second_derivative_matches_reference"},
    ),
    # A conditional whose gradient is right but cannot be differentiated again.
    "mutant_second_order": (
        "Piecewise((x**3, x > 0), (x, True))",
        None,
        "3 * dy * (x * x)",
        "3 * dy * tf.stop_gradient(x * x)",
        {"test_second_derivative_matches_reference"},
    ),
    # 1/x made finite at its pole (0 there, in value and gradient): a value the formula does
    # not define, which the check of the grid points left out catches.
    "mutant_pole": (
        "1/x",
        None,
        "return -dy / (x * x)",
        "return tf.where(x == 0, 0 * x, -dy / tf.where(x == 0, 1 + 0 * x, x * x))",
        {"test_not_finite_where_f_is_undefined"},
    ),
    # sinc without its Taylor patch (the condition never holds): NaN at 0 in f and gradient.
    "mutant_singular": (
        "sin(pi*x)/(pi*x)",
        None,
        "t2 = t1 < 1 / 4",
        "t2 = t1 < 0",
        {"test_values_and_gradients_on_a_grid_through_kinks"},
    ),
    # Reductions: softmax's backward without its sum; the gradient of a tie not shared (each
    # tied element takes all of it); u/norm(u) NaN at the zero row; the reduction over the
    # batch axis; a backward right at first order that cannot be differentiated again.
    "mutant_softmax_sum": (
        "exp(x)/sum(exp(x))",
        None,
        "t0 * (dy - tf.math.reduce_sum(dy * t0, axis=AXIS, keepdims=True))",
        "t0 * dy",
        {"test_gradient_matches_reference", "test_gradient_matches_numeric_jacobian"},
    ),
    "mutant_ties": (
        "x*amax(x)",
        None,
        "\n            / tf.math.reduce_sum(t1, axis=AXIS, keepdims=True),",
        ",",
        {"test_values_and_gradients_on_a_grid_through_kinks"},
    ),
    "mutant_zero_row": (
        "x/norm(x)",
        None,
        "t1 = tf.math.divide_no_nan(x, t0)",
        "t1 = x / t0",
        {"test_values_and_gradients_on_a_grid_through_kinks"},
    ),
    "mutant_axis": (
        "exp(x)/sum(exp(x))",
        None,
        "\nAXIS = -1\n",
        "\nAXIS = 0\n",
        {"test_forward_matches_reference"},
    ),
    "mutant_reduction_second_order": (
        "(x - mean(x))/sqrt(mean((x - mean(x))**2) + 0.001)*g + b",
        Options(params=("g=1", "b=0"), param_shapes=("g=channel", "b=channel")),
        "t5 = dy * g  # dy*g",
        "t5 = dy * tf.stop_gradient(g)  # dy*g",
        {"test_second_derivative_matches_autodiff_of_plain_formula"},
    ),
}
PORTABLE = Options(backend="keras")
#: Mutants of portable layers (--backend keras): each must fail under every Keras backend.
PORTABLE_MUTANTS = {
    "mutant_portable_scaled": (
        "sin(x)",
        PORTABLE,
        "dy * ops.cos(x)",
        "dy * 1.001 * ops.cos(x)",
        {"test_gradient_matches_reference", "test_gradient_matches_numeric_jacobian"},
    ),
    # A weight's gradient not summed to its shape: TensorFlow accepts it silently, JAX
    # raises; the gradient check fails on both. torch sums it to the shape itself (right).
    "mutant_portable_unsummed": (
        "a*sin(x)",
        Options(params=("a=1.5",), backend="keras"),
        "_sum_to_shape(dy * t0, a)",
        "dy * t0",
        {"test_gradient_matches_reference"},
    ),
    "mutant_portable_autodiff": (
        "sin(x)",
        PORTABLE,
        "@ops.custom_gradient\ndef _mutant_portable_autodiff_with_gradient(x):",
        "def _mutant_portable_autodiff_with_gradient(x):",
        {"test_op_has_a_custom_gradient", "test_keras_save_and_load_keep_outputs_and_gradients"},
    ),
    "mutant_portable_second_order": (
        "Piecewise((x**3, x > 0), (x, True))",
        PORTABLE,
        "3 * dy * (x * x)",
        "3 * dy * ops.stop_gradient(x * x)",
        {"test_second_derivative_matches_reference"},
    ),
}
MUTANTS.update(PORTABLE_MUTANTS)
#: Mutants whose first derivatives are right: they fail the second-order check only.
SECOND_ORDER = (
    "mutant_unguarded",
    "mutant_second_order",
    "mutant_reduction_second_order",
    "mutant_portable_second_order",
)
#: A correct layer with values beyond float16 (65504) at every test point.
LARGE = ("large_values", "100000*x**2")
#: Correct layers from issue 13 that must pass: towers finite on part of the line only,
#: removable singularities, cancellation (SquarePlus), intermediates beyond float16.
HARD = {
    "sinc": "sin(pi*x)/(pi*x)",
    "exprel": "(exp(x)-1)/x",
    "squareplus": "(x + sqrt(x**2 + 4))/2",
    "tower": "exp(exp(exp(exp(exp(x)))))",
    "power_tower": "x**x**x**x**x**x**x**x",
    "cosh3": "cosh(cosh(cosh(x)))",
    "e9": "exp(x**9 - 3*x**7)",
    "pole": "1/x",
}


@pytest.fixture(scope="module")
def mutant_report(tmp_path_factory):
    """One validation run (one TensorFlow start-up) of every mutant and of LARGE."""
    root = tmp_path_factory.mktemp("mutants")
    for name, (expression, options, good, bad, _) in MUTANTS.items():
        generate(expression, name=name, out=root / name, options=options)
        module = root / name / f"{name}.py"
        source = module.read_text()
        assert source.count(good) == 1, (name, good)
        source = source.replace(good, bad)
        if name.endswith("autodiff"):  # the kernel returns f alone, without a custom gradient
            source = source.replace("    return y, grad\n", "    return y\n")
        if name == "mutant_pole":  # and f is 0 at the pole too
            source = source.replace("    y = 1 / x\n", "    y = tf.where(x == 0, 0 * x, 1 / x)\n")
        module.write_text(source)
    generate(LARGE[1], name=LARGE[0], out=root / LARGE[0])
    for name, expression in HARD.items():
        generate(expression, name=name, out=root / name)
    return validate([root], timeout=900, isolated=True, jobs=2)


def _failed(report, name: str, backend: str = "") -> set[str]:
    """The failed checks of a mutant; of a portable one, those under ``backend``."""
    return {
        c.name.split("[")[0]
        for c in report.cases
        if c.file.endswith(f"{name}/test_{name}.py")
        and c.outcome in ("failed", "error")
        and (c.device or "").startswith(backend)
    }


@pytest.mark.slow
def test_generated_tests_catch_wrong_gradients_ties_and_second_derivatives(mutant_report):
    """Each mutant fails the generated test meant to catch it; second-order mutants fail
    nothing else (their first derivatives are right)."""
    assert not mutant_report.ok
    for name, (*_, expected) in MUTANTS.items():
        failed = _failed(mutant_report, name)
        assert expected <= failed, (name, failed)
        if name in SECOND_ORDER:
            assert failed == expected, (name, failed)
    # The autodiff mutant passes the value checks: only the gradient's own checks catch it.
    passed = {
        c.name.split("[")[0]
        for c in mutant_report.cases
        if c.file.endswith("mutant_autodiff/test_mutant_autodiff.py") and c.outcome == "passed"
    }
    assert "test_gradient_matches_reference" in passed


@pytest.mark.slow
def test_portable_mutants_fail_under_every_keras_backend(mutant_report):
    """A wrong portable layer fails under TensorFlow, JAX and torch alike (torch has no
    second derivatives through Keras's custom_gradient: that check is skipped there)."""
    backends = ["tensorflow", "jax"] + (["torch"] if importlib.util.find_spec("torch") else [])
    for name, (*_, expected) in PORTABLE_MUTANTS.items():
        for backend in backends:
            if backend == "torch" and name in (*SECOND_ORDER, "mutant_portable_unsummed"):
                continue
            failed = _failed(mutant_report, name, backend)
            assert expected <= failed, (name, backend, failed)
            if name in SECOND_ORDER:
                assert failed == expected, (name, backend, failed)


@pytest.mark.slow
def test_towers_singularities_and_cancellation_pass(mutant_report):
    """The layers of issue 13 pass every generated check (skips only with a reason)."""
    for name in HARD:
        cases = [c for c in mutant_report.cases if c.file.endswith(f"{name}/test_{name}.py")]
        assert len(cases) > 20, name
        assert not [c.name for c in cases if c.outcome in ("failed", "error")], name


@pytest.mark.slow
def test_large_values_pass_where_the_dtype_holds_them(mutant_report):
    """100000*x**2 is tested in float64, float32 and bfloat16; float16 (max 65504) cannot hold
    its constant 200000, so its checks are skipped with that reason, never failed."""
    name = LARGE[0]
    cases = [c for c in mutant_report.cases if c.file.endswith(f"{name}/test_{name}.py")]
    assert not [c.name for c in cases if c.outcome in ("failed", "error")]
    skipped = {c.name: c.message for c in cases if c.outcome == "skipped"}
    float16 = {n: m for n, m in skipped.items() if "float16" in n}
    assert float16 and all("float16 cannot compute" in m for m in float16.values()), skipped
    assert sum(c.outcome == "passed" for c in cases) >= 30


@pytest.mark.slow
def test_validate_reports_missing_gpu_and_timeouts(tmp_path):
    generate("sin(x)", name="sine_device", out=tmp_path)
    run = subprocess.run(
        ["scaffold", "validate", str(tmp_path), "--device", "gpu"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "no GPU visible" in run.stdout
    report = validate([tmp_path], timeout=1)
    assert report.timed_out and not report.ok


@pytest.mark.slow
def test_stable_rewrites_meet_the_extreme_input_goal(tmp_path):
    """softplus, sigmoid, silu, mish, log-cosh, softsign, elu, selu in float32 at ±30, ±100,
    ±1000: finite and within 1e-5 of the exact values and of the builtins (benchmarks/)."""
    report = tmp_path / "stability.json"
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "stability.py"), "--check", "--json", report],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads(report.read_text())
    assert data["failures"] == []
    rows = {(r["function"], r["x"]): r for r in data["results"]}
    assert len({r["function"] for r in data["results"]}) == 8
    # The baseline the rewrites fix: naive autodiff is NaN where scaffold is exact.
    naive_grad = rows[("softplus", 100.0)]["naive"][1]
    assert naive_grad != naive_grad  # NaN
    assert rows[("softplus", 100.0)]["scaffold"] == [100.0, 1.0]
    assert rows[("log_cosh", 1000.0)]["scaffold"][1] == 1.0


@pytest.mark.slow
def test_operation_benchmark_smoke_run(tmp_path):
    """The benchmark keeps working: small tensors, one repeat, every variant and mode."""
    report = tmp_path / "ops.json"
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "ops.py"),
            "--size",
            "131072",  # twice the smallest size whose tensors reach the allocator statistics
            "--repeats",
            "2",
            "--inner",
            "1",
            "--functions",
            "softplus,log_cosh,softmax,huber",
            "--rows",
            "256",
            "--features",
            "256",
            "--json",
            report,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = json.loads(report.read_text())["rows"]
    functions = ("softplus", "log_cosh", "softmax", "huber")
    assert {(r["function"], r["mode"]) for r in rows} == {
        (f, m) for f in functions for m in ("eager", "function", "xla")
    }
    for row in rows:
        assert row["generated"]["median"] > 0 and row["floor"]["median"] > 0
        assert row["generated/naive"] > 0
        assert ("builtin" in row) == (row["function"] != "log_cosh")
        if row["function"] in ("softmax", "huber"):  # no --save derivative through a reduction
            assert row["generated/builtin"] > 0 and row["generated[inputs]/naive"] > 0
            continue
        # TensorFlow reports allocator statistics on the CPU too: memory is measured here.
        assert row["generated"]["peak_bytes"] > 0 and row["naive"]["peak_bytes"] > 0
        if row["mode"] == "eager":
            assert row["generated"]["held_bytes"] >= 0
        # Every --save policy is generated and timed (the default, reuse, is "generated").
        assert row["generated[derivative]/naive"] > 0 and row["generated[inputs]/naive"] > 0
        if row["mode"] == "eager" and row["function"] == "log_cosh":
            # The eager tape keeps the stable log-cosh's intermediates for reuse; --save inputs
            # runs the forward pass on stop_gradient views, so it keeps nothing.
            assert row["generated"]["held_bytes"] > 0
            assert row["generated[inputs]"]["held_bytes"] == 0
    assert "| softplus | xla |" in run.stdout
    assert "| softplus | CPU:0 |" in run.stdout  # the table of memory held between passes
    assert "| log_cosh | CPU:0 | xla |" in run.stdout  # the table of --save policies
