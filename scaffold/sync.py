"""``scaffold sync``: regenerate every generated layer from the record in its module.

Takes paths (files or folders); finds the modules scaffold generated there (they carry a
record, see ``record``), renders each one's module, test and shared checks again with the
installed scaffold and classifies every file: unchanged, stale (another version or other
options generated it), missing, or edited by hand. ``check`` writes nothing; ``write``
replaces stale and missing files, and edited ones only with ``force``; if any file is in the way
or any record cannot be regenerated, it writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import budget
from .api import COMMANDS, Options, render_layer
from .errors import InputError, OutputError
from .layout import python_files
from .record import EDITED, MISSING, UNCHANGED, FileState, Record, classify, read_record
from .write import CREATE, OVERWRITE, FileChange, apply, unified_diff

DIFF_LINES = 40


@dataclass(frozen=True)
class SyncReport:
    """Every file of every generated layer found, against what scaffold generates now."""

    modules: tuple[Path, ...]
    files: tuple[FileState, ...]
    errors: tuple[str, ...] = ()  # one per module whose record could not be regenerated

    @property
    def pending(self) -> tuple[FileState, ...]:
        """The files that are not as scaffold would generate them now."""
        return tuple(f for f in self.files if f.status != UNCHANGED)

    @property
    def edited(self) -> tuple[FileState, ...]:
        """The files edited by hand (never overwritten without ``force``)."""
        return tuple(f for f in self.files if f.status == EDITED)


def check(paths: list[Path], *, timeout: float | None = budget.DEFAULT_SECONDS) -> SyncReport:
    """Regenerate in memory every layer found under ``paths``; write nothing.

    A module whose record cannot be regenerated is an error of the report, not the end of the
    run: the others are still checked.
    """
    records, errors = [], []
    for candidate in _candidates(paths):
        try:
            record = read_record(candidate)
        except InputError as err:
            errors.append(str(err))
            continue
        if record is not None:
            records.append(record)
    states: dict[Path, FileState] = {}
    for record in records:
        try:
            files = _regenerate(record, timeout)
        except InputError as err:
            errors.append(str(err))
            continue
        for path, content in files.items():
            if path not in states:  # a checks module shared by several layers: once
                states[path] = classify(path, content)
    return SyncReport(
        modules=tuple(r.module for r in records),
        files=tuple(states.values()),
        errors=tuple(errors),
    )


def _candidates(paths: list[Path]) -> list[Path]:
    """The Python files under ``paths`` that may be layer modules (not tests), once each."""
    found: dict[Path, None] = {}
    for path in paths:
        if not path.exists():
            raise InputError(f"{path} does not exist")
        for candidate in [path] if path.is_file() else python_files(path):
            if not candidate.name.startswith("test_"):
                found.setdefault(candidate)
    return list(found)


def write(report: SyncReport, *, force: bool = False) -> list[FileChange]:
    """Replace the stale and missing files of ``report`` (edited ones only with ``force``).

    Raises ``OutputError``, writing nothing, if a file was edited by hand and not ``force``.
    """
    if report.errors:
        raise InputError(
            f"{len(report.errors)} layer(s) could not be regenerated; nothing was written",
            hint="fix their records (see the errors above), then sync again",
        )
    if report.edited and not force:
        listed = ", ".join(str(f.path) for f in report.edited)
        raise OutputError(
            f"edited by hand: {listed}; nothing was written",
            hint="see the changes with scaffold sync --check; overwrite them with --force, or"
            " move the edits into the record (__scaffold__) or the formula",
        )
    changes = [
        FileChange(f.path, CREATE if f.status == MISSING else OVERWRITE, f.content)
        for f in report.pending
    ]
    apply(changes)
    return changes


def diff(state: FileState) -> str:
    """A short unified diff from the file on disk to what scaffold generates now."""
    if state.old is None:
        return ""
    lines = unified_diff(state.path, state.old, state.content, "scaffold now", 1).splitlines(True)
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES], f"... ({len(lines) - DIFF_LINES} more diff lines)\n"]
    return "".join(lines)


def _regenerate(record: Record, timeout: float | None) -> dict[Path, str]:
    """The files scaffold generates now from ``record``."""
    module = record.module
    kinds = {command: kind for kind, command in COMMANDS.items()}
    if record.command not in kinds:
        raise InputError(f"{module}: {record.command!r} is not a command this scaffold knows")
    if record.name != module.stem:
        raise InputError(
            f"{module}: the record names the layer {record.name!r}, but the file is"
            f" {module.name}",
            hint=f"rename the file back to {record.name}.py, or set the record's name to"
            f" {module.stem!r} (the function and class names follow it)",
        )
    try:
        _, files = render_layer(
            record.expression,
            name=record.name,
            options=Options.from_given(record.options),
            out=module.parent,
            tests=record.test_path.parent,
            timeout=timeout,
            kind=kinds[record.command],
        )
    except InputError as err:
        err.message = f"{module}: {err.message}"  # which of the modules found
        raise
    return files
