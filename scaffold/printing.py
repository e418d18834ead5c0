"""SymPy expression -> TensorFlow source text.

One printer class, one table (``TF_FUNCTIONS``): adding a function to scaffold means one line here
(and one in ``parse.FUNCTIONS`` if users may type it). SymPy's own TensorFlow printer is not used:
it imports TensorFlow, prints ``tf.math.sqrt(2)`` (an int32 tensor that breaks float math) and
cannot print digamma, erfc and friends.

Dtype rule: a constant is never a tensor. Numbers print as Python numbers (``2``, ``x/3``,
``math.sqrt(2)``), which TensorFlow converts to the dtype of the tensor they meet, so float16 in
gives float16 out. Expressions free of inputs are the caller's job (see ``plan``): they need a
shape.
"""

from __future__ import annotations

import ast
import math

import sympy
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.pycode import PythonCodePrinter
from sympy.printing.str import StrPrinter

from .errors import UnsupportedError
from .functions import (
    Expm1,
    Log1p,
    LogAddExp,
    LogCosh,
    Maximum,
    Minimum,
    Round,
    SafeInput,
    Sigmoid,
    Softplus,
)
from .reductions import (
    AxisSize,
    DivideNoNan,
    IsExtreme,
    LogSoftmax,
    LogSumExp,
    Norm,
    ReduceMax,
    ReduceMean,
    ReduceMin,
    ReduceSum,
    Reduction,
)

#: SymPy function -> TensorFlow function taking one tensor.
TF_FUNCTIONS: dict[type, str] = {
    sympy.sin: "tf.math.sin",
    sympy.cos: "tf.math.cos",
    sympy.tan: "tf.math.tan",
    sympy.asin: "tf.math.asin",
    sympy.acos: "tf.math.acos",
    sympy.atan: "tf.math.atan",
    sympy.sinh: "tf.math.sinh",
    sympy.cosh: "tf.math.cosh",
    sympy.tanh: "tf.math.tanh",
    sympy.asinh: "tf.math.asinh",
    sympy.acosh: "tf.math.acosh",
    sympy.atanh: "tf.math.atanh",
    sympy.exp: "tf.math.exp",
    sympy.log: "tf.math.log",
    sympy.erf: "tf.math.erf",
    sympy.erfc: "tf.math.erfc",
    sympy.loggamma: "tf.math.lgamma",
    sympy.Abs: "tf.math.abs",
    sympy.sign: "tf.math.sign",
    sympy.floor: "tf.math.floor",
    sympy.ceiling: "tf.math.ceil",
    Round: "tf.math.round",
    Sigmoid: "tf.math.sigmoid",
    Softplus: "tf.math.softplus",
    Log1p: "tf.math.log1p",
    Expm1: "tf.math.expm1",
}
#: Reductions over the feature axis, keeping it (see reductions.py).
TF_REDUCTIONS: dict[type, str] = {
    ReduceSum: "tf.math.reduce_sum",
    ReduceMean: "tf.math.reduce_mean",
    ReduceMax: "tf.math.reduce_max",
    ReduceMin: "tf.math.reduce_min",
    LogSumExp: "tf.math.reduce_logsumexp",  # shifted by the row's max: never overflows
    Norm: "tf.norm",
}
#: Stable blocks printed through helpers the module template defines.
HELPERS: dict[type, str] = {LogCosh: "log_cosh", LogAddExp: "log_add_exp"}
_RELATIONS = {">": ">", ">=": ">=", "<": "<", "<=": "<="}
_EQUALITY = {"==": "equal", "!=": "not_equal"}


#: Functions printed by first rewriting them into table entries (exact identities).
REWRITES = {
    sympy.sec: lambda arg: 1 / sympy.cos(arg),
    sympy.csc: lambda arg: 1 / sympy.sin(arg),
    sympy.cot: lambda arg: 1 / sympy.tan(arg),
}

