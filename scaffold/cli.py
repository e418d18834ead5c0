"""The ``scaffold`` command line: options, printing and exit codes only.

Library code raises ``scaffold.errors`` types; ``_handle_errors`` prints their message and hint and
exits with their code. Exit codes: 0 success, 1 generated tests failed (or a catalog check found a
difference), 2 bad input or usage, 3 a needed package is missing, 4 a bug in scaffold.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperOption

from . import __version__
from .budget import command_starts_with_process, whole_command
from .errors import InputError, ScaffoldError, ValidationFailed

app = typer.Typer(
    name="scaffold",
    help="Generate a custom-gradient op (TensorFlow, or keras.ops for every Keras 3 backend),"
    " a Keras 3 layer and their tests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ExpressionArg = Annotated[
    str,
    typer.Argument(
        help="Forward formula in Python syntax, e.g. 'sin(x)' or '0.5*x*(1+erf(x/sqrt(2)))'.",
        show_default=False,
    ),
]
DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        help="Devices for the generated tests: all (CPU and each GPU; a missing GPU is reported),"
        " cpu, or gpu (fails when no GPU is visible).",
    ),
]
InputsOpt = Annotated[
    str | None,
    typer.Option(
        "--inputs",
        help="Input variables in call order, comma-separated, e.g. x,y (default: the symbols"
        " that are not weights, alphabetically). Several inputs make a layer called on a list.",
        show_default=False,
    ),
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="A trainable weight and its initial value, e.g. --param a=0.25 (repeatable).",
        show_default=False,
    ),
]
ParamShapeOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param-shape",
        help="NAME=channel gives a weight one value per channel (last axis); default scalar.",
        show_default=False,
    ),
]
StateOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--state",
        help="A non-trainable weight and its initial value, e.g. --state n=0 (repeatable).",
        show_default=False,
    ),
]
GradOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--grad",
        help="A surrogate gradient instead of the derivative: --grad EXPR for the single input,"
        " or --grad NAME=EXPR per input or parameter, e.g. --grad '1/(1+(pi*x)**2)'.",
        show_default=False,
    ),
]
UpdateOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--update",
        help="NAME=EXPR assigns a weight after each training call, e.g. --update s=s+1.",
        show_default=False,
    ),
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=1, help="Seconds before the test run is killed.")
]
ValidateTimeoutOpt = Annotated[
    float,
    typer.Option("--validate-timeout", min=1, help="Seconds before the test run is killed."),
]
BudgetOpt = Annotated[
    float,
    typer.Option(
        "--timeout",
        min=0.1,
        help="Seconds for the command's symbolic work (parse, derivatives, reference values,"
        " code), counted from the command's start; a worker doing it is killed when they run"
        " out. For sync: per layer.",
    ),
]


class _FormulaCommand(TyperCommand):
    """A command whose argument is a formula, which may start with '-': '-log(1+exp(-x))'.

    Click reads every word starting with '-' as an option. These commands have no short
    options, so a word starting with a single '-' that is not an option's value is the formula:
    it moves behind a '--' at the end, where Click reads it as the argument. Options the user
    typed after their own '--' move before it the same way ('-- "-x" --name f'). A word
    starting with '--' stays an option, so '--nmae' is still "No such option".
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _formula_last(args, self.get_params(ctx)))


def _formula_last(args: list[str], params: list) -> list[str]:
    options = {
        name: param
        for param in params
        if isinstance(param, TyperOption)
        for name in (*param.opts, *param.secondary_opts)
    }
    words, kept, formulas = iter(args), [], []
    for word in words:
        option = options.get(word.split("=", 1)[0])
        if word == "--":
            formulas.extend(itertools.islice(words, 1))
        elif option is not None:
            kept.append(word)
            if "=" not in word and not option.is_flag and not option.count:
                kept.extend(itertools.islice(words, 1))  # its value, even '-1'
        elif word.startswith("-") and not word.startswith("--") and word != "-":
            formulas.append(word)
        else:
            kept.append(word)
    return [*kept, "--", *formulas] if formulas else kept


