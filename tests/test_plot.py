"""scaffold plot: the picture's numbers, the images drawn from them, bad input, notebooks."""

from __future__ import annotations

import math
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

import scaffold
from scaffold import draw
from scaffold.cli import app
from scaffold.errors import InputError
from scaffold.examples import _same_image
from scaffold.picture import picture

REPO = Path(__file__).resolve().parents[1]
SVG = "{http://www.w3.org/2000/svg}"

#: The four kinds the issue names, with the curves each panel must hold (by SVG group id).
CASES = {
    "elementwise": (("x*sin(x**2)",), {}, {"x": ["f", "d-x"]}),
    "surrogate": (
        ("Heaviside(x)", "--grad", "1/(1+(pi*x)**2)"),
        {"grads": ("1/(1+(pi*x)**2)",)},
        {"x": ["f", "surrogate-x", "exact-x"]},
    ),
    "two_inputs": (
        ("x*sin(y)", "--inputs", "x,y"),
        {"inputs": "x,y"},
        {"x": ["f", "d-x", "d-y"], "y": ["f", "d-x", "d-y"]},
    ),
    "kink": (("Max(x, 0)",), {}, {"x": ["f", "d-x"]}),
}
ERRORS = ["error-f-float32", "error-grad-float32", "error-f-bfloat16", "error-grad-bfloat16"]


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


# The numbers (no matplotlib) ----------------------------------------------------------------
def test_sin_curves_are_f_and_its_derivative_and_float32_is_within_rounding():
    drawn = picture("sin(x)")
    (panel,) = drawn.panels
    f, derivative = panel.curves
    assert (f.label, derivative.label) == ("f", "f'")
    assert panel.xs[0] == -4 and panel.xs[-1] == 4
    for x, y, dy in zip(panel.xs, f.values, derivative.values, strict=True):
        assert y == pytest.approx(math.sin(x), abs=1e-15)
        assert dy == pytest.approx(math.cos(x), abs=1e-15)
    errors = {c.key: c.values for c in panel.errors}
    assert max(errors["error-f-float32"]) < 1e-6  # float32 rounding, not a lost digit
    assert 1e-4 < max(errors["error-f-bfloat16"]) < 1e-1
    assert drawn.digest() == picture("sin(x)").digest()
    assert drawn.digest() != picture("cos(x)").digest()


def test_the_kink_of_relu_is_marked_with_the_value_the_code_takes():
    (panel,) = picture("Max(x, 0)").panels
    (kink,) = [m for m in panel.marks if m.kind == "kink"]
    assert kink.x == 0
    assert dict(kink.values) == {"f": 0.0, "d-x": 0.0}  # relu'(0) = 0, as tf.nn.relu
    assert "f' jumps from 0 to 1" in kink.text
    # The curves break at the kink instead of drawing the jump as a steep line.
    at_kink = panel.xs.index(0.0)
    assert math.isnan(panel.curves[1].values[at_kink])


def test_a_surrogate_is_drawn_beside_the_exact_derivative():
    drawn = picture("Heaviside(x)", grads=("1/(1+(pi*x)**2)",))
    (panel,) = drawn.panels
    curves = {c.key: c for c in panel.curves}
    assert curves["surrogate-x"].role == "surrogate" and curves["exact-x"].role == "exact"
    assert all(v == 0 for v in curves["exact-x"].values if not math.isnan(v))
    assert max(curves["surrogate-x"].values) == pytest.approx(1.0, abs=1e-3)
    (kink,) = [m for m in panel.marks if m.kind == "kink"]
    assert "f jumps from 0 to 1" in kink.text and "f = 0.5" in kink.text  # Heaviside(0)
    assert any("surrogate" in note for note in drawn.notes)


def test_two_inputs_get_a_panel_each_with_the_other_held_where_stated():
    drawn = picture("x*sin(y)", inputs="x,y")
    assert [p.variable for p in drawn.panels] == ["x", "y"]
    first, _ = drawn.panels
    (stated,) = first.held
    name, held = stated.split(" = ")
    assert name == "y"
    held = float(held)
    for x, f in zip(first.xs, first.curves[0].values, strict=True):
        assert f == pytest.approx(x * math.sin(held), abs=1e-14)
    moved = picture("x*sin(y)", inputs="x,y", at=("y=1",)).panels[0]
    assert moved.held == ("y = 1",)
    assert moved.curves[0].values[-1] == pytest.approx(4 * math.sin(1))


