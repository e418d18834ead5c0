"""The example catalog: one declarative list, rendered into ``generated_examples/``.

``scaffold examples`` regenerates the folder from this list; ``scaffold examples --check`` (and the
golden-file test) fails on any difference, so the folder holds only what scaffold produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .api import render_layer
from .write import FileChange, apply, plan_writes


@dataclass(frozen=True)
class Example:
    """One catalog entry: its folder, the expression and the layer name."""

    folder: str
    expression: str
    name: str


EXAMPLES: tuple[Example, ...] = (Example(folder="sin", expression="sin(x)", name="sine"),)


def render_examples() -> dict[Path, str]:
    """Every catalog file as ``{relative path: content}``."""
    files: dict[Path, str] = {}
    for example in EXAMPLES:
        _, rendered = render_layer(example.expression, name=example.name)
        for filename, content in rendered.items():
            files[Path(example.folder) / filename] = content
    return files


def differences(root: Path) -> list[str]:
    """Paths under ``root`` that differ from, are missing from or are not in the catalog."""
    expected = render_examples()
    problems = []
    for relative, content in expected.items():
        path = root / relative
        if not path.is_file():
            problems.append(f"missing: {path}")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"differs: {path}")
    if root.is_dir():
        for path in sorted(root.rglob("*.py")):
            if path.relative_to(root) not in expected:
                problems.append(f"not in the catalog: {path}")
    return problems


def write_examples(root: Path) -> list[FileChange]:
    """Regenerate the catalog under ``root``; return what happened to each file."""
    changes: list[FileChange] = []
    by_folder: dict[Path, dict[str, str]] = {}
    for relative, content in render_examples().items():
        by_folder.setdefault(root / relative.parent, {})[relative.name] = content
    if not root.exists():
        root.mkdir()
    for folder, files in by_folder.items():
        planned = plan_writes(folder, files, force=True)
        apply(planned)
        changes.extend(planned)
    return changes
