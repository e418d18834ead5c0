"""Where the generated files go, and how the test imports the layer module and the checks.

Takes ``--out`` (the module's folder), ``--tests`` (the test's folder, default the same) and the
layer's name; gives a ``Layout``: the three paths and the import statements the test needs.
Reads the file system (which folders are packages) and writes nothing.

The import rules follow Python's and pytest's:

- A module in a package (its folder holds ``__init__.py``, and so on upward) is imported by its
  dotted name from the folder above the top package, ``from mypkg.layers.mish import ...``.
  That works under pytest's default import mode (which puts that folder on ``sys.path``),
  under ``--import-mode=importlib`` (which imports the parent packages itself) and wherever the
  package is installed.
- A module in a plain folder is a top-level module of that folder. Beside its test, the test
  imports it relatively when pytest imports the folder as a namespace package
  (``--import-mode=importlib`` with the project root on ``sys.path``, as ``python -m pytest``
  puts it) and by its bare name otherwise (the default mode puts the test's folder on
  ``sys.path``). In another tests folder it is imported by its dotted path from the project
  root (the nearest folder with ``pyproject.toml``, ``setup.py``, ``setup.cfg`` or ``.git``;
  without one, this is refused), so the tests run from there with ``python -m pytest``.
- The shared checks module lives in the tests folder and is imported the same way as a module
  there would be.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import OutputError

#: The shared checks module of each --backend (a folder may hold both).
CHECKS_MODULES = {"tensorflow": "scaffold_checks", "keras": "scaffold_keras_checks"}
PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")


@dataclass(frozen=True)
class Layout:
    """The generated files' paths and the import lines of the test (plain strings)."""

    module: Path
    test: Path
    checks: Path
    imports: tuple[str, ...]  # the test's import block for the layer and the checks, as lines
    tests_relative: str  # the test file's path relative to the module's folder (POSIX)


def layout(
    out: Path, tests: Path | None, name: str, class_name: str, backend: str = "tensorflow"
) -> Layout:
    """Decide paths and imports for layer ``name`` written to ``out`` with tests in ``tests``."""
    checks = CHECKS_MODULES[backend]
    out = Path(out)
    tests = out if tests is None else Path(tests)
    module, test = out / f"{name}.py", tests / f"test_{name}.py"
    names = f"{class_name}, {name}"
    module_package = package_name(out)
    if module_package is not None:
        layer_import = f"from {_join(module_package, name)} import {names}"
    elif _same(out, tests):
        layer_import = ""  # imported with the checks, relatively or by its bare name
    else:
        layer_import = f"from {_join(_namespace_name(out), name)} import {names}"
    tests_package = package_name(tests)
    if tests_package is not None:
        lines = [f"from {tests_package} import {checks} as checks", layer_import]
    else:
        # __package__ is set where pytest imports the test as part of a (namespace) package.
        relative = [f"    from . import {checks} as checks"]
        bare = [f"    import {checks} as checks"]
        if not layer_import:
            relative.append(f"    from .{name} import {names}")
            bare.append(f"    from {name} import {names}")
        lines = [
            "if __package__:  # --import-mode=importlib: this folder is a namespace package",
            *relative,
            "else:  # pytest's default import mode puts this folder on sys.path",
            *bare,
            layer_import,
        ]
    return Layout(
        module=module,
        test=test,
        checks=tests / f"{checks}.py",
        imports=tuple(line for line in lines if line),
        tests_relative=_relative(test, out),
    )


def _relative(path: Path, start: Path) -> str:
    """``path`` relative to ``start`` (POSIX); absolute on another drive (Windows)."""
    try:
        return Path(os.path.relpath(path, start)).as_posix()
    except ValueError:
        return Path(os.path.abspath(path)).as_posix()


def package_name(folder: Path) -> str | None:
    """The dotted package name of ``folder`` if it is a package (``__init__.py`` upward)."""
    parts: list[str] = []
    current = Path(os.path.abspath(folder))
    while (current / "__init__.py").is_file():
        if not current.name.isidentifier():
            raise OutputError(
                f"{current} holds __init__.py but '{current.name}' is not a Python identifier,"
                " so nothing in it can be imported",
                hint="rename the folder, or remove its __init__.py",
            )
        parts.append(current.name)
        current = current.parent
    return ".".join(reversed(parts)) or None


def project_root(folder: Path) -> Path | None:
    """The nearest folder at or above ``folder`` that holds a project marker, or None."""
    start = Path(os.path.abspath(folder))
    for candidate in (start, *start.parents):
        if any((candidate / marker).exists() for marker in PROJECT_MARKERS):
            return candidate
    return None


#: Folders never searched for generated files: caches, tools, build output.
_SKIPPED_FOLDERS = frozenset({"__pycache__", "site-packages", "node_modules", "build", "dist"})


def _searched(folder: Path) -> bool:
    if folder.name.startswith(".") or (folder / "pyvenv.cfg").exists():
        return False
    # A package of the project's may be called build or dist: its __init__.py says so.
    return folder.name not in _SKIPPED_FOLDERS or (folder / "__init__.py").exists()


def python_files(folder: Path) -> Iterator[Path]:
    """The ``.py`` files under ``folder``, sorted, in the folders a project's own code is in.

    Skipped: hidden folders (``.git``, ``.venv``), virtual environments (they hold
    ``pyvenv.cfg``), caches and build output.
    """
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if _searched(Path(root, name)))
        for name in sorted(files):
            if name.endswith(".py"):
                yield Path(root, name)


def _namespace_name(folder: Path) -> str:
    """The dotted path of a plain folder from its project root ("" for the root itself)."""
    root = project_root(folder)
    if root is None:
        raise OutputError(
            f"--tests elsewhere cannot import a module from {folder}: it is not a package, and"
            " no folder above it marks a project root to import it from (pyproject.toml,"
            " setup.py, setup.cfg or .git)",
            hint=f"add __init__.py files to make {folder} a package, add a pyproject.toml at"
            " the project's root, or keep the test beside the module (omit --tests)",
        )
    relative = Path(os.path.abspath(folder)).relative_to(root)
    for part in relative.parts:
        if not part.isidentifier():
            raise OutputError(
                f"the folder '{part}' of --out {folder} is not a Python identifier, so a test in"
                " another folder cannot import the layer through it",
                hint="keep the test beside the module (omit --tests), or rename the folder",
            )
    return ".".join(relative.parts)


def _join(package: str, name: str) -> str:
    return f"{package}.{name}" if package else name


def _same(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)
