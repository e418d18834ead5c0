"""What ``scaffold plot`` draws, as plain numbers and labels: no matplotlib here.

Takes an expression and ``explain``'s options; gives a ``Picture``: one ``Panel`` per input
(that input varied over a range, the others and the weights held at stated values; with
reductions, the first element of the input's row, the rest of the row held; see
``picture_lines``) holding f and every backward expression (the derivative, or the surrogate
beside the exact derivative), the kinks with the values the code takes at each, the singular
points, the test points, the spans where f is undefined, and the relative error of the
generated code in float32 and bfloat16 against exact values. Exact values are mpmath's at 30
digits, at the input as the dtype holds it; the code's values are an emulation of its dataflow
in that dtype (each op rounded as the tensor op rounds it), so no TensorFlow is needed either.
``draw`` turns a Picture into an image; ``Picture.digest`` identifies what an image shows, for
the catalog check.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
from dataclasses import dataclass

import sympy

from . import numeric
from .analyze import Analysis, analyze
from .api import Options
from .errors import DomainError, InputError
from .loss import loss_formula
from .names import internal_names
from .parse import parse
from .picture_lines import ElementLine, RowLine, test_rows
from .picture_marks import Mark, jumps, kink_mark, kinks, singular_marks
from .precision import TOLERANCE
from .reductions import has_reductions
from .reference import references
from .spec import build_spec

POINTS = 301
DEFAULT_RANGE = (-4.0, 4.0)
DTYPES = ("float32", "bfloat16")
MIN_WIDTH = 1e-6  # a narrower --range (relative to its size) is below what a line can show
#: Half the width of the gap a curve leaves at a kink (relative to the range): lines break
#: there instead of drawing a jump as a steep segment.
GAP = 1e-9
MAX_KINKS = 12  # floor(x) over a wide range: the first ones get the code's values, all a line
MAX_NOTED = 3  # kinks whose convention the notes state in words (the rest are marked)
DENSE_SPACING = 3  # kinks closer than this many sample steps are said, not marked one by one


@dataclass(frozen=True)
class Curve:
    """Values over a panel's ``xs`` (NaN where undefined); ``role`` decides how it is drawn.

    Roles: ``f``, ``derivative``, ``surrogate``, ``exact`` (the derivative a surrogate
    replaces), and for errors ``float32`` / ``bfloat16``. ``key`` is unique in a picture's
    panel and names the curve in the image (an SVG group id).
    """

    key: str
    label: str
    role: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class Panel:
    """One input varied over ``xs``; the other inputs and the weights as ``held`` states."""

    variable: str
    held: tuple[str, ...]  # "y = -1.875", "x = (x_0, 0.25, 2, -0.75, 1.25)"
    xs: tuple[float, ...]
    curves: tuple[Curve, ...]
    errors: tuple[Curve, ...]  # relative errors; () where the code cannot be emulated
    marks: tuple[Mark, ...]
    undefined: tuple[tuple[float, float], ...]  # spans where f is not finite and real


@dataclass(frozen=True)
class Picture:
    """Everything one figure shows."""

    title: str
    panels: tuple[Panel, ...]
    notes: tuple[str, ...]
    tolerances: tuple[tuple[str, float], ...]  # the generated checks' tolerance per dtype

    def digest(self) -> str:
        """A hash of what the figure shows, values at 6 significant digits (libm-proof)."""
        text = repr(_rounded(dataclasses.asdict(self)))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def picture(
    expression: str,
    *,
    loss: bool = False,
    span: tuple[float, float] | None = None,
    at: tuple[str, ...] = (),
    **options,
) -> Picture:
    """The picture of ``expression``; ``options`` as for ``explain`` (inputs, params, grads...).

    ``span``: the range of each input (default: [-4, 4] and the test points, narrowed to
    where f is defined). ``at``: ``NAME=VALUE`` for the inputs held fixed while another one
    varies (default: the first test point). ``loss``: a loss's formula as ``new-loss`` takes
    it, drawn per element when it is elementwise. Raises ``InputError`` for a range where f is
    nowhere finite.
    """
    parsed = parse(expression)
    if loss:
        formula = loss_formula(parsed, Options(**options))
        options = {**options, "inputs": formula.inputs}
    spec = build_spec(parsed, **options, unused_inputs=loss)
    names = internal_names("op", {s.name for s in spec.variables})
    analysis = analyze(parsed, spec, reserved_names=frozenset({"op", *names.values()}))
    if has_reductions(parsed.expr):
        if at:
            raise InputError(
                "--at holds an input of an elementwise formula; with reductions the rest of"
                " the row is held at a test row"
            )
        rows, found = test_rows(analysis)
        lines = [RowLine(analysis, x, rows) for x in spec.inputs]
        tests = [sorted({cells[k][0] for cells in found}) for k in range(len(rows))]
    else:
        points = _test_points(analysis)
        fixed = _fixed_values(analysis, points, at)
        lines = [ElementLine(analysis, x, fixed) for x in spec.inputs]
        tests = [sorted({p[k] for p in points}) for k in range(len(spec.inputs))]
    panels = tuple(_panel(line, span, test) for line, test in zip(lines, tests, strict=True))
    for panel in panels:
        _check_drawable(expression, panel, span)
    notes = [note for panel in panels for note in _panel_notes(panel)]
    if any(analysis.surrogate):
        notes.append(
            "A surrogate replaces the derivative in the backward pass only: f is as typed."
        )
    if not panels[0].errors:
        notes.append("No error panel: scaffold cannot emulate this code's arithmetic here.")
    # An elementwise loss is drawn before new-loss's mean over the last axis.
    kind = "loss" if has_reductions(parsed.expr) else "loss per element"
    return Picture(
        title=f"{kind if loss else 'f'} = {parsed.text}",
        panels=panels,
        notes=tuple(dict.fromkeys(notes)),
        tolerances=tuple((dtype, TOLERANCE[dtype]) for dtype in DTYPES),
    )


def _test_points(analysis: Analysis) -> tuple:
    try:
        return references(analysis).points
    except DomainError:
        return ()  # few test points in [-4, 13]: the picture still shows where f is defined


def _panel_notes(panel: Panel) -> list[str]:
    """The marks' sentences; after MAX_NOTED kinks the others are counted, not stated."""
    kinks_marked = [m for m in panel.marks if m.kind == "kink"]
    notes = [m.text for m in kinks_marked if m.text][:MAX_NOTED]
    if len(kinks_marked) > MAX_NOTED:
        notes.append(f"{len(kinks_marked) - MAX_NOTED} more kinks are marked (dotted lines).")
    return notes + [m.text for m in panel.marks if m.kind in ("dense", "singular") and m.text]


