"""Stability at extreme inputs: scaffold's layers against naive autodiff and TensorFlow builtins.

Run: python benchmarks/stability.py [--json FILE] [--check]

Generates softplus, sigmoid, silu, mish, log-cosh, softsign, elu and selu with scaffold (stable
rewrites on), then in float32 at x = ±30, ±100, ±1000 (and a few ordinary points) compares the
value and the gradient of
  - the generated op,
  - TensorFlow's autodiff of the plain formula (what a naive custom op or tf.function gives),
  - the TF/Keras builtin where one exists (tf.nn.softplus, tf.sigmoid, tf.nn.silu,
    keras.activations.mish, tf.nn.softsign, tf.nn.elu, tf.nn.selu),
  - the exact value from mpmath (50 digits), rounded to float32.
Prints a Markdown table (function x input: naive autodiff vs scaffold) and, with --check, exits 1
unless every generated value and gradient is finite wherever the exact one is representable in
float32, within 1e-5 relative of it, and within 1e-5 of the builtin except where the builtin
itself is off from the exact value (listed as such: tf.sigmoid's gradient at 30, tf.nn.elu's
and tf.nn.selu's at -30 underflow to 0).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile

import mpmath
import sympy

from scaffold.api import generate
from scaffold.functions import MPMATH_NAMESPACE
from scaffold.parse import parse

FUNCTIONS = {
    "softplus": ("log(1+exp(x))", "tf.nn.softplus"),
    "sigmoid": ("1/(1+exp(-x))", "tf.sigmoid"),
    "silu": ("x/(1+exp(-x))", "tf.nn.silu"),
    "mish": ("x*tanh(log(1+exp(x)))", "keras.activations.mish"),
    "log_cosh": ("log(cosh(x))", None),
    "softsign": ("x/(1+abs(x))", "tf.nn.softsign"),
    "elu": ("Piecewise((x, x > 0), (exp(x) - 1, True))", "tf.nn.elu"),
    "selu": (
        "1.0507009873554805*Piecewise((x, x > 0), (1.6732632423543772*(exp(x) - 1), True))",
        "tf.nn.selu",
    ),
}
EXTREMES = [-1000.0, -100.0, -30.0, 30.0, 100.0, 1000.0]
POINTS = [*EXTREMES[:3], -1.5, -0.25, 0.25, 1.5, *EXTREMES[3:]]
RTOL, ATOL = 1e-5, 1e-35  # ATOL: float32 denormals, which kernels may flush to zero
FLOAT32_MAX = 3.4028234663852886e38


def exact(expression: str) -> tuple[list[float | None], list[float | None]]:
    """F and f' at POINTS from mpmath at 50 digits; None where not representable in float32."""
    parsed = parse(expression)
    (x,) = parsed.symbols
    values = []
    for expr in (parsed.expr, sympy.diff(parsed.expr, x)):
        expr = expr.replace(sympy.DiracDelta, lambda *a: 0)
        func = sympy.lambdify(x, expr, modules=[MPMATH_NAMESPACE, "mpmath"])
        with mpmath.workdps(50):
            column = []
            for point in POINTS:
                value = func(mpmath.mpf(point))
                ok = mpmath.isfinite(value) and abs(value) < FLOAT32_MAX
                column.append(float(value) if ok else None)
        values.append(column)
    return values[0], values[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the measurements to this file")
    parser.add_argument("--check", action="store_true", help="exit 1 if the goal is not met")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for name, (expression, _) in FUNCTIONS.items():
            generate(expression, name=f"stable_{name}", out=folder)
        sys.path.insert(0, folder)
        results = measure()
    failures = [
        f"{r['function']} at x={r['x']}: {problem}" for r in results for problem in r["problems"]
    ]
    print(table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"results": results, "failures": failures}, handle, indent=1)
    for row in results:
        for note in row["builtin_off"]:
            print(f"builtin off at {row['function']}, x={row['x']:g}: {note}")
    for failure in failures:
        print("FAIL", failure)
    return 1 if args.check and failures else 0


def measure() -> list[dict]:
    import keras
    import numpy as np
    import tensorflow as tf

    from scaffold.printing import TensorFlowPrinter

    results = []
    for name, (expression, builtin) in FUNCTIONS.items():
        op = getattr(importlib.import_module(f"stable_{name}"), f"stable_{name}")
        naive_code = TensorFlowPrinter(like="x", float64_only=True).doprint(parse(expression).expr)
        naive = eval(f"lambda x: {naive_code}", {"tf": tf, "math": __import__("math")})
        reference = eval(builtin, {"tf": tf, "keras": keras}) if builtin else None
        truth_f, truth_g = exact(expression)
        x = tf.constant(POINTS, tf.float32)
        measured = {}
        for label, func in (("scaffold", op), ("naive", naive), ("builtin", reference)):
            if func is None:
                continue
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = func(x)
            measured[label] = (y.numpy(), tape.gradient(y, x).numpy())
        for i, point in enumerate(POINTS):
            row = {"function": name, "x": point, "problems": []}
            for label, (values, grads) in measured.items():
                row[label] = [float(values[i]), float(grads[i])]
            row["exact"] = [truth_f[i], truth_g[i]]
            row["builtin_off"] = []
            for k, (what, truth) in enumerate(
                zip(("value", "gradient"), row["exact"], strict=True)
            ):
                if truth is None:
                    continue  # not representable in float32: nothing to demand
                got = row["scaffold"][k]
                if not np.isfinite(got):
                    row["problems"].append(f"{what} is {got}, exact {truth:.8g}")
                elif not np.isclose(got, truth, rtol=RTOL, atol=ATOL):
                    row["problems"].append(f"{what} {got:.8g}, exact {truth:.8g}")
                builtin_value = row.get("builtin", [None, None])[k]
                if builtin_value is not None and not np.isclose(
                    builtin_value, got, rtol=RTOL, atol=ATOL
                ):
                    # Disagreement with the builtin is only acceptable where the builtin
                    # is the one that is off from the exact value.
                    if np.isclose(builtin_value, truth, rtol=RTOL, atol=ATOL):
                        row["problems"].append(f"{what} disagrees with the builtin")
                    else:
                        row["builtin_off"].append(
                            f"{what}: builtin {builtin_value:.8g}, exact {truth:.8g}"
                        )
            results.append(row)
    return results


def table(results: list[dict]) -> str:
    """Markdown: per function and extreme input, naive autodiff vs scaffold (value / grad)."""

    def cell(pair: list[float]) -> str:
        return " / ".join(f"{v:.4g}" for v in pair)

    lines = [
        "| function | x | naive autodiff: f / f' | scaffold: f / f' |",
        "| --- | ---: | --- | --- |",
    ]
    for row in results:
        if row["x"] in EXTREMES:
            lines.append(
                f"| {row['function']} | {row['x']:g} | {cell(row['naive'])} |"
                f" {cell(row['scaffold'])} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
