"""Global average and max pooling, and the activation layer. Gradient checks:
test_gradients.py; PyTorch: test_torch_oracle_modern.py."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.core import (
    ActivationLayer,
    FullyConnected,
    GlobalAvgPool,
    GlobalMaxPool,
    NeuralNetwork,
    initialize_layer,
    initialize_loss,
)
from nnctl.errors import ShapeError


def test_global_avg_pool_is_the_channel_mean_and_spreads_its_gradient():
    X = np.arange(2 * 2 * 3 * 2, dtype=np.float64).reshape(2, 2, 3, 2)
    pool = GlobalAvgPool()
    Y = pool.forward(X)
    np.testing.assert_array_equal(Y, [[5.0, 6.0], [17.0, 18.0]])  # means of 0,2,..,10 etc.
    dX = pool.backward(np.array([[6.0, 12.0], [-6.0, 0.0]]))
    assert dX.shape == X.shape
    np.testing.assert_array_equal(dX[0, ..., 0], np.ones((2, 3)))
    np.testing.assert_array_equal(dX[0, ..., 1], 2 * np.ones((2, 3)))
    np.testing.assert_array_equal(dX[1, ..., 0], -np.ones((2, 3)))


def test_global_max_pool_sends_the_gradient_to_the_first_maximum_in_row_major_order():
    X = np.zeros((1, 3, 3, 2))
    X[0, 1, 2, 0] = X[0, 2, 0, 0] = 5.0  # tie: (1, 2) comes first in row-major order
    X[0, :, :, 1] = -1.0  # all tied: (0, 0) is first
    pool = GlobalMaxPool()
    np.testing.assert_array_equal(pool.forward(X), [[5.0, -1.0]])
    dX = pool.backward(np.array([[3.0, 7.0]]))
    expected = np.zeros_like(X)
    expected[0, 1, 2, 0], expected[0, 0, 0, 1] = 3.0, 7.0
    np.testing.assert_array_equal(dX, expected)


def test_global_max_pool_propagates_nan():
    X = np.ones((1, 2, 2, 1))
    X[0, 1, 0, 0] = np.nan
    assert np.isnan(GlobalMaxPool().forward(X)).all()


@pytest.mark.parametrize("make", [GlobalAvgPool, GlobalMaxPool])
def test_global_pools_need_images(make):
    pool = make()
    assert pool.output_shape((5, 4, 7)) == (7,)
    with pytest.raises(ShapeError, match=r"expects images \(batch, rows, cols, channels\); got "):
        pool.output_shape((10,))
    assert pool.parameter_count((5, 4, 7)) == 0
    assert initialize_layer(pool.get_config()).get_config() == {"type": pool.type_name}


@pytest.mark.parametrize("make", [GlobalAvgPool, GlobalMaxPool])
def test_global_pools_keep_the_dtype(make):
    X = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype(np.float32)
    pool = make()
    Y = pool.forward(X)
    assert Y.dtype == np.float32 and pool.backward(np.ones_like(Y)).dtype == np.float32


def test_activation_layer_applies_its_activation():
    X = np.array([[-2.0, 0.5], [3.0, -0.1]])
    layer = ActivationLayer("relu")
    np.testing.assert_array_equal(layer.forward(X), [[0.0, 0.5], [3.0, 0.0]])
    np.testing.assert_array_equal(layer.backward(np.ones_like(X)), [[0.0, 1.0], [1.0, 0.0]])
    config = {"type": "activation", "activation": {"type": "leaky_relu", "alpha": 0.2}}
    assert initialize_layer(config).get_config() == config
    assert initialize_layer({"type": "activation", "activation": "tanh"}).get_config() == {
        "type": "activation",
        "activation": "tanh",
    }


@pytest.mark.parametrize(
    "activation,loss", [("softmax", "cross_entropy"), ("sigmoid", "binary_cross_entropy")]
)
def test_a_final_activation_layer_takes_the_exact_combined_gradient(activation, loss):
    rng = np.random.default_rng(1)
    net = NeuralNetwork(
        [FullyConnected(3), ActivationLayer(activation)], loss, dtype="float64", input_shape=(4,)
    )
    assert net.fused_output
    X = rng.normal(size=(5, 4))
    Y = np.eye(3)[rng.integers(0, 3, 5)]
    out = net.forward(X)
    fused_loss = net.backward(Y, out)
    fused = {k: g.copy() for k, _, g in net.param_grads()}
    chain = initialize_loss(loss)
    dLdY = chain.backward(Y, out)
    for layer in reversed(net.layers):
        dLdY = layer.backward(dLdY)
    assert np.isclose(fused_loss, chain.forward(Y, out), rtol=1e-12)
    for key, _, grad in net.param_grads():
        np.testing.assert_allclose(fused[key], grad, rtol=1e-9, atol=1e-12)
