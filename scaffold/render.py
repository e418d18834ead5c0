"""Stage 4: ``LayerPlan`` -> source text, through the Jinja templates in ``templates/``.

The templates ship inside the package as ``scaffold.templates`` (see pyproject.toml). The
environment is strict: an undefined variable is an error, never an empty string.
"""

from __future__ import annotations

import dataclasses
import functools
from importlib import resources

import jinja2

from . import cache
from .errors import InternalError
from .plan import LayerPlan

MODULE_TEMPLATE = "layer.py.jinja"  # both backends (their helpers are included by name)
#: Per ``--backend``: the test template and the shared checks module's template.
TEST_TEMPLATES = {"tensorflow": "test_layer.py.jinja", "keras": "test_layer_keras.py.jinja"}
CHECKS_TEMPLATES = {
    "tensorflow": "scaffold_checks.py.jinja",
    "keras": "scaffold_keras_checks.py.jinja",
}


@functools.cache
def environment() -> jinja2.Environment:
    """The one Jinja environment: packaged templates, strict undefined, newlines kept."""
    folder = resources.files("scaffold.templates")
    return jinja2.Environment(
        bytecode_cache=_BytecodeCache(),
        loader=jinja2.FunctionLoader(lambda name: (folder / name).read_text(encoding="utf-8")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # the output is Python source, not HTML
    )


class _BytecodeCache(jinja2.BytecodeCache):
    """Compiled templates in scaffold's cache folder (Jinja checks the source's checksum)."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        data = cache.read("jinja", bucket.key)
        if data is not None:
            bucket.bytecode_from_string(data)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        cache.write("jinja", bucket.key, bucket.bytecode_to_string())


def render(template_name: str, plan: LayerPlan) -> str:
    """Render one template with the plan's fields (and its properties) as variables."""
    context = {field.name: getattr(plan, field.name) for field in dataclasses.fields(plan)}
    for name, member in vars(type(plan)).items():
        if isinstance(member, property):
            context[name] = getattr(plan, name)
    return render_static(template_name, **context)


def render_static(template_name: str, **context) -> str:
    """Render one template with ``context`` as its variables."""
    try:
        return environment().get_template(template_name).render(context)
    except jinja2.TemplateError as err:
        raise InternalError(f"template {template_name} failed to render: {err}") from err
