"""Stage 5: generated source -> black-formatted source, checked to compile before and after.

The only module that touches black. Formatting is deterministic for a given black version, which
pyproject.toml pins to one major release; the golden-file test catches any drift.

Black takes ~0.1 s on a generated test file, most of a new layer's generation time, though most of
that file is the same for every layer. So a file is formatted top-level definition by
definition, and each definition's result is cached (see ``cache``). For code like scaffold's
templates (no ``@overload`` stubs, no ``# fmt:`` directives, no syntax that changes the Python
versions black infers from a file) black formats top-level definitions independently and puts
exactly two blank lines between them, so the joined pieces equal black's output for the whole
file. The golden-file test and black --check on generated files hold this to account, and a
first run caches pieces only when they join back into black's output. The test template refers
to the layer as ``op`` and ``Layer`` after one assignment, so most of its definitions are the
same text for every layer and formatted once.
"""

from __future__ import annotations

import ast
import itertools

from . import cache
from .errors import InternalError

LINE_LENGTH = 88  # black's default, so users' own black/ruff settings agree with ours


def format_source(source: str, filename: str) -> str:
    """Return ``source`` formatted by black; raise ``InternalError`` if it is not valid Python."""
    import black  # deferred: only generation needs it, not --help

    tree = _compile(source, filename)
    whole_key = cache.key(black.__version__, str(LINE_LENGTH), source)
    cached = cache.read("black", whole_key)  # regenerating a layer: one read
    if cached is not None:
        formatted = cached.decode("utf-8")
    else:
        formatted = _format_by_pieces(black, source, tree, filename)
        cache.write("black", whole_key, formatted.encode("utf-8"))
    _compile(formatted, filename)
    return formatted


def verify_source(source: str, filename: str) -> str:
    """Return ``source``, written black-clean by its template, after checking it compiles.

    For the static checks module: black would spend ~0.4 s on a first run to change nothing
    (the golden files and a black --check test hold the template to that).
    """
    _compile(source, filename)
    return source


def _format_by_pieces(black, source: str, tree: ast.Module, filename: str) -> str:
    pieces = [_Piece(black, text) for text in _pieces(source, tree)]
    missing = [piece for piece in pieces if piece.formatted is None]
    if len(missing) > len(pieces) // 2:
        # Mostly new (a first run): one black call over the file is cheaper than one per piece;
        # its output, cut the same way, fills the cache if the pieces join back into it.
        formatted = _black(black, source, filename)
        outputs = _pieces(formatted, ast.parse(formatted))
        if len(outputs) == len(pieces) and _join(outputs) == formatted:
            for piece, output in zip(pieces, outputs, strict=True):
                if piece.formatted is None:
                    piece.keep(output)
        return formatted
    for piece in missing:
        piece.keep(_black(black, piece.text, filename))
    return _join([piece.formatted for piece in pieces])


def _join(pieces: list[str]) -> str:
    """Top-level definitions joined as black separates them: two blank lines."""
    return "\n\n\n".join(piece.rstrip("\n") for piece in pieces) + "\n"


def _pieces(source: str, tree: ast.Module) -> list[str]:
    """``source`` cut before each top-level def/class (with its decorators and comments)."""
    lines = source.splitlines(keepends=True)
    starts = []
    for previous, node in itertools.pairwise(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
            while start > previous.end_lineno and lines[start - 1].startswith("#"):
                start -= 1  # a comment right above belongs to the definition
            starts.append(start)
    bounds = [0, *starts, len(lines)]
    return ["".join(lines[a:b]) for a, b in itertools.pairwise(bounds) if a < b]


class _Piece:
    """One piece of a file and black's output for it (from the cache, or ``None`` yet)."""

    def __init__(self, black, text: str) -> None:
        self.text = text.strip("\n") + "\n"
        self.key = cache.key(black.__version__, str(LINE_LENGTH), self.text)
        cached = cache.read("black", self.key)
        self.formatted = None if cached is None else cached.decode("utf-8")

    def keep(self, formatted: str) -> None:
        """Remember black's output for this piece, and cache it."""
        self.formatted = formatted.rstrip("\n") + "\n"
        cache.write("black", self.key, self.formatted.encode("utf-8"))


def _black(black, source: str, filename: str) -> str:
    try:
        return black.format_str(source, mode=black.Mode(line_length=LINE_LENGTH))
    except black.InvalidInput as err:  # pragma: no cover - _compile catches this first
        raise InternalError(f"black could not parse generated {filename}: {err}") from err


def _compile(source: str, filename: str) -> ast.Module:
    """The syntax tree of ``source``, after checking that it compiles."""
    try:
        tree = ast.parse(source, filename)
        compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as err:
        raise InternalError(
            f"generated {filename} is not valid Python (line {err.lineno}: {err.msg})",
            hint="this is a bug in scaffold; please report it with the command you ran",
        ) from err
    return tree
