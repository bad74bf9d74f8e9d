"""The network's exact rewrites (``nnctl.core.fused``) against the plain layer-by-layer path."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.core import Conv2D, Flatten, FullyConnected, NeuralNetwork, Pool2D
from nnctl.core.fused import ConvPool, LazyCache, plan


def cnn(conv_act="relu", pool=2, pad="same", in_shape=(8, 8, 2), dtype="float64", seed=0):
    layers = [
        Conv2D(3, (3, 3), conv_act, pad=pad),
        Pool2D(pool, "max", stride=pool),
        Conv2D(4, (3, 3), conv_act, pad="same"),
        Pool2D(2, "max", stride=2),
        Flatten(),
        FullyConnected(3, "softmax"),
    ]
    return NeuralNetwork(layers, "cross_entropy", seed=seed, dtype=dtype, input_shape=in_shape)


def data(in_shape, n=5, seed=1, zero_background=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n,) + in_shape)
    if zero_background:  # ties everywhere, as on real images after relu
        X[:, : in_shape[0] // 2] = 0.0
    return X, np.eye(3)[rng.integers(0, 3, n)]


def step(net, X, Y, fuse):
    net.fuse = fuse
    out = net.forward(X)
    loss = net.backward(Y, out)
    return out, loss, {k: g.copy() for k, _, g in net.param_grads()}


def assert_same_step(net, X, Y, rtol):
    out_f, loss_f, grads_f = step(net, X, Y, fuse=True)
    assert any(isinstance(s, ConvPool) for s in net._stages())
    out_u, loss_u, grads_u = step(net, X, Y, fuse=False)
    np.testing.assert_allclose(out_f, out_u, rtol=rtol, atol=0)
    assert np.isclose(loss_f, loss_u, rtol=rtol)
    for key, grad in grads_u.items():
        scale = np.abs(grad).max() or 1.0
        np.testing.assert_allclose(grads_f[key], grad, rtol=rtol, atol=rtol * scale, err_msg=key)


@pytest.mark.parametrize("act", ["relu", "tanh", "leaky_relu", "elu", "linear", "sigmoid"])
@pytest.mark.parametrize("pool,pad,in_shape", [(2, "same", (8, 8, 2)), (3, "valid", (8, 14, 1))])
def test_fused_equals_unfused_float64(act, pool, pad, in_shape):
    net = cnn(act, pool, pad, in_shape)
    assert_same_step(net, *data(in_shape), rtol=1e-12)


@pytest.mark.parametrize("act", ["relu", "leaky_relu"])
def test_ties_go_to_the_first_maximum_like_the_unfused_pool(act):
    net = cnn(act)
    X, Y = data((8, 8, 2), zero_background=True)
    for layer in net.layers:
        if isinstance(layer, Conv2D):
            layer.parameters["b"][...] = np.linspace(-0.5, 0.5, layer.n_out)  # both signs
    net.fuse = True
    net.forward(X)
    args_fused = [layer.cache["arg"].copy() for layer in net.layers if isinstance(layer, Pool2D)]
    net.fuse = False
    net.forward(X)
    args_plain = [layer.cache["arg"] for layer in net.layers if isinstance(layer, Pool2D)]
    assert any((a == 0).mean() > 0.3 for a in args_plain)  # really tied
    for fused, plain in zip(args_fused, args_plain):
        np.testing.assert_array_equal(fused, plain)
    assert_same_step(net, X, Y, rtol=1e-12)


def test_float32_close():
    net = cnn(dtype="float32")
    X, Y = data((8, 8, 2))
    assert_same_step(net, X.astype(np.float32), Y.astype(np.float32), rtol=2e-5)


def test_layer_backward_still_works_after_a_fused_forward():
    net = cnn()
    X, Y = data((8, 8, 2))
    _, _, plain = step(net, X, Y, fuse=False)
    net.fuse = True
    out = net.forward(X)
    assert isinstance(net.layers[0].cache, LazyCache)
    assert set(net.layers[0].cache) == {"cols", "Z"}
    dLdY = (out - Y) / len(X)
    dLdY = net.layers[-1].backward_linear(dLdY)
    for layer in reversed(net.layers[:-1]):
        dLdY = layer.backward(dLdY)
    for key, _, grad in net.param_grads():
        np.testing.assert_allclose(grad, plain[key], rtol=1e-12, atol=1e-15, err_msg=key)


def test_same_seed_gives_bit_identical_fused_steps():
    X, Y = data((8, 8, 2))
    runs = [step(cnn(dtype="float32", seed=3), X, Y, fuse=True) for _ in range(2)]
    assert np.array_equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    for key, grad in runs[0][2].items():
        assert np.array_equal(grad, runs[1][2][key])


def test_buffers_are_reused_but_outputs_are_fresh():
    net = cnn()
    X, _ = data((8, 8, 2))
    first = net.forward(X)
    second = net.forward(X + 1.0)
    assert not np.shares_memory(first, second) and not np.array_equal(first, second)


@pytest.mark.parametrize(
    "conv,pool,in_shape,fused",
    [
        (lambda: Conv2D(2, 3, "relu"), lambda: Pool2D(2, "max", stride=2), (6, 6, 1), True),
        (lambda: Conv2D(2, 3, "softmax"), lambda: Pool2D(2, "max", stride=2), (6, 6, 1), False),
        (lambda: Conv2D(2, 3, "relu", stride=2), lambda: Pool2D(2, "max", 2), (8, 8, 1), False),
        (lambda: Conv2D(2, 3, "relu"), lambda: Pool2D(2, "average", stride=2), (6, 6, 1), False),
        (lambda: Conv2D(2, 3, "relu"), lambda: Pool2D(2, "max", stride=1), (6, 6, 1), False),
        (lambda: Conv2D(2, 3, "relu"), lambda: Pool2D(2, "max", stride=2), (7, 6, 1), False),
        (lambda: Conv2D(2, 3, "relu"), lambda: Pool2D(2, "max", 2, pad=1), (6, 6, 1), False),
    ],
)
def test_only_exact_patterns_are_fused(conv, pool, in_shape, fused):
    layers = [conv(), pool()]
    NeuralNetwork(layers, "l2", dtype="float64", input_shape=in_shape)
    assert isinstance(plan(layers)[0], ConvPool) == fused
