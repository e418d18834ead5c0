"""Stage 3: ``Analysis`` -> ``LayerPlan``, the plain data the templates render.

Everything the templates need is decided here as strings and numbers: names (checked, and chosen so
nothing in the generated code shadows anything else), code for each line, docstring math and the
reference values. Templates then only loop and substitute.
"""

from __future__ import annotations

import builtins
import keyword
import re
import shlex
import sys
from dataclasses import dataclass

import sympy

from .analyze import Analysis
from .errors import InvalidNameError
from .parse import RESERVED_NAMES
from .printing import TensorFlowPrinter
from .reference import References

_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
MAX_NAME_LENGTH = 60
#: Module names the generated files would shadow when pytest puts their folder on sys.path.
_SHADOWED_MODULES = frozenset(sys.stdlib_module_names) | {
    "tensorflow",
    "keras",
    "numpy",
    "pytest",
    "sympy",
    "scaffold",
    "conftest",
    "setup",
}


@dataclass(frozen=True)
class Assignment:
    """One line ``name = code`` of generated code, with the math it computes."""

    name: str
    code: str
    math: str


@dataclass(frozen=True)
class LayerPlan:
    """Plain data for ``layer.py.jinja`` and ``test_layer.py.jinja``."""

    name: str
    class_name: str
    expression: str
    command: str
    input: str
    output: str
    upstream: str
    grad_function: str
    forward_text: str
    derivative_text: str
    forward_latex: str
    derivative_latex: str
    forward_lines: tuple[Assignment, ...]
    forward_return: str
    grad_lines: tuple[Assignment, ...]
    grad_return: str
    saved: tuple[str, ...]
    plain_forward: str
    uses_math: bool
    test_uses_math: bool
    helpers: tuple[str, ...]
    points: tuple[str, ...]
    forward_reference: tuple[str, ...]
    derivative_reference: tuple[str, ...]

    @property
    def module_file(self) -> str:
        """File name of the generated module."""
        return f"{self.name}.py"

    @property
    def test_file(self) -> str:
        """File name of the generated pytest file."""
        return f"test_{self.name}.py"


def default_name(expression: str) -> str:
    """A module name derived from the expression text: 'sin(x)' -> 'sin_x'."""
    words = re.findall(r"[A-Za-z]+|\d+", expression)
    name = "_".join(words).lower()[:40].rstrip("_")
    if not name or not name[0].isalpha():
        name = f"layer_{name}".rstrip("_")
    if check_name(name, raise_error=False) is not None:
        name = f"layer_{name}"
    return name


def check_name(name: str, *, raise_error: bool = True) -> str | None:
    """Raise ``InvalidNameError`` (or return its message) unless ``name`` is usable."""
    problem = None
    if not _NAME_PATTERN.fullmatch(name):
        problem = (
            f"--name {name!r} must be a lower-case Python identifier: a letter, then letters,"
            " digits or '_' (it names the module, the function and, in CamelCase, the layer class)"
        )
    elif len(name) > MAX_NAME_LENGTH:
        problem = f"--name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
    elif keyword.iskeyword(name) or keyword.issoftkeyword(name):
        problem = f"--name {name!r} is a Python keyword"
    elif name in RESERVED_NAMES or name in _SHADOWED_MODULES or hasattr(builtins, name):
        problem = (
            f"--name {name!r} would shadow the Python or TensorFlow name '{name}' in the"
            " generated code or on the import path"
        )
    elif name.startswith("test"):
        problem = f"--name {name!r} starts with 'test': pytest would collect the module as tests"
    if problem is not None and raise_error:
        raise InvalidNameError(problem, hint="for example: --name my_activation")
    return problem


def class_name_for(name: str) -> str:
    """CamelCase of a snake_case name: 'my_activation' -> 'MyActivation'."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def internal_names(name: str, analysis_symbols: set[str]) -> dict[str, str]:
    """Names of the generated code's own variables, renamed if the expression uses them."""
    taken = set(analysis_symbols) | {name, class_name_for(name)}
    chosen = {}
    for role in ("y", "dy", "grad"):
        candidate, index = role, 1
        while candidate in taken:
            candidate, index = f"{role}_{index}", index + 1
        taken.add(candidate)
        chosen[role] = candidate
    return chosen


def build_plan(
    analysis: Analysis, refs: References, *, name: str, names: dict[str, str]
) -> LayerPlan:
    """Turn the analysis and reference values into the templates' plain data."""
    printer = TensorFlowPrinter()
    x = analysis.input.name
    forward_lines = tuple(_assignment(printer, s, e) for s, e in analysis.forward_temps)
    grad_lines = tuple(_assignment(printer, s, e) for s, e in analysis.grad_temps)
    forward_return = _shaped(printer, analysis.forward_out, like=x)
    upstream = sympy.Symbol(names["dy"], real=True)
    if analysis.grad_out == 0:
        grad_return = f"tf.zeros_like({upstream.name})"
    else:
        grad_return = printer.doprint(upstream * analysis.grad_out)
    saved = sorted(
        {s.name for s in analysis.grad_out.free_symbols}
        | {s.name for _, e in analysis.grad_temps for s in e.free_symbols}
    )
    test_printer = TensorFlowPrinter(float64_only=True)
    plain_forward = _shaped(test_printer, analysis.forward, like=x)
    return LayerPlan(
        name=name,
        class_name=class_name_for(name),
        expression=analysis.parsed.text,
        command=f"scaffold new-layer {shlex.quote(analysis.parsed.text)} --name {name}",
        input=x,
        output=names["y"],
        upstream=upstream.name,
        grad_function=names["grad"],
        forward_text=sympy.sstr(analysis.forward),
        derivative_text=sympy.sstr(analysis.derivative),
        forward_latex=sympy.latex(analysis.forward),
        derivative_latex=sympy.latex(analysis.derivative),
        forward_lines=forward_lines,
        forward_return=forward_return,
        grad_lines=grad_lines,
        grad_return=grad_return,
        saved=tuple(n for n in saved if n != upstream.name),
        plain_forward=plain_forward,
        uses_math=printer.uses_math,
        test_uses_math=test_printer.uses_math,
        helpers=tuple(sorted(printer.helpers)),
        points=tuple(repr(p) for p in refs.points),
        forward_reference=tuple(repr(v) for v in refs.forward),
        derivative_reference=tuple(repr(v) for v in refs.derivative),
    )


def _assignment(printer: TensorFlowPrinter, symbol: sympy.Symbol, expr: sympy.Expr) -> Assignment:
    return Assignment(name=symbol.name, code=printer.doprint(expr), math=sympy.sstr(expr))


def _shaped(printer: TensorFlowPrinter, expr: sympy.Expr, *, like: str) -> str:
    """Code for ``expr``; a constant is broadcast to the input's shape and dtype."""
    code = printer.doprint(expr)
    if expr.free_symbols:
        return code
    if expr == 0:
        return f"tf.zeros_like({like})"
    return f"tf.ones_like({like}) * {code}"
