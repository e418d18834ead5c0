"""What users type that the parser refuses, and the fix to suggest.

The parser (``parse.py``) refuses text it cannot read; this module only looks at refused text
again to name the likely fix: ``lambda*x`` (a Python keyword), Unicode look-alikes (the minus
sign U+2212, the multiplication sign, superscript digits), ``|x|``, ``2x``, ``sin x``. It never
makes text acceptable: the parser's allowlist and its errors stay the judge, and the suggested
text goes through them again when the user types it. A ``Fix`` replaces ``text[start:end]`` by
``replacement``.
"""

from __future__ import annotations

import io
import itertools
import keyword
import tokenize
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass

#: Keywords that belong in scaffold's expressions (conditions, Piecewise defaults) or that Python
#: reads as values: no "cannot name a variable" hint for them.
_EXPRESSION_KEYWORDS = frozenset({"and", "or", "not", "if", "else", "True", "False", "None"})
_RENAMED_KEYWORDS = {"lambda": "lam"}  # SELU's λ; 'lmbda' is the other usual spelling
#: Non-ASCII characters that look like an operator scaffold accepts.
_LOOKALIKES = {
    "\u2212": "-",  # MINUS SIGN
    "\u2013": "-",  # EN DASH
    "\u00d7": "*",  # MULTIPLICATION SIGN
    "\u00b7": "*",  # MIDDLE DOT
    "\u22c5": "*",  # DOT OPERATOR
    "\u2217": "*",  # ASTERISK OPERATOR
    "\u00f7": "/",  # DIVISION SIGN
    "\u2215": "/",  # DIVISION SLASH
    "\u2264": "<=",
    "\u2265": ">=",
    "\u2260": "!=",
    "\u00a0": " ",  # NO-BREAK SPACE
}
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
MAX_SHOWN = 60  # a longer expression gets the local replacement, not the whole corrected text


@dataclass(frozen=True)
class Fix:
    """Replace ``text[start:end]`` by ``replacement``; ``message`` says what is wrong there."""

    message: str
    start: int
    end: int
    replacement: str
    note: str = ""
    corrected: str = ""  # the whole text corrected, if more than this span needs it

    def hint(self, text: str) -> str:
        """'did you mean ...?' with the corrected text (or just the replacement if long)."""
        fixed = self.corrected or text[: self.start] + self.replacement + text[self.end :]
        shown = f"did you mean {fixed!r}?" if len(fixed) <= MAX_SHOWN else None
        shown = shown or f"write {self.replacement!r} there"
        return f"{shown} {self.note}".rstrip()


# Characters ------------------------------------------------------------------------------------
def character_fix(text: str, column: int, allowed: Collection[str]) -> Fix | None:
    """The ASCII for a refused look-alike character at ``column``: U+2212 -> '-', x² -> x**2.

    The hint shows the whole text in ASCII when every refused character has a replacement.
    """
    pieces, start, first = [], 0, None
    while start < len(text):
        end = start + 1
        if _superscript(text[start]):
            while end < len(text) and _superscript(text[end]):
                end += 1  # a run of superscripts is one exponent: x⁻¹ -> x**-1
        chars = text[start:end]
        replacement = chars if chars in allowed else _ascii(chars)
        if replacement is not None and not set(replacement) <= set(allowed):
            replacement = None
        if start == column:
            first = (end, replacement)
        pieces.append(replacement)
        start = end
    if first is None or first[1] is None:
        return None
    char = text[column]
    return Fix(
        f"character {char!r} ({unicodedata.name(char, 'non-ASCII')}) is not allowed:"
        " expressions are ASCII",
        column,
        first[0],
        first[1],
        corrected="" if None in pieces else "".join(pieces),
    )


def product_fix(column: int) -> Fix:
    """``2(x+1)``, ``(x+1)(x-1)``: a '*' is missing at ``column``."""
    return Fix("", column, column, "*", "(scaffold does not multiply by juxtaposition)")


def _superscript(char: str) -> bool:
    return char.translate(_SUPERSCRIPTS) != char


