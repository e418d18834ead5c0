"""A ``Picture`` -> a PNG or SVG image, with matplotlib's Agg canvas (the one module using it).

matplotlib is an extra (``pip install "scaffold-layers[plot]"``), imported when a picture is
drawn and never by code generation. No pyplot: the figure is drawn on its own canvas, so a
notebook's backend and figures are left alone. Output is reproducible for one matplotlib
version: SVG ids come from a fixed salt, text stays text (``svg.fonttype: none``), no date is
written, and the picture's digest is recorded in the image's description, which is what
``scaffold examples --check`` compares when the matplotlib version differs.

Each curve is a group of its own in the SVG, with the id ``VARIABLE-KEY`` (``x-f``,
``x-d-x``, ``x-error-f-float32``), so a test can count curves without looking.
"""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
import textwrap
from pathlib import Path

from .errors import EnvironmentProblem, InputError, OutputError
from .picture import Picture

FORMATS = {".png": "png", ".svg": "svg"}
INSTALL_HINT = 'pip install "scaffold-layers[plot]" (matplotlib)'
DIGEST = re.compile(r"scaffold picture ([0-9a-f]{16}) \(matplotlib ([^)]+)\)")
#: Relative errors are drawn between these; 0 (exact) at the bottom, not finite at the top.
ERROR_FLOOR, ERROR_TOP = 1e-9, 10.0
COLOURS = ("C0", "C1", "C2", "C3", "C4", "C5", "C6", "C8", "C9")
STYLE = {
    "svg.hashsalt": "scaffold",
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def image_format(path: Path) -> str:
    """``png`` or ``svg`` from the file's extension; ``InputError`` for any other."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"--out {path}: scaffold plot writes .png or .svg files, not {path.suffix or 'a'}"
            f"{'' if path.suffix else ' file without an extension'}",
            hint="name the file plot.png or plot.svg",
        )
    return fmt


def check_target(path: Path, *, force: bool) -> str:
    """The image format of ``path``, after checking it can be written. Raises ``InputError``."""
    if path.is_dir():
        raise OutputError(f"--out {path} is a folder; scaffold plot writes a file")
    fmt = image_format(path)
    if not path.parent.is_dir():
        raise OutputError(
            f"--out {path}: the folder {path.parent} does not exist",
            hint="create it first, or write the image somewhere else",
        )
    if path.exists() and not force:
        raise OutputError(
            f"{path} exists", hint="pass --force to replace it, or choose another --out"
        )
    return fmt


def require_matplotlib() -> None:
    """Raise ``EnvironmentProblem`` (exit 3) when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise EnvironmentProblem(
            "scaffold plot needs matplotlib, which is not installed", hint=INSTALL_HINT
        ) from None


def render(picture: Picture, fmt: str) -> bytes:
    """The picture as PNG or SVG bytes."""
    require_matplotlib()
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(STYLE):
        figure = draw(picture, Figure)
        buffer = io.BytesIO()
        recorded = f"scaffold picture {picture.digest()} (matplotlib {matplotlib_version()})"
        metadata = {"Description": recorded}
        if fmt == "svg":
            metadata |= {"Date": None, "Title": picture.title}
        else:
            metadata |= {"Software": None}
        figure.savefig(buffer, format=fmt, dpi=100, metadata=metadata)
    return buffer.getvalue()


def recorded_digest(image: bytes) -> str | None:
    """The picture digest an image made by ``render`` records, if any."""
    found = DIGEST.search(image.decode("latin-1"))
    return found.group(1) if found else None


def recorded_matplotlib(image: bytes) -> str | None:
    """The matplotlib version that drew an image made by ``render``, if recorded."""
    found = DIGEST.search(image.decode("latin-1"))
    return found.group(2) if found else None


def matplotlib_version() -> str | None:
    """The version of the matplotlib this Python imports, or None without one."""
    try:
        import matplotlib
    except ImportError:
        return None
    return matplotlib.__version__


def write_image(path: Path, content: bytes) -> None:
    """Write ``content`` atomically: a temporary file beside ``path``, then a rename.

    Raises ``OutputError`` when the folder cannot be written; nothing is left behind.
    """
    try:
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as err:
        raise OutputError(f"cannot write to {path.parent}: {err.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except OSError as err:
        Path(temporary).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {err.strerror}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def draw(picture: Picture, figure_class):
    """A matplotlib figure of ``picture``: per input, f and its derivatives over its errors."""
    columns = len(picture.panels)
    width = 6.4 if columns == 1 else 5.0 * columns
    notes = [
        line
        for note in picture.notes
        for line in textwrap.wrap(note, int(12 * width), subsequent_indent="  ")
    ]
    notes_height = 0.18 * len(notes) + 0.1
    figure = figure_class(figsize=(width, 6.2 + notes_height), layout="constrained")
    figure.suptitle(picture.title, fontsize=11)
    grid = figure.add_gridspec(3, columns, height_ratios=(3.4, 2.4, notes_height))
    for column, panel in enumerate(picture.panels):
        top = figure.add_subplot(grid[0, column])
        bottom = figure.add_subplot(grid[1, column], sharex=top)
        colours = _draw_functions(top, panel)
        _draw_errors(bottom, panel, dict(picture.tolerances))
        _draw_marks(top, panel, colours)
        top.legend(fontsize=7, loc="best")
        top.tick_params(labelbottom=False)
        if panel.held:
            held = textwrap.fill("held: " + ", ".join(panel.held), int(12 * width / columns))
            top.set_title(held, fontsize=8, loc="left")
        bottom.set_xlabel(panel.variable)
    text = figure.add_subplot(grid[2, :])
    text.axis("off")
    text.text(0, 1, "\n".join(notes), va="top", ha="left", fontsize=8, transform=text.transAxes)
    return figure


def _draw_functions(axes, panel) -> dict[str, str]:
    """f, the derivatives, surrogates and exact derivatives; their colours by key."""
    colours = {}
    undefined_said = False
    for a, b in panel.undefined:
        axes.axvspan(a, b, color="0.88", label="" if undefined_said else "f undefined")
        undefined_said = True
    shade = iter(COLOURS)
    lo, hi = _limits([v for c in panel.curves for v in c.values])
    for curve in panel.curves:
        if curve.role == "exact":
            colour, style, width = "0.35", "--", 1.2
        else:
            # f under a wider line: a derivative equal to it (df/dgamma) leaves it showing.
            colour, style, width = next(shade), "-", 3.0 if curve.role == "f" else 1.5
        colours[curve.key] = colour
        (line,) = axes.plot(
            *_across_poles(panel.xs, curve.values, lo, hi),
            style,
            color=colour,
            linewidth=width,
            label=curve.label,
        )
        line.set_gid(f"{panel.variable}-{curve.key}")
    derivatives = [c.label for c in panel.curves if c.role in ("derivative", "surrogate")]
    axes.set_ylabel("f and " + ", ".join(derivatives) if derivatives else "f")
    axes.set_ylim(lo, hi)
    axes.axhline(0, color="0.6", linewidth=0.6)
    return colours


def _draw_marks(axes, panel, colours: dict[str, str]) -> None:
    """Kinks and singular points (a line, and dots at the values the code takes), test points."""
    tests = [m.x for m in panel.marks if m.kind == "test"]
    said = set()
    for index, mark in enumerate(m for m in panel.marks if m.kind in ("kink", "singular")):
        label = "kink" if mark.kind == "kink" else "singular point"
        line = axes.axvline(
            mark.x,
            color="0.45" if mark.kind == "kink" else "C3",
            linestyle=":",
            linewidth=1.0,
            label="" if label in said else label,
        )
        line.set_gid(f"{panel.variable}-{mark.kind}-{index}")
        said.add(label)
        for key, value in mark.values:
            if math.isfinite(value):
                axes.plot(
                    [mark.x], [value], "o", color=colours[key], markersize=5,
                    markeredgecolor="black", markeredgewidth=0.6, zorder=4,
                )  # fmt: skip
    if tests:
        (line,) = axes.plot(
            tests,
            [0.0] * len(tests),
            linestyle="none",
            marker="|",
            markersize=12,
            color="black",
            transform=axes.get_xaxis_transform(),
            label="test points",
            clip_on=False,
        )
        line.set_gid(f"{panel.variable}-test-points")


def _draw_errors(axes, panel, tolerances: dict[str, float]) -> None:
    if not panel.errors:
        axes.axis("off")
        axes.text(0.5, 0.5, "no error panel (see the notes)", ha="center", transform=axes.transAxes)
        return
    colour = {"f": "C0"}
    for curve in panel.errors:
        kind = "f" if curve.key.startswith("error-f-") else "grad"
        # Dots, not lines: the error jumps from point to point (each rounds its own way).
        marker = "." if curve.role == "float32" else "+"
        shown = [
            math.nan if math.isnan(v) else min(max(v, ERROR_FLOOR), ERROR_TOP) for v in curve.values
        ]
        (line,) = axes.plot(
            panel.xs,
            shown,
            marker,
            color=colour.get(kind, "C1"),
            markersize=3 if marker == "." else 3.5,
            markeredgewidth=0.6,
            label=curve.label,
        )
        line.set_gid(f"{panel.variable}-{curve.key}")
        lost = [
            (x, ERROR_TOP) for x, v in zip(panel.xs, curve.values, strict=True) if v == math.inf
        ]
        if lost:
            axes.plot(
                *zip(*lost, strict=True), "x", color=colour.get(kind, "C1"), markersize=4,
                label=f"{curve.label}: not finite",
            )  # fmt: skip
    for dtype, tolerance in tolerances.items():
        axes.axhline(
            tolerance,
            color="0.3",
            linestyle="-." if dtype == "float32" else ":",
            linewidth=0.9,
            label=f"{dtype} test tolerance",
        )
    axes.set_yscale("log")
    axes.set_ylim(ERROR_FLOOR / 2, ERROR_TOP * 3)
    ticks = [ERROR_FLOOR * 100**k for k in range(5)] + [ERROR_TOP]
    axes.set_yticks(ticks, ["0 (exact)", *(f"{t:.0e}" for t in ticks[1:-1]), "≥10, inf"])
    axes.set_ylabel("relative error of the code")
    # Beside the panel, not on it: the points fill it from "exact" to "not finite".
    axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _limits(values: list[float]) -> tuple[float, float]:
    """Y limits that show the curves; a pole's huge values do not flatten the rest.

    All values fit unless they spread over 10 times what the middle 90 % of them spans
    (tan(x) near pi/2): then the middle 90 %, with room.
    """
    finite = sorted(v for v in values if math.isfinite(v))
    if not finite:
        return -1.0, 1.0
    lo, hi = finite[0], finite[-1]
    inner_lo, inner_hi = finite[len(finite) // 20], finite[-1 - len(finite) // 20]
    if hi - lo > 10 * (inner_hi - inner_lo) > 0:
        room = 0.25 * (inner_hi - inner_lo)
        lo, hi = inner_lo - room, inner_hi + room
    margin = 0.08 * (hi - lo) or 1.0
    return lo - margin, hi + margin


def _across_poles(xs, values, lo: float, hi: float) -> tuple[list[float], list[float]]:
    """The curve with a gap where it leaves the axes at one edge and comes back at the other.

    Between two samples that change sign, one outside the axes, further apart than the axes
    are high: otherwise the line from +huge to -huge at a pole (tan at pi/2) is a wall.
    """
    out_x, out_y = [xs[0]], [values[0]]
    for x, a, b in zip(xs[1:], values[:-1], values[1:], strict=True):
        outside = not (lo <= a <= hi and lo <= b <= hi)
        if outside and abs(b - a) > hi - lo and (a > 0) != (b > 0):
            out_x.append(x)
            out_y.append(math.nan)
        out_x.append(x)
        out_y.append(b)
    return out_x, [v if math.isfinite(v) else math.nan for v in out_y]  # inf: beyond float64
