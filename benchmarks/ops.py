"""Speed of generated ops: forward+backward against autodiff, builtins and a memory-bound floor.

Run: python benchmarks/ops.py [--size 4194304] [--repeats 15] [--save reuse,derivative,inputs]
                              [--rows 4096 --features 1024] [--functions a,b] [--json FILE]
     python benchmarks/ops.py --backend jax [...]   (portable ops under jax.jit: ops_jax.py)

For gelu, silu, mish, softplus, log-cosh and elu (scaffold generates each into a temporary
folder), times one forward+backward pass over a float32 vector of --size elements (the step returns
both the output y and the gradient for a random upstream gradient dy, as a training step uses
them, so no mode can prune either pass) for
  generated  the scaffold op (tf.custom_gradient), generated with the first --save policy
             (scaffold's default, reuse); each further policy P is the variant generated[P],
  naive      TensorFlow's autodiff of the same formula as typed,
  builtin    the TF/Keras builtin, where one exists,
  floor      a trivial elementwise op, y = 1.5*x, and its gradient 1.5*dy: the memory-bound
             floor (read x, write y, read dy, write the gradient),
in eager mode, under tf.function and under XLA (jit_compile=True), on the CPU and on each GPU.
Reductions (softmax, log-softmax, layer norm, RMS norm, L2-normalise, clip-by-norm) run on
--rows x --features float32 matrices, with gradients for every argument (x, and the weights:
gamma and beta, the scale, the clip norm), against tf.nn.softmax, tf.nn.log_softmax,
keras.ops.layer_normalization and rms_normalization (what keras.layers.LayerNormalization and
RMSNormalization compute), tf.math.l2_normalize and tf.clip_by_norm; the losses (Huber,
binary cross-entropy from logits, categorical cross-entropy from logits) per sample, with
gradients for the target and the prediction, against keras.losses.huber,
binary_crossentropy and categorical_crossentropy (from_logits=True).
Variants run interleaved (one timing of each in turn, --repeats rounds) so machine drift hits all
alike; each timing is the mean of --inner calls. Prints medians, min-max and the ratios
generated/naive, generated/builtin and generated/floor of the medians; --json writes everything.
Peak memory is the allocator's peak during one step above what was allocated before it (x, dy),
as tf.config.experimental.get_memory_info reports it; XLA's own scratch buffers are not in it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import tempfile
import time

FUNCTIONS = {
    "gelu": ("0.5*x*(1+erf(x/sqrt(2)))", "lambda x: tf.nn.gelu(x, approximate=False)"),
    "silu": ("x/(1+exp(-x))", "tf.nn.silu"),
    "mish": ("x*tanh(log(1+exp(x)))", "keras.activations.mish"),
    "softplus": ("log(1+exp(x))", "tf.nn.softplus"),
    "log_cosh": ("log(cosh(x))", None),
    "elu": ("Piecewise((x, x > 0), (exp(x) - 1, True))", "tf.nn.elu"),
}
#: Formulas with reductions: name -> (expression, new-layer options or "loss", builtin taking
#: the op's arguments, the weights' shapes and values). The builtins compute the same function.
ROW_FUNCTIONS = {
    "softmax": ("exp(x)/sum(exp(x))", {}, "tf.nn.softmax", {}),
    "log_softmax": ("x - log(sum(exp(x)))", {}, "tf.nn.log_softmax", {}),
    "layer_norm": (
        "(x - mean(x))/sqrt(mean((x - mean(x))**2) + 0.001)*gamma + beta",
        {"params": ("gamma=1", "beta=0"), "param_shapes": ("gamma=channel", "beta=channel")},
        "lambda x, g, b: keras.ops.layer_normalization(x, g, b, epsilon=1e-3)",
        {"gamma": ("channel", 1.0), "beta": ("channel", 0.0)},
    ),
    "rms_norm": (
        "x/sqrt(mean(x**2) + 1e-6)*scale",
        {"params": ("scale=1",), "param_shapes": ("scale=channel",)},
        "lambda x, s: keras.ops.rms_normalization(x, s, epsilon=1e-6)",
        {"scale": ("channel", 1.0)},
    ),
    "l2_normalize": ("x/norm(x)", {}, "lambda x: tf.math.l2_normalize(x, -1)", {}),
    "clip_by_norm": (
        "x*c/max(norm(x), c)",
        {"params": ("c=20",)},
        "lambda x, c: tf.clip_by_norm(x, c, axes=[-1])",
        {"c": ("scalar", 20.0)},
    ),
    "huber": (
        "where(abs(y_pred - y_true) <= 1, (y_pred - y_true)**2/2, abs(y_pred - y_true) - 1/2)",
        "loss",
        "keras.losses.huber",
        {},
    ),
    "binary_crossentropy": (
        "-(y_true*log(sigmoid(y_pred)) + (1 - y_true)*log(1 - sigmoid(y_pred)))",
        "loss",
        "lambda t, p: keras.losses.binary_crossentropy(t, p, from_logits=True)",
        {},
    ),
    "categorical_crossentropy": (
        "-sum(y_true*(y_pred - logsumexp(y_pred)))",
        "loss",
        "lambda t, p: keras.losses.categorical_crossentropy(t, p, from_logits=True)",
        {},
    ),
}
MODES = ("eager", "function", "xla")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--inner", type=int, default=5, help="calls per timing")
    parser.add_argument(
        "--functions",
        default=",".join(FUNCTIONS),
        help=f"comma-separated, of {', '.join([*FUNCTIONS, *ROW_FUNCTIONS])}",
    )
    parser.add_argument("--rows", type=int, default=4096, help="rows of the reductions' input")
    parser.add_argument("--features", type=int, default=1024, help="the axis they reduce")
    parser.add_argument(
        "--save",
        default="reuse,derivative,inputs",
        help="scaffold's --save policies to generate each op with; the first is 'generated'",
    )
    parser.add_argument("--json", help="write all measurements to this file")
    parser.add_argument(
        "--backend",
        choices=("tensorflow", "jax"),
        default="tensorflow",
        help="jax: the portable ops (--backend keras) under jax.jit (benchmarks/ops_jax.py)",
    )
    args = parser.parse_args()
    names = [n for n in args.functions.split(",") if n]
    if args.backend == "jax":
        return _jax(parser, args, names)
    unknown = sorted(set(names) - set(FUNCTIONS) - set(ROW_FUNCTIONS))
    if unknown:
        parser.error(f"unknown function(s) {', '.join(unknown)}")
    policies = [p for p in args.save.split(",") if p]
    from scaffold.api import LAYER, LOSS, Options, generate

    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            for policy in policies:
                module = f"bench_{name}_{policy}"
                if name in FUNCTIONS:
                    options, kind = Options(save=policy), LAYER
                else:
                    given = ROW_FUNCTIONS[name][1]
                    kind = LOSS if given == "loss" else LAYER
                    options = Options(save=policy, **({} if kind == LOSS else given))
                    if policy == "derivative":  # no df/dx through a reduction: skipped
                        continue
                expression = (FUNCTIONS.get(name) or ROW_FUNCTIONS[name])[0]
                generate(expression, name=module, out=folder, options=options, kind=kind)
        sys.path.insert(0, folder)
        shape = (args.rows, args.features)
        results = measure(names, policies, args.size, args.repeats, args.inner, shape)
    print(table(results))
    print()
    print(memory_table(results))
    if len(policies) > 1:
        print()
        print(policy_table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
    return 0


def _jax(parser, args, names) -> int:
    import ops_jax  # beside this file

    unknown = sorted(set(names) - set(ops_jax.FUNCTIONS) - set(ops_jax.ROW_FUNCTIONS))
    if unknown:
        parser.error(f"unknown function(s) for --backend jax: {', '.join(unknown)}")
    results = ops_jax.run(args)
    print(ops_jax.table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
    return 0


def measure(
    names: list[str], policies: list[str], size: int, repeats: int, inner: int, shape=None
) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from scaffold.parse import parse
    from scaffold.printing import TensorFlowPrinter

    devices = [d.name for d in tf.config.list_logical_devices("CPU")[:1]]
    devices += [d.name for d in tf.config.list_logical_devices("GPU")]
    results = {"size": size, "repeats": repeats, "inner": inner, "policies": policies, "rows": []}
    results["shape"] = shape
    for device in devices:
        with tf.device(device):
            rng = np.random.default_rng(0)
            x = tf.constant(rng.normal(size=size).astype("float32"))
            dy = tf.constant(rng.normal(size=size).astype("float32"))
            for name in [n for n in names if n in ROW_FUNCTIONS]:
                for mode in MODES:
                    row = _time_row_function(
                        tf, keras, np, name, policies, shape, mode, repeats, inner, device
                    )
                    row.update(function=name, mode=mode, device=device.split("device:")[-1])
                    results["rows"].append(row)
            for name in [n for n in names if n in FUNCTIONS]:
                expression, builtin = FUNCTIONS[name]
                naive_code = TensorFlowPrinter(like="x", float64_only=True).doprint(
                    parse(expression).expr
                )
                namespace = {"tf": tf, "keras": keras, "math": __import__("math")}
                variants = {}
                for policy in policies:
                    module = f"bench_{name}_{policy}"
                    label = "generated" if not variants else f"generated[{policy}]"
                    variants[label] = getattr(importlib.import_module(module), module)
                variants["naive"] = eval(f"lambda x: {naive_code}", namespace)
                variants["floor"] = lambda x: 1.5 * x
                if builtin:
                    variants["builtin"] = eval(builtin, namespace)
                for mode in MODES:
                    row = _time_mode(tf, (x, dy), variants, mode, repeats, inner, device)
                    row.update(function=name, mode=mode, device=device.split("device:")[-1])
                    results["rows"].append(row)
    return results


def _time_row_function(tf, keras, np, name, policies, shape, mode, repeats, inner, device):
    """One reduction (or loss) in one mode: generated, naive autodiff, builtin, floor."""
    from scaffold.loss import loss_formula
    from scaffold.parse import parse
    from scaffold.printing import TensorFlowPrinter

    expression, given, builtin, weights = ROW_FUNCTIONS[name]
    rng = np.random.default_rng(1)
    loss = given == "loss"
    if loss:  # target, prediction: targets in [0, 1] and rows of probabilities for the CCE
        target = rng.dirichlet(np.ones(shape[1]), size=shape[0]) if "sum" in expression else None
        target = rng.uniform(size=shape) if target is None else target
        args = [tf.constant(target.astype("float32")), tf.constant(rng.normal(size=shape) * 3)]
        args[1] = tf.cast(args[1], tf.float32)
        dy = tf.constant(rng.normal(size=shape[:1]).astype("float32"))
    else:
        args = [tf.constant(rng.normal(size=shape).astype("float32"))]
        for kind, value in weights.values():
            size = (shape[1],) if kind == "channel" else ()
            args.append(tf.constant(value + 0.1 * rng.normal(size=size), tf.float32))
        dy = tf.constant(rng.normal(size=shape).astype("float32"))
    parsed = parse(expression)
    if loss:
        from scaffold.api import Options

        parsed = loss_formula(parsed, Options()).parsed
    naive_code = TensorFlowPrinter(like="x", float64_only=True, axis="-1").doprint(parsed.expr)
    names = sorted({s.name for s in parsed.symbols}) if not loss else ["y_true", "y_pred"]
    names = names if loss else ["x", *weights]
    namespace = {"tf": tf, "keras": keras, "math": __import__("math")}
    variants = {}
    for policy in policies:
        if policy == "derivative":
            continue
        module = f"bench_{name}_{policy}"
        op = getattr(importlib.import_module(module), module)
        label = "generated" if not variants else f"generated[{policy}]"
        variants[label] = _per_sample(tf, op) if loss else op
    plain = eval(f"lambda {', '.join(names)}: {naive_code}", namespace)
    variants["naive"] = _per_sample(tf, plain) if loss else plain
    variants["builtin"] = eval(builtin, namespace)

    def floor(*arguments):  # read the prediction (x), write one value per sample (per element)
        return tf.reduce_sum(arguments[-1], -1) if loss else 1.5 * arguments[0]

    variants["floor"] = floor
    return _time_mode(tf, (dy, *args), variants, mode, repeats, inner, device, rows=True)


def _per_sample(tf, loss_op):
    """A loss op's rows without the axis they kept: one value per sample, as Keras's."""

    def per_sample(y_true, y_pred):
        return tf.squeeze(loss_op(y_true, y_pred), -1)

    return per_sample


def _time_mode(tf, args, variants, mode, repeats, inner, device, rows=False) -> dict:
    steps = {}
    for label, func in variants.items():
        step = _forward_backward(tf, func, rows)
        if mode == "eager":
            steps[label] = step
        else:
            steps[label] = tf.function(step, jit_compile=(mode == "xla"))
        _first(tf, steps[label](*args)).numpy()  # warm-up: tracing and compilation untimed
    times = {label: [] for label in steps}
    for _ in range(repeats):
        for label, step in steps.items():  # interleaved
            started = time.perf_counter()
            for _ in range(inner):
                result = step(*args)
            _first(tf, result).numpy()
            times[label].append((time.perf_counter() - started) / inner)
    row = {}
    for label, values in times.items():
        row[label] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
            "peak_bytes": _peak_memory(tf, device, steps[label], args),
        }
        if mode == "eager":
            inputs = args[1:] if rows else args[:1]
            row[label]["held_bytes"] = _held_memory(tf, device, variants[label], *inputs)
    for other in ("builtin", "floor"):
        if other in row:
            row[f"generated/{other}"] = row["generated"]["median"] / row[other]["median"]
    for label in times:  # "generated" and each further policy's "generated[P]"
        if label.startswith("generated"):
            row[f"{label}/naive"] = row[label]["median"] / row["naive"]["median"]
    return row


def _first(tf, result):
    """The first gradient of a step's result: reading it waits for the whole step."""
    return tf.nest.flatten(result[1])[0]


