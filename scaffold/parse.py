"""Stage 1: expression text -> SymPy expression, without ever executing the text.

``parse(text)`` runs Python's own parser (``ast.parse`` in eval mode), then walks the tree with an
allowlist: numbers, names, + - * / **, unary minus, and calls of the functions in ``FUNCTIONS``.
Every SymPy object is built here directly; ``sympify``/``parse_expr`` are never called on user text
because they ``eval`` it. Sizes are bounded (length, nodes, depth, literal and power sizes) so that
no input makes SymPy compute for long. Errors point at the offending column.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import keyword
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import sympy

from .errors import ExpressionError
from .functions import (
    Ceiling,
    Expm1,
    Floor,
    Log1p,
    Maximum,
    Minimum,
    Round,
    Sigmoid,
    Softplus,
    relu,
)
from .hints import character_fix, product_fix, syntax_fix
from .reductions import BY_WORD

MAX_LENGTH = 1000
MAX_NODES = 400
MAX_DEPTH = 40
MAX_INTEGER = 10**12
MAX_POWER_BITS = 4096  # |exponent| * log2|base| for a power of two numbers
MAX_NUMERIC_BASE = 10**6  # numeric base of a non-integer power (avoids big factorisations)
MAX_GAMMA_ARGUMENT = 1000  # loggamma(10**6) would compute a factorial
MAX_EXP_ARGUMENT = 1000  # exp(exp(exp(100))) has no float value and hangs mpmath
MAX_CONSTANT_ARGUMENT = 10**12

#: Functions a user may type: name -> (SymPy constructor, number of arguments).
FUNCTIONS: dict[str, tuple[Callable[..., sympy.Expr], tuple[int, ...]]] = {
    "sin": (sympy.sin, (1,)),
    "cos": (sympy.cos, (1,)),
    "tan": (sympy.tan, (1,)),
    "cot": (sympy.cot, (1,)),
    "sec": (sympy.sec, (1,)),
    "csc": (sympy.csc, (1,)),
    "asin": (sympy.asin, (1,)),
    "acos": (sympy.acos, (1,)),
    "atan": (sympy.atan, (1,)),
    "sinh": (sympy.sinh, (1,)),
    "cosh": (sympy.cosh, (1,)),
    "tanh": (sympy.tanh, (1,)),
    "asinh": (sympy.asinh, (1,)),
    "acosh": (sympy.acosh, (1,)),
    "atanh": (sympy.atanh, (1,)),
    "exp": (sympy.exp, (1,)),
    "log": (sympy.log, (1, 2)),
    "ln": (sympy.log, (1,)),
    "sqrt": (sympy.sqrt, (1,)),
    "erf": (sympy.erf, (1,)),
    "erfc": (sympy.erfc, (1,)),
    "loggamma": (sympy.loggamma, (1,)),
    "lgamma": (sympy.loggamma, (1,)),
    "digamma": (sympy.digamma, (1,)),
    "polygamma": (sympy.polygamma, (2,)),  # polygamma(n, x): n a small integer
    # The stable blocks scaffold computes with (see functions.py), and pow(x, y) = x**y.
    "sigmoid": (Sigmoid, (1,)),
    "softplus": (Softplus, (1,)),
    "log1p": (Log1p, (1,)),
    "expm1": (Expm1, (1,)),
    "pow": (sympy.Pow, (2,)),
    # Non-smooth: derivatives follow TensorFlow's registered gradients (see analyze.py); Max and
    # Min keep their arguments in the order typed, which decides ties (functions.Maximum).
    "Abs": (sympy.Abs, (1,)),
    "abs": (sympy.Abs, (1,)),
    "sign": (sympy.sign, (1,)),
    "Max": (Maximum, (2, 3, 4)),
    "max": (Maximum, (2, 3, 4)),
    "Min": (Minimum, (2, 3, 4)),
    "min": (Minimum, (2, 3, 4)),
    "relu": (relu, (1,)),
    "Heaviside": (sympy.Heaviside, (1, 2)),  # Heaviside(x, h0): h0 is the value at 0 (1/2)
    "floor": (Floor, (1,)),
    "ceiling": (Ceiling, (1,)),
    "ceil": (Ceiling, (1,)),
    "round": (Round, (1,)),
    # Reductions over the feature axis (see reductions.py), NumPy's names: amax, not max.
    **{word: (node, (1,)) for word, node in BY_WORD.items()},
}
#: Elementwise functions whose one-argument call is a reduction somewhere else.
_AMBIGUOUS = {"max": "amax", "Max": "amax", "min": "amin", "Min": "amin"}
_GAMMA_FAMILY = {"loggamma", "lgamma", "digamma"}
_EXPONENTIAL = {"exp", "expm1", "sinh", "cosh"}
MAX_POLYGAMMA_ORDER = 10
#: Functions taking conditions: handled by ``_Builder._conditional``.
CONDITIONALS = ("Piecewise", "where")

CONSTANTS: dict[str, sympy.Expr] = {"pi": sympy.pi, "E": sympy.E}
_REFUSED_CONSTANTS = {
    "I": "complex numbers are not supported",
    "oo": "infinity is not supported",
    "inf": "infinity is not supported",
    "nan": "NaN is not supported",
    "zoo": "complex infinity is not supported",
}
_ALLOWED_CHARACTERS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-*/().,^%<>=!&|~@ \t"
)
#: Names the generated module itself needs; a symbol may not take them.
RESERVED_NAMES = frozenset({"tf", "keras", "math", "np", "numpy", "pytest"})


@dataclass(frozen=True)
class ParsedExpression:
    """The user's text, the SymPy expression built from it and its symbols (sorted by name)."""

    text: str
    expr: sympy.Expr
    symbols: tuple[sympy.Symbol, ...]


