"""The command line: exit codes, messages, files written (or not). No TensorFlow here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scaffold.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_new_layer_writes_module_and_test(tmp_path):
    result = invoke("new-layer", "sin(x)", "--name", "sine", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "df/dx = cos(x)" in result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["scaffold_checks.py", "sine.py", "test_sine.py"]
    module = (tmp_path / "sine.py").read_text()
    assert "def sine(x):" in module
    assert "@tf.custom_gradient\ndef _sine_with_gradient(x):" in module
    assert "y = tf.math.sin(x)" in module
    assert "return dy * tf.math.cos(x)" in module
    assert "class Sine(keras.layers.Layer):" in module


def test_second_run_reports_unchanged_and_conflict_needs_force(tmp_path):
    args = ("new-layer", "sin(x)", "--name", "sine", "--out", str(tmp_path))
    assert invoke(*args).exit_code == 0
    again = invoke(*args)
    assert again.exit_code == 0 and again.output.count("unchanged") == 3, again.output
    (tmp_path / "sine.py").write_text("# edited by hand\n")
    conflict = invoke(*args)
    assert conflict.exit_code == 2
    assert "different content" in conflict.output and "--force" in conflict.output
    assert (tmp_path / "sine.py").read_text() == "# edited by hand\n"
    forced = invoke(*args, "--force")
    assert forced.exit_code == 0, forced.output
    assert "overwrite" in forced.output
    assert "def sine(x):" in (tmp_path / "sine.py").read_text()


def test_dry_run_writes_nothing_and_shows_diff(tmp_path):
    out = tmp_path / "layers"
    result = invoke("new-layer", "sin(x)", "--name", "sine", "--out", str(out), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would create" in result.output
    assert not out.exists()
    out.mkdir()
    (out / "sine.py").write_text("old line\n")
    result = invoke("new-layer", "sin(x)", "--name", "sine", "--out", str(out), "--dry-run")
    assert result.exit_code == 2, result.output  # what the real run would exit with
    assert "would conflict" in result.output and "--force" in result.output
    assert "-old line" in result.output and "+def sine(x):" in result.output
    assert "already exists with different content" in result.stderr
    assert "the difference is shown above" in result.stderr
    assert (out / "sine.py").read_text() == "old line\n"
    assert not (out / "test_sine.py").exists()
    forced = ("--dry-run", "--force", "--validate")
    result = invoke("new-layer", "sin(x)", "--name", "sine", "--out", str(out), *forced)
    assert result.exit_code == 0, result.output
    assert "would overwrite" in result.output and "--validate skipped" in result.output
    assert (out / "sine.py").read_text() == "old line\n"


def test_default_name_is_derived_from_the_expression(tmp_path):
    result = invoke("new-layer", "sin(x)", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sin_x.py").exists() and (tmp_path / "test_sin_x.py").exists()
    assert "class SinX(" in (tmp_path / "sin_x.py").read_text()


def test_code_injection_is_refused_runs_nothing_writes_nothing(tmp_path):
    marker = tmp_path / "pwned"
    out = tmp_path / "out"
    expression = f"__import__('os').system('touch {marker}')"
    result = invoke("new-layer", expression, "--out", str(out))
    assert result.exit_code == 2
    assert "error:" in result.output and "not allowed" in result.output
    assert "Traceback" not in result.output
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("new-layer", "sine(x)"), "did you mean 'sin'"),
        (("new-layer", "x^2"), "use ** for powers"),
        (("new-layer", "sin(x)", "--name", "Sine"), "lower-case"),
        (("new-layer", "sin(x)", "--name", "swish-beta"), "hint: did you mean --name swish_beta?"),
        (("new-layer", "sin(x)", "--name", "class"), "keyword"),
        (("new-layer", "sin(x)", "--name", "tf"), "shadow"),
        (("new-layer", "sin(x)", "--name", "random"), "shadow"),
        (("new-layer", "sin(x)", "--name", "test_sin"), "pytest"),
        (("new-layer", "sin(x)", "--name", "x"), "variable of the expression"),
        (("new-layer", "x*y", "--inputs", "x"), "neither inputs nor weights"),
        (("new-layer", "x*y", "--inputs", "x,y,z"), "hint: remove it from the list: --inputs x,y"),
        (("new-layer", "a*b", "--param", "a=1", "--param", "b=2", "--inputs", "x,y"), "none"),
        (("new-layer", "e**x"), "Euler"),
        (("new-layer", "x*y", "--param", "z=1"), "no symbol 'z'"),
        (("new-layer", "x*a", "--param", "a=1", "--inputs", "x,a"), "both an input"),
        (("new-layer", "Heaviside(x)", "--grad", "1/(1+q)"), "unknown symbol(s) q"),
        (("new-layer", "x*s", "--param", "s=0", "--update", "t=s+1"), "not a declared weight"),
        (("new-layer", "Piecewise((x, x > 0))"), "needs a default"),
        (("new-layer", "x*name", "--param", "name=1"), "Keras Layer attribute"),
        (("new-layer", "Derivative(x)"), "unknown function"),
        (("new-layer", "2 + 3"), "no input variable"),
        (("new-layer", "sin(x)", "--save", "all"), "--save must be one of reuse, derivative"),
    ],
)
def test_bad_input_exits_2_with_a_message(tmp_path, args, message):
    result = invoke(*args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_refused_and_missing_parents_are_created(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me\n")
    for out in (a_file, a_file / "deeper"):
        result = invoke("new-layer", "sin(x)", "--out", str(out))
        assert result.exit_code == 2 and "is a file, not a folder" in result.output
    assert a_file.read_text() == "keep me\n"
    deep = tmp_path / "missing" / "deeper" / "layers"
    result = invoke("new-layer", "sin(x)", "--out", str(deep), "--dry-run")
    assert result.exit_code == 0 and not (tmp_path / "missing").exists(), result.output
    result = invoke("new-layer", "sin(x)", "--out", str(deep))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in deep.iterdir()) == [
        "scaffold_checks.py",
        "sin_x.py",
        "test_sin_x.py",
    ]


def test_validate_without_generated_tests_is_an_input_error(tmp_path):
    (tmp_path / "test_other.py").write_text("def test_x():\n    assert True\n")
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 2
    assert "no test file generated by scaffold" in result.output


def test_validate_refuses_two_layers_of_one_name(tmp_path):
    for folder in ("a", "b"):
        invoke("new-layer", "sin(x)", "--name", "sine", "--out", str(tmp_path / folder))
    result = invoke("validate", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.exit_code == 2, result.output
    assert "have the same name" in result.output and "separate runs" in result.output
    # The same file named twice is one file, not a clash (and needs no TensorFlow to decide).
    from scaffold.validate import find_test_files

    twice = find_test_files([tmp_path / "a", tmp_path / "a" / "test_sine.py"])
    assert [p.name for p in twice] == ["test_sine.py"]


def test_validate_without_generated_tests_says_so_before_starting(tmp_path):
    result = invoke("validate", str(tmp_path))
    assert result.exit_code == 2
    assert "validating" not in result.output  # nothing started


def test_validate_finds_the_test_of_a_module(tmp_path):
    from scaffold.validate import find_test_files

    invoke("new-layer", "sin(x)", "--name", "sine", "--out", str(tmp_path / "m"))
    beside = find_test_files([tmp_path / "m" / "sine.py"])
    assert beside == [tmp_path / "m" / "test_sine.py"]
    (tmp_path / "pkg" / "layers").mkdir(parents=True)
    (tmp_path / "pkg" / "tests").mkdir()
    for init in ("pkg/__init__.py", "pkg/layers/__init__.py"):
        (tmp_path / init).write_text("")
    out, tests = tmp_path / "pkg" / "layers", tmp_path / "pkg" / "tests"
    result = invoke(
        "new-layer", "cos(x)", "--name", "wave", "--out", str(out), "--tests", str(tests)
    )
    assert result.exit_code == 0, result.output
    # The record leads from the module to its test in the other folder.
    assert find_test_files([out / "wave.py"]) == [tests / "test_wave.py"]
    (tests / "test_wave.py").unlink()
    missing = invoke("validate", str(out / "wave.py"))
    assert missing.exit_code == 2 and "does not exist" in missing.output
    assert "scaffold sync" in missing.output


@pytest.mark.slow
def test_validate_shows_why_a_test_module_cannot_be_imported(tmp_path):
    invoke("new-layer", "sin(x)", "--name", "sine", "--out", str(tmp_path))
    test = tmp_path / "test_sine.py"
    test.write_text(
        test.read_text().replace("import pytest\n", "import pytest\nimport no_such_mod\n")
    )
    result = invoke("validate", str(tmp_path), "--isolated")
    assert result.exit_code == 1
    assert "FAILED test_sine.py::test_collection: cannot be imported: ModuleNotFoundError:" in (
        result.output.replace(str(tmp_path) + "/", "")
    )
    assert "no_such_mod" in result.output


def test_validate_jobs_split_the_files_and_report_every_one(tmp_path):
    """--jobs 2: two pytest processes, one report naming both files (fast: the modules fail
    to import before TensorFlow is loaded)."""
    for name in ("sine", "cosine"):
        invoke("new-layer", f"{name[:3]}(x)", "--name", name, "--out", str(tmp_path))
        test = tmp_path / f"test_{name}.py"
        test.write_text(test.read_text().replace("import pytest\n", "import pytest\nimport gone\n"))
    result = invoke("validate", str(tmp_path), "--isolated", "--jobs", "2")
    assert result.exit_code == 1
    assert "2 processes" in result.output
    text = result.output.replace(str(tmp_path) + "/", "")
    for name in ("sine", "cosine"):
        assert f"FAILED test_{name}.py::test_collection: cannot be imported" in text
    assert invoke("validate", str(tmp_path), "--jobs", "0").exit_code == 2


def test_validate_rejects_an_unknown_device(tmp_path):
    invoke("new-layer", "sin(x)", "--name", "sine", "--out", str(tmp_path))
    result = invoke("validate", str(tmp_path), "--device", "tpu")
    assert result.exit_code == 2
    assert "--device" in result.output


def test_examples_check_fails_on_a_hand_edit(tmp_path):
    out = tmp_path / "catalog"
    assert invoke("examples", "--out", str(out)).exit_code == 0
    assert invoke("examples", "--check", "--out", str(out)).exit_code == 0
    module = next(out.rglob("sine.py"))
    module.write_text(module.read_text() + "# hand edit\n")
    result = invoke("examples", "--check", "--out", str(out))
    assert result.exit_code == 1
    assert f"differs: {module}" in result.output


def test_version_and_help():
    from scaffold import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.output
    result = invoke("new-layer", "--help")
    assert result.exit_code == 0
    for option in ("--name", "--out", "--force", "--dry-run", "--validate", "--device"):
        assert option in result.output


def test_installed_console_script_runs_in_a_subprocess(tmp_path):
    """The real entry point, as a user runs it; generation imports no TensorFlow, no matplotlib."""
    executable = shutil.which("scaffold")
    assert executable, "the scaffold console script is not installed"
    probe = (
        "import runpy, sys; sys.argv = ['scaffold', 'new-layer', 'sin(x)', '--name', 'sine',"
        f" '--out', {str(tmp_path)!r}];\n"
        "try:\n    runpy.run_module('scaffold', run_name='__main__')\n"
        "except SystemExit as exit:\n    code = exit.code\n"
        "print('MPL_IMPORTED' if 'matplotlib' in sys.modules else 'NO_MPL')\n"
        "print('TF_IMPORTED' if 'tensorflow' in sys.modules else 'NO_TF')\n"
    )
    env = {**os.environ, "NO_COLOR": "1"}
    script = subprocess.run(
        [executable, "new-layer", "sin(x)", "--name", "sine", "--out", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert script.returncode == 0, script.stderr
    assert (tmp_path / "a" / "sine.py").exists()
    module = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert module.returncode == 0, module.stderr
    assert module.stdout.strip().endswith("NO_MPL\nNO_TF"), module.stdout
    assert Path(tmp_path / "sine.py").read_text() == (tmp_path / "a" / "sine.py").read_text()


def test_inferred_inputs_are_a_warning_on_stderr_naming_the_fix(tmp_path):
    result = invoke("new-layer", "beta*x", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert "2 inputs, beta and x" in warning and "called on a list [beta, x]" in warning
    assert "--param beta=VALUE" in warning and "--inputs beta,x" in warning
    assert "warning" not in result.stdout
    # After the derivative lines, before the files.
    lines = result.output.splitlines()
    assert lines.index(f"warning: {warning[len('warning: '):]}") > lines.index("df/dx = beta")
    assert (tmp_path / "beta_x.py").exists()
    quiet = invoke("new-layer", "beta*x", "--inputs", "beta,x", "--out", str(tmp_path / "q"))
    assert quiet.exit_code == 0, quiet.output
    assert "warning" not in quiet.output
    weight = invoke("new-layer", "beta*x", "--param", "beta=1", "--out", str(tmp_path / "w"))
    assert weight.exit_code == 0 and "warning" not in weight.output, weight.output


def test_zero_gradient_is_generated_with_a_warning(tmp_path):
    result = invoke("new-layer", "round(x)", "--name", "rounding", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "gradient for x is 0 everywhere" in result.stderr and "--grad" in result.stderr
    assert (tmp_path / "rounding.py").exists()
    surrogate = invoke("new-layer", "round(x)", "--grad", "1", "--out", str(tmp_path / "s"))
    assert surrogate.exit_code == 0 and "warning" not in surrogate.output, surrogate.output


def test_a_surrogate_may_use_a_state_the_forward_formula_lacks(tmp_path):
    result = invoke(
        "new-layer",
        "Heaviside(x)",
        "--state",
        "k=10",
        "--grad",
        "1/(1+k*abs(x))**2",
        "--name",
        "spike",
        "--out",
        str(tmp_path),
    )
    assert result.exit_code == 0, result.output
    assert "surrogate df/dx = (1 + k*Abs(x))**(-2)" in result.output
    assert "def spike(x, k):" in (tmp_path / "spike.py").read_text()


@pytest.mark.parametrize(
    "args",
    [
        ("new-layer", "-log(1+exp(-x))", "--name", "neg"),
        ("new-layer", "--name", "neg", "-log(1+exp(-x))"),
        ("new-layer", "--name", "neg", "--", "-log(1+exp(-x))"),
        ("new-layer", "--", "-log(1+exp(-x))", "--name", "neg"),
        ("new-layer", "--name=neg", "-log(1+exp(-x))", "--no-stabilize"),
    ],
)
def test_a_formula_may_start_with_a_minus_sign(tmp_path, args):
    result = invoke(*args, "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "f(x) = -log(1 + exp(-x))" in result.output
    assert "def neg(x):" in (tmp_path / "neg.py").read_text()


def test_option_values_and_unknown_options_around_a_leading_minus(tmp_path):
    out = ("--out", str(tmp_path))
    result = invoke("new-layer", "-x", "--grad", "-1", "--name", "flip", "--dry-run", *out)
    assert result.exit_code == 0, result.output
    assert "surrogate df/dx = -1" in result.output  # '-1' stayed the value of --grad
    for args, message in [
        (("new-layer", "-x", "--nmae", "f"), "No such option: --nmae"),
        (("new-layer", "sin(x)", "-x"), "unexpected extra argument"),
        (("new-layer", "--", "-x", "--", "-y"), "unexpected extra argument"),
        (("explain", "-x", "--fromat", "latex"), "No such option: --fromat"),
    ]:
        result = invoke(*args, *out)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
    assert list(tmp_path.iterdir()) == []
    explained = invoke("explain", "-x**2", "--format", "text")
    assert explained.exit_code == 0 and "Explaining f = -x**2" in explained.output
    # The default name of a bare variable is not the variable itself.
    bare = invoke("new-layer", "-x", *out)
    assert bare.exit_code == 0 and (tmp_path / "layer_x.py").exists(), bare.output


def test_a_leading_minus_through_a_real_command_line(tmp_path):
    """The shell passes '-log(...)' as a word of its own: the real Click parsing sees it."""
    env = {**os.environ, "NO_COLOR": "1"}
    commands = [
        ["new-layer", "-log(1+exp(-x))", "--name", "neg_softplus", "--out", str(tmp_path)],
        ["new-layer", "--name", "f", "--out", str(tmp_path), "--", "-x*log(x)"],
        ["explain", "--", "-x*log(x)", "--format", "markdown"],
    ]
    for command in commands:
        run = subprocess.run(
            [sys.executable, "-m", "scaffold", *command],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert run.returncode == 0, (command, run.stderr)
    assert (tmp_path / "neg_softplus.py").exists() and (tmp_path / "f.py").exists()
    assert "-x" in run.stdout


@pytest.mark.parametrize("extra", [(), ("--validate",)])
def test_a_bad_device_is_refused_before_anything_is_written(tmp_path, extra):
    out = tmp_path / "out"
    result = invoke("new-layer", "sin(x)", "--device", "foo", *extra, "--out", str(out))
    assert result.exit_code == 2, result.output
    assert "--device must be one of all, cpu, gpu, not 'foo'" in result.output
    assert "validating" not in result.output and "create" not in result.output
    assert not out.exists()
