"""scaffold new-loss: the formula a loss computes, its files, and Keras's losses as reference."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from scaffold import sync
from scaffold.api import LOSS, Options, generate, render_layer
from scaffold.cli import app
from scaffold.errors import InputError
from scaffold.loss import loss_formula
from scaffold.parse import parse

HUBER = "where(abs(y_pred - y_true) <= 1, 0.5*(y_pred - y_true)**2, abs(y_pred - y_true) - 0.5)"
#: Binary cross-entropy from logits as papers write it: stable rewrites make it
#: softplus(-p)*t + softplus(p)*(1 - t).
BCE = "-(y_true*log(sigmoid(y_pred)) + (1 - y_true)*log(1 - sigmoid(y_pred)))"
CCE = "-sum(y_true*(y_pred - logsumexp(y_pred)))"


def test_an_elementwise_loss_is_averaged_over_the_last_axis_a_reduction_is_not():
    huber = loss_formula(parse(HUBER), Options())
    assert huber.averaged and str(huber.parsed.expr).startswith("ReduceMean(")
    assert huber.parsed.text == HUBER and huber.inputs == "y_true,y_pred"
    cce = loss_formula(parse(CCE), Options())
    assert not cce.averaged and cce.parsed.expr == parse(CCE).expr
    named = loss_formula(parse("(p - t)**2"), Options(inputs="t, p"))
    assert named.inputs == "t,p"


@pytest.mark.parametrize(
    ("expression", "options", "message"),
    [
        ("(y_pred - y_true)**2", Options(params=("a=1",)), "--param is for layers"),
        ("(y_pred - y_true)**2", Options(axis=1), "--axis is for layers"),
        ("(p - t)**2", Options(inputs="t,p,q"), "two inputs"),
        ("(y_pred - y_true)**2*delta", Options(), "uses delta"),
    ],
)
def test_a_loss_refuses_what_only_a_layer_has(expression, options, message):
    with pytest.raises(InputError) as caught:
        loss_formula(parse(expression), options)
    assert message in str(caught.value)


def test_new_loss_writes_the_op_the_loss_class_and_its_test(tmp_path):
    result = CliRunner().invoke(
        app, ["new-loss", BCE, "--name", "bce_logits", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert (
        "gradient for y_pred = dy*((1 - y_true)*sigmoid(y_pred) - y_true*sigmoid(-y_pred))"
        "/len(y_pred, y_true)" in (result.output)
    )
    module = (tmp_path / "bce_logits.py").read_text()
    assert "class BceLogits(keras.losses.Loss):" in module
    assert '"command": "new-loss"' in module
    assert "scaffold new-loss" in module and "tf.math.softplus" in module
    test = (tmp_path / "test_bce_logits.py").read_text()
    assert "def test_loss_trains_a_model(device):" in test
    assert "def test_keras_training_sends_gradients_through_the_op" not in test
    report = sync.check([tmp_path])  # the record regenerates it: nothing to do
    assert len(report.modules) == 1 and report.pending == ()
    refused = CliRunner().invoke(
        app, ["new-loss", "(y_pred - y_true)**2", "--out", str(tmp_path / "no"), "--inputs", "a"]
    )
    assert refused.exit_code == 2 and "two inputs" in refused.output
    assert not (tmp_path / "no").exists()


@pytest.fixture(scope="module")
def losses(tmp_path_factory):
    root = tmp_path_factory.mktemp("losses")
    classes = {}
    for name, expression in (("huber", HUBER), ("bce", BCE), ("cce", CCE)):
        generate(expression, name=name, out=root, kind=LOSS)
        spec = importlib.util.spec_from_file_location(f"loss_{name}", root / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        classes[name] = getattr(module, name.capitalize())
    return classes


def _keras_losses():
    import keras

    return {
        "huber": keras.losses.Huber(delta=1.0, dtype="float64"),
        "bce": keras.losses.BinaryCrossentropy(from_logits=True, dtype="float64"),
        "cce": keras.losses.CategoricalCrossentropy(from_logits=True, dtype="float64"),
    }


def test_generated_losses_equal_keras_losses_in_value_and_gradient(losses):
    """float64: per-sample values, the reduced loss with sample weights, and the gradient
    for y_pred (and for y_true, where Keras's loss is the same function of it) to 1e-10."""
    import tensorflow as tf

    rng = np.random.default_rng(3)
    y_pred = tf.constant(rng.normal(size=(6, 5)) * 3, tf.float64)
    targets = {
        "huber": rng.normal(size=(6, 5)) * 2,
        "bce": rng.uniform(size=(6, 5)),
        "cce": rng.dirichlet(np.ones(5), size=6),
    }
    weights = tf.constant(rng.uniform(0.5, 2.0, size=6), tf.float64)
    for name, theirs in _keras_losses().items():
        ours = losses[name](dtype="float64")
        y_true = tf.constant(targets[name], tf.float64)
        results = []
        for loss in (ours, theirs):
            with tf.GradientTape() as tape:
                tape.watch([y_true, y_pred])
                value = loss(y_true, y_pred, sample_weight=weights)
            results.append([value, *tape.gradient(value, [y_true, y_pred])])
        per_sample = [ours.call(y_true, y_pred), theirs.call(y_true, y_pred)]
        np.testing.assert_allclose(*per_sample, rtol=1e-10, atol=1e-12, err_msg=name)
        for what, a, b in zip(("value", "d/dy_true", "d/dy_pred"), *results, strict=True):
            if b is None:  # Keras's loss has no gradient path to y_true
                continue
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=f"{name}: {what}")


