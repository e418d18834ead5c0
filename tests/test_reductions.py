"""Reductions over the feature axis: the language, the reverse pass, and the layers it makes.

The reverse pass (``reductions.vjp``) is checked against SymPy's ordinary differentiation of
the formula written out for a row (``rows``), its code run by the row emulation; the generated
layers against TensorFlow's and Keras's own softmax, normalisations and norms, in float64,
and where those (or autodiff of the plain formula) are NaN.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings

import numpy as np
import pytest
import sympy
from typer.testing import CliRunner

from scaffold.analyze import UPSTREAM, analyze, elementwise_symbols
from scaffold.api import Options, generate
from scaffold.cli import app
from scaffold.errors import ExpressionError, InputError
from scaffold.parse import parse
from scaffold.printing import TensorFlowPrinter
from scaffold.rows import WIDTH, CodeRows, row_references
from scaffold.spec import build_spec
from scaffold.stabilize import stabilize


def _analysis(expression: str, **options):
    parsed = parse(expression)
    return analyze(parsed, build_spec(parsed, **options))


# The language and its errors ---------------------------------------------------------------
def test_reductions_parse_by_numpy_names_and_max_of_one_argument_is_refused():
    assert str(parse("exp(x - logsumexp(x))").expr) == "exp(x - LogSumExp(x))"
    assert str(parse("mean((x - mean(x))**2)").expr) == "ReduceMean((x - ReduceMean(x))**2)"
    for text, wanted in (("max(x)", "amax"), ("Min(x)", "amin")):
        with pytest.raises(ExpressionError) as caught:
            parse(text)
        assert "elementwise" in str(caught.value) and wanted in caught.value.hint


@pytest.mark.parametrize(
    ("expression", "options", "message"),
    [
        ("sum(mean(x))", {}, "already one per row"),
        ("x*sum(2)", {}, "does not depend on an input"),
        ("x*sum(a)", {"params": ("a=1",)}, "does not depend on an input"),
        ("sin(x)", {"axis": 2}, "no reduction"),
        ("x/norm(x)", {"axis": 0}, "batch axis"),
        ("x - mean(x)", {"grads": ("1",)}, "not supported"),
        ("x*s - mean(x)", {"states": ("s=1",), "updates": ("s=sum(s)",)}, "formula only"),
        ("exp(x)/sum(exp(x))", {"save": "derivative"}, "--save derivative"),
        (
            "x*g - mean(x)",
            {"params": ("g=1",), "param_shapes": ("g=channel",), "axis": 1},
            "last axis",
        ),
    ],
)
def test_reductions_where_they_make_no_sense_are_refused(expression, options, message):
    with pytest.raises(InputError) as caught:
        build_spec(parse(expression), **options)
    assert message in str(caught.value)


def test_a_refused_reduction_exits_2_and_writes_nothing(tmp_path):
    result = CliRunner().invoke(app, ["new-layer", "sum(mean(x))", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "already one per row" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_sum_of_a_channel_weight_is_a_reduction_of_a_row():
    options = {"params": ("g=1",), "param_shapes": ("g=channel",)}
    assert build_spec(parse("x*sum(g)"), **options).axis == -1


# Stable forms --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "stable"),
    [
        ("exp(x)/sum(exp(x))", "exp(x - LogSumExp(x))"),
        ("x - log(sum(exp(x)))", "x - LogSumExp(x)"),
        ("log(sum(exp(2*x)))", "LogSumExp(2*x)"),
        ("sqrt(sum(x**2))", "Norm(x)"),
        ("x/sqrt(sum(x**2))", "DivideNoNan(x, Norm(x))"),
        ("3*x/norm(x)", "DivideNoNan(3*x, Norm(x))"),
        # Already finite at a zero row: left alone.
        ("x/sqrt(sum(x**2) + 1e-6)", "x/sqrt(ReduceSum(x**2) + 1/1000000)"),
        # The mean forms: a smooth max, and the root mean square.
        ("log(mean(exp(x)))", "log(1/AxisSize(x)) + LogSumExp(x)"),
        ("sqrt(mean(x**2))", "Norm(x)/sqrt(AxisSize(x))"),
    ],
)
def test_stable_forms_of_reductions(expression, stable):
    assert str(stabilize(parse(expression).expr)[0]) == stable


# The reverse pass ----------------------------------------------------------------------------
CHANNEL = {"param_shapes": ("g=channel",)}
FORMULAS = {
    "softmax": ("exp(x)/sum(exp(x))", {}),
    "log_softmax": ("x - logsumexp(x)", {}),
    "layer_norm": (
        "(x - mean(x))/sqrt(mean((x - mean(x))**2) + 1e-3)*g + b",
        {"params": ("g=1.5", "b=0.25"), "param_shapes": ("g=channel", "b=channel")},
    ),
    "rms_norm": ("x/sqrt(mean(x**2) + 1e-6)*g", {"params": ("g=0.75",), **CHANNEL}),
    "l2_normalize": ("x/norm(x)", {}),
    "clip": ("x*c/max(norm(x), c)", {"params": ("c=2",)}),
    "extremes": ("x*amax(x**2) - amin(x)", {}),
    "nested": ("sum(x*mean(exp(x)))*sin(x)", {}),
    "scalar_weight": ("logsumexp(a*x)", {"params": ("a=0.5",)}),
    "row_weight": ("a + amax(x)", {"params": ("a=0.5",)}),
    "two_inputs": ("sum(t*(y - logsumexp(y)))", {"inputs": "t,y"}),
    # A kink at 0.25, where the first candidate row has an element: that row is left out.
    "kink": ("mean(abs(x - 0.25))*x", {}),
}


@pytest.mark.parametrize("name", FORMULAS)
def test_reverse_pass_equals_differentiating_the_row_written_out(name):
    """The code's vector-Jacobian products (run in float64 by the row emulation) against
    SymPy's derivatives of the formula written out for a row of 5, at 40 digits."""
    expression, options = FORMULAS[name]
    analysis = _analysis(expression, **options)
    refs = row_references(analysis)
    code = CodeRows(analysis, elementwise_symbols(analysis.spec), refs.row_valued)
    n = len(analysis.spec.inputs)
    for cells in (*refs.points, *refs.special):
        for ours, exact in zip(code.cells(cells), cells[n + 1 :], strict=True):
            np.testing.assert_allclose(ours, exact, rtol=1e-11, atol=1e-11, err_msg=name)


