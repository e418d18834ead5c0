"""The stages chained: ``generate(expression, name=..., out=...)``. The CLI and tests call this.

parse -> analyze -> reference -> plan -> render -> format -> write. Nothing here imports TensorFlow.
Three files come out: the layer module (in ``out``), its test and the shared checks module (in
``tests``, by default ``out``); ``layout`` decides how the test imports the other two.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from . import __version__, budget, cache
from .analyze import analyze
from .errors import InputError, InvalidNameError, OutputError
from .format import format_source, verify_source
from .layout import CHECKS_MODULE, Layout, layout, package_name
from .names import check_name, check_weight_names, class_name_for, default_name, internal_names
from .parse import parse
from .plan import CHECKS_API, LayerPlan, build_plan
from .precision import checks_literals
from .record import (
    STALE,
    UNCHANGED,
    FileState,
    classify,
    generated_version,
    record_literal,
    version_key,
    with_checksum,
)
from .reductions import has_reductions
from .reference import References, references
from .render import CHECKS_TEMPLATE, MODULE_TEMPLATE, TEST_TEMPLATE, render, render_static
from .rows import row_references
from .spec import build_spec
from .stabilize import ON_DEMAND
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
    axis: int = -1

    def given(self) -> dict:
        """The options that differ from their defaults, as JSON-like values (for records)."""
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in dataclasses.fields(self)
            if (value := getattr(self, field.name)) != field.default
        }

    @classmethod
    def from_given(cls, given: dict) -> Options:
        """The inverse of ``given``.

        Raises ``InputError`` for an option it does not know or a value of the wrong kind
        (each option's kind is its default's).
        """
        defaults = {field.name: field.default for field in dataclasses.fields(cls)}
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise InputError(
                f"unknown option(s) {', '.join(unknown)} in a scaffold record",
                hint="was it written by a newer scaffold? upgrade scaffold, or fix the record",
            )
        values = {}
        for name, value in given.items():
            default = defaults[name]
            if isinstance(default, tuple):
                ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
                value = tuple(value) if ok else value
            else:
                kinds = (str, type(None)) if default is None else (type(default),)
                ok = isinstance(value, kinds)
            if not ok:
                wanted = (
                    "a list of strings" if isinstance(default, tuple) else "like " + repr(default)
                )
                raise InputError(f"the record's option {name!r} is {value!r}; it must be {wanted}")
            values[name] = value
        return cls(**values)


def render_layer(
    expression: str,
    *,
    name: str | None = None,
    options: Options | None = None,
    out: str | Path = ".",
    tests: str | Path | None = None,
    timeout: float | None = budget.DEFAULT_SECONDS,
) -> tuple[LayerPlan, dict[Path, str]]:
    """Generate the module, its test and the checks module as ``{path: source}``.

    Nothing is written; ``out`` and ``tests`` (default ``out``) are read to decide how the
    test imports the module (see ``layout``). The work runs in a worker process killed after
    ``timeout`` seconds (``None``: no budget, in-process), raising ``BudgetExceeded``.
    """
    tests = None if tests is None else Path(tests)
    return budget.run(_render_layer, expression, name, options, Path(out), tests, seconds=timeout)


def _render_layer(
    expression: str, name: str | None, options: Options | None, out: Path, tests: Path | None
) -> tuple[LayerPlan, dict[Path, str]]:
    budget.stage("parsing")
    parsed = parse(expression)
    options = options or Options()
    spec = build_spec(parsed, **dataclasses.asdict(options))
    symbols = {s.name for s in spec.variables}
    name = name if name is not None else default_name(parsed.text, symbols)
    check_name(name, in_package=package_name(out) is not None)
    paths = layout(out, tests, name, class_name_for(name))
    if name in symbols:
        raise InvalidNameError(
            f"--name {name!r} is also a variable of the expression",
            hint="choose a name that describes the function, e.g. --name my_activation",
        )
    check_weight_names([w.symbol.name for w in spec.weights])
    names = internal_names(name, symbols)
    budget.stage("differentiating")
    reserved = frozenset({name, *names.values()})
    analysis = analyze(parsed, spec, reserved_names=reserved)
    budget.stage("computing reference values")
    reduces = has_reductions(analysis.forward)
    refs = row_references(analysis) if reduces else references(analysis)
    if isinstance(refs, References) and refs.lost and spec.stabilize:
        analysis, refs = _more_stable(parsed, spec, reserved, analysis, refs)
    budget.stage("printing and formatting the code")
    record = _record(parsed.text, name, options, paths)
    plan = build_plan(analysis, refs, name=name, names=names, imports=paths.imports, record=record)
    files = {
        paths.module: render(MODULE_TEMPLATE, plan),
        paths.test: render(TEST_TEMPLATE, plan),
    }
    formatted = {
        path: with_checksum(format_source(text, path.name)) for path, text in files.items()
    }
    formatted[paths.checks] = _checks_module(paths.checks.name)
    return plan, formatted


def _checks_module(filename: str) -> str:
    """The shared checks module, verified and with its checksum line.

    The same text for every layer of a scaffold version, and ~1000 lines whose compile check
    and checksum cost ~50 ms: cached, keyed by the rendered text.
    """
    text = render_static(CHECKS_TEMPLATE, version=__version__, api=CHECKS_API, **checks_literals())
    name = cache.key("checks", filename, text)
    cached = cache.read("checks", name)
    if cached is not None:
        return cached.decode("utf-8")
    finished = with_checksum(verify_source(text, filename))
    cache.write("checks", name, finished.encode("utf-8"))
    return finished


def _more_stable(parsed, spec, reserved, analysis, refs):
    """The first on-demand rewrite whose code holds float32 where ``refs`` lost precision.

    Measured, not pattern-matched: ``references`` runs the code in float32 at the extreme
    inputs against the 40-digit values; a rewrite is kept only if it loses nothing there.
    """
    for rule in ON_DEMAND:
        budget.stage(f"trying the stable rewrite {rule[0]}")
        tried = analyze(parsed, spec, reserved_names=reserved, rules=(rule,))
        if rule[0] not in tried.rewrites:
            continue
        tried_refs = references(tried)
        if not tried_refs.lost:
            return tried, tried_refs
    return analysis, refs


def _replaceable_checks(states: dict[Path, FileState]) -> frozenset[Path]:
    """The shared checks module, where an older scaffold wrote it and nobody edited it.

    One from a newer scaffold is refused: the tests beside it may need what it has.
    """
    found = set()
    for path, state in states.items():
        if path.name != f"{CHECKS_MODULE}.py" or state.status != STALE:
            continue
        theirs = generated_version(state.old)
        if theirs is not None and version_key(theirs) > version_key(__version__):
            raise OutputError(
                f"{path} comes from scaffold {theirs}, newer than this one ({__version__})",
                hint="upgrade scaffold (pip install -U scaffold-layers), then generate again",
            )
        found.add(path)
    return frozenset(found)


def _record(expression: str, name: str, options: Options, paths: Layout) -> str:
    """The module's record: what ``scaffold sync`` regenerates it from (see record.py)."""
    return record_literal(
        {
            "scaffold": __version__,
            "command": "new-layer",
            "expression": expression,
            "name": name,
            "tests": paths.tests_relative,
            "options": options.given(),
        }
    )