#: Integers and fractions with larger terms print as float literals: as Python ints they would
#: overflow float16 (max 65504) in products such as 2101401974710961*x/2000000000000000.
MAX_SMALL_TERM = 10**4
_number_printer = PythonCodePrinter({"fully_qualified_modules": True})


def supported_functions() -> list[str]:
    """Names of the SymPy functions the printer can translate, for error messages."""
    names = {f.__name__ for f in TF_FUNCTIONS} | {f.__name__ for f in REWRITES}
    names |= {f.__name__ for f in HELPERS}
    return sorted(names | {"polygamma", "sqrt", "Pow", "Max", "Min", "Heaviside", "Piecewise"})


def to_printable(expr: sympy.Expr) -> sympy.Expr:
    """Replace functions without a TensorFlow counterpart by equal expressions that have one."""
    for func, rewrite in REWRITES.items():
        expr = expr.replace(func, rewrite)
    return expr


#: The operations the printer writes besides the tables' functions, by role.
TF_OPS: dict[str, str] = {
    "sqrt": "tf.math.sqrt",
    "rsqrt": "tf.math.rsqrt",
    "maximum": "tf.math.maximum",
    "minimum": "tf.math.minimum",
    "where": "tf.where",
    "ones_like": "tf.ones_like",
    "zeros_like": "tf.zeros_like",
    "equal": "tf.math.equal",
    "not_equal": "tf.math.not_equal",
    "logical_and": "tf.math.logical_and",
    "logical_or": "tf.math.logical_or",
    "logical_not": "tf.math.logical_not",
    "log_softmax": "tf.nn.log_softmax",
    "softmax": "tf.nn.softmax",
    "divide_no_nan": "tf.math.divide_no_nan",
    "stop_gradient": "tf.stop_gradient",
}