def test_backward_passes_come_out_in_forward_values():
    """Softmax's backward reuses y and has one sum; layer norm's is the textbook
    rstd*(dy*g - mean(dy*g) - xc*mean(dy*g*xc)/var), with two sums and no sum of x - mean."""
    printer = TensorFlowPrinter(like="x")
    softmax = _analysis("exp(x)/sum(exp(x))")
    assert [s.name for s, _ in softmax.forward_temps] == ["t0"]
    backward = [printer.doprint(e) for _, e in softmax.grad_temps] + [
        printer.doprint(softmax.grad_outs[0])
    ]
    assert "exp" not in " ".join(backward)
    assert " ".join(backward).count("reduce_sum") == 1
    layer_norm = _analysis(*FORMULAS["layer_norm"][:1], **FORMULAS["layer_norm"][1])
    code = " ".join(printer.doprint(e) for _, e in layer_norm.grad_temps)
    code += " ".join(printer.doprint(e) for e in layer_norm.grad_outs)
    assert code.count("reduce_sum") == 2, code
    assert "reduce_mean" not in code  # mean(x) and the variance come from the forward pass


def test_reference_rows_cover_zero_rows_ties_and_extremes():
    refs = row_references(_analysis("x*amax(x**2) - amin(x)"))
    assert len(refs.points) >= 3 and refs.special[0][0] == (0.0,) * WIDTH
    assert len(refs.special) == 3  # the zero row and two rows with ties
    assert [cells[0][0] for cells in refs.extremes] == [1000.0, -1000.0, 100.0]
    logs = row_references(_analysis("log(x) - mean(log(x))"))
    assert logs.special == () and logs.dropped and min(min(c[0]) for c in logs.points) > 0