def generate(
    expression: str,
    *,
    name: str | None = None,
    out: str | Path = ".",
    tests: str | Path | None = None,
    options: Options | None = None,
    force: bool = False,
    dry_run: bool = False,
    timeout: float | None = budget.DEFAULT_SECONDS,
) -> Generated:
    """Write ``OUT/NAME.py``, ``TESTS/test_NAME.py`` and ``TESTS/scaffold_checks.py``.

    ``tests`` defaults to ``out``. Returns what was done (module, test, checks, in that order).
    Raises a ``scaffold.errors.ScaffoldError`` subclass for any bad input; on a conflict with an
    existing, different file (and no ``force``) nothing is written. The shared checks module is
    replaced without ``force`` when it is an unedited one from another scaffold version.
    ``dry_run`` writes nothing. ``timeout`` bounds the symbolic work (see ``render_layer``).
    """
    plan, files = render_layer(
        expression, name=name, options=options, out=out, tests=tests, timeout=timeout
    )
    states = {path: classify(path, content) for path, content in files.items()}
    changes = plan_writes(
        files,
        force=force,
        replaceable=_replaceable_checks(states),
        unchanged=frozenset(path for path, state in states.items() if state.status == UNCHANGED),
    )
    if not dry_run:
        apply(changes)
    return Generated(plan=plan, changes=tuple(changes), dry_run=dry_run)