def parse_span(text: str) -> tuple[float, float]:
    """``A,B`` (numbers or constant expressions such as -pi) -> (A, B) with A < B."""
    parts = text.split(",")
    if len(parts) != 2:
        raise InputError(f"--range {text!r} must be two numbers A,B", hint="e.g. --range=-6,6")
    ends = tuple(_constant(part, "--range") for part in parts)
    if not ends[0] < ends[1]:
        raise InputError(f"--range {text!r}: A must be less than B", hint="e.g. --range=-6,6")
    if ends[1] - ends[0] < MIN_WIDTH * max(1.0, *map(abs, ends)):
        raise InputError(
            f"--range {text!r} is too narrow to draw (B - A below {MIN_WIDTH:g} of its size)"
        )
    return ends


def _constant(text: str, option: str) -> float:
    example = {"--range": "--range=-6,6", "--at": "--at y=1"}[option]
    if not text.strip():
        raise InputError(f"{option}: a number is missing", hint=f"e.g. {example}")
    try:
        expr = parse(text.strip()).expr
    except InputError as err:  # the parser's first line; its caret points into the option
        reason = str(err).splitlines()[0]
        raise InputError(
            f"{option}: {text.strip()!r} is not a number ({reason})", hint=f"e.g. {example}"
        ) from None
    if expr.free_symbols:
        raise InputError(f"{option}: {text.strip()!r} is not a number")
    value = numeric.constant(expr)
    if not math.isfinite(value):
        raise InputError(f"{option}: {text.strip()!r} is not finite")
    return value