def test_generated_losses_train_a_model_as_the_keras_losses_do(losses):
    """The same model and data fitted with each loss: the same losses and weights."""
    import keras

    rng = np.random.default_rng(5)
    x = rng.normal(size=(64, 4)).astype("float32")
    targets = {
        "huber": rng.normal(size=(64, 3)).astype("float32"),
        "bce": (rng.uniform(size=(64, 3)) > 0.5).astype("float32"),
        "cce": np.eye(3, dtype="float32")[rng.integers(0, 3, size=64)],
    }
    keras_losses = {
        "huber": keras.losses.Huber(),
        "bce": keras.losses.BinaryCrossentropy(from_logits=True),
        "cce": keras.losses.CategoricalCrossentropy(from_logits=True),
    }
    for name, theirs in keras_losses.items():
        trained = []
        for loss in (losses[name](), theirs):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss)
            history = model.fit(x, targets[name], batch_size=16, epochs=3, verbose=0)
            trained.append((history.history["loss"], [w.numpy() for w in model.weights]))
        (ours, our_weights), (keras_loss, keras_weights) = trained
        assert ours[-1] < ours[0], (name, ours)
        np.testing.assert_allclose(ours, keras_loss, rtol=1e-5, err_msg=name)
        for a, b in zip(our_weights, keras_weights, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=name)


def test_a_loss_module_records_how_to_regenerate_it(tmp_path):
    plan, _ = render_layer(CCE, name="cce", out=tmp_path, kind=LOSS, timeout=None)
    assert plan.loss and not plan.averaged and plan.command.startswith("scaffold new-loss")
    assert "--inputs" not in plan.command  # y_true,y_pred: the default


def test_labels_one_rank_below_the_predictions_are_not_broadcast(tmp_path):
    """Labels (B,) against a Dense(1) output (B, 1): the loss of each sample, as Keras's
    own losses give it, not a (B, B) broadcast of every label against every output."""
    import keras

    generate("(y_pred - y_true)**2", name="squared", out=tmp_path, kind=LOSS)
    spec = importlib.util.spec_from_file_location("loss_squared", tmp_path / "squared.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    labels = np.array([1.0, 0.0, 1.0, 0.0], "float32")
    outputs = np.array([[0.9], [0.2], [0.7], [0.1]], "float32")
    ours = float(module.Squared()(labels, outputs))
    assert ours == pytest.approx(float(keras.losses.MeanSquaredError()(labels, outputs)))


def test_a_loss_may_leave_the_target_out(tmp_path):
    """An entropy regulariser of the prediction alone: the target's gradient is 0."""
    result = generate("-sum(y_pred*log(y_pred))", name="entropy", out=tmp_path, kind=LOSS)
    assert "class Entropy(keras.losses.Loss)" in result.changes[0].path.read_text()
    assert not result.plan.warnings
    with pytest.raises(InputError, match="uses neither"):
        generate("2", name="constant", out=tmp_path, kind=LOSS)


def test_the_plain_formula_of_a_loss_of_the_prediction_alone_keeps_the_ops_shape(tmp_path):
    """-sum(y_pred*log(y_pred)) has one value per row, as the op: the generated test's plain
    formula is not broadcast to y_true's shape (its autodiff would be of another function)."""
    plan, _ = render_layer(
        "-sum(y_pred*log(y_pred))", name="entropy", out=tmp_path, kind=LOSS, timeout=None
    )
    assert plan.row_valued
    assert "broadcast" not in plan.plain_forward and "y_true" not in plan.plain_forward
