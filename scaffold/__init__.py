"""scaffold: from a formula to a TensorFlow custom-gradient op, a Keras 3 layer and its tests.

``generate(expression, name=..., out=...)`` is the Python API and ``explain(expression)`` shows
the derivation (with its plot in Jupyter); ``scaffold`` is the command line.
"""

from __future__ import annotations

__version__ = "0.6.0"
__all__ = ["__version__", "explain", "generate", "render_layer"]


def __getattr__(name: str):
    # Lazy: ``import scaffold`` (and ``scaffold --help``) must not pay for SymPy.
    if name in ("generate", "render_layer"):
        from . import api

        return getattr(api, name)
    if name == "explain":  # in a notebook, the explanation renders with its plot
        from .explanation import explain

        return explain
    raise AttributeError(f"module 'scaffold' has no attribute {name!r}")
