"""Speed of generated ops: forward+backward against autodiff, builtins and a memory-bound floor.

Run: python benchmarks/ops.py [--size 4194304] [--repeats 15] [--save reuse,derivative,inputs]
                              [--json FILE]

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
MODES = ("eager", "function", "xla")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4 * 1024 * 1024)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--inner", type=int, default=5, help="calls per timing")
    parser.add_argument("--functions", default=",".join(FUNCTIONS))
    parser.add_argument(
        "--save",
        default="reuse,derivative,inputs",
        help="scaffold's --save policies to generate each op with; the first is 'generated'",
    )
    parser.add_argument("--json", help="write all measurements to this file")
    args = parser.parse_args()
    names = [n for n in args.functions.split(",") if n]
    policies = [p for p in args.save.split(",") if p]
    from scaffold.api import Options, generate

    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            for policy in policies:
                module = f"bench_{name}_{policy}"
                generate(FUNCTIONS[name][0], name=module, out=folder, options=Options(save=policy))
        sys.path.insert(0, folder)
        results = measure(names, policies, args.size, args.repeats, args.inner)
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


def measure(names: list[str], policies: list[str], size: int, repeats: int, inner: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    from scaffold.parse import parse
    from scaffold.printing import TensorFlowPrinter

    devices = [d.name for d in tf.config.list_logical_devices("CPU")[:1]]
    devices += [d.name for d in tf.config.list_logical_devices("GPU")]
    results = {"size": size, "repeats": repeats, "inner": inner, "policies": policies, "rows": []}
    for device in devices:
        with tf.device(device):
            rng = np.random.default_rng(0)
            x = tf.constant(rng.normal(size=size).astype("float32"))
            dy = tf.constant(rng.normal(size=size).astype("float32"))
            for name in names:
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


def _time_mode(tf, args, variants, mode, repeats, inner, device) -> dict:
    steps = {}
    for label, func in variants.items():
        step = _forward_backward(tf, func)
        if mode == "eager":
            steps[label] = step
        else:
            steps[label] = tf.function(step, jit_compile=(mode == "xla"))
        steps[label](*args)[1].numpy()  # warm-up: tracing and compilation are not timed
    times = {label: [] for label in steps}
    for _ in range(repeats):
        for label, step in steps.items():  # interleaved
            started = time.perf_counter()
            for _ in range(inner):
                result = step(*args)
            result[1].numpy()
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
            row[label]["held_bytes"] = _held_memory(tf, device, variants[label], args[0])
    for other in ("builtin", "floor"):
        if other in row:
            row[f"generated/{other}"] = row["generated"]["median"] / row[other]["median"]
    for label in times:  # "generated" and each further policy's "generated[P]"
        if label.startswith("generated"):
            row[f"{label}/naive"] = row[label]["median"] / row["naive"]["median"]
    return row


def _forward_backward(tf, func):
    # A closure, not a default argument: autograph mis-converts a custom-gradient function
    # passed as a default argument value.
    def step(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = func(x)
        return y, tape.gradient(y, x, output_gradients=dy)

    return step


def _peak_memory(tf, device, step, args):
    try:
        tf.config.experimental.reset_memory_stats(device)
        before = tf.config.experimental.get_memory_info(device)["current"]
        result = step(*args)
        result[1].numpy()
        peak = tf.config.experimental.get_memory_info(device)["peak"]
    except (ValueError, tf.errors.OpError):  # a device without memory statistics
        return None
    del result
    # Small tensors do not reach the allocator's statistics (seen below ~64K elements).
    return peak - before if peak > before else None


def _held_memory(tf, device, func, x):
    """Bytes kept from the forward pass for the backward one, beyond x and y (eager mode).

    In a deep network these are alive from a layer's forward pass until its backward pass:
    they, more than one step's peak, set how large a model fits in memory.
    """
    try:
        before = tf.config.experimental.get_memory_info(device)["current"]
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = func(x)
        held = tf.config.experimental.get_memory_info(device)["current"] - before
    except (ValueError, tf.errors.OpError):
        return None
    del tape
    y_bytes = y.shape.num_elements() * y.dtype.size
    return held - y_bytes if held >= y_bytes else None  # None: y itself was not tracked


def table(results: dict) -> str:
    lines = [
        f"forward+backward, float32, {results['size']} elements; medians of"
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
        ratios = " | ".join(f"{row[f'{label}/naive']:.2f}" for label in labels)
        held = [row[label].get("held_bytes") for label in labels]
        held_text = " / ".join("-" if h is None else f"{h / 2**20:.0f}" for h in held)
        held_text = held_text if row["mode"] == "eager" else ""
        lines.append(
            f"| {row['function']} | {row['device']} | {row['mode']} | {ratios} | {held_text} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