class TensorFlowPrinter(StrPrinter):
    """Prints SymPy expressions as TensorFlow code; records the helpers the code needs.

    A target is this class with other tables: ``keras_printing.KerasPrinter`` prints the
    same expressions with ``keras.ops``.
    """

    TARGET = "TensorFlow"
    FUNCTIONS = TF_FUNCTIONS
    REDUCTIONS = TF_REDUCTIONS
    OPS = TF_OPS
    #: Functions the target computes in float32 for float16/bfloat16 inputs.
    FLOAT32_ONLY = frozenset({sympy.loggamma})

    def __init__(
        self, *, like: str, float64_only: bool = False, one_shape: bool = False, axis: str = "AXIS"
    ) -> None:
        super().__init__({"order": "none"})
        # like: a tensor in scope wherever the code runs (the first input), which gives constant
        # branches of a conditional their dtype. float64_only: code for the generated tests,
        # which needs no float16/bfloat16 workarounds and no helpers. one_shape: every tensor
        # in the code has the same shape (one input, no weights), so the fused kernels below,
        # which do not broadcast, may be used.
        self.like = like
        self.float64_only = float64_only
        self.one_shape = one_shape
        self.axis = axis  # the reductions' axis: the module's AXIS, or a number in the tests
        self.uses_math = False
        self.fused_sigmoid = False
        self.helpers: set[str] = set()

    def doprint(self, expr: sympy.Expr) -> str:
        """Return code for ``expr``."""
        return super().doprint(to_printable(expr))

    def unsupported_hint(self) -> str:
        """The hint of an error for a function the target lacks."""
        return "supported functions: " + ", ".join(supported_functions())

    def call(self, role: str, *args: str) -> str:
        """Code calling the target's operation for ``role`` (a key of ``OPS``)."""
        return f"{self.OPS[role]}({', '.join(args)})"

    def broadcast_to(self, code: str, tensors: list[str]) -> str:
        """``code`` broadcast to the shape of ``tensors`` broadcast against each other."""
        shape = f"tf.shape({tensors[0]})"
        for tensor in tensors[1:]:
            shape = f"tf.broadcast_dynamic_shape({shape}, tf.shape({tensor}))"
        return f"tf.broadcast_to({code}, {shape})"

    def _print(self, expr, **kwargs) -> str:
        if isinstance(expr, sympy.Expr) and expr.is_number and not expr.is_Rational:
            return self._print_constant(expr)
        return super()._print(expr, **kwargs)

    # Numbers -------------------------------------------------------------------------------
    def _print_constant(self, expr: sympy.Expr) -> str:
        """A number that is not rational: Python's math module, or a float literal."""
        if expr.is_real is False or (expr.is_real is None and not _numerically_real(expr)):
            raise UnsupportedError(f"the constant {expr} is not a real number")
        value = self._float_literal(expr)  # refuses constants beyond float range
        if isinstance(expr, sympy.Float):
            return value  # the nearest float64, as repr gives it: not 20 digits
        try:
            code = _number_printer.doprint(expr)
        except NotImplementedError:  # sigmoid(2) and other blocks: Python's math lacks them
            return value
        try:
            tree = ast.parse(code, mode="eval").body
        except SyntaxError:
            tree = None
        if tree is None or not _only_math_names(tree) or _overflows(code):
            return value
        self.uses_math = True
        atomic = isinstance(tree, (ast.Call, ast.Attribute, ast.Name, ast.Constant))
        return code if atomic else f"({code})"

    def _float_literal(self, expr: sympy.Expr) -> str:
        value = float(expr.evalf(20))
        if not math.isfinite(value):
            raise UnsupportedError(f"the constant {expr} does not fit in a floating-point number")
        return repr(value) if value >= 0 else f"({value!r})"

    def _print_Integer(self, expr: sympy.Integer) -> str:
        if abs(expr.p) > MAX_SMALL_TERM:
            return self._float_literal(expr)
        return str(expr.p)

    def _print_Rational(self, expr: sympy.Rational) -> str:
        if max(abs(expr.p), expr.q) > MAX_SMALL_TERM:
            return self._float_literal(expr)
        return f"{expr.p}/{expr.q}"

    def _print_Mul(self, expr: sympy.Mul) -> str:
        # All numeric factors become one parenthesised constant, which Python evaluates before
        # it meets a tensor: x*sqrt(2)/2 is one multiplication, not two passes over the data
        # (each a kernel launch and a full read and write in eager mode). StrPrinter also splits
        # a rational coefficient into numerator and denominator, which for large terms would
        # overflow float16 (see MAX_SMALL_TERM). Integer coefficients and 1/n stay as written.
        if not expr.free_symbols:
            return self._print(expr)
        fused = self._fused_sigmoid(expr)
        if fused:
            return fused
        number, rest = expr.as_independent(*expr.free_symbols, as_Add=False)
        simple = number.is_Integer or (number.is_Rational and number.p == 1)
        if number == 1 or (simple and not large_term(number)):
            return super()._print_Mul(expr)
        if number.is_Rational and large_term(number):
            constant = self._float_literal(number)
        elif number.is_Rational:
            constant = f"({number.p}/{number.q})"
        else:
            constant = self._print_constant(number)
            constant = constant if constant.startswith("(") else f"({constant})"
        return f"{constant}*{self.parenthesize(rest, PRECEDENCE['Mul'])}"

    def _fused_sigmoid(self, expr: sympy.Mul) -> str:
        """g*sigmoid(u) as TensorFlow's SoftplusGrad kernel, which computes exactly that.

        One kernel instead of two (sigmoid, then the product) saves a full pass over the data
        in eager mode and under tf.function; XLA lowers both forms alike. The kernel does not
        broadcast, so it is used only when every tensor has one shape ("" otherwise).
        """
        if not self.one_shape:
            return ""
        sigmoid = next(
            (f for f in expr.args if isinstance(f, Sigmoid) and f.args[0].free_symbols), None
        )
        if sigmoid is None:
            return ""
        others = list(expr.args)
        others.remove(sigmoid)
        rest = sympy.Mul(*others)
        if not rest.free_symbols:
            return ""
        self.fused_sigmoid = True
        return (
            f"tf.raw_ops.SoftplusGrad(gradients={self._print(rest)},"
            f" features={self._print(sigmoid.args[0])})"
        )

    def _print_Float(self, expr: sympy.Float) -> str:
        return self._float_literal(expr)

    # Operators -----------------------------------------------------------------------------
    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:
        base, exponent = expr.as_base_exp()
        if exponent == sympy.S.Half:
            return f"{self.OPS['sqrt']}({self._print(base)})"
        if exponent == -sympy.S.Half:  # one kernel, not a square root and a division
            return f"{self.OPS['rsqrt']}({self._print(base)})"
        if exponent.is_number and exponent.is_negative:
            # Only reached outside a product (StrPrinter's Mul prints these as a denominator).
            return f"(1 / {self.parenthesize(sympy.Pow(base, -exponent), PRECEDENCE['Mul'])})"
        if exponent.is_Integer and 2 <= exponent <= 4:
            # Repeated multiplication: tf.pow is a slow general kernel for these.
            factor = self.parenthesize(base, PRECEDENCE["Mul"], strict=True)
            return "(" + "*".join([factor] * int(exponent)) + ")"
        prec = precedence(expr)
        return f"{self.parenthesize(base, prec, strict=True)}**{self.parenthesize(exponent, prec)}"

    # Functions -----------------------------------------------------------------------------
    def _print_Function(self, expr: sympy.Function) -> str:
        # Through the class hierarchy: scaffold's Floor prints as SymPy's floor.
        name = next((self.FUNCTIONS[c] for c in type(expr).__mro__ if c in self.FUNCTIONS), None)
        if name is None:
            raise UnsupportedError(
                f"scaffold cannot translate {type(expr).__name__}() to {self.TARGET}"
                f" (it appears in {expr})",
                hint=self.unsupported_hint(),
            )
        args = ", ".join(_unwrapped(self._print(arg)) for arg in expr.args)
        if expr.func in self.FLOAT32_ONLY and not self.float64_only:
            return self._in_float32(name, args)
        return f"{name}({args})"

    def _print_polygamma(self, expr: sympy.polygamma) -> str:
        order, arg = expr.args
        # TensorFlow has no float16/bfloat16 kernel for digamma and polygamma: the generated
        # helper computes them in float32 and casts back.
        if not (order.is_Integer and order >= 0):
            raise UnsupportedError(f"polygamma of non-integer order in {expr}")
        if self.float64_only:
            return f"tf.math.polygamma(tf.constant({order}, tf.float64), {self._print(arg)})"
        if order == 0:
            return self._in_float32("tf.math.digamma", self._print(arg))
        self.helpers.update({"polygamma", "in_float32"})
        return f"_polygamma({int(order)}, {self._print(arg)})"

    def _in_float32(self, function: str, arg: str) -> str:
        self.helpers.add("in_float32")
        return f"_in_float32({function}, {arg})"

    # Non-smooth functions and conditionals ---------------------------------------------------
    def _print_LogCosh(self, expr: LogCosh) -> str:
        return self._helper(expr)

    def _print_LogAddExp(self, expr: LogAddExp) -> str:
        return self._helper(expr)

    def _helper(self, expr: sympy.Function) -> str:
        name = HELPERS[type(expr)]
        self.helpers.add(name)
        return f"_{name}({', '.join(_unwrapped(self._print(arg)) for arg in expr.args)})"

    def _print_Max(self, expr: sympy.Max | Maximum) -> str:
        # The forward value does not depend on the order; the tie rule is in the derivative.
        return self._nested(self.OPS["maximum"], _tensors_first(expr.args))

    def _print_Min(self, expr: sympy.Min | Minimum) -> str:
        return self._nested(self.OPS["minimum"], _tensors_first(expr.args))

    def _print_Maximum(self, expr: Maximum) -> str:
        return self._print_Max(expr)

    def _print_Minimum(self, expr: Minimum) -> str:
        return self._print_Min(expr)

    def _print_Reduction(self, expr: Reduction) -> str:
        function = self.REDUCTIONS[type(expr)]
        return (
            f"{function}({_unwrapped(self._print(expr.args[0]))}, axis={self.axis}, keepdims=True)"
        )

    def _print_LogSoftmax(self, expr: LogSoftmax) -> str:
        return (
            f"{self.OPS['log_softmax']}({_unwrapped(self._print(expr.args[0]))}, axis={self.axis})"
        )

    def _print_AxisSize(self, expr: AxisSize) -> str:
        return self._helper_call("axis_size", expr.args)

    def _print_IsExtreme(self, expr: IsExtreme) -> str:
        return self._helper_call("is_extreme", expr.args)

    def _print_DivideNoNan(self, expr: DivideNoNan) -> str:
        numerator, denominator = expr.args
        if numerator == 1:  # a number would become an int32 tensor
            numerator = _OnesLike(denominator)
        elif not numerator.free_symbols:
            numerator = sympy.Mul(numerator, _OnesLike(denominator), evaluate=False)
        return f"{self.OPS['divide_no_nan']}({self._print(numerator)}, {self._print(denominator)})"

    def _print__OnesLike(self, expr: sympy.Function) -> str:
        return f"{self.OPS['ones_like']}({self._print(expr.args[0])})"

    def _helper_call(self, name: str, args: tuple[sympy.Expr, ...]) -> str:
        if self.float64_only:
            raise UnsupportedError(f"the generated test cannot compute {name} (a helper)")
        self.helpers.add(name)
        return f"_{name}({', '.join(_unwrapped(self._print(arg)) for arg in args)})"

    def _print_SafeInput(self, expr: SafeInput) -> str:
        # The inner where of a double-where: the tensor first, so the number takes its dtype.
        value, condition, safe = expr.args
        return self.call("where", self._print(condition), self._print(value), self._print(safe))

    def _nested(self, function: str, args: tuple[sympy.Expr, ...]) -> str:
        code = self._print(args[0])
        for arg in args[1:]:
            code = f"{function}({code}, {self._print(arg)})"
        return code

    def _print_Heaviside(self, expr: sympy.Heaviside) -> str:
        arg, at_zero = expr.args
        if self.float64_only:
            u = self._print(arg)
            ones, where = f"{self.OPS['ones_like']}({u})", self.OPS["where"]
            return (
                f"{where}({u} > 0, {ones}, {where}({u} < 0, 0 * {ones},"
                f" {self._print(at_zero)} * {ones}))"
            )
        self.helpers.add("heaviside")
        return f"_heaviside({self._print(arg)}, {self._print(at_zero)})"

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        # Elementwise tf.where, never tf.cond (which needs a scalar condition). A constant branch
        # is given the shape and dtype of a tensor in the expression.
        code = self._branch(expr.args[-1].expr)
        for value, condition in reversed(expr.args[:-1]):
            code = f"{self.OPS['where']}({self._print(condition)}, {self._branch(value)}, {code})"
        return code

    def doprint_shaped(self, expr: sympy.Expr) -> str:
        """Code for ``expr`` as a tensor: a constant gets the shape and dtype of ``like``."""
        return self._branch(to_printable(expr))

    def _branch(self, value: sympy.Expr) -> str:
        if value.free_symbols:
            return self._print(value)
        if value == 0:
            return f"{self.OPS['zeros_like']}({self.like})"
        ones = f"{self.OPS['ones_like']}({self.like})"
        if value == 1:
            return ones
        return f"{ones} * {self.parenthesize(value, PRECEDENCE['Mul'])}"

    def _print_Relational(self, expr: sympy.core.relational.Relational) -> str:
        lhs, rhs = self._print(expr.lhs), self._print(expr.rhs)
        if expr.rel_op in _EQUALITY:
            return f"{self.OPS[_EQUALITY[expr.rel_op]]}({lhs}, {rhs})"
        prec = PRECEDENCE["Relational"]
        lhs = self.parenthesize(expr.lhs, prec)
        rhs = self.parenthesize(expr.rhs, prec)
        return f"{lhs} {_RELATIONS[expr.rel_op]} {rhs}"

    def _print_And(self, expr: sympy.And) -> str:
        return self._nested(self.OPS["logical_and"], tuple(sorted(expr.args, key=str)))

    def _print_Or(self, expr: sympy.Or) -> str:
        return self._nested(self.OPS["logical_or"], tuple(sorted(expr.args, key=str)))

    def _print_Not(self, expr: sympy.Not) -> str:
        return f"{self.OPS['logical_not']}({self._print(expr.args[0])})"

    def _print_ITE(self, expr: sympy.ITE) -> str:
        # SymPy folds a condition on a conditional into ITE(a, b, c): print it with and/or/not.
        return self._print(expr.to_nnf())

    def _print_Derivative(self, expr: sympy.Derivative) -> str:
        raise UnsupportedError(f"SymPy left the derivative {expr} unevaluated")

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        return expr.name

    def emptyPrinter(self, expr) -> str:
        """Refuse anything without a print method (SymPy's fallback hook)."""
        raise UnsupportedError(
            f"scaffold cannot translate {type(expr).__name__} ({expr}) to {self.TARGET}",
            hint=self.unsupported_hint(),
        )