def parse(text: str) -> ParsedExpression:
    """Parse ``text`` into a real-valued SymPy expression, or raise ``ExpressionError``."""
    _check_characters(text)
    text = text.strip()
    try:
        with warnings.catch_warnings():
            # '9if x' warns "invalid decimal literal" before failing: the error says it all.
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text, mode="eval")
    except SyntaxError as err:
        fix = syntax_fix(text, (*FUNCTIONS, *CONDITIONALS))
        if fix is not None:
            raise ExpressionError(
                fix.message,
                text=text,
                column=fix.start,
                width=fix.end - fix.start,
                hint=fix.hint(text),
            ) from None
        column = (err.offset or 1) - 1 if err.lineno in (None, 1) else len(text)
        raise ExpressionError(
            f"invalid syntax: {err.msg}",
            text=text,
            column=column,
            hint="write the expression in Python syntax, e.g. 'x**2 * sin(x)'",
        ) from None
    _check_size(tree, text)
    expr = _Builder(text).build(tree.body)
    if not isinstance(expr, sympy.Expr) or expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ExpressionError("the expression is not a finite real number", text=text)
    symbols = tuple(sorted(expr.free_symbols, key=lambda s: s.name))
    return ParsedExpression(text=text, expr=expr, symbols=symbols)


def _check_characters(text: str) -> None:
    if not text.strip():
        raise ExpressionError(
            "the expression is empty", text=text, hint="for example: scaffold new-layer 'sin(x)'"
        )
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}",
            text=text,
            column=MAX_LENGTH,
        )
    for column, char in enumerate(text):
        # Quotes, '#', '\\' and non-ASCII never belong in an expression; refusing them here also
        # keeps the text safe to quote in generated docstrings.
        if char not in _ALLOWED_CHARACTERS:
            fix = character_fix(text, column, _ALLOWED_CHARACTERS)
            raise ExpressionError(
                fix.message if fix else f"character {char!r} is not allowed",
                text=text,
                column=column,
                width=fix.end - fix.start if fix else 1,
                hint=(
                    fix.hint(text) if fix else "use letters, digits, spaces and + - * / ** ( ) , ."
                ),
            )