def test_a_removable_singular_point_shows_the_limit_the_code_takes():
    (panel,) = picture("sin(x)/x").panels
    (point,) = [m for m in panel.marks if m.kind == "singular"]
    assert point.x == 0 and dict(point.values)["f"] == pytest.approx(1.0)
    assert "0/0" in point.text
    assert panel.undefined == ()  # one point, not a span


def test_log_is_drawn_where_it_is_defined_and_a_given_range_shows_the_rest():
    (panel,) = picture("log(x)").panels
    assert -0.1 < panel.xs[0] < 0.1 and math.isfinite(panel.curves[0].values[1])
    (given,) = picture("log(x)", span=(-2.0, 2.0)).panels
    ((start, end),) = given.undefined
    assert start == -2 and end == pytest.approx(0, abs=0.03)


def test_the_error_panel_shows_where_the_formula_as_typed_loses_float32():
    """Naive softplus: f' is NaN past x = 89 in float32; the stable code is right everywhere."""
    naive = picture("log(1+exp(x))", stabilize=False, span=(0.0, 120.0)).panels[0]
    stable = picture("log(1+exp(x))", span=(0.0, 120.0)).panels[0]
    for panel, broken in ((naive, True), (stable, False)):
        errors = {c.key: c.values for c in panel.errors}["error-grad-float32"]
        past = [e for x, e in zip(panel.xs, errors, strict=True) if x > 95]
        assert all(e == math.inf for e in past) is broken
        assert broken or max(past) < 1e-6


@pytest.mark.parametrize(
    ("expression", "said"),
    [
        ("Abs(x)**1.5", None),  # f' = 1.5*sign(x)*|x|**0.5: continuous, no mark
        ("sign(x)*Abs(x)**(1/3)", "f' is unbounded (inf) on both sides"),
        ("sign(x)*sqrt(Abs(x))", "f' is unbounded (inf) on both sides"),
        ("sqrt(Abs(x))", "f' jumps from -inf to inf; the code takes f = 0, f' = undefined"),
        ("log(Abs(x))", "f is unbounded (-inf) on both sides"),
    ],
)
def test_continuous_power_like_behaviour_is_no_jump_of_f(expression, said):
    """|x|**p reaches its limit slowly: values 1e-12 away are not it, and f does not jump."""
    drawn = picture(expression)
    assert not any("f jumps" in note for note in drawn.notes)
    if said is None:
        assert not [m for m in drawn.panels[0].marks if m.kind == "kink"]
    else:
        assert any(said in note for note in drawn.notes), drawn.notes


def test_the_code_s_value_is_stated_only_at_kinks_every_dtype_holds_exactly():
    (panel,) = picture("Max(x, 1/3)").panels
    (kink,) = [m for m in panel.marks if m.kind == "kink"]
    assert kink.x == pytest.approx(1 / 3) and kink.values == ()
    assert "f' jumps from 0 to 1" in kink.text and "the code takes" not in kink.text


def test_a_limit_scaffold_does_not_compute_is_not_called_a_pole():
    (note,) = picture("exp(-1/Abs(x))").notes
    assert "seems to have a finite limit, which scaffold does not compute" in note
    assert "the code takes f = 0, f' = undefined there" in note  # as the layer computes it


def test_a_range_ending_in_a_jump_breaks_the_line_there():
    (panel,) = picture("floor(x)", grads=("1",)).panels
    assert {-4.0, 4.0} <= {m.x for m in panel.marks if m.kind == "kink"}
    assert math.isnan(panel.curves[0].values[-1])


