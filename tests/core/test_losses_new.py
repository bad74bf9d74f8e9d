"""Cross-entropy with label smoothing and class weights, binary cross-entropy, Huber and L1:
hand-worked values, the fused output gradients, argument checks, configs and dtypes.
Gradient checks: test_gradients.py; PyTorch: test_torch_oracle_modern.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnctl.core import (
    BinaryCrossEntropy,
    CrossEntropy,
    FullyConnected,
    Huber,
    NeuralNetwork,
    initialize_loss,
)
from nnctl.core.losses import balanced_class_weights
from nnctl.errors import ShapeError


def test_label_smoothing_mixes_the_targets_with_the_uniform_distribution():
    loss = CrossEntropy(label_smoothing=0.3)
    Y, P = np.array([[1.0, 0.0, 0.0]]), np.array([[0.7, 0.2, 0.1]])
    # targets become 0.7 * [1, 0, 0] + 0.1 = [0.8, 0.1, 0.1]
    expected = -(0.8 * math.log(0.7) + 0.1 * math.log(0.2) + 0.1 * math.log(0.1))
    assert math.isclose(loss.forward(Y, P), expected, rel_tol=1e-12)


def test_class_weights_weight_each_row_and_divide_by_the_total_target_weight():
    loss = CrossEntropy(class_weights=[1.0, 3.0])
    Y = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    P = np.array([[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]])
    expected = (-math.log(0.8) - 3 * math.log(0.6) - 3 * math.log(0.5)) / (1 + 3 + 3)
    assert math.isclose(loss.forward(Y, P), expected, rel_tol=1e-12)
    both = CrossEntropy(label_smoothing=0.2, class_weights=[1.0, 3.0])
    # smoothed rows [0.9, 0.1] and [0.1, 0.9], weighted [0.9, 0.3] and [0.1, 2.7]
    expected = (
        -(0.9 * math.log(0.8) + 0.3 * math.log(0.2))
        - (0.1 * math.log(0.4) + 2.7 * math.log(0.6))
        - (0.1 * math.log(0.5) + 2.7 * math.log(0.5))
    ) / 7
    assert math.isclose(both.forward(Y, P), expected, rel_tol=1e-12)


def test_without_options_cross_entropy_computes_exactly_what_it_did():
    rng = np.random.default_rng(0)
    Y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 6)]
    Z = rng.normal(size=(6, 4)).astype(np.float32)
    P = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    loss = CrossEntropy()
    p = np.clip(P, np.finfo(np.float32).tiny, 1.0)
    assert loss.forward(Y, P) == float(-np.sum(Y * np.log(p), dtype=np.float64) / 6)
    np.testing.assert_array_equal(loss.backward(Y, P), -(Y / p) / 6)
    np.testing.assert_array_equal(loss.backward_logits(Y, P), (P - Y) * np.float32(1 / 6))


@pytest.mark.parametrize(
    "spec",
    [
        {"type": "cross_entropy", "label_smoothing": 0.1},
        {"type": "cross_entropy", "class_weights": [0.5, 2.0, 1.0]},
        {"type": "cross_entropy", "label_smoothing": 0.25, "class_weights": [3.0, 1.0, 0.2]},
        "binary_cross_entropy",
    ],
)
def test_the_fused_output_gradient_equals_the_chain_rule(spec):
    rng = np.random.default_rng(1)
    last = "sigmoid" if spec == "binary_cross_entropy" else "softmax"
    net = NeuralNetwork(
        [FullyConnected(5, "tanh"), FullyConnected(3, last)],
        spec,
        dtype="float64",
        input_shape=(4,),
    )
    assert net.fused_output
    X = rng.normal(size=(6, 4))
    Y = np.eye(3)[rng.integers(0, 3, 6)]
    out = net.forward(X)
    fused_loss = net.backward(Y, out)
    fused = {k: g.copy() for k, _, g in net.param_grads()}
    dLdY = net.loss.backward(Y, out)
    for layer in reversed(net.layers):
        dLdY = layer.backward(dLdY)
    assert math.isclose(fused_loss, net.loss.forward(Y, out), rel_tol=1e-12)
    assert math.isclose(net.loss_value(Y, out), fused_loss, rel_tol=1e-15)
    for key, _, grad in net.param_grads():
        np.testing.assert_allclose(fused[key], grad, rtol=1e-9, atol=1e-12)


def test_the_unweighted_smoothed_gradient_is_outputs_minus_smoothed_targets_over_batch():
    loss = CrossEntropy(label_smoothing=0.1)
    Y, P = np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([[0.3, 0.7], [0.6, 0.4]])
    smooth = 0.9 * Y + 0.05
    np.testing.assert_allclose(loss.backward_logits(Y, P), (P - smooth) / 2, rtol=1e-15)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"label_smoothing": 1.0}, "label_smoothing must be a number in [0, 1); got 1.0"),
        ({"label_smoothing": -0.1}, "label_smoothing must be a number in [0, 1); got -0.1"),
        ({"class_weights": "balanced"}, "'balanced' is resolved from the training labels"),
        ({"class_weights": [1.0, -2.0]}, "class_weights must be a list of positive numbers"),
        ({"class_weights": [1.0, 0.0]}, "class_weights must be a list of positive numbers"),
        ({"class_weights": []}, "class_weights must be a list of positive numbers"),
        ({"class_weights": [1.0, "2"]}, "class_weights must be a list of positive numbers"),
        ({"class_weights": 2.0}, "class_weights must be a list of positive numbers"),
    ],
)
def test_bad_cross_entropy_arguments(kwargs, message):
    with pytest.raises(ValueError) as error:
        CrossEntropy(**kwargs)
    assert message in str(error.value)


def test_class_weights_must_have_one_entry_per_class():
    loss = CrossEntropy(class_weights=[1.0, 2.0])
    with pytest.raises(ShapeError, match="class_weights has 2 entries but the targets have 3"):
        loss.forward(np.eye(3), np.full((3, 3), 1 / 3))


def test_balanced_class_weights():
    assert balanced_class_weights([2, 6]) == [8 / (2 * 2), 8 / (2 * 6)]
    assert balanced_class_weights(np.array([5, 5, 5])) == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match=r"classes \[1\] have no examples"):
        balanced_class_weights([3, 0, 2])


def test_binary_cross_entropy_values_and_stable_logits():
    loss = BinaryCrossEntropy()
    Y, P = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([[0.9, 0.2], [0.4, 0.5]])
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.6) + math.log(0.5)) / 4
    assert math.isclose(loss.forward(Y, P), expected, rel_tol=1e-12)
    Z = np.array([[1e4, -1e4], [-1e4, 0.0]], dtype=np.float32)
    Yz = np.array([[0.0, 0.0], [1.0, 1.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        value = loss.forward_logits(Yz, Z)
        saturated = loss.forward(Yz, np.array([[1.0, 0.0], [0.0, 0.5]], np.float32))
        grad = loss.backward(Yz, np.array([[1.0, 0.0], [0.0, 0.5]], np.float32))
    assert math.isclose(value, (1e4 + 0.0 + 1e4 + math.log(2)) / 4, rel_tol=1e-12)
    assert np.isfinite(saturated) and np.all(np.isfinite(grad))


def test_huber_is_quadratic_inside_delta_and_linear_outside():
    loss = Huber(delta=2.0)
    Y, Y_hat = np.zeros((1, 4)), np.array([[1.0, -2.0, 3.0, -5.0]])
    # 0.5 * 1, 0.5 * 4, 2 * (3 - 1), 2 * (5 - 1)
    assert math.isclose(loss.forward(Y, Y_hat), (0.5 + 2.0 + 4.0 + 8.0) / 4, rel_tol=1e-15)
    np.testing.assert_array_equal(loss.backward(Y, Y_hat), [[0.25, -0.5, 0.5, -0.5]])
    with pytest.raises(ValueError, match="delta must be a positive number; got 0"):
        Huber(delta=0)


def test_l1_is_the_mean_absolute_error_with_zero_gradient_at_equality():
    loss = initialize_loss("l1")
    Y, Y_hat = np.array([[1.0, 2.0], [0.0, 0.0]]), np.array([[0.5, 2.0], [-3.0, 1.0]])
    assert math.isclose(loss.forward(Y, Y_hat), (0.5 + 0 + 3 + 1) / 4, rel_tol=1e-15)
    np.testing.assert_array_equal(loss.backward(Y, Y_hat), [[-0.25, 0.0], [-0.25, 0.25]])


@pytest.mark.parametrize(
    "config",
    [
        {"type": "cross_entropy", "label_smoothing": 0.0, "class_weights": None},
        {"type": "cross_entropy", "label_smoothing": 0.1, "class_weights": [1.0, 2.5]},
        {"type": "binary_cross_entropy"},
        {"type": "huber", "delta": 0.5},
        {"type": "l1"},
    ],
)
def test_config_round_trip(config):
    assert initialize_loss(config).get_config() == config


@pytest.mark.parametrize(
    "spec,kind",
    [
        ({"type": "cross_entropy", "label_smoothing": 0.1, "class_weights": [1, 2, 3]}, "onehot"),
        ("binary_cross_entropy", "binary"),
        ({"type": "huber", "delta": 0.7}, "real"),
        ("l1", "real"),
    ],
)
def test_float32_agrees_with_float64(spec, kind):
    rng = np.random.default_rng(2)
    if kind == "real":
        Y, Y_hat = rng.normal(size=(8, 3)), rng.normal(size=(8, 3))
    else:
        Y = np.eye(3)[rng.integers(0, 3, 8)]
        Y_hat = rng.uniform(0.05, 0.95, size=(8, 3))
    loss = initialize_loss(spec)
    values, grads = {}, {}
    for dtype in (np.float32, np.float64):
        values[dtype] = loss.forward(Y.astype(dtype), Y_hat.astype(dtype))
        grads[dtype] = loss.backward(Y.astype(dtype), Y_hat.astype(dtype))
        assert grads[dtype].dtype == dtype
    assert math.isclose(values[np.float32], values[np.float64], rel_tol=1e-5)
    np.testing.assert_allclose(grads[np.float32], grads[np.float64], rtol=1e-5, atol=1e-7)
