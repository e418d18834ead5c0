"""SymPy expression -> ``keras.ops`` source text: the portable target (``--backend keras``).

The TensorFlow printer with other tables. Code written with ``keras.ops`` runs on every Keras 3
backend; what ``keras.ops`` lacks (lgamma, digamma, polygamma) is refused with a pointer to the
TensorFlow target, and TensorFlow's fused ``SoftplusGrad`` kernel is not used.
"""

from __future__ import annotations

import sympy

from .errors import UnsupportedError
from .functions import Expm1, Log1p, Round, Sigmoid, Softplus
from .printing import TensorFlowPrinter
from .reductions import LogSumExp, Norm, ReduceMax, ReduceMean, ReduceMin, ReduceSum

#: SymPy function -> keras.ops function taking one tensor.
KERAS_FUNCTIONS: dict[type, str] = {
    sympy.sin: "ops.sin",
    sympy.cos: "ops.cos",
    sympy.tan: "ops.tan",
    sympy.asin: "ops.arcsin",
    sympy.acos: "ops.arccos",
    sympy.atan: "ops.arctan",
    sympy.sinh: "ops.sinh",
    sympy.cosh: "ops.cosh",
    sympy.tanh: "ops.tanh",
    sympy.asinh: "ops.arcsinh",
    sympy.acosh: "ops.arccosh",
    sympy.atanh: "ops.arctanh",
    sympy.exp: "ops.exp",
    sympy.log: "ops.log",
    sympy.erf: "ops.erf",
    sympy.erfc: "ops.erfc",
    sympy.Abs: "ops.abs",
    sympy.sign: "ops.sign",
    sympy.floor: "ops.floor",
    sympy.ceiling: "ops.ceil",
    Round: "ops.round",  # half to even on every backend, as tf.math.round
    Sigmoid: "ops.sigmoid",
    Softplus: "ops.softplus",
    Log1p: "ops.log1p",
    Expm1: "ops.expm1",
}
KERAS_REDUCTIONS: dict[type, str] = {
    ReduceSum: "ops.sum",
    ReduceMean: "ops.mean",
    ReduceMax: "ops.max",
    ReduceMin: "ops.min",
    LogSumExp: "ops.logsumexp",  # shifted by the row's max on every backend
    Norm: "ops.norm",
}
KERAS_OPS: dict[str, str] = {
    "sqrt": "ops.sqrt",
    "rsqrt": "ops.rsqrt",
    "maximum": "ops.maximum",
    "minimum": "ops.minimum",
    "where": "ops.where",
    "ones_like": "ops.ones_like",
    "zeros_like": "ops.zeros_like",
    "equal": "ops.equal",
    "not_equal": "ops.not_equal",
    "logical_and": "ops.logical_and",
    "logical_or": "ops.logical_or",
    "logical_not": "ops.logical_not",
    "log_softmax": "ops.log_softmax",
    "softmax": "ops.softmax",
    "divide_no_nan": "ops.divide_no_nan",
    "stop_gradient": "ops.stop_gradient",
}
#: Functions the TensorFlow target has and keras.ops does not, by the names users type.
MISSING = ("loggamma", "lgamma", "digamma", "polygamma")


def missing_hint() -> str:
    """The hint for a function keras.ops lacks: the other target, and what is supported."""
    from .parse import FUNCTIONS  # the names users type

    supported = sorted({*FUNCTIONS, "Piecewise", "where"} - set(MISSING))
    return (
        f"use --backend tensorflow for {', '.join(MISSING)}. Supported with --backend keras:"
        f" {', '.join(supported)}"
    )


class KerasPrinter(TensorFlowPrinter):
    """Prints SymPy expressions as ``keras.ops`` code (``from keras import ops``)."""

    TARGET = "keras.ops"
    FUNCTIONS = KERAS_FUNCTIONS
    REDUCTIONS = KERAS_REDUCTIONS
    OPS = KERAS_OPS
    FLOAT32_ONLY = frozenset()

    def unsupported_hint(self) -> str:
        """Name what keras.ops can print, and the target that has the rest."""
        return missing_hint()

    def _fused_sigmoid(self, expr: sympy.Mul) -> str:
        return ""  # TensorFlow's SoftplusGrad kernel: not in keras.ops

    def _print_polygamma(self, expr: sympy.polygamma) -> str:
        raise UnsupportedError(
            f"keras.ops cannot compute {expr} (polygamma, digamma)", hint=self.unsupported_hint()
        )

    def broadcast_to(self, code: str, tensors: list[str]) -> str:
        """``code`` broadcast against ``tensors``, by adding zeros shaped like each.

        Exact, and needs no dynamic shape arithmetic, which keras.ops does not offer portably.
        """
        return " + ".join([f"({code})", *(f"ops.zeros_like({t})" for t in tensors)])


def printer_for(backend: str) -> type[TensorFlowPrinter]:
    """The printer class of a ``--backend`` (``spec.BACKENDS``)."""
    return KerasPrinter if backend == "keras" else TensorFlowPrinter