def _fixed_values(analysis: Analysis, points, at: tuple[str, ...]) -> dict[sympy.Symbol, float]:
    """Values of the inputs held fixed (``at``, else the first test point) and the weights."""
    spec = analysis.spec
    given = {}
    for item in at:
        name, sep, value = item.partition("=")
        symbol = next((s for s in spec.inputs if s.name == name.strip()), None)
        if not sep or symbol is None:
            inputs = ", ".join(s.name for s in spec.inputs)
            raise InputError(
                f"--at {item!r} must be INPUT=VALUE for one of the inputs ({inputs})",
                hint="weights are held at their --param/--state values",
            )
        if len(spec.inputs) == 1:
            raise InputError(
                f"--at {item!r}: {symbol.name} is the only input; it varies over --range",
                hint="--at holds the other inputs of a formula with several",
            )
        given[symbol] = _constant(value, "--at")
    first = points[0] if points else (1.0,) * len(spec.inputs)
    values = {s: given.get(s, first[i]) for i, s in enumerate(spec.inputs)}
    values.update({w.symbol: float(w.default) for w in spec.weights})
    return values


def _check_drawable(expression: str, panel: Panel, span) -> None:
    """Raise ``InputError`` when f has no two neighbouring real values to draw a line between."""
    f = panel.curves[0].values
    if _defined(f, math.isfinite):
        return
    where = f"[{span[0]:g}, {span[1]:g}]" if span else "[-4, 4]"
    along = f" along {panel.variable}" + (f" ({', '.join(panel.held)})" if panel.held else "")
    if _defined(f, lambda v: not math.isnan(v)):
        raise InputError(
            f"{expression} is 1e300 or more in size (float64 ends at 1.8e308) everywhere in"
            f" {where}{along}",
            hint="choose a range where its values are smaller with --range A,B",
        )
    alone = [x for x, v in zip(panel.xs, f, strict=True) if math.isfinite(v)]
    if alone:  # sqrt(0.0001 - x**2): only the sample at 0 falls inside its domain
        raise InputError(
            f"{expression} is finite and real only in too small a part of {where}{along}"
            f" to draw (near {panel.variable} = {alone[0]:g})",
            hint="choose a range around it with --range A,B",
        )
    raise InputError(
        f"{expression} is not finite and real anywhere in {where}{along}",
        hint="choose a range inside its domain with --range A,B, or other values with --at",
    )


def _defined(values, ok) -> list[int]:
    """The indices where ``ok`` holds at a value and at one of its neighbours.

    x**x is real at x = -4, alone among its neighbours: that is no curve.
    """
    return [
        i
        for i, v in enumerate(values)
        if ok(v) and any(ok(values[j]) for j in (i - 1, i + 1) if 0 <= j < len(values))
    ]


def _panel(line, span, test_xs) -> Panel:
    """Sample ``line`` over the range into a panel: curves, marks and errors.

    Without ``span``, the range is [-4, 4] widened to the test points, then narrowed to where
    f is defined (its edges found by bisection) and sampled again.
    """
    lo, hi = span or (min([DEFAULT_RANGE[0], *test_xs]), max([DEFAULT_RANGE[1], *test_xs]))
    found = kinks(line.kink_functions(), lo, hi, 4 * POINTS)
    # floor(x) over [-1000, 1000]: kinks closer than the samples can show one by one.
    step = (hi - lo) / (POINTS - 1)
    dense = any(b - a < DENSE_SPACING * step for a, b in itertools.pairwise(found))
    breaks = [] if dense else found
    xs, values = _sampled(line, lo, hi, breaks)
    if span is None:
        edges = _domain(
            line, xs, [0.0 if t in breaks else v for t, v in zip(xs, values[0], strict=True)]
        )
        if edges != (lo, hi):
            lo, hi = edges
            xs, values = _sampled(line, lo, hi, breaks)
    curves = tuple(
        Curve(c.key, c.label, c.role, tuple(v)) for c, v in zip(line.curves, values, strict=True)
    )
    kept = [k for k in breaks if lo <= k <= hi and jumps(line, k)]
    marks = [kink_mark(line, k) for k in kept[:MAX_KINKS]]
    marks += [Mark(k, "kink") for k in kept[MAX_KINKS:]]  # lines only
    if dense:
        text = (
            f"f has kinks closer together than this range can show ({len(found)} found):"
            " narrow --range to see them."
        )
        marks.append(Mark(math.nan, "dense", text))
    marks += singular_marks(line, lo, hi)
    marks += [Mark(t, "test") for t in test_xs if lo <= t <= hi]
    return Panel(
        variable=line.variable,
        held=line.held,
        xs=tuple(xs),
        curves=curves,
        errors=_errors(line, xs, _beside(breaks, lo, hi)),
        marks=tuple(marks),
        undefined=_undefined_spans(xs, curves[0].values),
    )


