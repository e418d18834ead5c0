"""Unit tests for scaffold.format: black through a per-definition cache equals black on the file."""

from __future__ import annotations

import ast

import black
import pytest

from scaffold import format as formatting
from scaffold.api import Options, render_layer
from scaffold.errors import InternalError


def _raw_sources(monkeypatch, expression, name, options=None) -> dict[str, str]:
    """The rendered sources of a layer before black, as format_source receives them."""
    raw = {}
    real = formatting.format_source

    def keep(source, filename):
        raw[filename] = source
        return real(source, filename)

    monkeypatch.setattr("scaffold.api.format_source", keep)
    render_layer(expression, name=name, options=options, timeout=None)
    return raw


def _black(source: str) -> str:
    return black.format_str(source, mode=black.Mode(line_length=formatting.LINE_LENGTH))


@pytest.mark.parametrize(
    ("expression", "name", "options"),
    [
        ("sin(x)", "sine", None),
        # A layer named like a variable of the generated test.
        ("x*tanh(log(1+exp(x)))", "layer", Options(save="derivative")),
        ("Max(x, a*x)", "prelu", Options(params=("a=0.25",), param_shapes=("a=channel",))),
    ],
)
def test_pieces_through_the_cache_equal_black_on_the_whole_file(
    monkeypatch, tmp_path, expression, name, options
):
    monkeypatch.setenv("SCAFFOLD_CACHE_DIR", str(tmp_path / "cache"))
    # A first layer fills the cache; the second then formats mostly from cached pieces.
    _raw_sources(monkeypatch, "cos(x) + 1", "warm_up")
    calls = []
    real_black = formatting._black

    def counted(module, source, filename):
        calls.append(source)
        return real_black(module, source, filename)

    monkeypatch.setattr(formatting, "_black", counted)
    raw = _raw_sources(monkeypatch, expression, name, options)
    monkeypatch.setattr(formatting, "_black", real_black)
    for filename, source in raw.items():
        assert formatting.format_source(source, filename) == _black(source)
    # Of the ~600-line test file only pieces that differ from the warm-up layer (its docstring
    # and constants, the plain formula) reached black, one by one. (The ~70-line module differs
    # in most of its pieces, so black formats it whole: one call is cheaper.)
    assert calls and all(call.count("\n") < 200 for call in calls if "def test_" in call)


def test_a_first_run_formats_the_file_at_once_and_fills_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("SCAFFOLD_CACHE_DIR", str(tmp_path / "cache"))
    raw = _raw_sources(monkeypatch, "sin(x)", "sine")
    test_source = raw["test_sine.py"]
    calls = []
    real_black = formatting._black
    monkeypatch.setattr(
        formatting, "_black", lambda m, s, f: calls.append(s) or real_black(m, s, f)
    )
    monkeypatch.setenv("SCAFFOLD_CACHE_DIR", str(tmp_path / "empty"))
    first = formatting.format_source(test_source, "test_sine.py")
    assert calls == [test_source]  # one call for the whole file
    calls.clear()
    edited = test_source.replace("def test_", "def test_renamed_", 1)  # one piece differs
    second = formatting.format_source(edited, "test_sine.py")
    assert len(calls) == 1 and calls[0].count("\n") < 100  # just that piece
    assert second == _black(edited) and first == _black(test_source)


def test_invalid_generated_code_is_an_internal_error():
    with pytest.raises(InternalError, match="is not valid Python"):
        formatting.format_source("def f(:\n    pass\n", "broken.py")


def test_a_comment_line_inside_a_string_stays_with_its_string():
    # The string's last line starts with "#" right above the def: not a comment of the def.
    source = 'X = """\n#"""\n# a comment\ndef f():\n    return X\n'
    pieces = formatting._pieces(source, ast.parse(source))
    assert pieces == ['X = """\n#"""\n', "# a comment\ndef f():\n    return X\n"]
