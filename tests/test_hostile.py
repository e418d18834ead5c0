"""Hostile and broken input: random syntax trees, resource bombs, names, paths, broken tests.

Property-based tests have bounded example counts (the whole file runs in well under 2 minutes).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from scaffold import budget
from scaffold.api import Options, generate, render_layer
from scaffold.cli import app
from scaffold.errors import BudgetExceeded, ScaffoldError
from scaffold.parse import FUNCTIONS, parse
from scaffold.spec import SAVE_POLICIES
from scaffold.validate import validate

NAMES = ["x", "y", "a", "tf", "grad", "dy", "self", "__import__", "os", "pi", "E", "I"]
CALLABLE = [*sorted(FUNCTIONS)[:12], "eval", "open", "getattr", "sine", "Piecewise", "where"]


def _leaves() -> st.SearchStrategy[ast.expr]:
    return st.one_of(
        st.sampled_from(NAMES).map(lambda n: ast.Name(id=n, ctx=ast.Load())),
        st.integers(-(10**15), 10**15).map(lambda v: ast.Constant(v)),
        st.floats(allow_nan=True, allow_infinity=True).map(lambda v: ast.Constant(v)),
        st.sampled_from(["s", b"b", None, True, 1j, ...]).map(lambda v: ast.Constant(v)),
    )


def _extend(children: st.SearchStrategy[ast.expr]) -> st.SearchStrategy[ast.expr]:
    binops = [ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod, ast.BitXor, ast.MatMult]
    return st.one_of(
        st.builds(
            lambda left, op, right: ast.BinOp(left=left, op=op(), right=right),
            children,
            st.sampled_from(binops),
            children,
        ),
        st.builds(
            lambda op, operand: ast.UnaryOp(op=op(), operand=operand),
            st.sampled_from([ast.USub, ast.UAdd, ast.Not, ast.Invert]),
            children,
        ),
        st.builds(
            lambda name, args: ast.Call(
                func=ast.Name(id=name, ctx=ast.Load()), args=args, keywords=[]
            ),
            st.sampled_from(CALLABLE),
            st.lists(children, min_size=0, max_size=3),
        ),
        st.builds(
            lambda value, attr: ast.Attribute(value=value, attr=attr, ctx=ast.Load()),
            children,
            st.sampled_from(["__class__", "real", "system"]),
        ),
        st.builds(
            lambda left, right: ast.Compare(left=left, ops=[ast.Gt()], comparators=[right]),
            children,
            children,
        ),
        st.builds(
            lambda elts: ast.Tuple(elts=elts, ctx=ast.Load()), st.lists(children, max_size=3)
        ),
        st.builds(
            lambda body: ast.Lambda(
                args=ast.arguments(
                    posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]
                ),
                body=body,
            ),
            children,
        ),
    )


EXPRESSIONS = st.recursive(_leaves(), _extend, max_leaves=12).map(
    lambda tree: ast.unparse(ast.fix_missing_locations(ast.Expression(body=tree)))
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS)
def test_random_syntax_trees_parse_or_raise_a_scaffold_error(text):
    started = time.perf_counter()
    try:
        result = parse(text)
    except ScaffoldError:
        pass
    else:
        assert result.expr.is_real is not False
    assert time.perf_counter() - started < 1.0, text


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(EXPRESSIONS, st.sampled_from(SAVE_POLICIES))
def test_accepted_random_trees_give_code_that_compiles(text, save):
    try:
        parse(text)
    except ScaffoldError:
        return
    try:
        _, files = render_layer(text, name="random_op", options=Options(save=save), timeout=20)
    except ScaffoldError:
        return  # e.g. no test point in the domain, or several inputs with no --inputs
    for filename, source in files.items():
        compile(source, filename, "exec")


def _slow_bomb() -> str:
    """A legal expression whose reference values take far longer than a one-second budget."""
    return "*".join(f"sin({k}*x)" for k in range(1, 30))


def test_a_resource_bomb_is_stopped_within_the_budget():
    started = time.perf_counter()
    with pytest.raises(BudgetExceeded, match=r"ran out of time while") as info:
        render_layer(_slow_bomb(), name="bomb", timeout=1)
    assert time.perf_counter() - started < 3
    assert "--timeout" in info.value.hint


def _allocate(size: int) -> int:
    return len(bytearray(size))


def test_a_memory_bomb_is_stopped_by_the_worker_memory_limit():
    with pytest.raises(BudgetExceeded, match="out of memory"):
        budget.run(_allocate, 2 * budget.MEMORY_BYTES, seconds=30)
    assert budget.run(_allocate, 1024, seconds=30) == 1024  # and the worker works


def test_cli_reports_an_expired_budget_cleanly(tmp_path):
    result = CliRunner().invoke(
        app, ["new-layer", _slow_bomb(), "--timeout", "1", "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 2
    assert "ran out of time" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--name", "../x"], "lower-case Python identifier"),
        (["--name", "a/b"], "lower-case Python identifier"),
        (["--out", "/proc/scaffold-test/out"], "cannot create /proc/scaffold-test/out"),
        (["--out", "/proc/version"], "is a file"),
    ],
)
def test_paths_that_cannot_hold_the_files_are_refused(tmp_path, args, message):
    result = CliRunner().invoke(app, ["new-layer", "sin(x)", *args])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_an_unwritable_folder_is_an_error_and_nothing_is_written():
    # /proc/self refuses new files even for root: a folder where writing fails.
    result = CliRunner().invoke(app, ["new-layer", "sin(x)", "--out", "/proc/self"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert not Path("/proc/self/sin_x.py").exists()


@pytest.mark.parametrize("symbol", ["tf", "keras", "math", "np", "print", "lambda", "_x"])
def test_symbols_that_would_clash_are_refused(symbol):
    with pytest.raises(ScaffoldError):
        parse(f"sin({symbol})")


@pytest.mark.slow
def test_hanging_and_crashing_generated_tests_are_reported(tmp_path):
    lines = (
        ("hangs", "import time\ntime.sleep(600)\n"),
        ("crashes", "import os\nos.abort()\n"),
    )
    for name, line in lines:
        generate("sin(x)", name=name, out=tmp_path / name)
        test_file = tmp_path / name / f"test_{name}.py"
        source = test_file.read_text()
        marker = "import pytest\n"
        assert marker in source
        test_file.write_text(source.replace(marker, marker + line, 1))
    started = time.perf_counter()
    hanging = validate([tmp_path / "hangs"], timeout=20)
    assert hanging.timed_out and not hanging.ok
    assert time.perf_counter() - started < 60
    crashing = validate([tmp_path / "crashes"], timeout=300)
    assert crashing.crashed and not crashing.ok
    assert crashing.returncode == -6 or crashing.returncode > 5, crashing.returncode
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "crashes")])
    assert result.exit_code == 1
    assert "crashed" in result.output
    assert os.path.exists(tmp_path / "crashes" / "test_crashes.py")


#: Legal formulas finite in float64 on part of the line only, whose reference values once ran
#: past the budget (mpmath asked for exp(exp(exp(exp(e**13))))) or out of memory.
TOWERS = (
    "exp(exp(exp(exp(exp(x)))))",
    "x**x**x**x**x**x**x**x",
    "cosh(cosh(cosh(x)))",
    "exp(x**9 - 3*x**7)",
)
#: exp(exp(exp(x))) > 1 for every x, so seven exps overflow float64 everywhere: a refusal.
NOWHERE_FINITE = "exp(exp(exp(exp(exp(exp(exp(x)))))))"


def _new_layer_process(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    """``python -m scaffold new-layer ARGS`` as a user runs it, and its wall-clock seconds."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "scaffold", "new-layer", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, time.perf_counter() - started


@pytest.mark.parametrize("expression", [*TOWERS, NOWHERE_FINITE])
def test_towers_generate_within_the_budget_as_a_whole_process(tmp_path, expression):
    """The command as a user runs it, start-up included, ends within --timeout (+1 s for a
    loaded machine) and writes the layer, or refuses with exit 2 and writes nothing."""
    out = tmp_path / "out"
    result, elapsed = _new_layer_process(
        expression, "--name", "tower", "--timeout", "10", "--out", str(out)
    )
    assert elapsed <= 10 + 1, (elapsed, result.stderr)
    if expression == NOWHERE_FINITE:
        assert result.returncode == 2 and "found only 0 test point(s)" in result.stderr
        assert not out.exists()
    else:
        assert result.returncode == 0, result.stderr
        assert (out / "test_tower.py").exists()


def test_the_budget_counts_from_the_command_start(tmp_path):
    """--timeout 1.5 on a bomb ends within 1.5 s + 1 s of wall-clock time, start-up included."""
    out = tmp_path / "out"
    result, elapsed = _new_layer_process(_slow_bomb(), "--timeout", "1.5", "--out", str(out))
    assert elapsed <= 2.5
    assert result.returncode == 2 and "ran out of time" in result.stderr
    assert not out.exists()
