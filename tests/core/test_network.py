"""NeuralNetwork: determinism, modes, predict, state dicts, fused softmax + cross-entropy."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.core import (
    L2,
    Conv2D,
    Dropout,
    Flatten,
    FullyConnected,
    NeuralNetwork,
    Pool2D,
    SoftMax,
    initialize_loss,
)
from nnctl.core.checks import ArgumentError
from nnctl.errors import CheckpointError


def small_cnn(seed=0, dtype="float32"):
    layers = [
        Conv2D(4, (3, 3), "relu"),
        Pool2D((2, 2), "max", stride=2),
        Flatten(),
        Dropout(0.2),
        FullyConnected(3, "softmax"),
    ]
    return NeuralNetwork(layers, "cross_entropy", seed=seed, dtype=dtype, input_shape=(6, 6, 1))


def batch(n=5, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6, 6, 1)), np.eye(3)[rng.integers(0, 3, n)]


def test_float32_is_the_default_dtype():
    net = small_cnn()
    X, _ = batch()
    assert all(a.dtype == np.float32 for _, _, a in net.iter_parameters())
    assert net.forward(X).dtype == np.float32
    assert small_cnn(dtype="float64").forward(X).dtype == np.float64


def test_same_seed_gives_bit_identical_weights_and_outputs():
    X, Y = batch()
    a, b = small_cnn(seed=3), small_cnn(seed=3)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and np.array_equal(va, vb)
    out_a, out_b = a.forward(X), b.forward(X)  # dropout masks too
    assert np.array_equal(out_a, out_b)
    assert a.backward(Y, out_a) == b.backward(Y, out_b)
    assert not np.array_equal(
        small_cnn(seed=4).state_dict()["layers.0.W"], a.state_dict()["layers.0.W"]
    )


def test_predict_has_no_side_effects_on_gradients_or_mode():
    net = small_cnn()
    X, Y = batch()
    net.backward(Y, net.forward(X))
    before = {k: g.copy() for k, _, g in net.param_grads()}
    Y_hat, loss = net.predict(X, Y)
    assert net.training
    assert Y_hat.shape == (5, 3) and np.isfinite(loss)
    for key, _, grad in net.param_grads():
        assert np.array_equal(grad, before[key])


def test_eval_mode_disables_dropout():
    net = small_cnn().eval()
    X, _ = batch()
    assert np.array_equal(net.forward(X), net.forward(X))


def test_fused_softmax_cross_entropy_equals_the_chain_rule():
    X, Y = batch()
    net = small_cnn(dtype="float64").eval()
    assert net.fused_softmax_cross_entropy
    out = net.forward(X)
    fused_loss = net.backward(Y, out)
    fused = {k: g.copy() for k, _, g in net.param_grads()}
    # the unfused path: the loss's own gradient, then the softmax layer's backward
    loss = initialize_loss("cross_entropy")
    dLdY = loss.backward(Y, out)
    for layer in reversed(net.layers):
        dLdY = layer.backward(dLdY)
    assert np.isclose(fused_loss, loss.forward(Y, out))
    for key, _, grad in net.param_grads():
        np.testing.assert_allclose(fused[key], grad, rtol=1e-9, atol=1e-12)


def test_fused_loss_is_finite_when_softmax_saturates():
    net = NeuralNetwork([FullyConnected(2, "softmax")], "cross_entropy", dtype="float32")
    net.build((1,))
    net.layers[0].parameters["W"][...] = [[1000.0, -1000.0]]
    out = net.forward(np.array([[1.0]]))
    loss = net.backward(np.array([[0.0, 1.0]]), out)
    assert np.isclose(loss, 2000.0)  # exact from logits, not clipped at -log(tiny)
    assert isinstance(net.layers[0].activation, SoftMax)


def test_state_dict_round_trip_and_dotted_keys():
    a, b = small_cnn(seed=1), small_cnn(seed=2)
    state = a.state_dict()
    assert list(state) == ["layers.0.W", "layers.0.b", "layers.4.W", "layers.4.b"]
    assert all(type(v) is np.ndarray for v in state.values())
    b.load_state_dict(state)
    X, _ = batch()
    assert np.array_equal(a.eval().forward(X), b.eval().forward(X))
    state["layers.0.W"][...] = 0  # a copy, not a view of the live weights
    assert np.any(a.layers[0].parameters["W"] != 0)


def test_load_state_dict_rejects_mismatches():
    net = small_cnn()
    state = net.state_dict()
    del state["layers.4.b"]
    with pytest.raises(CheckpointError, match=r"missing \['layers.4.b'\]"):
        net.load_state_dict(state)
    state = net.state_dict()
    state["layers.0.W"] = np.zeros((1, 1))
    with pytest.raises(CheckpointError, match="shape"):
        net.load_state_dict(state)


def test_iter_parameters_and_counts():
    net = small_cnn()
    names = [(type(layer).__name__, name) for layer, name, _ in net.iter_parameters()]
    assert names == [("Conv2D", "W"), ("Conv2D", "b"), ("FullyConnected", "W"),
                     ("FullyConnected", "b")]  # fmt: skip
    assert net.parameter_count() == (9 * 1 + 1) * 4 + (36 + 1) * 3
    assert net.output_shapes((6, 6, 1)) == [(6, 6, 4), (3, 3, 4), (36,), (36,), (3,)]


def test_bad_dtype_names_the_argument():
    with pytest.raises(ArgumentError) as info:
        NeuralNetwork([FullyConnected(2)], "l2", dtype="float16")
    assert info.value.argument == "dtype"
    assert info.value.message == "must be one of 'float32', 'float64'; got 'float16'"


class ScaledL2(L2):
    """L2 times a factor: a loss with an argument (not registered)."""

    type_name = "scaled_l2"

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def get_config(self):
        return {"type": self.type_name, "scale": self.scale}


def test_get_config_gives_the_loss_with_its_arguments():
    layers = [FullyConnected(2)]
    assert NeuralNetwork(layers, "l2").get_config()["loss"] == "l2"
    assert NeuralNetwork(layers, {"type": "cross_entropy"}).get_config()["loss"] == {
        "type": "cross_entropy",
        "label_smoothing": 0.0,
        "class_weights": None,
    }
    net = NeuralNetwork(layers, ScaledL2(3.0))
    assert net.get_config() == {
        "layers": [layers[0].get_config()],
        "loss": {"type": "scaled_l2", "scale": 3.0},
    }
    assert "loss={'type': 'scaled_l2', 'scale': 3.0}" in repr(net)