def _check_size(tree: ast.AST, text: str) -> None:
    """Bound node count and nesting depth before anything recursive touches the tree."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise ExpressionError(
                f"the expression has more than {MAX_NODES} parts", text=text, column=0
            )
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"the expression is nested more than {MAX_DEPTH} levels deep",
                text=text,
                column=getattr(node, "col_offset", 0),
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class _Builder:
    """Turns an allowlisted ``ast`` tree into SymPy objects; anything else is an error."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.symbols: dict[str, sympy.Symbol] = {}

    def error(self, node: ast.AST, message: str, hint: str = "") -> ExpressionError:
        column = getattr(node, "col_offset", 0)
        end = getattr(node, "end_col_offset", None) or column + 1
        return ExpressionError(
            message, text=self.text, column=column, width=end - column, hint=hint
        )

    def build(self, node: ast.AST) -> sympy.Expr:
        method = getattr(self, f"_build_{type(node).__name__}", None)
        if method is None:
            raise self.error(node, f"{_describe(node)} is not allowed in an expression")
        try:
            result = method(node)
        except (TypeError, ValueError, ArithmeticError) as err:
            # SymPy refusing an operation, e.g. comparing with a complex number.
            raise self.error(node, f"this part is not a real-valued expression ({err})") from None
        if isinstance(result, sympy.Expr) and result.is_number and result.is_real is False:
            infinite = result.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan)
            raise self.error(
                node,
                (
                    "this part is infinite or undefined (log(0), 1/0, cot(0))"
                    if infinite
                    else f"this part is the complex number {result}"
                ),
                hint="scaffold works with finite real values; check the domain"
                " (sqrt(-1), asin(2), log(0), ...)",
            )
        return result

    def _build_Constant(self, node: ast.Constant) -> sympy.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(node, f"{_describe(node)} is not allowed in an expression")
        if isinstance(value, int):
            if abs(value) > MAX_INTEGER:
                raise self.error(node, f"integer literal larger than {MAX_INTEGER:.0e}")
            return sympy.Integer(value)
        if not math.isfinite(value) or abs(value) > MAX_INTEGER:
            raise self.error(node, f"number literal outside ±{MAX_INTEGER:.0e}")
        # Exact decimal: '0.1' becomes 1/10, so reference values are exact in the user's terms.
        fraction = Fraction(repr(value))
        return sympy.Rational(fraction.numerator, fraction.denominator)

    def _build_Name(self, node: ast.Name) -> sympy.Expr:
        name = node.id
        if name in CONSTANTS:
            return CONSTANTS[name]
        if name in _REFUSED_CONSTANTS:
            raise self.error(node, f"'{name}': {_REFUSED_CONSTANTS[name]}")
        if name in FUNCTIONS:
            raise self.error(node, f"'{name}' is a function; call it, e.g. {name}(x)")
        if name.startswith("_"):
            raise self.error(node, f"symbol '{name}': names starting with '_' are reserved")
        if name in RESERVED_NAMES or keyword.iskeyword(name) or hasattr(builtins, name):
            raise self.error(
                node,
                f"symbol '{name}' would clash with a Python or TensorFlow name in generated code",
                hint="rename the symbol, e.g. 'x' or 'u'",
            )
        return self.symbols.setdefault(name, sympy.Symbol(name, real=True))

    def _build_UnaryOp(self, node: ast.UnaryOp) -> sympy.Expr:
        operand = self.build(node.operand)
        if isinstance(node.op, ast.USub):
            return -operand
        if isinstance(node.op, ast.UAdd):
            return operand
        raise self.error(node, f"operator {_describe(node.op)} is not allowed")

    def _build_BinOp(self, node: ast.BinOp) -> sympy.Expr:
        if isinstance(node.op, ast.BitXor):
            raise self.error(node, "'^' is not a power here", hint="use ** for powers: x**2")
        left, right = self.build(node.left), self.build(node.right)
        op = node.op
        if isinstance(op, ast.Add):
            return left + right
        if isinstance(op, ast.Sub):
            return left - right
        if isinstance(op, ast.Mult):
            return left * right
        if isinstance(op, ast.Div):
            if right == 0:
                raise self.error(node, "division by zero")
            return left / right
        if isinstance(op, ast.Pow):
            return self._power(node, left, right)
        hint = "for an absolute value write abs(x)" if isinstance(op, ast.BitOr) else ""
        raise self.error(
            node, f"operator {_describe(op)} is not allowed", hint=hint or "use + - * / **"
        )

    def _power(self, node: ast.BinOp, base: sympy.Expr, exponent: sympy.Expr) -> sympy.Expr:
        if exponent.is_number:
            if not exponent.is_Rational:
                if base.is_number:
                    raise self.error(
                        node, "a number raised to an irrational power is not supported"
                    )
            elif abs(exponent) > 1000:
                raise self.error(node, "exponent larger than 1000", hint="rewrite with exp/log")
        if base.is_number and exponent.is_number:
            if base == 0 and exponent.is_negative:
                raise self.error(node, "division by zero (0 to a negative power)")
            if base.is_Rational and exponent.is_Rational:
                size = max(abs(base.p), abs(base.q))
                if exponent.is_Integer:
                    if abs(int(exponent)) * math.log2(max(size, 2)) > MAX_POWER_BITS:
                        raise self.error(node, "this power of numbers is too large")
                elif size > MAX_NUMERIC_BASE:
                    raise self.error(node, "number too large for a fractional power")
        return sympy.Pow(base, exponent)

    def _build_Call(self, node: ast.Call) -> sympy.Expr:
        func = node.func
        # '2(x+1)', '(x+1)(x-1)' and 'a(x+1)' are calls to Python: products to the user.
        product = product_fix(self.text.index("(", func.end_col_offset)).hint(self.text)
        if not isinstance(func, ast.Name):
            number = isinstance(func, ast.Constant) and type(func.value) in (int, float)
            value = number or isinstance(func, (ast.BinOp, ast.UnaryOp, ast.Call))
            raise self.error(
                func,
                "only plain function names may be called, e.g. sin(x)",
                hint=product if value else "",
            )
        name = func.id
        if name in CONDITIONALS:
            return self._conditional(node, name)
        if name not in FUNCTIONS:
            hint = product if len(name) == 1 else _suggest(name)
            raise self.error(func, f"unknown function '{name}'", hint=hint)
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.error(node, f"{name}() takes positional arguments only")
        constructor, arities = FUNCTIONS[name]
        if name in _AMBIGUOUS and len(node.args) == 1:
            raise self.error(
                node,
                f"{name}() is elementwise and takes 2 to 4 arguments, e.g. {name}(x, 0)",
                hint=f"for the {'largest' if _AMBIGUOUS[name] == 'amax' else 'smallest'}"
                f" value over the feature axis write {_AMBIGUOUS[name]}(...)",
            )
        if len(node.args) not in arities:
            wanted = " or ".join(str(n) for n in arities)
            raise self.error(node, f"{name}() takes {wanted} argument(s), got {len(node.args)}")
        args = [self.build(arg) for arg in node.args]
        self._check_constant_arguments(node, name, args)
        if constructor is sympy.Pow:
            return self._power(node, *args)  # the same bounds as x**y
        return constructor(*args)

    def _check_constant_arguments(self, node: ast.Call, name: str, args: list) -> None:
        """Bound constant arguments, so SymPy and mpmath never compute astronomic numbers."""
        if name in _GAMMA_FAMILY and args[0].is_number:
            if not args[0].is_Rational:
                raise self.error(node, f"a constant argument of {name}() must be a plain number")
            if abs(args[0]) > MAX_GAMMA_ARGUMENT:
                raise self.error(
                    node, f"constant argument of {name}() larger than {MAX_GAMMA_ARGUMENT}"
                )
            if args[0].is_Integer and args[0] <= 0:
                raise self.error(node, f"{name}() has a pole at {args[0]}")
        if name == "Heaviside" and len(args) == 2 and not args[1].is_number:
            raise self.error(
                node.args[1],
                "the second argument of Heaviside(x, h0) is its value at x = 0: a number",
                hint="e.g. Heaviside(x, 0) or Heaviside(x, 1); Heaviside(x) is 1/2 at 0",
            )
        if name == "polygamma" and not (args[0].is_Integer and 0 <= args[0] <= MAX_POLYGAMMA_ORDER):
            raise self.error(
                node.args[0],
                f"the order n of polygamma(n, x) must be an integer from 0 to"
                f" {MAX_POLYGAMMA_ORDER}",
            )
        bad_base = len(args) == 2 and not (args[1].is_positive and args[1] != 1)
        if name == "log" and args[-1].is_number and bad_base:
            raise self.error(node, "the base of log(x, b) must be positive and not 1")
        limit = MAX_EXP_ARGUMENT if name in _EXPONENTIAL else MAX_CONSTANT_ARGUMENT
        for arg in args:
            # Arguments were bounded when they were built, so this evaluation is cheap.
            if arg.is_number and not arg.is_Rational and abs(sympy.N(arg, 15)) > limit:
                raise self.error(node, f"constant argument of {name}() larger than {limit:g}")
            if arg.is_Rational and abs(arg) > limit:
                raise self.error(node, f"constant argument of {name}() larger than {limit:g}")

    def _conditional(self, node: ast.Call, name: str) -> sympy.Expr:
        """``Piecewise((value, condition), ..., (default, True))`` or ``where(c, a, b)``."""
        if node.keywords or any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.error(node, f"{name}() takes positional arguments only")
        if name == "where":
            if len(node.args) != 3:
                raise self.error(node, "where(condition, value_if_true, value_if_false)")
            condition = self.condition(node.args[0])
            pairs = [(self.build(node.args[1]), condition), (self.build(node.args[2]), sympy.true)]
        else:
            pairs = []
            for arg in node.args:
                if not (isinstance(arg, ast.Tuple) and len(arg.elts) == 2):
                    raise self.error(arg, "each Piecewise argument is a pair (value, condition)")
                pairs.append((self.build(arg.elts[0]), self.condition(arg.elts[1])))
        result = sympy.Piecewise(*pairs) if pairs else None
        if result is None or (
            isinstance(result, sympy.Piecewise) and result.args[-1].cond is not sympy.true
        ):
            raise self.error(
                node,
                "Piecewise needs a default: a last pair (value, True)",
                hint="e.g. Piecewise((x**2, x > 0), (x, True)); otherwise the value is undefined",
            )
        return result

    def condition(self, node: ast.AST) -> sympy.Basic:
        """A condition: comparisons joined with and/or/not, or True."""
        if isinstance(node, ast.Constant) and node.value is True:
            return sympy.true
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(value) for value in node.values]
            return sympy.And(*parts) if isinstance(node.op, ast.And) else sympy.Or(*parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return sympy.Not(self.condition(node.operand))
        if isinstance(node, ast.Compare):
            terms = [self.build(node.left)] + [self.build(c) for c in node.comparators]
            parts = []
            for op, left, right in zip(node.ops, terms, terms[1:], strict=False):
                relation = _RELATIONS.get(type(op))
                if relation is None:
                    raise self.error(node, f"comparison {_describe(op)} is not allowed")
                parts.append(relation(left, right))
            return sympy.And(*parts)
        raise self.error(
            node, "a condition must be a comparison such as x > 0, joined with and/or/not"
        )

    def _build_Compare(self, node: ast.Compare) -> sympy.Expr:
        raise self.error(
            node,
            "a comparison is not a value",
            hint="use it as a condition: Piecewise((x**2, x > 0), (x, True)) or where(x > 0, a, b)",
        )


_RELATIONS = {
    ast.Gt: sympy.StrictGreaterThan,
    ast.GtE: sympy.GreaterThan,
    ast.Lt: sympy.StrictLessThan,
    ast.LtE: sympy.LessThan,
    ast.Eq: sympy.Eq,
    ast.NotEq: sympy.Ne,
}


def _describe(node: ast.AST) -> str:
    names = {
        ast.Attribute: "attribute access",
        ast.Subscript: "indexing",
        ast.Lambda: "a lambda",
        ast.NamedExpr: "':=' assignment",
        ast.ListComp: "a comprehension",
        ast.GeneratorExp: "a comprehension",
        ast.SetComp: "a comprehension",
        ast.DictComp: "a comprehension",
        ast.Compare: "a comparison",
        ast.Is: "'is'",
        ast.IsNot: "'is not'",
        ast.In: "'in'",
        ast.NotIn: "'not in'",
        ast.BoolOp: "'and'/'or'",
        ast.IfExp: "'if ... else'",
        ast.Starred: "'*' unpacking",
        ast.Tuple: "a tuple",
        ast.List: "a list",
        ast.Dict: "a dict",
        ast.Set: "a set",
        ast.JoinedStr: "an f-string",
        ast.Await: "await",
        ast.Mod: "'%'",
        ast.FloorDiv: "'//'",
        ast.MatMult: "'@'",
        ast.BitAnd: "'&'",
        ast.BitOr: "'|'",
        ast.LShift: "'<<'",
        ast.RShift: "'>>'",
        ast.Invert: "'~'",
        ast.Not: "'not'",
    }
    if isinstance(node, ast.Constant):
        kind = type(node.value).__name__
        return {"str": "a string", "bytes": "bytes", "complex": "a complex number"}.get(
            kind, f"the constant {node.value!r}"
        )
    return names.get(type(node), type(node).__name__)


def _suggest(name: str) -> str:
    close = difflib.get_close_matches(name, list(FUNCTIONS), n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    return "supported functions: " + ", ".join(sorted(FUNCTIONS))
