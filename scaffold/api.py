"""The stages chained: ``generate(expression, name=..., out=...)``. The CLI and tests call this.

parse -> analyze -> reference -> plan -> render -> format -> write. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from . import budget
from .analyze import analyze
from .errors import InvalidNameError
from .format import format_source
from .parse import parse
from .plan import (
    LayerPlan,
    build_plan,
    check_name,
    check_weight_names,
    default_name,
    internal_names,
)
from .reference import references
from .render import MODULE_TEMPLATE, TEST_TEMPLATE, render
from .spec import build_spec
from .write import FileChange, apply, plan_writes


@dataclass(frozen=True)
class Generated:
    """What ``generate`` did: the plan, and one ``FileChange`` per file (module, then test)."""

    plan: LayerPlan
    changes: tuple[FileChange, ...]
    dry_run: bool

    @property
    def test_path(self) -> Path:
        """Path of the generated pytest file."""
        return self.changes[1].path


@dataclass(frozen=True)
class Options:
    """What ``new-layer`` takes beyond the expression (see ``spec.build_spec``)."""

    inputs: str | None = None
    params: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    param_shapes: tuple[str, ...] = ()
    grads: tuple[str, ...] = ()
    updates: tuple[str, ...] = ()
    stabilize: bool = True
    save: str = "reuse"


def render_layer(
    expression: str,
    *,
    name: str | None = None,
    options: Options | None = None,
    timeout: float | None = budget.DEFAULT_SECONDS,
) -> tuple[LayerPlan, dict[str, str]]:
    """Generate the module and its test as ``{filename: source}`` without touching the disk.

    The work runs in a worker process killed after ``timeout`` seconds (``None``: no budget,
    in-process), raising ``BudgetExceeded``.
    """
    return budget.run(_render_layer, expression, name, options, seconds=timeout)


def _render_layer(
    expression: str, name: str | None, options: Options | None
) -> tuple[LayerPlan, dict[str, str]]:
    budget.stage("parsing")
    parsed = parse(expression)
    spec = build_spec(parsed, **dataclasses.asdict(options or Options()))
    symbols = {s.name for s in spec.variables}
    name = name if name is not None else default_name(parsed.text, symbols)
    check_name(name)
    if name in symbols:
        raise InvalidNameError(
            f"--name {name!r} is also a variable of the expression",
            hint="choose a name that describes the function, e.g. --name my_activation",
        )
    check_weight_names([w.symbol.name for w in spec.weights])
    names = internal_names(name, symbols)
    budget.stage("differentiating")
    analysis = analyze(parsed, spec, reserved_names=frozenset({name, *names.values()}))
    budget.stage("computing reference values")
    refs = references(analysis)
    budget.stage("printing and formatting the code")
    plan = build_plan(analysis, refs, name=name, names=names)
    files = {
        plan.module_file: format_source(render(MODULE_TEMPLATE, plan), plan.module_file),
        plan.test_file: format_source(render(TEST_TEMPLATE, plan), plan.test_file),
    }
    return plan, files


def generate(
    expression: str,
    *,
    name: str | None = None,
    out: str | Path = ".",
    options: Options | None = None,
    force: bool = False,
    dry_run: bool = False,
    timeout: float | None = budget.DEFAULT_SECONDS,
) -> Generated:
    """Write ``OUT/NAME.py`` and ``OUT/test_NAME.py`` for ``expression``; return what was done.

    Raises a ``scaffold.errors.ScaffoldError`` subclass for any bad input; on a conflict with an
    existing, different file (and no ``force``) nothing is written. ``dry_run`` writes nothing.
    ``timeout`` bounds the symbolic work (see ``render_layer``).
    """
    plan, files = render_layer(expression, name=name, options=options, timeout=timeout)
    changes = plan_writes(Path(out), files, force=force)
    if not dry_run:
        apply(changes)
    return Generated(plan=plan, changes=tuple(changes), dry_run=dry_run)
