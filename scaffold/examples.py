"""The example catalog: one declarative list, rendered into ``generated_examples/``.

``scaffold examples`` regenerates the folder from this list; ``scaffold examples --check`` (and the
golden-file test) fails on any difference, so the folder holds only what scaffold produces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .api import Options, render_layer
from .plan import LayerPlan
from .write import FileChange, apply, plan_writes


@dataclass(frozen=True)
class Example:
    """One catalog entry: its folder, the expression, the layer name and the options."""

    folder: str
    expression: str
    name: str
    options: Options = field(default_factory=Options)
    about: str = ""


EXAMPLES: tuple[Example, ...] = (
    Example("sin", "sin(x)", "sine", about="the smallest example"),
    Example("seed_sin", "sin(x)", "my_activation", about="seed example 1, as written"),
    Example(
        "seed_stateful",
        "x*exp(s)",
        "my_stateful_op",
        Options(params=("s=0.0",), updates=("s=s+1",)),
        about="seed example 2 done right: the weight enters as a tensor, its gradient is"
        " summed to its shape, the update runs outside the custom gradient",
    ),
    Example(
        "seed_conditional",
        "Piecewise((x**2, x > 0), (x, True))",
        "conditional_op",
        about="seed example 3 done right: elementwise tf.where instead of tf.cond",
    ),
    Example(
        "prelu",
        "Max(x, a*x)",
        "prelu",
        Options(params=("a=0.25",), param_shapes=("a=channel",)),
        about="trainable slope, one per channel",
    ),
    Example(
        "safe_log",
        "Piecewise((log(x), x > 0), (0, True))",
        "safe_log",
        about="a branch that is NaN where it is not selected",
    ),
    Example("two_inputs", "x*sin(y)", "x_sin_y", Options(inputs="x,y"), about="two inputs"),
    Example(
        "spike",
        "Heaviside(x)",
        "spike",
        Options(grads=("1/(1+(pi*x)**2)",)),
        about="spiking step with a surrogate gradient",
    ),
    Example("gelu", "0.5*x*(1+erf(x/sqrt(2)))", "gelu", about="exact GELU"),
    Example("silu", "x/(1+exp(-x))", "silu", about="silu / swish, through a stable sigmoid"),
    Example("mish", "x*tanh(log(1+exp(x)))", "mish", about="mish, through a stable softplus"),
    Example("softplus", "log(1+exp(x))", "softplus", about="finite gradient at x = 100"),
    Example("elu", "Piecewise((x, x > 0), (exp(x) - 1, True))", "elu", about="expm1 branch"),
    Example(
        "selu",
        "1.0507009873554805*Piecewise((x, x > 0), (1.6732632423543772*(exp(x) - 1), True))",
        "selu",
        about="scaled ELU",
    ),
    Example("softsign", "x/(1+abs(x))", "softsign", about="no cancellation at large |x|"),
    Example("log_cosh", "log(cosh(x))", "log_cosh", about="no overflow at large |x|"),
    Example(
        "snake",
        "x + sin(a*x)**2/a",
        "snake",
        Options(params=("a=1.0",)),
        about="Snake, with a trainable frequency",
    ),
    Example(
        "straight_through_round",
        "round(x)",
        "straight_through_round",
        Options(grads=("1",)),
        about="rounding with a straight-through gradient",
    ),
    # Reductions over the feature axis (the last).
    Example(
        "softmax",
        "exp(x)/sum(exp(x))",
        "softmax",
        about="shifted by logsumexp: finite at rows holding 1000; backward y*(dy - sum(dy*y))",
    ),
    Example(
        "log_softmax",
        "x - log(sum(exp(x)))",
        "log_softmax",
        about="log(sum(exp(x))) becomes logsumexp(x)",
    ),
    Example(
        "layer_norm",
        "(x - mean(x))/sqrt(mean((x - mean(x))**2) + 0.001)*gamma + beta",
        "layer_norm",
        Options(params=("gamma=1", "beta=0"), param_shapes=("gamma=channel", "beta=channel")),
        about="layer normalization with per-channel scale and offset, as"
        " keras.layers.LayerNormalization",
    ),
    Example(
        "rms_norm",
        "x/sqrt(mean(x**2) + 1e-6)*scale",
        "rms_norm",
        Options(params=("scale=1",), param_shapes=("scale=channel",)),
        about="RMS normalization, as keras.layers.RMSNormalization",
    ),
    Example(
        "l2_normalize",
        "x/norm(x)",
        "l2_normalize",
        about="0 (and gradient 0) at a zero row, where x/norm(x) is 0/0",
    ),
    Example(
        "clip_by_norm",
        "x*c/max(norm(x), c)",
        "clip_by_norm",
        Options(states=("c=1",)),
        about="tf.clip_by_norm with a fixed clip norm c",
    ),
)


def render_examples(root: Path) -> dict[Path, str]:
    """Every catalog file under ``root`` as ``{relative path: content}``, README.md included."""
    files: dict[Path, str] = {}
    rows = []
    for example in EXAMPLES:
        plan, rendered = render_layer(
            example.expression,
            name=example.name,
            options=example.options,
            out=root / example.folder,
        )
        for path, content in rendered.items():
            files[path.relative_to(root)] = content
        rows.append(_row(example, plan))
    files[Path("README.md")] = _README.format(rows="\n".join(rows))
    return files


_README = """# Example catalog

Every file here is produced by `scaffold examples` from the list in `scaffold/examples.py`; do not
edit them by hand (`scaffold examples --check` fails on any difference, and CI runs it and every
example's generated tests). Each folder holds what `scaffold new-layer` writes: the op and layer
module, its pytest file (reference values and the names of its checks) and `scaffold_checks.py`,
the checks shared by every layer in a folder.

| folder | formula | derivative (as generated) | options | what it shows |
| --- | --- | --- | --- | --- |
{rows}
"""


def _row(example: Example, plan: LayerPlan) -> str:
    derivative = "; ".join(
        f"{'surrogate ' if v.surrogate else ''}d/d{v.name}: `{v.grad_text}`" for v in plan.variables
    )
    options = plan.command.split(f"--name {plan.name}", 1)[1].strip()
    cells = [
        f"[{example.folder}]({example.folder}/{plan.name}.py)",
        f"`{example.expression}`",
        derivative,
        f"`{options}`" if options else "",
        example.about,
    ]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def differences(root: Path) -> list[str]:
    """Paths under ``root`` that differ from, are missing from or are not in the catalog."""
    expected = render_examples(root)
    problems = []
    for relative, content in expected.items():
        path = root / relative
        if not path.is_file():
            problems.append(f"missing: {path}")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"differs: {path}")
    if root.is_dir():
        for path in sorted([*root.rglob("*.py"), *root.rglob("*.md")]):
            if path.relative_to(root) not in expected:
                problems.append(f"not in the catalog: {path}")
    return problems


def write_examples(root: Path) -> list[FileChange]:
    """Regenerate the catalog under ``root``; return what happened to each file."""
    root.mkdir(exist_ok=True)
    files = {root / relative: content for relative, content in render_examples(root).items()}
    changes = plan_writes(files, force=True)
    apply(changes)
    return changes