def test_test_rows_keep_away_from_kinks():
    refs = row_references(_analysis("mean(abs(x - 0.25))*x"))
    assert all(abs(v - 0.25) >= 1 / 64 for cells in refs.points for v in cells[0])
    assert len(refs.points) >= 5


def test_float32_precision_lost_at_extreme_rows_is_found_and_stated():
    """Layer norm of (-1000, -999, -998.5, ...) in float32: the mean's rounding is large
    against x - mean. The row emulation finds it; softmax there is exact."""
    layer_norm = row_references(_analysis("(x - mean(x))/sqrt(mean((x - mean(x))**2) + 1e-3)"))
    assert [row[0] for row in layer_norm.lost] == [-1000.0]
    softmax = row_references(_analysis("exp(x)/sum(exp(x))"))
    assert softmax.lost == () and len(softmax.extremes) == 3


# The layers against TensorFlow's and Keras's own ---------------------------------------------
BUILTIN_LAYERS = {
    "softmax": ("exp(x)/sum(exp(x))", Options()),
    "log_softmax": ("x - log(sum(exp(x)))", Options()),
    "log_sum_exp": ("logsumexp(x)", Options()),
    "layer_norm": (
        "(x - mean(x))/sqrt(mean((x - mean(x))**2) + 0.001)*gamma + beta",
        Options(params=("gamma=1", "beta=0"), param_shapes=("gamma=channel", "beta=channel")),
    ),
    "rms_norm": (
        "x/sqrt(mean(x**2) + 1e-6)*scale",
        Options(params=("scale=1",), param_shapes=("scale=channel",)),
    ),
    "l2_normalize": ("x/norm(x)", Options()),
    "clip_by_norm": ("x*c/max(norm(x), c)", Options(states=("c=1.5",))),
    "l2_norm": ("sqrt(sum(x**2))", Options()),
}


