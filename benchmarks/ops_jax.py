"""Speed of portable ops (--backend keras) under JAX: ``python benchmarks/ops.py --backend jax``.

For each function, scaffold generates the op with ``--backend keras`` (keras.ops and
keras.ops.custom_gradient) into a temporary folder. Under ``jax.jit``, one forward+backward
step (``jax.vjp`` with a random upstream gradient; the step returns y and every gradient) is
timed for
  generated  the portable op,
  naive      JAX's autodiff of the same formula as typed (keras.ops, no custom gradient),
  builtin    jax.nn's function (or keras.ops's), where one exists,
  floor      y = 1.5*x and its gradient: the memory-bound floor,
on JAX's default device (the GPU when jax sees one, else the CPU). Elementwise functions run
on --size float32 elements, reductions on --rows x --features. Variants run interleaved,
--repeats rounds of --inner calls; the table gives medians and generated/other ratios.
"""

from __future__ import annotations

import importlib.util
import os
import statistics
import tempfile
import time

FUNCTIONS = {
    "gelu": ("0.5*x*(1+erf(x/sqrt(2)))", "lambda x: jax.nn.gelu(x, approximate=False)"),
    "silu": ("x/(1+exp(-x))", "jax.nn.silu"),
    "mish": ("x*tanh(log(1+exp(x)))", "lambda x: x * jnp.tanh(jax.nn.softplus(x))"),
    "softplus": ("log(1+exp(x))", "jax.nn.softplus"),
    "log_cosh": ("log(cosh(x))", None),
    "elu": ("Piecewise((x, x > 0), (exp(x) - 1, True))", "jax.nn.elu"),
}
#: Reductions over the last axis: name -> (expression, builtin).
ROW_FUNCTIONS = {
    "softmax": ("exp(x)/sum(exp(x))", "lambda x: jax.nn.softmax(x, axis=-1)"),
    "log_softmax": ("x - log(sum(exp(x)))", "lambda x: jax.nn.log_softmax(x, axis=-1)"),
    "l2_normalize": ("x/norm(x)", None),
}


def run(args) -> dict:
    """Generate, time and return the results (``args`` as parsed by ops.py)."""
    os.environ["KERAS_BACKEND"] = "jax"
    names = [n for n in args.functions.split(",") if n in FUNCTIONS or n in ROW_FUNCTIONS]
    import sys

    from scaffold.api import Options, generate

    policies = [p for p in args.save.split(",") if p]
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            expression = (FUNCTIONS.get(name) or ROW_FUNCTIONS[name])[0]
            for policy in policies:
                if name in ROW_FUNCTIONS and policy == "derivative":  # no df/dx: skipped
                    continue
                options = Options(backend="keras", save=policy)
                module = f"bench_{name}_keras_{policy}"
                generate(expression, name=module, out=folder, options=options)
        sys.path.insert(0, folder)
        shape = (args.rows, args.features)
        return measure(names, policies, args.size, shape, args.repeats, args.inner)


def measure(names, policies, size, shape, repeats, inner) -> dict:
    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np

    from scaffold.keras_printing import KerasPrinter
    from scaffold.parse import parse

    assert keras.backend.backend() == "jax", "KERAS_BACKEND must be jax before keras starts"
    device = jax.devices()[0]
    rng = np.random.default_rng(0)
    results = {"backend": "jax", "device": str(device), "size": size, "shape": shape}
    results.update(repeats=repeats, inner=inner, rows=[])
    namespace = {"jax": jax, "jnp": jnp, "ops": keras.ops, "math": __import__("math")}
    for name in names:
        expression, builtin = FUNCTIONS.get(name) or ROW_FUNCTIONS[name]
        dims = (size,) if name in FUNCTIONS else shape
        x = jnp.asarray(rng.normal(size=dims).astype("float32"))
        dy = jnp.asarray(rng.normal(size=dims).astype("float32"))
        naive = KerasPrinter(like="x", float64_only=True, axis="-1").doprint(parse(expression).expr)
        variants = {}
        for policy in policies:
            module = f"bench_{name}_keras_{policy}"
            if importlib.util.find_spec(module) is None:  # skipped: no such policy for it
                continue
            label = "generated" if not variants else f"generated[{policy}]"
            variants[label] = getattr(importlib.import_module(module), module)
        variants["naive"] = eval(f"lambda x: {naive}", namespace)  # our printer's text
        variants["floor"] = lambda x: 1.5 * x
        if builtin:
            variants["builtin"] = eval(builtin, namespace)
        row = _time(jax, variants, x, dy, repeats, inner)
        row.update(function=name, mode="jax.jit", device=device.platform)
        results["rows"].append(row)
    return results


def _time(jax, variants, x, dy, repeats, inner) -> dict:
    steps = {}
    for label, function in variants.items():

        def step(x, dy, function=function):
            y, pullback = jax.vjp(function, x)
            return y, pullback(dy)[0]

        steps[label] = jax.jit(step)
        jax.block_until_ready(steps[label](x, dy))  # compile, untimed
    times = {label: [] for label in steps}
    for _ in range(repeats):
        for label, step in steps.items():  # interleaved: drift hits every variant alike
            started = time.perf_counter()
            for _ in range(inner):
                result = step(x, dy)
            jax.block_until_ready(result)
            times[label].append((time.perf_counter() - started) / inner)
    row = {
        label: {"median": statistics.median(v), "min": min(v), "max": max(v)}
        for label, v in times.items()
    }
    for other in ("naive", "builtin", "floor"):
        if other in row:
            row[f"generated/{other}"] = row["generated"]["median"] / row[other]["median"]
    for label in times:  # each further --save policy against autodiff
        if label.startswith("generated["):
            row[f"{label}/naive"] = row[label]["median"] / row["naive"]["median"]
    return row


def table(results: dict) -> str:
    """A Markdown table: medians in ms and the ratios of the generated op's median."""
    labels = ("generated", "naive", "builtin", "floor")
    lines = [
        f"JAX on {results['device']}; elementwise: {results['size']} float32, reductions:"
        f" {results['shape'][0]} x {results['shape'][1]}; medians of {results['repeats']}",
        "",
        "| function | "
        + " | ".join(f"{label} ms" for label in labels)
        + " | gen/naive | gen/builtin | gen/floor |",
        "| --- " * (len(labels) + 4) + "|",
    ]
    for row in results["rows"]:
        medians = [f"{row[label]['median'] * 1e3:.2f}" if label in row else "-" for label in labels]
        ratios = [
            f"{row[f'generated/{o}']:.2f}" if f"generated/{o}" in row else "-"
            for o in ("naive", "builtin", "floor")
        ]
        lines.append(f"| {row['function']} | " + " | ".join(medians + ratios) + " |")
    policies = sorted({k for row in results["rows"] for k in row if k.endswith("]/naive")})
    if policies:
        lines += ["", "| function | " + " | ".join(policies) + " |"]
        lines.append("| --- " * (len(policies) + 1) + "|")
        for row in results["rows"]:
            cells = [f"{row[p]:.2f}" if p in row else "-" for p in policies]
            lines.append(f"| {row['function']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
