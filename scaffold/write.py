"""Stage 6: rendered files -> disk, atomically and never overwriting silently.

``plan_writes`` compares each rendered file with what is on disk (create / unchanged / overwrite /
conflict); ``apply`` refuses the whole set if any file is a conflict, so nothing is written at all
(a dry run shows the conflicts and their diffs instead). ``apply`` creates the folder and any
missing parents, first writes every new content to a temporary file beside its target, then
renames them into place: a run killed at any moment leaves each target as before or complete, and
a run that fails removes what it created.
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import OutputError

CREATE, UNCHANGED, OVERWRITE, CONFLICT = "create", "unchanged", "overwrite", "conflict"


@dataclass(frozen=True)
class FileChange:
    """One target file: what will happen to it, its new content and a diff against the old one."""

    path: Path
    status: str
    content: str
    diff: str = ""


def plan_writes(
    files: dict[Path, str],
    *,
    force: bool,
    replaceable: frozenset[Path] = frozenset(),
    unchanged: frozenset[Path] = frozenset(),
) -> list[FileChange]:
    """Decide what happens to each file (``{path: content}``), in the order given.

    A file that exists with different content is a conflict unless ``force`` or it is in
    ``replaceable``; one in ``unchanged`` (the same code, formatted otherwise) is left as it
    is. Raises ``OutputError`` if a folder cannot hold its files.
    """
    for folder in dict.fromkeys(path.parent for path in files):
        _check_folder(folder)
    changes = []
    for path, content in files.items():
        if path.is_dir():
            raise OutputError(f"{path} is a folder; scaffold needs to write a file there")
        old = _read(path)
        if old is None:
            changes.append(FileChange(path, CREATE, content))
        elif old == content or path in unchanged:
            changes.append(FileChange(path, UNCHANGED, content))
        else:
            diff = unified_diff(path, old, content, "generated")
            replace = force or path in replaceable
            changes.append(FileChange(path, OVERWRITE if replace else CONFLICT, content, diff))
    return changes


def unified_diff(path: Path, old: str, new: str, label: str, context: int = 3) -> str:
    """A unified diff from ``old`` (the file on disk) to ``new`` (``label``: what it is)."""
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=f"{path} (on disk)",
            tofile=f"{path} ({label})",
            n=context,
        )
    )


def refuse_conflicts(changes: list[FileChange], *, dry_run: bool = False) -> None:
    """Raise ``OutputError`` naming every conflicting file, if there is one.

    A dry run calls this after showing the diffs, so it fails exactly when the real run would.
    """
    conflicts = [c.path for c in changes if c.status == CONFLICT]
    if conflicts:
        listed = ", ".join(str(p) for p in conflicts)
        see = "the difference is shown above" if dry_run else "use --dry-run to see the difference"
        raise OutputError(
            f"{listed} already exist{'s' if len(conflicts) == 1 else ''} with different content;"
            " nothing was written",
            hint=f"{see}; --force overwrites, or choose another --name",
        )


def apply(changes: list[FileChange]) -> None:
    """Write every created or overwritten file: all temporaries first, then rename each into place.

    Raises ``OutputError``, writing nothing, if any change is a conflict. Missing folders are
    created; if writing fails, the files and the (empty) folders this run created go again.
    """
    refuse_conflicts(changes)
    pending = [c for c in changes if c.status in (CREATE, OVERWRITE)]
    if not pending:
        return
    created: list[Path] = []  # folders this run creates
    for folder in dict.fromkeys(c.path.parent for c in pending):
        missing = itertools.takewhile(lambda p: not os.path.exists(p), (folder, *folder.parents))
        created += missing
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            _remove_empty(created)
            raise OutputError(f"cannot create {folder}: {err.strerror}") from None
    temporaries: list[tuple[str, FileChange]] = []
    placed: list[FileChange] = []
    try:
        for change in pending:
            temporaries.append((_write_temporary(change), change))
        for temporary, change in temporaries:
            os.replace(temporary, change.path)
            placed.append(change)
    except OSError as err:
        for temporary, _ in temporaries:
            Path(temporary).unlink(missing_ok=True)
        for change in placed:  # a file this run created goes again: no half-written set
            if change.status == CREATE:
                change.path.unlink(missing_ok=True)
        _remove_empty(created)
        where = err.filename or pending[0].path.parent
        raise OutputError(f"cannot write to {where}: {err.strerror}") from None


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this run created, deepest first, where they are still empty."""
    for folder in sorted(set(folders), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # not empty: something else is in it now
            folder.rmdir()


def _write_temporary(change: FileChange) -> str:
    fd, name = tempfile.mkstemp(
        dir=change.path.parent, prefix=f".{change.path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(change.content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(name, _mode_for(change.path))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return name


def _mode_for(path: Path) -> int:
    """Keep an existing file's permissions; new files get the usual 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _check_folder(out: Path) -> None:
    """``out``, or the nearest folder above it that exists (``apply`` creates the rest)."""
    existing = next((p for p in (out, *out.parents) if os.path.exists(p)), None)
    if existing is None:
        raise OutputError(f"--out {out}: no folder on this path exists")
    if not existing.is_dir():
        where = "" if existing == out else f": {existing}"
        raise OutputError(f"--out {out}{where} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"{out}: {existing} is not writable")


def _read(path: Path) -> str | None:
    try:
        with path.open(encoding="utf-8", newline="") as handle:  # compare bytes as written
            return handle.read()
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, OSError):
        return "\0unreadable"  # compares unequal to any generated content: a conflict
