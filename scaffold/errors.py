"""Every error scaffold raises on purpose.

``str(err)`` is the message a user reads; ``err.hint`` (may be empty) says what to do about it and
``err.exit_code`` is what the command line exits with::

    ScaffoldError                      base; never raised itself
    ├── InputError                     exit 2: the user's command must change
    │   ├── ExpressionError            the expression text (points at a column)
    │   ├── UnsupportedError           a function scaffold cannot turn into TensorFlow
    │   ├── DerivativeError            SymPy left a derivative unevaluated
    │   ├── DomainError                no test point where f and f' are finite and real
    │   ├── BudgetExceeded             the symbolic work ran out of time or memory
    │   ├── InvalidNameError           --name is not a usable identifier
    │   └── OutputError                --out is not a writable folder, or a file conflict
    ├── ValidationFailed               exit 1: generated tests ran and failed
    ├── EnvironmentProblem             exit 3: a needed package (TensorFlow, pytest) is missing
    └── InternalError                  exit 4: a scaffold bug (e.g. generated code did not compile)
"""

from __future__ import annotations


class ScaffoldError(Exception):
    """Base class: a message for the user, an optional hint and an exit code."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        # Errors cross the pipe from the budgeted worker (budget.py); the default pickling
        # would call __init__ without the keyword arguments.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type, args: tuple, state: dict) -> ScaffoldError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InputError(ScaffoldError):
    """The user's input cannot be used as given; exit code 2."""

    exit_code = 2


class ExpressionError(InputError):
    """The expression text is malformed or uses something not allowed.

    Raised by the parser; ``column`` (0-based) is where the problem starts, ``width`` how many
    characters the caret underlines.
    """

    def __init__(
        self, message: str, *, text: str, column: int = 0, width: int = 1, hint: str = ""
    ) -> None:
        super().__init__(message, hint=hint)
        self.text = text
        self.column = max(0, min(column, len(text)))
        self.width = max(1, width)

    def __str__(self) -> str:
        shown = self.text.replace("\t", " ")
        if len(shown) > 100:  # show a window around the column, not a wall of text
            start = max(0, self.column - 40)
            end = start + 80
            window = shown[start:end]
            shown = ("..." if start else "") + window + ("..." if end < len(shown) else "")
            caret_at = self.column - start + (3 if start else 0)
        else:
            caret_at = self.column
        caret = " " * caret_at + "^" * min(self.width, max(1, len(shown) - caret_at))
        return f"{self.message}\n  {shown}\n  {caret}"


class UnsupportedError(InputError):
    """A function (typed, or produced by differentiation) has no TensorFlow translation."""


class DerivativeError(InputError):
    """SymPy could not differentiate the expression to closed form."""


class DomainError(InputError):
    """No test point was found where the function and its derivative are finite and real."""


class InvalidNameError(InputError):
    """``--name`` is not a valid, non-reserved Python identifier."""


class OutputError(InputError):
    """The output folder is unusable, or a file exists with different content (no --force)."""


class BudgetExceeded(InputError):
    """The symbolic work needed more time or memory than its budget (see budget.py)."""


class ValidationFailed(ScaffoldError):
    """The generated tests ran and at least one failed, crashed or timed out; exit code 1."""

    exit_code = 1


class EnvironmentProblem(ScaffoldError):
    """Something scaffold needs at run time is not installed; exit code 3."""

    exit_code = 3


class InternalError(ScaffoldError):
    """A bug in scaffold itself, such as generated code that does not compile; exit code 4."""

    exit_code = 4