def test_kinks_closer_than_the_samples_are_said_not_drawn_one_by_one():
    drawn = picture("floor(x)", grads=("1",), span=(-1000.0, 1000.0))
    assert not [m for m in drawn.panels[0].marks if m.kind == "kink"]
    assert any("narrow --range to see them" in note for note in drawn.notes)
    (wide,) = picture("floor(x)", grads=("1",), span=(-30.0, 30.0)).panels
    assert len([m for m in wide.marks if m.kind == "kink"]) == 61  # 5 samples apart: drawn


def test_no_error_is_drawn_where_f_is_undefined_or_beside_a_kink():
    (panel,) = picture("sqrt(x**2 - 1)").panels
    inside = [i for i, x in enumerate(panel.xs) if -0.99 < x < 0.99]
    assert inside and all(math.isnan(c.values[i]) for c in panel.errors for i in inside)
    (clip,) = picture("x*c/max(norm(x), c)", states=("c=3",)).panels
    kinks = [m.x for m in clip.marks if m.kind == "kink"]
    near = [i for i, x in enumerate(clip.xs) if any(abs(x - k) < 1e-6 for k in kinks)]
    assert len(near) == 6 and all(math.isnan(c.values[i]) for c in clip.errors for i in near)


def test_the_default_range_ends_at_the_edges_of_the_domain():
    (panel,) = picture("atanh(x)").panels
    assert (panel.xs[0], panel.xs[-1], len(panel.xs)) == (-1.0, 1.0, 301)
    assert panel.undefined == ()


def test_a_loss_is_drawn_per_element():
    drawn = picture("(y_pred - y_true)**2", loss=True)
    assert drawn.title.startswith("loss per element")
    assert [p.variable for p in drawn.panels] == ["y_true", "y_pred"]


def test_softmax_is_drawn_along_the_first_element_of_a_row():
    drawn = picture("exp(x)/sum(exp(x))")
    (panel,) = drawn.panels
    assert panel.variable == "x_0" and panel.held == ("x = (x_0, 0.25, 2, -0.75, 1.25)",)
    f, derivative = panel.curves
    assert (f.label, derivative.label) == ("f_0", "df_0/dx_0")
    rest = sum(math.exp(v) for v in (0.25, 2, -0.75, 1.25))
    for t, y, dy in zip(panel.xs, f.values, derivative.values, strict=True):
        assert y == pytest.approx(math.exp(t) / (math.exp(t) + rest), rel=1e-14)
        assert dy == pytest.approx(y * (1 - y), rel=1e-12)
    # The code's reverse pass (reductions.vjp), run in float32, against the row written out.
    errors = {c.key: c.values for c in panel.errors}
    assert max(errors["error-f-float32"]) < 1e-5 and max(errors["error-grad-float32"]) < 1e-5


def test_a_kink_of_a_row_is_where_its_norm_meets_the_clip_norm():
    (panel,) = picture("x*c/max(norm(x), c)", states=("c=3",)).panels
    kinks = [m.x for m in panel.marks if m.kind == "kink"]
    edge = math.sqrt(9 - (0.25**2 + 2**2 + 0.75**2 + 1.25**2))
    assert kinks == pytest.approx([-edge, edge], abs=1e-12)
    assert all("df_0/dx_0 jumps" in m.text for m in panel.marks if m.kind == "kink")


@pytest.mark.parametrize(
    ("expression", "options", "message"),
    [
        ("exp(x)/sum(exp(x))", {"at": ("x=1",)}, "the rest of the row is held"),
        ("log(x)", {"span": (-3.0, -1.0)}, "not finite and real anywhere"),
        ("sqrt(-1 - x**2)", {}, "not finite and real anywhere"),
        ("x*y", {"inputs": "x,y", "at": ("z=1",)}, "--at 'z=1'"),
        ("x*y", {"inputs": "x,y", "at": ("y=t",)}, "not a number"),
        ("x*y", {"inputs": "x,y", "at": ("y=",)}, "--at: a number is missing"),
        ("sin(x)", {"at": ("x=1",)}, "x is the only input"),
        ("exp(x)", {"span": (800.0, 900.0)}, "1e300 or more in size"),
        ("exp(x)", {"span": (700.0, 720.0)}, "1e300 or more in size"),
        ("sqrt(0.0001 - x**2)", {}, "only in too small a part of [-4, 4] along x"),
        ("x*sqrt(y)", {"inputs": "x,y", "at": ("y=-1",)}, "anywhere in [-4, 4] along x (y = -1)"),
        ("sqrt(x)*sqrt(0.01 - x)", {}, "only in too small a part of [-4, 4]"),
    ],
)
def test_what_cannot_be_drawn_is_an_input_error(expression, options, message):
    with pytest.raises(InputError, match=re.escape(message)):
        picture(expression, **options)


