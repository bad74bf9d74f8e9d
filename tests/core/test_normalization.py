"""BatchNorm and LayerNorm: statistics, running averages, modes, buffers in state dicts,
exact resume, dtypes and argument checks. Gradients: test_gradients.py (training mode)
and here (evaluation mode); PyTorch: test_torch_oracle_modern.py."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.core import (
    BatchNorm,
    Conv2D,
    FullyConnected,
    GlobalAvgPool,
    LayerNorm,
    NeuralNetwork,
    Residual,
    initialize_layer,
)
from nnctl.core.gradcheck import numerical_gradient, relative_error
from nnctl.core.optimizers import SGD
from nnctl.errors import CheckpointError, ShapeError


def built(layer, shape, dtype=np.float64, seed=0):
    layer.build(shape[1:], rng=np.random.default_rng(seed), dtype=dtype)
    return layer


def test_batch_norm_training_normalizes_each_channel_with_batch_statistics():
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 2.0, size=(4, 3, 2, 5))
    bn = built(BatchNorm(eps=1e-5), X.shape)
    bn.parameters["gamma"][...] = rng.normal(size=5)
    bn.parameters["beta"][...] = rng.normal(size=5)
    Y = bn.forward(X)
    flat = X.reshape(-1, 5)  # every value of a channel: batch, rows and cols
    expected = (X - flat.mean(0)) / np.sqrt(flat.var(0) + 1e-5)  # biased variance
    expected = expected * bn.parameters["gamma"] + bn.parameters["beta"]
    np.testing.assert_allclose(Y, expected, rtol=1e-12, atol=1e-12)
    # vectors: per feature over the batch
    V = rng.normal(size=(6, 4))
    out = built(BatchNorm(), V.shape).forward(V)
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out.var(0), V.var(0) / (V.var(0) + 1e-5), rtol=1e-12)


def test_running_statistics_follow_the_keras_momentum_convention_with_unbiased_variance():
    rng = np.random.default_rng(1)
    batches = [rng.normal(1.0, 3.0, size=(5, 2, 2, 3)) for _ in range(3)]
    bn = built(BatchNorm(momentum=0.8), batches[0].shape)
    mean, var = np.zeros(3), np.ones(3)
    for X in batches:
        bn.forward(X)
        flat = X.reshape(-1, 3)
        mean = 0.8 * mean + 0.2 * flat.mean(0)
        var = 0.8 * var + 0.2 * flat.var(0, ddof=1)  # unbiased, as PyTorch
    np.testing.assert_allclose(bn.buffers["running_mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(bn.buffers["running_var"], var, rtol=1e-12)


def test_evaluation_uses_running_statistics_and_leaves_them_alone():
    rng = np.random.default_rng(2)
    bn = built(BatchNorm(momentum=0.0), (8, 4))
    bn.forward(rng.normal(2.0, 0.5, size=(8, 4)))  # momentum 0: running = last batch
    running = {k: v.copy() for k, v in bn.buffers.items()}
    bn.training = False
    X = rng.normal(size=(3, 4))
    Y = bn.forward(X)
    expected = (X - running["running_mean"]) / np.sqrt(running["running_var"] + 1e-5)
    np.testing.assert_allclose(Y, expected, rtol=1e-12)
    for key, value in bn.buffers.items():
        assert np.array_equal(value, running[key])
    # one example is fine in evaluation
    assert bn.forward(X[:1]).shape == (1, 4)


def test_a_batch_of_one_vector_in_training_is_a_shape_error():
    bn = built(BatchNorm(), (1, 4))
    with pytest.raises(ShapeError, match=r"more than one value per channel.*\(1, 4\)"):
        bn.forward(np.ones((1, 4)))
    # one image has rows * cols values per channel: that is a batch statistic
    image = built(BatchNorm(), (1, 3, 3, 2))
    out = image.forward(np.random.default_rng(3).normal(size=(1, 3, 3, 2)))
    np.testing.assert_allclose(out.reshape(-1, 2).mean(0), 0.0, atol=1e-12)


def test_evaluation_mode_gradients_match_finite_differences():
    rng = np.random.default_rng(4)
    shape = (3, 2, 3, 4)
    bn = built(BatchNorm(), shape)
    bn.buffers["running_mean"][...] = rng.normal(size=4)
    bn.buffers["running_var"][...] = rng.uniform(0.5, 2.0, size=4)
    for value in bn.parameters.values():
        value[...] = rng.normal(size=value.shape)
    bn.training = False
    X, R = rng.normal(size=shape), rng.normal(size=shape)

    def objective():
        return float(np.sum(bn.forward(X) * R))

    objective()
    dX = bn.backward(R)
    assert relative_error(dX, numerical_gradient(objective, X)) < 1e-6
    for key, value in bn.parameters.items():
        objective()
        bn.backward(R)
        analytic = bn.gradients[key].copy()
        assert relative_error(analytic, numerical_gradient(objective, value)) < 1e-6, key


def bn_net(seed=0):
    layers = [
        Conv2D(3, 3, "relu"),
        BatchNorm(momentum=0.7),
        Residual([Conv2D(3, 3), BatchNorm(), Conv2D(3, 3)]),
        GlobalAvgPool(),
        FullyConnected(2, "softmax"),
    ]
    return NeuralNetwork(layers, "cross_entropy", seed=seed, input_shape=(5, 5, 1))


def test_state_dict_holds_the_running_statistics_but_the_optimizer_never_sees_them():
    net = bn_net()
    state = net.state_dict()
    for key in ("layers.1.running_mean", "layers.1.running_var", "layers.2.1.running_var"):
        assert key in state
    trained = {key for key, _, _ in net.param_grads()}
    assert "layers.1.gamma" in trained and "layers.2.1.beta" in trained
    assert not any("running" in key for key in trained)
    del state["layers.2.1.running_mean"]
    with pytest.raises(CheckpointError, match=r"missing \['layers.2.1.running_mean'\]"):
        net.load_state_dict(state)


def _train(net, optimizer, batches):
    for X, Y in batches:
        net.backward(Y, net.forward(X))
        optimizer.step(net.param_grads())


def test_resume_from_a_state_dict_is_bit_identical():
    rng = np.random.default_rng(5)
    batches = [(rng.normal(size=(4, 5, 5, 1)), np.eye(2)[rng.integers(0, 2, 4)]) for _ in range(4)]
    straight = bn_net()
    opt = SGD(lr=0.1, momentum=0.9)
    _train(straight, opt, batches)

    first = bn_net()
    opt_first = SGD(lr=0.1, momentum=0.9)
    _train(first, opt_first, batches[:2])
    model_state, optim_state = first.state_dict(), opt_first.state_dict()
    resumed = bn_net(seed=99)  # different weights and statistics until loaded
    opt_resumed = SGD(lr=0.1, momentum=0.9)
    resumed.load_state_dict(model_state)
    opt_resumed.load_state_dict(optim_state)
    _train(resumed, opt_resumed, batches[2:])

    expected = straight.state_dict()
    assert list(resumed.state_dict()) == list(expected)
    for key, value in resumed.state_dict().items():
        assert np.array_equal(value, expected[key]), key
    assert not np.array_equal(expected["layers.1.running_var"], np.ones(3, np.float32))


def test_network_modes_reach_batch_norm_inside_blocks():
    net = bn_net()
    inner = net.layers[2].layers[1]
    X = np.random.default_rng(6).normal(size=(4, 5, 5, 1))
    net.eval()
    assert not inner.training
    before = inner.buffers["running_mean"].copy()
    net.forward(X)
    assert np.array_equal(inner.buffers["running_mean"], before)
    net.train()
    assert inner.training
    net.forward(X)
    assert not np.array_equal(inner.buffers["running_mean"], before)


@pytest.mark.parametrize("make", [BatchNorm, LayerNorm])
def test_float32_agrees_with_float64(make):
    rng = np.random.default_rng(7)
    X, R = rng.normal(1.0, 2.0, size=(6, 3, 3, 4)), rng.normal(size=(6, 3, 3, 4))
    outputs = {}
    for dtype in (np.float32, np.float64):
        layer = built(make(), X.shape, dtype)
        Y = layer.forward(X.astype(dtype))
        dX = layer.backward(R.astype(dtype))
        assert Y.dtype == dtype and dX.dtype == dtype
        assert all(g.dtype == dtype for g in layer.gradients.values())
        assert all(b.dtype == dtype for b in layer.buffers.values())
        outputs[dtype] = (Y, dX, layer.gradients["gamma"])
    for a, b in zip(outputs[np.float32], outputs[np.float64]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_layer_norm_normalizes_each_example_over_the_last_axis_in_both_modes():
    rng = np.random.default_rng(8)
    X = rng.normal(2.0, 3.0, size=(2, 3, 3, 6))
    ln = built(LayerNorm(eps=1e-5), X.shape)
    ln.parameters["gamma"][...] = rng.normal(size=6)
    ln.parameters["beta"][...] = rng.normal(size=6)
    Y = ln.forward(X)
    expected = (X - X.mean(-1, keepdims=True)) / np.sqrt(X.var(-1, keepdims=True) + 1e-5)
    expected = expected * ln.parameters["gamma"] + ln.parameters["beta"]
    np.testing.assert_allclose(Y, expected, rtol=1e-12, atol=1e-12)
    ln.training = False
    np.testing.assert_array_equal(ln.forward(X), Y)
    assert not ln.buffers
    assert ln.forward(X[:1]).shape == (1, 3, 3, 6)  # no batch statistics: one example is fine


@pytest.mark.parametrize(
    "spec,shape,count",
    [
        ({"type": "batch_norm", "momentum": 0.99, "eps": 0.001}, (4, 4, 8), 16),
        ({"type": "batch_norm", "momentum": 0.9, "eps": 1e-05}, (7,), 14),
        ({"type": "layer_norm", "eps": 1e-06}, (3, 5), 10),
    ],
)
def test_config_round_trip_and_parameter_count(spec, shape, count):
    layer = initialize_layer(spec)
    assert layer.get_config() == spec
    assert layer.parameter_count(shape) == count
    assert layer.output_shape(shape) == shape
    layer.build(shape)
    assert layer.parameter_count() == count
    assert {k: v.shape for k, v in layer.parameters.items()} == {
        "gamma": (shape[-1],),
        "beta": (shape[-1],),
    }


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: BatchNorm(momentum=1.0), "momentum must be a number in [0, 1); got 1.0"),
        (lambda: BatchNorm(momentum="0.9"), "momentum must be a number in [0, 1); got '0.9'"),
        (lambda: BatchNorm(eps=0), "eps must be a positive number; got 0"),
        (lambda: LayerNorm(eps=-1e-5), "eps must be a positive number; got -1e-05"),
    ],
)
def test_bad_arguments_name_the_argument(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert str(error.value) == message


def test_a_shape_mismatch_after_building_is_a_shape_error():
    bn = built(BatchNorm(), (4, 3))
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 3\)"):
        bn.forward(np.ones((4, 5)))