@pytest.fixture(scope="module")
def ops(tmp_path_factory):
    """The generated modules, imported (in this process: TensorFlow starts once)."""
    root = tmp_path_factory.mktemp("reductions")
    modules = {}
    for name, (expression, options) in BUILTIN_LAYERS.items():
        generate(expression, name=name, out=root, options=options)
        spec = importlib.util.spec_from_file_location(f"reduction_{name}", root / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        modules[name] = getattr(module, name)
    return modules


def _values_and_gradients(function, arguments, upstream):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(arguments)
        y = function(*arguments)
    return [y, *tape.gradient(y, arguments, output_gradients=upstream)]


def test_generated_reductions_equal_the_tensorflow_and_keras_builtins(ops):
    """float64, rows of 7 in a rank-3 tensor, random upstream: values and every gradient
    within 1e-10 of tf.nn.softmax, tf.nn.log_softmax, tf.reduce_logsumexp,
    keras LayerNormalization and RMSNormalization, tf.math.l2_normalize, tf.clip_by_norm."""
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(7)
    x = tf.constant(rng.normal(size=(3, 4, 7)) * 2, tf.float64)
    gamma = tf.constant(rng.normal(size=7), tf.float64)
    beta = tf.constant(rng.normal(size=7), tf.float64)
    layer_norm = keras.layers.LayerNormalization(epsilon=1e-3, dtype="float64")
    layer_norm.build(x.shape)
    layer_norm.gamma.assign(gamma)
    layer_norm.beta.assign(beta)
    rms_norm = keras.layers.RMSNormalization(epsilon=1e-6, dtype="float64")
    rms_norm.build(x.shape)
    rms_norm.scale.assign(gamma)
    norm = tf.norm(x, axis=-1, keepdims=True)
    clip = tf.constant(float(np.median(norm)), tf.float64)  # rows on both sides of it
    pairs = {
        "softmax": (ops["softmax"], tf.nn.softmax, [x]),
        "log_softmax": (ops["log_softmax"], tf.nn.log_softmax, [x]),
        "log_sum_exp": (
            ops["log_sum_exp"],
            lambda u: tf.reduce_logsumexp(u, axis=-1, keepdims=True),
            [x],
        ),
        "layer_norm": (ops["layer_norm"], lambda u, g, b: layer_norm(u), [x, gamma, beta]),
        "rms_norm": (ops["rms_norm"], lambda u, s: rms_norm(u), [x, gamma]),
        "l2_normalize": (ops["l2_normalize"], lambda u: tf.math.l2_normalize(u, -1), [x]),
        "clip_by_norm": (
            ops["clip_by_norm"],
            lambda u, c: tf.clip_by_norm(u, c, axes=[-1]),
            [x, clip],
        ),
        "l2_norm": (ops["l2_norm"], lambda u: tf.norm(u, axis=-1, keepdims=True), [x]),
    }
    for name, (ours, theirs, arguments) in pairs.items():
        shape = ours(*arguments).shape
        upstream = tf.constant(rng.normal(size=shape), tf.float64)
        mine = _values_and_gradients(ours, arguments, upstream)
        with tf.GradientTape() as tape:
            tape.watch(arguments)
            y = theirs(*arguments)
        builtin = [y, *tape.gradient(y, arguments, output_gradients=upstream)]
        weights = {  # Keras's weights are variables, not the tensors the op was given
            "layer_norm": [layer_norm.gamma, layer_norm.beta],
            "rms_norm": [rms_norm.scale],
        }.get(name)
        if weights:
            with tf.GradientTape() as tape:
                y = theirs(*arguments)
            builtin[2:] = tape.gradient(y, weights, output_gradients=upstream)
        for what, a, b in zip(["f", *range(len(arguments))], mine, builtin, strict=True):
            if name == "clip_by_norm" and what == 1:
                continue  # tf.clip_by_norm gives no gradient for the clip norm
            np.testing.assert_allclose(
                np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-10, err_msg=f"{name}: {what}"
            )


def test_where_the_builtins_and_autodiff_are_nan_the_layers_are_exact(ops):
    """tf.norm's gradient at a zero row is NaN, autodiff of plain softmax and log-sum-exp
    on rows holding ±1000 is NaN: the generated layers give the exact values."""
    import tensorflow as tf

    zero = tf.zeros((2, 5), tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(zero)
        y = tf.norm(zero, axis=-1, keepdims=True)
    assert np.isnan(tape.gradient(y, zero).numpy()).all()
    values, grad = _values_and_gradients(ops["l2_norm"], [zero], tf.ones((2, 1), tf.float64))
    assert not values.numpy().any() and not grad.numpy().any()  # 0, and the subgradient 0
    values, grad = _values_and_gradients(ops["l2_normalize"], [zero], tf.ones_like(zero))
    assert not values.numpy().any() and not grad.numpy().any()

    for dtype in (tf.float32, tf.float64):
        row = tf.constant([[1000.0, 0.0, -1000.0, 999.0]], dtype)
        upstream = tf.constant([[1.0, 2.0, 3.0, 4.0]], dtype)
        plain = {
            "softmax": lambda u: tf.exp(u) / tf.reduce_sum(tf.exp(u), -1, keepdims=True),
            "log_sum_exp": lambda u: tf.math.log(tf.reduce_sum(tf.exp(u), -1, keepdims=True)),
        }
        for name, formula in plain.items():
            dy = upstream if name == "softmax" else tf.ones((1, 1), dtype)
            _, naive = _values_and_gradients(formula, [row], dy)
            assert np.isnan(naive.numpy()).any(), name
            value, grad = _values_and_gradients(ops[name], [row], dy)
            # Exact: e = exp(-1) weighs the 999 against the 1000; the rest is below 1e-400.
            e = np.exp(-1.0)
            share = np.array([[1, 0, 0, e]]) / (1 + e)
            expected = share if name == "softmax" else np.log1p(e) + 1000.0
            np.testing.assert_allclose(value.numpy(), expected, rtol=1e-6)
            weighted = share * (upstream.numpy() - (share * upstream.numpy()).sum())
            expected_grad = weighted if name == "softmax" else share
            np.testing.assert_allclose(grad.numpy(), expected_grad, rtol=1e-6, atol=1e-30)


def test_a_generated_layer_norm_trains_saves_and_loads_on_rank_3_inputs(ops, tmp_path):
    import keras

    layer_class = sys.modules["reduction_layer_norm"].LayerNorm
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((3, 6)), keras.layers.Dense(6), layer_class(), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3, 6)).astype("float32")
    target = (x.sum(axis=-1, keepdims=True) > 0).astype("float32")
    history = model.fit(x, target, epochs=8, batch_size=16, verbose=0).history["loss"]
    assert np.all(np.isfinite(history)) and history[-1] < history[0]
    normalised = model.layers[1]
    assert normalised.gamma.numpy().std() > 0  # per-channel weights trained apart
    path = tmp_path / "model.keras"
    with warnings.catch_warnings():  # Keras's own NumPy 2 warning while saving
        warnings.filterwarnings("ignore", "__array__ implementation", DeprecationWarning)
        model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_vjp_expressions_hold_the_upstream_symbol():
    analysis = _analysis("exp(x)/sum(exp(x))")
    assert UPSTREAM in analysis.gradients[0].free_symbols
    assert isinstance(analysis.gradients[0], sympy.Expr)