def _ascii(chars: str) -> str | None:
    """ASCII for one character (or a run of superscripts), or None if there is none."""
    if _superscript(chars[0]):
        return "**" + chars.translate(_SUPERSCRIPTS)
    if chars in _LOOKALIKES:
        return _LOOKALIKES[chars]
    name = unicodedata.name(chars, "")
    if name.startswith(("GREEK SMALL LETTER ", "GREEK CAPITAL LETTER ")):
        letter = name.split()[-1].lower()
        letter = {"lamda": "lam"}.get(letter, letter)  # 'lambda' is a Python keyword
        return letter if "SMALL" in name else letter.capitalize()
    normal = unicodedata.normalize("NFKC", chars)  # fullwidth letters and digits, µ
    if len(normal) == 1 and normal != chars:
        return normal if normal.isascii() else _ascii(normal)
    return None


# Syntax ----------------------------------------------------------------------------------------
def syntax_fix(text: str, functions: Collection[str]) -> Fix | None:
    """The fix for text Python cannot parse, if it is one users often type."""
    tokens = _tokens(text)
    for finder in _SYNTAX_FINDERS:
        fix = finder(text, tokens, functions)
        if fix is not None:
            return fix
    return None


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    tokens = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            tokens.append(token)
    except (tokenize.TokenError, SyntaxError):
        pass  # an unclosed '(' ends the stream early: the tokens so far still count
    return [t for t in tokens if t.type in (tokenize.NAME, tokenize.NUMBER, tokenize.OP)]


def _keyword_as_name(text: str, tokens: list, functions: Collection[str]) -> Fix | None:
    """``lambda*x``: a Python keyword used as a variable."""
    for index, token in enumerate(tokens):
        word = token.string
        if not keyword.iskeyword(word) or word in _EXPRESSION_KEYWORDS:
            continue
        after = tokens[index + 1].string if index + 1 < len(tokens) else ""
        if after in ("(", ":", "=") or (after and after[0].isalnum()):
            continue  # a lambda or another construct, refused as such
        replacement = _RENAMED_KEYWORDS.get(word, f"{word}_")
        note = "('lmbda' works too)" if word == "lambda" else ""
        return Fix(
            f"'{word}' is a Python keyword and cannot name a variable",
            token.start[1],
            token.end[1],
            replacement,
            note,
        )
    return None


def _absolute_bars(text: str, tokens: list, functions: Collection[str]) -> Fix | None:
    """``|x|``: an absolute value in bars."""
    bars = [t for t in tokens if t.string == "|"]
    if len(bars) < 2:
        return None
    start, end = bars[0].start[1], bars[1].end[1]
    inner = text[start + 1 : end - 1].strip()
    return Fix("'|...|' is not an absolute value here", start, end, f"abs({inner})")


def _juxtaposition(text: str, tokens: list, functions: Collection[str]) -> Fix | None:
    """``2x``, ``x y``: a product without '*'; ``sin x``: a call without parentheses."""
    for left, right in itertools.pairwise(tokens):
        if not (_operand(left) or left.string == ")") or not _operand(right):
            continue
        start, end = left.start[1], right.end[1]
        if left.string in functions:
            if right.string in functions:
                continue  # sin cos(x): where the argument ends is a guess
            return Fix(
                f"'{left.string}' needs parentheses around its argument",
                start,
                end,
                f"{left.string}({right.string})",
            )
        return Fix(
            f"missing operator between '{left.string}' and '{right.string}'",
            start,
            end,
            f"{left.string}*{right.string}",
            "(scaffold does not multiply by juxtaposition)",
        )
    return None


def _operand(token: tokenize.TokenInfo) -> bool:
    return token.type == tokenize.NUMBER or (
        token.type == tokenize.NAME and not keyword.iskeyword(token.string)
    )


_SYNTAX_FINDERS: tuple[Callable[[str, list, Collection[str]], Fix | None], ...] = (
    _keyword_as_name,
    _absolute_bars,
    _juxtaposition,
)
