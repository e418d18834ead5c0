"""Names in the generated code: the module, the layer class, the generated code's own variables.

``check_name`` refuses a ``--name`` that cannot work (not an identifier, a keyword, a module it
would shadow, a name the generated test uses) and ``suggest_name`` offers the nearest one that
does; ``default_name`` derives a name from the expression; ``internal_names`` renames the
generated code's own variables (``y``, ``dy``, ``grad``) away from the user's symbols.
"""

from __future__ import annotations

import builtins
import keyword
import re
import sys
from collections.abc import Collection

from .errors import InvalidNameError
from .parse import RESERVED_NAMES

_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
MAX_NAME_LENGTH = 60

#: Names the generated test defines or imports beside the layer's own: --name may not take them.
_TEST_NAMES = frozenset(
    {
        "checks",
        "scaffold_checks",
        "scaffold_keras_checks",
        "ops",
        "plain_formula",
        "apply_updates",
        "each_device",
    }
)

#: Module names the generated files would shadow when pytest puts their folder on sys.path.
_SHADOWED_MODULES = frozenset(sys.stdlib_module_names) | {
    "tensorflow",
    "keras",
    "numpy",
    "pytest",
    "sympy",
    "scaffold",
    "conftest",
    "setup",
}


#: Attributes and constructor names of a Keras 3 Layer: a weight may not take them, since the
#: layer stores each weight as ``self.<name>`` and takes its default as a keyword argument.
LAYER_ATTRIBUTES = frozenset(
    [
        "activity_regularizer",
        "add_loss",
        "add_metric",
        "add_variable",
        "add_weight",
        "autocast",
        "build",
        "build_from_config",
        "built",
        "call",
        "call_signature_parameters",
        "compute_dtype",
        "compute_mask",
        "compute_output_shape",
        "compute_output_spec",
        "config",
        "count_params",
        "dtype",
        "dtype_policy",
        "from_config",
        "get_build_config",
        "get_config",
        "get_weights",
        "input",
        "input_dtype",
        "input_shape",
        "input_spec",
        "inputs",
        "kwargs",
        "load_own_variables",
        "losses",
        "metrics",
        "metrics_variables",
        "name",
        "non_trainable_variables",
        "non_trainable_weights",
        "output",
        "path",
        "quantization_mode",
        "quantize",
        "quantized_build",
        "quantized_call",
        "rematerialized_call",
        "save_own_variables",
        "self",
        "set_weights",
        "stateless_call",
        "supports_jit",
        "supports_masking",
        "symbolic_call",
        "trainable",
        "trainable_variables",
        "trainable_weights",
        "training",
        "variable_dtype",
        "variables",
        "weights",
    ]
)


def default_name(expression: str, symbols: Collection[str] = ()) -> str:
    """A module name derived from the expression text: 'sin(x)' -> 'sin_x'; 'x' -> 'layer_x'.

    It never equals one of ``symbols`` (the expression's variables: the module's function would
    shadow its own argument).
    """
    words = re.findall(r"[A-Za-z]+|\d+", expression)
    name = _usable("_".join(words).lower()[:40].rstrip("_"))
    return f"layer_{name}" if name in symbols else name


def suggest_name(name: str) -> str:
    """The nearest usable name: 'swish-beta' -> 'swish_beta', 'SwishBeta' -> 'swish_beta'."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name)  # CamelCase -> Camel_Case
    words = re.findall(r"[A-Za-z0-9]+", snake)
    return _usable("_".join(words).lower()[: MAX_NAME_LENGTH - len("layer_")].rstrip("_"))


def _usable(name: str) -> str:
    """``name``, or ``layer_<name>`` where it starts with a digit, is a keyword, shadows..."""
    if not name or not name[0].isalpha():
        name = f"layer_{name}".rstrip("_")
    if check_name(name, raise_error=False) is not None:
        name = f"layer_{name}"
    return name


def check_name(name: str, *, raise_error: bool = True, in_package: bool = False) -> str | None:
    """Raise ``InvalidNameError`` (or return its message) unless ``name`` is usable.

    ``in_package``: the module is imported by its dotted name, so a top-level module of the
    same name (``signal``, ``tensorflow``) is not shadowed.
    """
    problem = None
    if not _NAME_PATTERN.fullmatch(name):
        problem = (
            f"--name {name!r} must be a lower-case Python identifier: a letter, then letters,"
            " digits or '_' (it names the module, the function and, in CamelCase, the layer class)"
        )
    elif len(name) > MAX_NAME_LENGTH:
        problem = f"--name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}"
    elif keyword.iskeyword(name) or keyword.issoftkeyword(name):
        problem = f"--name {name!r} is a Python keyword"
    elif (
        name in RESERVED_NAMES
        or hasattr(builtins, name)
        or (name in _SHADOWED_MODULES and not in_package)
    ):
        problem = (
            f"--name {name!r} would shadow the Python or TensorFlow name '{name}' in the"
            " generated code or on the import path"
        )
    elif name in _TEST_NAMES:
        problem = f"--name {name!r} is a name the generated test uses for itself"
    elif name.startswith("test"):
        problem = f"--name {name!r} starts with 'test': pytest would collect the module as tests"
    if problem is not None and raise_error:
        suggestion = suggest_name(name)
        hint = (
            f"did you mean --name {suggestion}?"
            if check_name(suggestion, raise_error=False) is None
            else "for example: --name my_activation"
        )
        raise InvalidNameError(problem, hint=hint)
    return problem


def class_name_for(name: str) -> str:
    """CamelCase of a snake_case name: 'my_activation' -> 'MyActivation'."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def internal_names(name: str, analysis_symbols: set[str]) -> dict[str, str]:
    """Names of the generated code's own variables, renamed if the expression uses them."""
    taken = set(analysis_symbols) | {name, class_name_for(name)}
    return {role: fresh_name(role, taken) for role in ("y", "dy", "grad")}


def check_weight_names(weight_names: list[str]) -> None:
    """Refuse weights named like a Keras Layer attribute (the layer stores ``self.<name>``)."""
    for weight in weight_names:
        if weight in LAYER_ATTRIBUTES:
            raise InvalidNameError(
                f"a weight named '{weight}' would clash with the Keras Layer attribute"
                f" or argument '{weight}'",
                hint="rename the symbol in the expression, e.g. 'alpha'",
            )


def fresh_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base_1``, ``base_2``, ... : the first not in ``taken`` (which it joins)."""
    candidate, index = base, 1
    while candidate in taken:
        candidate, index = f"{base}_{index}", index + 1
    taken.add(candidate)
    return candidate