# The images -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_plot_writes_an_image_with_its_curves_and_labels(tmp_path, case, suffix):
    args, options, panels = CASES[case]
    out = tmp_path / f"{case}{suffix}"
    result = invoke("plot", *args, "--out", str(out))
    assert result.exit_code == 0, result.output
    image = out.read_bytes()
    if suffix == ".svg":
        root = ET.fromstring(image)
        ids = {g.get("id") for g in root.iter(f"{SVG}g") if g.get("id")}
        texts = " ".join(t.text or "" for t in root.iter(f"{SVG}text"))
        for variable, keys in panels.items():
            assert {f"{variable}-{k}" for k in keys + ERRORS} <= ids
            assert not {i for i in ids if i.startswith(f"{variable}-")} - {
                *(f"{variable}-{k}" for k in keys + ERRORS),
                *(i for i in ids if re.fullmatch(rf"{variable}-(kink|singular)-\d+", i)),
                f"{variable}-test-points",
            }, "a curve the test does not know of"
        derivative = "f'" if len(panels) == 1 and case != "surrogate" else "df/d"
        assert "f and " in texts and ("surrogate for f'" in texts or derivative in texts)
        assert "relative error of the code" in texts
        assert ("kink" in texts) == (case in ("kink", "surrogate"))
    else:
        assert image[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", image[16:24])
        assert width >= 600 and height >= 600
        # The pixels cannot be read back; the figure drawn from the same picture can.
        from matplotlib.figure import Figure

        figure = draw.draw(picture(args[0], **options), Figure)
        gids = {line.get_gid() for axes in figure.axes for line in axes.get_lines()}
        for variable, keys in panels.items():
            assert {f"{variable}-{k}" for k in keys + ERRORS} <= gids
    # The image records what it shows: the picture of these arguments.
    assert draw.recorded_digest(image) == picture(args[0], **options).digest()


def test_the_drawn_figure_names_f_and_f_prime_on_its_axes():
    from matplotlib.figure import Figure

    figure = draw.draw(picture("x*sin(x**2)"), Figure)
    top, bottom = figure.axes[:2]
    assert top.get_ylabel() == "f and f'"
    assert [line.get_gid() for line in top.get_lines() if line.get_gid()][:2] == ["x-f", "x-d-x"]
    assert bottom.get_yscale() == "log" and bottom.get_ylabel() == "relative error of the code"


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_images_are_reproducible_across_processes(tmp_path, fmt):
    """No date, no random id: another process draws the same bytes."""
    out = tmp_path / f"relu.{fmt}"
    result = subprocess.run(
        [sys.executable, "-m", "scaffold", "plot", "Max(x, 0)", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == draw.render(picture("Max(x, 0)"), fmt)


def test_the_catalog_check_compares_what_an_image_shows_and_its_bytes():
    drawn = picture("sin(x)")
    image = draw.render(drawn, "png")
    assert _same_image(image, drawn)
    assert not _same_image(image, picture("cos(x)"))  # another picture: another digest
    changed = bytearray(image)
    changed[200] ^= 0xFF  # same recorded digest and version, other pixels
    assert not _same_image(bytes(changed), drawn)
    other_version = image.replace(b"(matplotlib ", b"(matplotlib 0.0+")
    assert _same_image(other_version, drawn)  # drawn elsewhere: what it shows still checked


def test_without_matplotlib_the_catalog_check_still_checks_what_images_show(tmp_path, monkeypatch):
    drawn = picture("sin(x)")
    image = draw.render(drawn, "png")
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    assert _same_image(image, drawn) and not _same_image(image, picture("cos(x)"))
    result = invoke("examples", "--out", str(tmp_path / "catalog"))
    assert result.exit_code == 3 and "scaffold-layers[plot]" in result.output
    assert list(tmp_path.iterdir()) == []


def test_the_readme_tutorial_image_is_what_its_command_draws():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    command = re.search(
        r'scaffold plot "([^"]+)" --out \S+\.png\n```\n\n[^#]+?\]\((docs/\S+\.png)\)', readme
    )
    assert command, "the tutorial's plot command, then its image, is missing"
    expression, path = command.groups()
    assert _same_image((REPO / path).read_bytes(), picture(expression))


# Bad input: exit 2, nothing written -------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x", "--out", "{tmp}/plot.gif"), "writes .png or .svg files"),
        (("x", "--out", "{tmp}/plot"), "without an extension"),
        (("x", "--out", "{tmp}/missing/plot.png"), "does not exist"),
        (("log(x)", "--range=-3,-1", "--out", "{tmp}/plot.png"), "not finite and real"),
        (("x", "--range", "1,0", "--out", "{tmp}/plot.png"), "A must be less than B"),
        (("x", "--range", "1", "--out", "{tmp}/plot.png"), "two numbers"),
        (("x", "--range=-1e-9,1e-9", "--out", "{tmp}/plot.png"), "too narrow"),
        (("x", "--range=-inf,1", "--out", "{tmp}/plot.png"), "--range: '-inf' is not a number"),
        (("exp(x)/sum(exp(x))", "--at", "x=1", "--out", "{tmp}/plot.png"), "row is held"),
        (("sin(x", "--out", "{tmp}/plot.png"), "error:"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, args, message):
    result = invoke("plot", *(a.format(tmp=tmp_path) for a in args))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_folder_as_out_is_named_a_folder(tmp_path):
    (tmp_path / "plots").mkdir()
    result = invoke("plot", "x", "--out", str(tmp_path / "plots"))
    assert result.exit_code == 2 and "is a folder" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["plots"]


def test_an_existing_image_is_replaced_only_with_force(tmp_path):
    out = tmp_path / "plot.svg"
    out.write_text("mine")
    result = invoke("plot", "sin(x)", "--out", str(out))
    assert result.exit_code == 2 and "--force" in result.output
    assert out.read_text() == "mine"
    assert invoke("plot", "sin(x)", "--out", str(out), "--force").exit_code == 0
    assert out.read_bytes().startswith(b"<?xml")
    assert [p.name for p in tmp_path.iterdir()] == ["plot.svg"]  # no temporary file left


def test_without_matplotlib_plot_exits_3_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    result = invoke("plot", "sin(x)", "--out", str(tmp_path / "plot.png"))
    assert result.exit_code == 3, result.output
    assert "scaffold-layers[plot]" in result.output
    assert list(tmp_path.iterdir()) == []


# Notebooks -----------------------------------------------------------------------------------
def test_explain_renders_in_jupyter_as_markdown_with_its_plot():
    explanation = scaffold.explain("x*sin(x**2)")
    png = explanation._repr_png_()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = explanation._repr_markdown_()
    assert markdown.startswith("# Explaining")
    assert "](data:image/png;base64," in markdown and "product rule" in markdown
    assert scaffold.explain("exp(x)/sum(exp(x))")._repr_png_()[:4] == b"\x89PNG"


def test_ipython_displays_the_explanation_as_markdown_and_png():
    """What Jupyter asks of an output: IPython's own display formatter."""
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(scaffold.explain("Max(x, 0)"))
    assert {"text/markdown", "image/png", "text/plain"} <= set(data)
    assert data["text/markdown"].startswith("# Explaining")
    assert "## Plot" in data["text/markdown"]


def test_explain_without_matplotlib_renders_markdown_saying_why_there_is_no_plot(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    explanation = scaffold.explain("sin(x)")
    assert explanation._repr_png_() is None
    markdown = explanation._repr_markdown_()
    assert markdown.startswith("# Explaining") and "data:image" not in markdown
    assert "No plot: scaffold plot needs matplotlib" in markdown