def _beside(breaks: list[float], lo: float, hi: float) -> set[float]:
    """The samples ``_samples`` adds at and beside each kink."""
    gap = GAP * (hi - lo)
    return {t for k in breaks for t in (k - gap, k, k + gap)}


def _sampled(line, lo: float, hi: float, breaks: list[float]):
    """The samples over [lo, hi] and every curve's values there (NaN at the kinks themselves)."""
    xs = _samples(lo, hi, breaks)
    values = [list(column) for column in zip(*(line.exact(t) for t in xs), strict=True)]
    for i, t in enumerate(xs):
        if t in breaks:  # the line breaks there; the marks show the code's values
            for column in values:
                column[i] = math.nan
    return xs, values


def _samples(lo: float, hi: float, kinks: list[float]) -> list[float]:
    """POINTS evenly spaced, and a pair around each kink with the kink itself between them."""
    step = (hi - lo) / (POINTS - 1)
    xs = {lo + k * step for k in range(POINTS)}
    gap = GAP * (hi - lo)
    for k in kinks:
        xs |= {k - gap, k, k + gap}
    return sorted(t for t in xs if lo <= t <= hi)


def _domain(line, xs, f) -> tuple[float, float]:
    """Where f is defined within the samples' range: its edges located by bisection."""
    defined = _defined(f, lambda v: not math.isnan(v))
    if not defined:
        return xs[0], xs[-1]
    first, last = defined[0], defined[-1]
    lo = xs[first] if first == 0 else _edge(line, xs[first - 1], xs[first])
    hi = xs[last] if last == len(xs) - 1 else _edge(line, xs[last + 1], xs[last])
    return lo, hi


def _edge(line, outside: float, inside: float) -> float:
    """The end of f's domain between two samples, from the inside (log(x): just above 0)."""
    for _ in range(50):
        middle = (outside + inside) / 2
        if middle in (outside, inside):
            break
        if math.isnan(line.exact(middle)[0]):
            outside = middle
        else:
            inside = middle
    return inside


def _undefined_spans(xs, f) -> tuple[tuple[float, float], ...]:
    """Where f is undefined (not real, not a number): runs of two or more samples.

    One sample is a point (the pole of 1/x, 0/0 at a removable point), not a span.
    """
    spans, run = [], []
    for t, v in [*zip(xs, f, strict=True), (math.nan, 0.0)]:
        if math.isnan(v) and not math.isnan(t):
            run.append(t)
            continue
        if len(run) > 1:
            spans.append((run[0], run[-1]))
        run = []
    return tuple(spans)


def _errors(line, xs, skip: set) -> tuple[Curve, ...]:
    """Relative error of the code in each dtype: f, and the worst backward output.

    None at ``skip``: the kinks and the samples just beside them.
    """
    label = line.curves[1].label if line.outputs == 2 else "gradients"
    curves = []
    for dtype in DTYPES:
        f_error, g_error = [], []
        for t in xs:
            code = line.code(t, dtype)
            if code is None:
                return ()
            # Beside a kink the dtype's rounding may cross it: no error is drawn there.
            exact = [math.nan] if t in skip else line.exact(numeric.ROUND[dtype](t))
            if math.isnan(exact[0]):  # f undefined: its derivative's formula may still be
                exact = [math.nan] * line.outputs  # real there (0/sqrt(-1)), the code is not
            errors = [_relative(a, e) for a, e in zip(code, exact[: line.outputs], strict=True)]
            f_error.append(errors[0])
            g_error.append(max(errors[1:], key=lambda e: -1.0 if math.isnan(e) else e))
        curves += [
            Curve(f"error-f-{dtype}", f"{line.curves[0].label}, {dtype}", dtype, tuple(f_error)),
            Curve(f"error-grad-{dtype}", f"{label}, {dtype}", dtype, tuple(g_error)),
        ]
    return tuple(curves)


def _relative(actual: float, exact: float) -> float:
    """``numeric.relative_error``, and NaN where the exact value is not drawable."""
    return numeric.relative_error(actual, exact, 1e-30) if math.isfinite(exact) else math.nan


def _rounded(item):
    if isinstance(item, float):
        return f"{item:.6g}"
    if isinstance(item, dict):
        return {k: _rounded(v) for k, v in item.items()}
    if isinstance(item, (list, tuple)):
        return [_rounded(v) for v in item]
    return item
