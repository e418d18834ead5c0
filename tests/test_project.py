"""scaffold inside real projects: a flat package, a src/ layout, a plain folder.

Each project gets two layers, one with its test beside it and one with ``--tests
tests/layers``, then the generated tests run as a user runs them: ``scaffold validate``
(``python -m pytest`` from the project root, pytest's default import mode),
``--import-mode=importlib``, and plain ``pytest`` where the package is importable. The projects are
strict (warnings are errors), and sync keeps their generated files current.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from scaffold import __version__
from scaffold.api import Options, generate
from scaffold.cli import app
from scaffold.errors import InvalidNameError
from scaffold.plan import CHECKS_API
from scaffold.record import read_record
from scaffold.validate import validate

_STRICT = """
[tool.pytest.ini_options]
filterwarnings = ["error"]
"""
#: name -> (files of the project, --out of its layers). The first layer is "wave": in a
#: package it does not shadow the standard library's wave (it is mypkg.layers.wave); in a
#: plain folder it would, and is refused there, so that project calls it "ripple".
PROJECTS = {
    "flat": (
        {"pyproject.toml": _STRICT, "mypkg/__init__.py": "", "mypkg/layers/__init__.py": ""},
        "mypkg/layers",
    ),
    # A src/ layout made importable the way an editable install would (pytest's pythonpath).
    "src": (
        {
            "pyproject.toml": _STRICT + 'pythonpath = ["src"]\n',
            "src/mypkg/__init__.py": "",
            "src/mypkg/layers/__init__.py": "",
        },
        "src/mypkg/layers",
    ),
    # A plain folder: no package, its root marked only by version control.
    "plain": ({".git/HEAD": "ref: refs/heads/main\n"}, "layers"),
}
#: The checks that exercise imports: the collection of every test module, the checks module
#: beside it, and a fresh process importing the layer module by its import name.
IMPORT_CHECKS = "forward_matches_reference or keras_file_loads_in_a_fresh_process"


def _project(root: Path, kind: str) -> Path:
    files, out = PROJECTS[kind]
    project = root / kind
    for relative, content in files.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(textwrap.dedent(content))
    (project / out).mkdir(parents=True, exist_ok=True)
    (project / "tests").mkdir(exist_ok=True)
    return project


def _first(kind: str) -> str:
    return "ripple" if kind == "plain" else "wave"


def _generate_two_layers(project: Path, kind: str, monkeypatch) -> None:
    # As a user would: from the project root, with relative paths.
    monkeypatch.chdir(project)
    out = PROJECTS[kind][1]
    generate("sin(x)", name=_first(kind), out=out)
    generate(
        "Max(x, a*x)",
        name="leaky",
        out=out,
        tests="tests/layers",
        options=Options(params=("a=0.25",), param_shapes=("a=channel",)),
    )


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("projects")
    made = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for kind in PROJECTS:
            made[kind] = _project(root, kind)
            _generate_two_layers(made[kind], kind, monkeypatch)
    return made


def _pytest(project: Path, *args: str, module: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pytest"] if module else [_console_pytest()]
    env = {**os.environ, "SCAFFOLD_LOGICAL_CPUS": "2", "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [*command, "-p", "no:cacheprovider", "-q", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )


def _console_pytest() -> str:
    return str(Path(sys.executable).with_name("pytest"))


def test_a_name_that_shadows_a_module_is_refused_outside_a_package(tmp_path):
    with pytest.raises(InvalidNameError, match="would shadow"):
        generate("sin(x)", name="wave", out=tmp_path)


def test_imports_follow_the_layout(projects):
    flat = projects["flat"]
    beside = (flat / "mypkg/layers/test_wave.py").read_text()
    assert "from mypkg.layers import scaffold_checks as checks\n" in beside
    assert "from mypkg.layers.wave import Wave, wave\n" in beside
    elsewhere = (flat / "tests/layers/test_leaky.py").read_text()
    assert "from mypkg.layers.leaky import Leaky, leaky\n" in elsewhere
    assert "    from . import scaffold_checks as checks\n" in elsewhere
    assert (flat / "tests/layers/scaffold_checks.py").is_file()
    src = (projects["src"] / "tests/layers/test_leaky.py").read_text()
    assert "from mypkg.layers.leaky import Leaky, leaky\n" in src  # not src.mypkg...
    plain = projects["plain"]
    assert (
        "from layers.leaky import Leaky, leaky\n"
        in (plain / "tests/layers/test_leaky.py").read_text()
    )
    beside = (plain / "layers/test_ripple.py").read_text()
    assert "    from .ripple import Ripple, ripple\n" in beside
    assert "    from ripple import Ripple, ripple\n" in beside
    record = read_record(flat / "mypkg/layers/leaky.py")
    assert record.tests == "../../tests/layers/test_leaky.py"
    assert record.options == {"params": ["a=0.25"], "param_shapes": ["a=channel"]}


@pytest.fixture(scope="module")
def user_runs(projects) -> dict:
    """Every way a user runs the generated tests, two runs at a time (each imports TensorFlow):
    ``scaffold validate`` (python -m pytest from the root with the project's configuration:
    pytest's default import mode), ``--import-mode=importlib``, and plain ``pytest`` where the
    package is importable (src, through its pythonpath)."""
    tasks = {}
    for kind, project in projects.items():
        tasks[kind, "validate"] = functools.partial(validate, [project], timeout=900)
        tasks[kind, "importlib"] = functools.partial(
            _pytest, project, "--import-mode=importlib", "-k", IMPORT_CHECKS
        )
    tasks["src", "plain"] = functools.partial(
        _pytest, projects["src"], "-k", IMPORT_CHECKS, module=False
    )
    with ThreadPoolExecutor(2) as pool:
        futures = {key: pool.submit(task) for key, task in tasks.items()}
        return {key: future.result() for key, future in futures.items()}


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(PROJECTS))
def test_generated_tests_pass_where_users_run_them(user_runs, kind):
    report = user_runs[kind, "validate"]  # runs everything
    failures = [c for c in report.cases if c.outcome in ("failed", "error")]
    assert report.ok, (failures[:3], report.output_tail)
    assert {Path(c.file).name for c in report.cases} == {f"test_{_first(kind)}.py", "test_leaky.py"}
    assert any(c.check == "keras_file_loads_in_a_fresh_process" for c in report.cases)
    runs = [user_runs[kind, "importlib"]] + ([user_runs[kind, "plain"]] if kind == "src" else [])
    for run in runs:
        assert run.returncode == 0, (run.args, run.stdout[-3000:], run.stderr[-3000:])
        assert "6 passed" in run.stdout, run.stdout[-500:]  # 2 layers x (2 devices + 1)


def test_sync_check_finds_stale_missing_and_edited_files(projects, tmp_path):
    runner = CliRunner()
    project = projects["flat"]
    up_to_date = runner.invoke(app, ["sync", "--check", str(project)])
    assert up_to_date.exit_code == 0, up_to_date.output
    assert "2 layer(s), 6 file(s): up to date" in up_to_date.output
    # Work on a copy: the other tests use the project as generated.
    copy = tmp_path / "flat"
    subprocess.run(["cp", "-r", str(project), str(copy)], check=True)
    module, test = copy / "mypkg/layers/leaky.py", copy / "tests/layers/test_leaky.py"
    original = module.read_text()
    # An older record: one option differs from what generated the files.
    module.write_text(original.replace('"a=0.25"', '"a=0.5"'))
    stale = runner.invoke(app, ["sync", "--check", str(copy)])
    assert stale.exit_code == 1
    assert f"stale           {module}" in stale.output
    assert f"stale           {test}" in stale.output
    assert "-    scaffold new-layer 'Max(x, a*x)' --name leaky --param a=0.25" in stale.output
    synced = runner.invoke(app, ["sync", str(copy)])
    assert synced.exit_code == 0, synced.output
    assert "a=0.5" in test.read_text()
    assert runner.invoke(app, ["sync", "--check", str(copy)]).exit_code == 0
    # Edited by hand: reported, never overwritten without --force.
    edited_text = module.read_text().replace("    y = ", "    y = 1.5 * ", 1)
    assert edited_text != module.read_text()
    module.write_text(edited_text)
    (copy / "tests/layers/scaffold_checks.py").unlink()
    check = runner.invoke(app, ["sync", "--check", str(copy)])
    assert check.exit_code == 1
    assert f"edited by hand  {module}" in check.output
    assert f"missing         {copy / 'tests/layers/scaffold_checks.py'}" in check.output
    assert "--force" in check.output
    refused = runner.invoke(app, ["sync", str(copy)])
    assert refused.exit_code == 2 and "edited by hand" in refused.output
    assert module.read_text() == edited_text
    assert not (copy / "tests/layers/scaffold_checks.py").exists()  # all or nothing
    forced = runner.invoke(app, ["sync", "--force", str(copy)])
    assert forced.exit_code == 0, forced.output
    assert "y = 1.5 * " not in module.read_text()
    assert runner.invoke(app, ["sync", "--check", str(copy)]).exit_code == 0


def test_reformatting_is_not_an_edit(projects, tmp_path):
    copy = tmp_path / "src"
    subprocess.run(["cp", "-r", str(projects["src"]), str(copy)], check=True)
    module = copy / "src/mypkg/layers/wave.py"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "black",
            "-q",
            "--line-length",
            "120",
            "--skip-string-normalization",
            str(module),
        ],
        check=True,
    )
    result = CliRunner().invoke(app, ["sync", "--check", str(copy)])
    assert result.exit_code == 0, result.output


def test_new_layer_replaces_an_unedited_checks_module_of_another_version(tmp_path):
    from scaffold.record import with_checksum

    checks = tmp_path / "scaffold_checks.py"
    older = with_checksum('"""Checks of an older scaffold."""\n\nAPI = 0\n\n\ndef f():\n    pass\n')
    checks.write_text(older)
    result = CliRunner().invoke(
        app, ["new-layer", "sin(x)", "--name", "sine", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert f"overwrite {checks}" in result.output
    assert "scaffold sync" in result.output  # the other layers there may need it too
    assert f"API = {CHECKS_API}" in checks.read_text()
    # Edited by hand, it is in the way like any other file.
    checks.write_text(checks.read_text().replace(f"API = {CHECKS_API}", "API = 99"))
    again = CliRunner().invoke(
        app, ["new-layer", "cos(x)", "--name", "ripple", "--out", str(tmp_path)]
    )
    assert again.exit_code == 2 and "different content" in again.output
    assert not (tmp_path / "ripple.py").exists()


def test_a_reformatted_checks_module_is_left_alone_and_a_newer_one_refused(tmp_path):
    from scaffold.record import with_checksum

    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["new-layer", "sin(x)", "--name", "sine", "--out", str(tmp_path)]
        ).exit_code
        == 0
    )
    checks = tmp_path / "scaffold_checks.py"
    # Another line length and Windows line endings: the same code, left as it is.
    subprocess.run([sys.executable, "-m", "black", "-q", "-l", "120", str(checks)], check=True)
    reformatted = checks.read_text().replace("\n", "\r\n")
    checks.write_bytes(reformatted.encode())
    result = runner.invoke(app, ["new-layer", "cos(x)", "--name", "cosine", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"unchanged {checks}" in result.output
    assert checks.read_bytes() == reformatted.encode()
    # From a newer scaffold: never downgraded under the other tests.
    newer = with_checksum('"""Checks."""\n\nAPI = 1\n\n\ndef f():\n    pass\n').replace(
        f"scaffold {__version__};", "scaffold 9.0.0;"
    )
    checks.write_text(newer)
    refused = runner.invoke(
        app, ["new-layer", "tan(x)", "--name", "tangent", "--out", str(tmp_path)]
    )
    assert refused.exit_code == 2 and "newer than this one" in refused.output
    assert checks.read_text() == newer and not (tmp_path / "tangent.py").exists()


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ("None", "is not a dict"),
        ("{[1]: 2}", "not a plain literal"),
        (
            '{"scaffold": "0.2.0", "command": "new-layer", "expression": "sin(x)", "name": "bad",'
            ' "tests": 3, "options": {}}',
            "'tests' must be a string",
        ),
        (
            '{"scaffold": "0.2.0", "command": "new-layer", "expression": "sin(x)", "name": "bad",'
            ' "tests": "test_bad.py", "options": {"stabilize": "no"}}',
            "'stabilize' is 'no'",
        ),
        (
            '{"scaffold": "0.2.0", "command": "new-layer", "expression": "sin(x)", "name": "bad",'
            ' "tests": "test_bad.py", "options": {"params": "a=0.5"}}',
            "a list of strings",
        ),
    ],
)
def test_a_malformed_record_is_named_and_the_other_layers_still_sync(tmp_path, record, message):
    runner = CliRunner()
    for name in ("good", "bad"):
        assert (
            runner.invoke(
                app, ["new-layer", "sin(x)", "--name", name, "--out", str(tmp_path)]
            ).exit_code
            == 0
        )
    bad = tmp_path / "bad.py"
    source = bad.read_text()
    start = source.index("__scaffold__ = {")
    end = source.index("}\n", start) + 2
    bad.write_text(source[:start] + f"__scaffold__ = {record}\n" + source[end:])
    (tmp_path / "test_good.py").unlink()
    result = runner.invoke(app, ["sync", "--check", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert str(bad) in result.output and message in result.output
    assert f"missing         {tmp_path / 'test_good.py'}" in result.output  # still checked
    refused = runner.invoke(app, ["sync", str(tmp_path)])
    assert refused.exit_code == 2 and not (tmp_path / "test_good.py").exists()


def test_sync_with_no_generated_layer_has_nothing_to_do(tmp_path):
    (tmp_path / "plain.py").write_text("x = 1\n")
    result = CliRunner().invoke(app, ["sync", "--check", str(tmp_path)])
    assert result.exit_code == 0 and "nothing to sync" in result.output