def _forward_backward(tf, func, rows=False):
    # A closure, not a default argument: autograph mis-converts a custom-gradient function
    # passed as a default argument value.
    def step(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = func(x)
        return y, tape.gradient(y, x, output_gradients=dy)

    def row_step(dy, *arguments):  # reductions and losses: a gradient for every argument
        arguments = list(arguments)
        with tf.GradientTape() as tape:
            tape.watch(arguments)
            y = func(*arguments)
        grads = tape.gradient(y, arguments, output_gradients=dy)
        return y, [g for g in grads if g is not None]

    return row_step if rows else step


def _peak_memory(tf, device, step, args):
    try:
        tf.config.experimental.reset_memory_stats(device)
        before = tf.config.experimental.get_memory_info(device)["current"]
        result = step(*args)
        _first(tf, result).numpy()
        peak = tf.config.experimental.get_memory_info(device)["peak"]
    except (ValueError, tf.errors.OpError):  # a device without memory statistics
        return None
    del result
    # Small tensors do not reach the allocator's statistics (seen below ~64K elements).
    return peak - before if peak > before else None


def _held_memory(tf, device, func, *arguments):
    """Bytes kept from the forward pass for the backward one, beyond x and y (eager mode).

    In a deep network these are alive from a layer's forward pass until its backward pass:
    they, more than one step's peak, set how large a model fits in memory.
    """
    try:
        before = tf.config.experimental.get_memory_info(device)["current"]
        with tf.GradientTape() as tape:
            tape.watch(list(arguments))
            y = func(*arguments)
        held = tf.config.experimental.get_memory_info(device)["current"] - before
    except (ValueError, tf.errors.OpError):
        return None
    del tape
    y_bytes = y.shape.num_elements() * y.dtype.size
    return held - y_bytes if held >= y_bytes else None  # None: y itself was not tracked


def table(results: dict) -> str:
    shape = results.get("shape")
    rows = f"; reductions and losses on {shape[0]} x {shape[1]}" if shape else ""
    lines = [
        f"forward+backward, float32, {results['size']} elements{rows}; medians of"
        f" {results['repeats']} interleaved timings (ms), ratios of medians",
        "",
        "| function | mode | device | generated | naive | builtin | floor |"
        " gen/naive | gen/builtin | gen/floor | peak MiB gen / naive / builtin |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def ms(row, label):
        if label not in row:
            return "-"
        cell = row[label]
        return f"{cell['median'] * 1e3:.2f} ({cell['min'] * 1e3:.2f}-{cell['max'] * 1e3:.2f})"

    def ratio(row, key):
        return f"{row[key]:.2f}" if key in row else "-"

    def peaks(row):
        cells = []
        for label in ("generated", "naive", "builtin"):
            peak = row.get(label, {}).get("peak_bytes")
            cells.append("-" if peak is None else f"{peak / 2**20:.0f}")
        return " / ".join(cells)

    for row in results["rows"]:
        lines.append(
            f"| {row['function']} | {row['mode']} | {row['device']} | {ms(row, 'generated')} |"
            f" {ms(row, 'naive')} | {ms(row, 'builtin')} | {ms(row, 'floor')} |"
            f" {ratio(row, 'generated/naive')} | {ratio(row, 'generated/builtin')} |"
            f" {ratio(row, 'generated/floor')} | {peaks(row)} |"
        )
    return "\n".join(lines)


def memory_table(results: dict) -> str:
    """Memory kept from the forward pass for the backward one (eager), per variant."""
    lines = [
        "memory held from the forward pass for the backward pass, beyond x and y (MiB, eager)",
        "",
        "| function | device | generated | naive | builtin |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for row in results["rows"]:
        if row["mode"] != "eager":
            continue
        cells = []
        for label in ("generated", "naive", "builtin"):
            held = row.get(label, {}).get("held_bytes")
            cells.append("-" if held is None else f"{held / 2**20:.0f}")
        lines.append(f"| {row['function']} | {row['device']} | {' | '.join(cells)} |")
    return "\n".join(lines)


def policy_table(results: dict) -> str:
    """Each --save policy against naive autodiff: time ratio per mode, memory held (eager)."""
    labels = ["generated"] + [f"generated[{p}]" for p in results["policies"][1:]]
    header = " | ".join(results["policies"])
    lines = [
        "--save policies: time / naive autodiff per mode; MiB held between passes (eager)",
        "",
        f"| function | device | mode | {header} | held MiB {' / '.join(results['policies'])} |",
        "| --- | --- | --- |" + " ---: |" * (len(labels) + 1),
    ]
    for row in results["rows"]:
        ratios = " | ".join(
            f"{row[f'{label}/naive']:.2f}" if f"{label}/naive" in row else "-" for label in labels
        )
        held = [row.get(label, {}).get("held_bytes") for label in labels]
        held_text = " / ".join("-" if h is None else f"{h / 2**20:.0f}" for h in held)
        held_text = held_text if row["mode"] == "eager" else ""
        lines.append(
            f"| {row['function']} | {row['device']} | {row['mode']} | {ratios} | {held_text} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