class _OnesLike(sympy.Function):
    """A tensor of ones shaped like the argument (printing only)."""


for _reduction in TF_REDUCTIONS:
    setattr(TensorFlowPrinter, f"_print_{_reduction.__name__}", TensorFlowPrinter._print_Reduction)
# Every table entry and the generic function path share one method.
for _func in TF_FUNCTIONS:
    setattr(TensorFlowPrinter, f"_print_{_func.__name__}", TensorFlowPrinter._print_Function)


def _print_exp(self: TensorFlowPrinter, expr: sympy.exp) -> str:
    # exp(log_softmax(u)) is the softmax: TensorFlow's one kernel (shifted by the max).
    if isinstance(expr.args[0], LogSoftmax):
        argument = _unwrapped(self._print(expr.args[0].args[0]))
        return f"{self.OPS['softmax']}({argument}, axis={self.axis})"
    return self._print_Function(expr)


TensorFlowPrinter._print_exp = _print_exp


def _tensors_first(args: tuple[sympy.Expr, ...]) -> tuple[sympy.Expr, ...]:
    """Arguments with symbols before constants.

    In graph mode tf.math.minimum(1, x) makes 1 an int32 tensor and fails against a float x,
    while tf.math.minimum(x, 1) converts 1 to x's dtype.
    """
    return tuple(sorted(args, key=lambda arg: not arg.free_symbols))