@contextlib.contextmanager
def _handle_errors() -> Iterator[None]:
    try:
        yield
    except ScaffoldError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        if err.hint:
            typer.echo(f"hint: {err.hint}", err=True)
        raise typer.Exit(err.exit_code) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"scaffold {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Generate a custom-gradient op, a Keras 3 layer and their tests from a formula.

    Exit codes: 0 success; 1 generated tests failed; 2 bad input or usage; 3 a needed package
    (TensorFlow, pytest) is missing; 4 a bug in scaffold.
    """


OutOpt = Annotated[
    Path,
    typer.Option("--out", help="Folder for NAME.py (created with its parents if missing)."),
]
TestsOpt = Annotated[
    Path | None,
    typer.Option(
        "--tests",
        help="Folder for test_NAME.py and the shared scaffold_checks.py, e.g. tests/layers;"
        " the test imports the module by its package path. Default: the --out folder.",
        show_default=False,
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Overwrite existing files whose content differs.")
]
DryRunOpt = Annotated[
    bool,
    typer.Option(
        "--dry-run",
        help="Show what would be written, and diffs; write nothing. Exits as the real run"
        " would: 2 if a file with different content is in the way (without --force).",
    ),
]
ValidateOpt = Annotated[
    bool,
    typer.Option(
        "--validate",
        help="Run the generated tests afterwards (needs TensorFlow; with --backend keras, Keras"
        " and at least one of its backends: they run under each installed one).",
    ),
]
AxisOpt = Annotated[
    int,
    typer.Option(
        "--axis",
        help="The feature axis that sum, mean, amax, amin, logsumexp and norm reduce over"
        " (keeping it, with size 1); not 0, the batch axis.",
    ),
]


BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        help="What the op is written with: tensorflow (tf.custom_gradient and tf.math: runs"
        " under Keras's TensorFlow backend) or keras (keras.ops.custom_gradient and keras.ops"
        " only: runs under every Keras 3 backend, TensorFlow, JAX and PyTorch; its tests run"
        " under each installed one).",
    ),
]


@app.command("new-layer", cls=_FormulaCommand)
def new_layer(
    expression: ExpressionArg,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Module and function name (lower_snake_case); the layer class is its CamelCase."
            " Default: derived from the expression ('sin(x)' -> sin_x).",
            show_default=False,
        ),
    ] = None,
    out: OutOpt = Path("."),
    tests: TestsOpt = None,
    force: ForceOpt = False,
    dry_run: DryRunOpt = False,
    validate: ValidateOpt = False,
    device: DeviceOpt = "all",
    validate_timeout: ValidateTimeoutOpt = 900.0,
    timeout: BudgetOpt = 10.0,
    inputs: InputsOpt = None,
    param: ParamOpt = None,
    param_shape: ParamShapeOpt = None,
    state: StateOpt = None,
    grad: GradOpt = None,
    update: UpdateOpt = None,
    stabilize: Annotated[
        bool,
        typer.Option(
            "--stabilize/--no-stabilize",
            help="Rewrite log(1+exp(u)), 1/(1+exp(-u)), exp(u)-1, log(1+u), log(cosh(u)) into"
            " stable forms before differentiating; --no-stabilize prints the formula as typed.",
        ),
    ] = True,
    save: Annotated[
        str,
        typer.Option(
            "--save",
            help="What the forward pass keeps for the backward pass: reuse (the values both"
            " passes need: the least computation), derivative (only df/dv, computed in the"
            " forward pass: one tensor per variable), inputs (nothing: the backward pass"
            " recomputes from the inputs). Measure with benchmarks/ops.py; see the README.",
        ),
    ] = "reuse",
    axis: AxisOpt = -1,
    backend: BackendOpt = "tensorflow",
) -> None:
    """Write NAME.py (a custom-gradient op + Keras layer) and test_NAME.py for EXPRESSION.

    Examples: scaffold new-layer "sin(x)" --name sine --out layers --validate;
    scaffold new-layer "Max(x, a*x)" --param a=0.25 --name prelu
    """
    from .api import Options

    options = Options(
        inputs=inputs,
        params=tuple(param or ()),
        states=tuple(state or ()),
        param_shapes=tuple(param_shape or ()),
        grads=tuple(grad or ()),
        updates=tuple(update or ()),
        stabilize=stabilize,
        save=save,
        axis=axis,
        backend=backend,
    )
    _generate_and_report(
        expression,
        name=name,
        out=out,
        tests=tests,
        options=options,
        force=force,
        dry_run=dry_run,
        validate=validate,
        device=device,
        validate_timeout=validate_timeout,
        timeout=timeout,
    )


@app.command("new-loss", cls=_FormulaCommand)
def new_loss(
    expression: ExpressionArg,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Module and op name (lower_snake_case); the loss class is its CamelCase."
            " Default: derived from the expression.",
            show_default=False,
        ),
    ] = None,
    out: OutOpt = Path("."),
    tests: TestsOpt = None,
    inputs: Annotated[
        str | None,
        typer.Option(
            "--inputs",
            help="The target's and the prediction's names, target first. Default: y_true,y_pred.",
            show_default=False,
        ),
    ] = None,
    force: ForceOpt = False,
    dry_run: DryRunOpt = False,
    validate: ValidateOpt = False,
    device: DeviceOpt = "all",
    validate_timeout: ValidateTimeoutOpt = 900.0,
    timeout: BudgetOpt = 10.0,
    stabilize: Annotated[
        bool,
        typer.Option(
            "--stabilize/--no-stabilize",
            help="Rewrite log(1+exp(u)), log(sigmoid(u)), log(sum(exp(u))) and friends into"
            " stable forms before differentiating (default).",
        ),
    ] = True,
    backend: BackendOpt = "tensorflow",
) -> None:
    """Write NAME.py (the op with an exact custom gradient + a keras.losses.Loss) and its test.

    The formula is in y_true and y_pred, or the two names of --inputs (target first).

    Elementwise formulas are averaged over the last axis, as Keras's MSE and Huber are.

    A formula that already reduces over it (sum, logsumexp, ...) is not averaged again.

    Example: scaffold new-loss "log(cosh(y_pred - y_true))" --name log_cosh_loss --validate
    """
    from .api import LOSS, Options

    _generate_and_report(
        expression,
        name=name,
        out=out,
        tests=tests,
        options=Options(inputs=inputs, stabilize=stabilize, backend=backend),
        force=force,
        dry_run=dry_run,
        validate=validate,
        device=device,
        validate_timeout=validate_timeout,
        timeout=timeout,
        kind=LOSS,
    )


def _generate_and_report(
    expression: str,
    *,
    name,
    out,
    tests,
    options,
    force,
    dry_run,
    validate,
    device,
    validate_timeout,
    timeout,
    kind: str = "layer",
) -> None:
    """new-layer and new-loss: generate, print the math and what was written, validate."""
    from .api import generate
    from .write import refuse_conflicts

    with _handle_errors():
        from .validate import check_device  # stdlib only: no TensorFlow

        check_device(device)  # every option is checked before anything is written
        if validate and not dry_run:
            from .validate import require_runtime

            require_runtime(options.backend == "keras")  # exit 3 before writing, not after
        result = generate(
            expression,
            name=name,
            out=out,
            tests=tests,
            options=options,
            force=force,
            dry_run=dry_run,
            timeout=whole_command(timeout),
            kind=kind,
        )
        plan = result.plan
        args = ", ".join(v.name for v in plan.variables)
        typer.echo(f"f({args}) = {plan.forward_text}")
        for variable in plan.variables:
            if plan.axis:  # a vector-Jacobian product: no df/dx without the upstream gradient
                typer.echo(f"gradient for {variable.name} = {variable.grad_text}")
                continue
            kind = "surrogate " if variable.surrogate else ""
            typer.echo(f"{kind}df/d{variable.name} = {variable.grad_text}")
        for warning in plan.warnings:
            typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
        verb = "would " if dry_run else ""
        for change in result.changes:
            typer.echo(f"{verb}{change.status:<9} {change.path}")
            if dry_run and change.diff:
                typer.echo(change.diff, nl=False)
        checks = result.changes[2]
        if checks.status == "overwrite" and not (force or dry_run):
            typer.echo(
                f"note: {checks.path} came from another scaffold version and was updated; the"
                f" other layers tested there may need it too: scaffold sync {out}"
            )
        if dry_run:  # exit as the real run would: 2 if a file is in the way
            refuse_conflicts(list(result.changes), dry_run=True)
        if validate and not dry_run:
            _run_validation([result.test_path], device=device, timeout=validate_timeout)
        elif validate:
            typer.echo("dry run: --validate skipped, nothing was written")


@app.command("sync")
def sync_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files or folders to search for layer modules scaffold generated.",
            show_default=False,
        ),
    ],
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit 1 listing every file that is stale, missing or edited by"
            " hand, with a short diff (for CI and pre-commit).",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Also overwrite files edited by hand.")
    ] = False,
    timeout: BudgetOpt = 10.0,
) -> None:
    """Regenerate each generated layer (module, test, shared checks) from its module's record.

    The record (__scaffold__ in the module) holds the expression and options; edit it to
    change an option, then sync. Files edited by hand are never overwritten without --force.
    Exit codes: 0 up to date, updated, or no generated layer found; 1 --check found a
    difference; 2 a file is edited by hand or a record cannot be regenerated (nothing written).
    """
    from . import sync

    with _handle_errors():
        report = sync.check(paths, timeout=timeout)
        for error in report.errors:
            typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        for state in report.pending:
            typer.secho(f"{state.status:<15} {state.path}", fg=typer.colors.YELLOW)
            if check and state.old is not None:
                typer.echo(sync.diff(state), nl=False)
        where = " ".join(map(str, paths))
        if not report.modules and not report.errors:
            typer.echo(f"no layer generated by scaffold in {where}: nothing to sync")
            return
        if check:
            if report.errors:
                raise typer.Exit(2)
            if report.pending:
                force_option = " --force" if report.edited else ""
                typer.echo(f"hint: update them with: scaffold sync{force_option} {where}")
                raise typer.Exit(1)
            typer.echo(f"{len(report.modules)} layer(s), {len(report.files)} file(s): up to date")
            return
        changes = sync.write(report, force=force)
        typer.echo(f"{len(report.modules)} layer(s): {len(changes)} file(s) written")


@app.command("explain", cls=_FormulaCommand)
def explain_command(
    expression: ExpressionArg,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="text (80 columns), markdown (LaTeX in $...$, for Jupyter and GitHub) or latex.",
        ),
    ] = "text",
    inputs: InputsOpt = None,
    param: ParamOpt = None,
    param_shape: ParamShapeOpt = None,
    state: StateOpt = None,
    grad: GradOpt = None,
    stabilize: Annotated[
        bool,
        typer.Option("--stabilize/--no-stabilize", help="Show the stable rewrites (default)."),
    ] = True,
    axis: AxisOpt = -1,
    loss: Annotated[
        bool,
        typer.Option(
            "--loss",
            help="Explain a loss as new-loss makes it: y_true, y_pred (or --inputs), averaged"
            " over the last axis unless the formula reduces over it.",
        ),
    ] = False,
    backend: BackendOpt = "tensorflow",
    timeout: BudgetOpt = 10.0,
) -> None:
    """Show how EXPRESSION becomes a derivative and then code, rule by rule.

    Example: scaffold explain "x*sin(x**2)" --format markdown
    """
    from . import budget
    from .explanation import FORMATS, explain, render

    with _handle_errors():
        if fmt not in FORMATS:
            raise InputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        explanation = budget.run(
            explain,
            expression,
            seconds=whole_command(timeout),
            inputs=inputs,
            params=tuple(param or ()),
            param_shapes=tuple(param_shape or ()),
            states=tuple(state or ()),
            grads=tuple(grad or ()),
            stabilize=stabilize,
            axis=axis,
            loss=loss,
            backend=backend,
        )
        typer.echo(render(explanation, fmt), nl=False)


@app.command("plot", cls=_FormulaCommand)
def plot_command(
    expression: ExpressionArg,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="The image to write: .png or .svg (by extension). Its folder must exist; an"
            " existing file is replaced only with --force.",
            show_default=False,
        ),
    ],
    span: Annotated[
        str | None,
        typer.Option(
            "--range",
            help="A,B: the range of each input, e.g. --range=-6,6 or --range=-pi,pi (default:"
            " [-4, 4] and the test points, narrowed to where f is defined).",
            show_default=False,
        ),
    ] = None,
    at: Annotated[
        list[str] | None,
        typer.Option(
            "--at",
            help="INPUT=VALUE: where an input is held while another varies (repeatable;"
            " default: the first test point).",
            show_default=False,
        ),
    ] = None,
    inputs: InputsOpt = None,
    param: ParamOpt = None,
    param_shape: ParamShapeOpt = None,
    state: StateOpt = None,
    grad: GradOpt = None,
    stabilize: Annotated[
        bool,
        typer.Option(
            "--stabilize/--no-stabilize",
            help="Plot the error of the code with the stable rewrites (default) or of the"
            " formula as typed.",
        ),
    ] = True,
    loss: Annotated[
        bool,
        typer.Option(
            "--loss",
            help="The formula is a loss as new-loss takes it (y_true, y_pred or --inputs); an"
            " elementwise one is drawn per element, before the mean over the last axis.",
        ),
    ] = False,
    force: ForceOpt = False,
    timeout: BudgetOpt = 10.0,
) -> None:
    r"""Draw f, its derivatives (or surrogate), kinks and test points, and the code's error.

    One panel per input, the others held at --at values (default: the first test point).

    With reductions, the first element of a row varies and the rest of the row is held.

    Below: the generated code's relative error in float32 and bfloat16, against exact values.

    Needs matplotlib: pip install "scaffold-layers\[plot]".

    Example: scaffold plot "x*sin(x**2)" --out wiggle.svg
    """
    from . import budget
    from .draw import check_target, render, require_matplotlib, write_image
    from .picture import parse_span, picture

    with _handle_errors():
        fmt = check_target(out, force=force)
        require_matplotlib()
        drawn = budget.run(
            picture,
            expression,
            seconds=whole_command(timeout),
            loss=loss,
            span=parse_span(span) if span is not None else None,
            at=tuple(at or ()),
            inputs=inputs,
            params=tuple(param or ()),
            param_shapes=tuple(param_shape or ()),
            states=tuple(state or ()),
            grads=tuple(grad or ()),
            stabilize=stabilize,
        )
        write_image(out, render(drawn, fmt))
        typer.echo(f"wrote {out}")


@app.command("validate")
def validate_command(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Generated test files, layer modules (their tests run), or folders searched"
            " for them.",
            show_default=False,
        ),
    ],
    device: DeviceOpt = "all",
    timeout: TimeoutOpt = 900.0,
    isolated: Annotated[
        bool,
        typer.Option(
            "--isolated",
            help="Ignore the project's pytest configuration (addopts, plugins, warning"
            " filters, pythonpath); by default the tests run as `python -m pytest` from the"
            " project's root would run them.",
        ),
    ] = False,
    logical_cpus: Annotated[
        int,
        typer.Option(
            "--logical-cpus",
            min=1,
            help="Split the CPU into this many logical devices, so the per-device path runs"
            " without a GPU.",
        ),
    ] = 2,
    json_path: Annotated[
        Path | None,
        typer.Option(
            "--json",
            help="Also write the report (verdict, check x device matrix, every case) as JSON.",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs",
            "-j",
            min=1,
            help="Split the test files over this many pytest processes run at once (each"
            " imports TensorFlow and needs about 1 GiB); up to one per CPU core.",
        ),
    ] = 1,
) -> None:
    """Run generated tests in a fresh Python process; exit 1 if any fails, crashes or times out.

    The tests run from the project's root (the nearest folder with pyproject.toml, setup.py,
    setup.cfg or .git) with the project's pytest configuration, as its CI would run them.
    A --backend keras layer's tests run once per installed Keras backend (tensorflow, jax,
    torch). Prints a table: one row per check, one column per device (per backend and
    device for those; ok, skip, or FAIL with the failing dtype or policy), then each failure
    with its point and values.
    """
    with _handle_errors():
        _run_validation(
            paths,
            device=device,
            timeout=timeout,
            logical_cpus=logical_cpus,
            isolated=isolated,
            json_path=json_path,
            jobs=jobs,
        )


def _run_validation(
    paths: list[Path],
    *,
    device: str,
    timeout: float,
    logical_cpus: int = 2,
    isolated: bool = False,
    json_path: Path | None = None,
    jobs: int = 1,
) -> None:
    from .validate import validate

    def started(files: list[Path]) -> None:
        typer.echo(
            f"validating {len(files)} file(s) on {device} devices (timeout {timeout:g} s"
            + (f", {jobs} processes" if jobs > 1 and len(files) > 1 else "")
            + ") ..."
        )

    report = validate(
        paths,
        device=device,
        timeout=timeout,
        logical_cpus=logical_cpus,
        isolated=isolated,
        jobs=jobs,
        on_output=_progress,
        on_start=started,
    )
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_json(), indent=1) + "\n", encoding="utf-8")
    colours = {"fail": typer.colors.RED, "skip": typer.colors.YELLOW, "plain": None}
    for kind, line in report.lines():
        typer.secho(line, fg=colours[kind])
    if report.timed_out:
        raise ValidationFailed(f"the tests did not finish within {timeout:g} s and were killed")
    if report.crashed:
        raise ValidationFailed(
            f"the test process crashed (exit status {report.returncode}); last output:\n"
            + report.output_tail
        )
    if not report.ok:
        if any(c.outcome in ("failed", "error") for c in report.cases):
            raise ValidationFailed("validation failed: see the failures above")
        raise ValidationFailed(
            f"pytest exited with status {report.returncode} although no test failed; last"
            " output:\n" + report.output_tail,
            hint="the project's pytest configuration may have failed the run (a coverage"
            " threshold, a plugin): --isolated runs with an empty configuration",
        )
    typer.secho(
        f"validated {len(report.files)} file(s) in {report.seconds:.1f} s", fg=typer.colors.GREEN
    )


def _progress(line: str) -> None:
    # pytest's progress lines ("test_sine.py ....s [100%]"); the summary is ours.
    if line.rstrip().endswith("%]"):
        typer.echo(line)


@app.command("examples")
def examples(
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if any catalog file differs."),
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="The catalog folder.")] = Path(
        "generated_examples"
    ),
) -> None:
    """Regenerate the example catalog (generated_examples/) from scaffold's example list."""
    from .examples import differences, write_examples

    with _handle_errors():
        if check:
            problems = differences(out)
            for problem in problems:
                typer.secho(problem, fg=typer.colors.RED)
            if problems:
                typer.echo("hint: regenerate with: scaffold examples", err=True)
                raise typer.Exit(1)
            typer.echo(f"{out}: every example is up to date")
            return
        for change in write_examples(out):
            typer.echo(f"{change.status:<9} {change.path}")


def main() -> None:
    """Console-script entry point."""
    command_starts_with_process()
    app()
