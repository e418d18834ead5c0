"""Stage 5: generated source -> black-formatted source, checked to compile before and after.

The only module that touches black. Formatting is deterministic for a given black version, which
pyproject.toml pins to one major release; the golden-file test catches any drift.
"""

from __future__ import annotations

from . import cache
from .errors import InternalError

LINE_LENGTH = 88  # black's default, so users' own black/ruff settings agree with ours


def format_source(source: str, filename: str) -> str:
    """Return ``source`` formatted by black; raise ``InternalError`` if it is not valid Python.

    Results are cached by black's version, the line length and the source (see ``cache``).
    """
    import black  # deferred: only generation needs it, not --help

    _compile(source, filename)
    cache_key = cache.key(black.__version__, str(LINE_LENGTH), source)
    cached = cache.read("black", cache_key)
    if cached is not None:
        formatted = cached.decode("utf-8")
    else:
        try:
            formatted = black.format_str(source, mode=black.Mode(line_length=LINE_LENGTH))
        except black.InvalidInput as err:  # pragma: no cover - _compile catches this first
            raise InternalError(f"black could not parse generated {filename}: {err}") from err
        cache.write("black", cache_key, formatted.encode("utf-8"))
    _compile(formatted, filename)
    return formatted


def _compile(source: str, filename: str) -> None:
    try:
        compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as err:
        raise InternalError(
            f"generated {filename} is not valid Python (line {err.lineno}: {err.msg})",
            hint="this is a bug in scaffold; please report it with the command you ran",
        ) from err