def _unwrapped(code: str) -> str:
    """``code`` without one pair of parentheses around all of it: f(x*x), not f((x*x))."""
    if not (code.startswith("(") and code.endswith(")")):
        return code
    depth = 0
    for index, char in enumerate(code):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and index < len(code) - 1:
            return code  # (a)*(b): the first group closes before the end
    return code[1:-1]


def large_term(number: sympy.Rational) -> bool:
    """Whether a fraction has a term too large to print as a Python integer (see below)."""
    return max(abs(number.p), number.q) > MAX_SMALL_TERM


def _overflows(code: str) -> bool:
    """True when Python's math module cannot evaluate ``code`` (math.exp(800) overflows).

    ``code`` is our own printing of a SymPy number with only ``math`` names, never user text.
    """
    try:
        eval(compile(code, "<constant>", "eval"), {"__builtins__": {}, "math": math})
    except (OverflowError, ValueError, ZeroDivisionError):
        return True
    return False


def _only_math_names(tree: ast.AST) -> bool:
    """True when every name in ``tree`` is ``math`` and every attribute exists in ``math``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id != "math":
            return False
        if isinstance(node, ast.Attribute) and not hasattr(math, node.attr):
            return False
    return True


def _numerically_real(expr: sympy.Expr) -> bool:
    """True when a constant SymPy cannot classify (tan(tan(3))) evaluates to a real number."""
    value = expr.evalf(30)
    real, imaginary = value.as_real_imag()
    return imaginary == 0 or abs(imaginary) <= 1e-25 * max(1, abs(real))
