"""Whole-process generation time against the import floor of scaffold's dependencies.

Run: python benchmarks/generation.py [--runs 9] [--expression "sin(x)"]

Times, as whole processes and interleaved (A B A B ...) so machine drift hits both alike,
  A: scaffold new-layer EXPRESSION --out TMP --force
  B: python -c "import sympy, jinja2, typer, black"   (the floor: what any run must import)
and prints the median and min-max of each and of the pairwise ratio A/B. It also checks that
generation never imports TensorFlow. Only the standard library is used. By default the cache
(black's output, compiled templates) is warm after the warm-up run, as when a layer is
regenerated; --cold gives every generation run an empty cache.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(command: list[str], cold: bool = False) -> float:
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if cold:
            env["SCAFFOLD_CACHE_DIR"] = cache
        start = time.perf_counter()
        subprocess.run(
            command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--expression", default="sin(x)")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="give every run an empty cache folder (black output, compiled templates)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        generate = [sys.executable, "-m", "scaffold", "new-layer", args.expression,
                    "--name", "bench_layer", "--out", out, "--force"]  # fmt: skip
        floor = [sys.executable, "-c", "import sympy, jinja2, typer, black"]
        probe = (
            "import runpy, sys; sys.argv = " + repr(["scaffold", *generate[3:]]) + "\n"
            "try:\n    runpy.run_module('scaffold', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules, 'generation imported TensorFlow'\n"
        )
        subprocess.run([sys.executable, "-c", probe], check=True, stdout=subprocess.DEVNULL)
        timed(generate), timed(floor)  # warm-up: file caches, .pyc files
        a, b = [], []
        for _ in range(args.runs):
            a.append(timed(generate, cold=args.cold))
            b.append(timed(floor))
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    for label, values in (("generation", a), ("import floor", b), ("ratio", ratios)):
        print(
            f"{label:<13} median {statistics.median(values):.3f}"
            f"  min {min(values):.3f}  max {max(values):.3f}"
        )
    print("TensorFlow imported during generation: no")


if __name__ == "__main__":
    main()