def test_generation_works_in_a_process_that_imported_tensorflow(ops, tmp_path):
    """A notebook imports TensorFlow, then generates: the worker's memory limit is on top
    of the several GiB of address space TensorFlow holds, not an absolute 2 GiB."""
    assert "tensorflow" in sys.modules  # the ``ops`` fixture imported the layers
    result = generate("x - mean(x)", name="centred", out=tmp_path)  # the default budget
    assert result.changes[0].path.exists()


def test_steps_of_a_reduction_and_no_stabilize_generate(tmp_path):
    """sign(x - mean(x)): the DiracDelta terms are 0, and so is the sum of them (it was an
    internal error); --no-stabilize keeps x - logsumexp(x) as typed."""
    generate("x*sign(x - mean(x))", name="signs", out=tmp_path)
    plain = analyze(
        parse("x - logsumexp(x)"), build_spec(parse("x - logsumexp(x)"), stabilize=False)
    )
    assert "LogSoftmax" not in str(plain.forward_temps) + str(plain.forward_out)


def test_a_kink_every_row_meets_is_refused_with_its_reason():
    with pytest.raises(InputError) as caught:
        row_references(_analysis("x*Heaviside(x - amax(x))"))
    assert "x - amax(x) = 0" in str(caught.value) and "kink" in str(caught.value)


def test_the_axis_length_is_where_the_reduction_runs(tmp_path):
    """a - mean(b) with b wider than a: the mean divides by b's length, not a's, and the
    output keeps a's shape with the axis b's mean kept; per-channel test values differ."""
    import tensorflow as tf

    generate("a - mean(b)", name="centred_by", out=tmp_path, options=Options(inputs="a,b"))
    spec = importlib.util.spec_from_file_location("centred_by", tmp_path / "centred_by.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng(2)
    for a_shape in ((2, 3), (2, 1)):
        a = tf.constant(rng.normal(size=a_shape))
        b = tf.constant(rng.normal(size=(2, 5)))
        dy = tf.constant(rng.normal(size=(2, a_shape[1])))
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([a, b])
            ours = module.centred_by(a, b)
            theirs = a - tf.reduce_mean(b, axis=-1, keepdims=True)
        for mine, autodiff in zip(
            tape.gradient(ours, [a, b], dy), tape.gradient(theirs, [a, b], dy), strict=True
        ):
            np.testing.assert_allclose(mine, autodiff, rtol=1e-12, atol=1e-12)
    layer = module.CentredBy()
    assert tuple(layer.compute_output_shape([(None, 1), (None, 5)])) == (None, 1)
    test = (tmp_path / "test_centred_by.py").read_text()
    assert "len(b)" in (tmp_path / "centred_by.py").read_text()
    assert "checks.Weight(" not in test  # no weights here; see the channel case below
    ln = generate(
        "x*g - mean(x*g)",
        name="channels",
        out=tmp_path,
        options=Options(params=("g=1",), param_shapes=("g=channel",)),
    )
    assert "test_values=(1.0, 1.125, 1.25, 1.375, 1.5)" in ln.test_path.read_text()
