"""The network's exact rewrites (``nnctl.core.fused``) against the plain layer-by-layer path:
outputs, losses, pooling choices and gradients must be equal, not merely close."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from nnctl.core import Conv2D, Flatten, FullyConnected, NeuralNetwork, Pool2D
from nnctl.core.activations import ACTIVATIONS, initialize_activation
from nnctl.core.fused import POOL_RULES, ActivationPool, ConvPool, plan

MONOTONE = sorted(name for name in ACTIVATIONS.names() if ACTIVATIONS.get(name).monotone)
FUSED = sorted(name for name in MONOTONE if type(initialize_activation(name)) in POOL_RULES)


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


def data(in_shape, n=5, seed=1, zero_background=False, dtype="float64"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n,) + in_shape)
    if zero_background:  # ties everywhere, as on real images after relu
        X[:, : in_shape[0] // 2] = 0.0
    return X.astype(dtype), np.eye(3, dtype=dtype)[rng.integers(0, 3, n)]


def step(net, X, Y, fuse):
    net.fuse = fuse
    out = net.forward(X)
    loss = net.backward(Y, out)
    args = [layer.cache["arg"].copy() for layer in net.layers if isinstance(layer, Pool2D)]
    return out, loss, {k: g.copy() for k, _, g in net.param_grads()}, args


def assert_same_step(net, X, Y):
    """Fused and plain steps give equal outputs, loss, pooling choices and gradients."""
    out_f, loss_f, grads_f, args_f = step(net, X, Y, fuse=True)
    out_u, loss_u, grads_u, args_u = step(net, X, Y, fuse=False)
    np.testing.assert_array_equal(out_f, out_u)
    assert loss_f == loss_u
    for fused, plain in zip(args_f, args_u):
        np.testing.assert_array_equal(fused, plain)
    for key, grad in grads_u.items():
        np.testing.assert_array_equal(grads_f[key], grad, err_msg=key)


def fused_stages(net) -> int:
    net.fuse = True
    return sum(isinstance(stage, ConvPool) for stage in net._stages())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("act", MONOTONE)
@pytest.mark.parametrize("pool,pad,in_shape", [(2, "same", (8, 8, 2)), (3, "valid", (8, 14, 1))])
def test_fused_equals_unfused_exactly(act, pool, pad, in_shape, dtype):
    net = cnn(act, pool, pad, in_shape, dtype=dtype)
    assert fused_stages(net) == (2 if act in FUSED else 0)
    assert_same_step(net, *data(in_shape, dtype=dtype))


def test_relu_and_linear_are_the_fused_activations():
    assert FUSED == ["linear", "relu"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("act", ["relu", "leaky_relu", "linear"])
def test_ties_go_to_the_first_maximum_like_the_unfused_pool(act, dtype):
    net = cnn(act, dtype=dtype)
    X, Y = data((8, 8, 2), zero_background=True, dtype=dtype)
    for layer in net.layers:
        if isinstance(layer, Conv2D):
            layer.parameters["b"][...] = np.linspace(-0.5, 0.5, layer.n_out)  # both signs
    net.fuse = False
    net.forward(X)
    args_plain = [layer.cache["arg"] for layer in net.layers if isinstance(layer, Pool2D)]
    assert any((a == 0).mean() > 0.3 for a in args_plain)  # really tied
    assert_same_step(net, X, Y)


def near_tie_net(act: str, dtype: str) -> tuple[NeuralNetwork, np.ndarray, np.ndarray]:
    """A 1x1 conv (W = 1, b = 1000) and a 2x2 pool on windows [1e-5, 2e-5, 0, 0]: in float32
    ``z + b`` rounds to 1000 at every position, so the maximum of ``z`` (position 1) is not
    the plain pool's first maximum of ``f(z + b)`` (position 0)."""
    layers = [Conv2D(1, 1, act, pad="valid"), Pool2D(2, "max", stride=2), Flatten()]
    net = NeuralNetwork(layers, "l2", dtype=dtype, input_shape=(2, 2, 1))
    net.layers[0].parameters["W"][...] = 1.0
    net.layers[0].parameters["b"][...] = 1000.0
    X = np.array([1e-5, 2e-5, 0.0, 0.0], dtype=dtype).reshape(1, 2, 2, 1)
    return net, X, np.zeros((1, 1), dtype=dtype)


@pytest.mark.parametrize("act", FUSED)
def test_float32_near_tie_under_rounding_routes_like_the_plain_path(act):
    net, X, Y = near_tie_net(act, "float32")
    assert fused_stages(net) == 1
    assert X.reshape(-1).argmax() == 1  # the raw maximum ...
    assert_same_step(net, X, Y)
    _, _, grads, args = step(net, X, Y, fuse=True)
    assert args[0].item() == 0  # ... is not the one chosen, after rounding
    # dW = x * dL/dz at the chosen input: 1e-5, not the 2e-5 a pool on z would give
    assert grads["layers.0.W"].item() == pytest.approx(1e-5 * grads["layers.0.b"].item())


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
def test_float32_saturating_activations_run_unfused_and_choose_like_the_plain_pool(act):
    net, X, Y = near_tie_net(act, "float32")
    net.layers[0].parameters["b"][...] = 20.0  # f(20 + x) rounds to 1 for every x here
    X = np.array([0.0, 1.0, 2.0, 3.0], dtype=np.float32).reshape(1, 2, 2, 1)
    assert fused_stages(net) == 0
    assert_same_step(net, X, Y)
    assert net.layers[1].cache["arg"].item() == 0  # the first of the saturated ties, not z's max


def test_layer_backward_still_works_after_a_fused_forward():
    net = cnn()
    X, Y = data((8, 8, 2))
    _, _, plain, _ = step(net, X, Y, fuse=False)
    net.fuse = True
    out = net.forward(X)
    assert set(net.layers[0].cache) == {"cols", "Z"}
    dLdY = (out - Y) * (1.0 / len(X))  # as NeuralNetwork.backward forms it
    dLdY = net.layers[-1].backward_linear(dLdY)
    for layer in reversed(net.layers[:-1]):
        dLdY = layer.backward(dLdY)
    for key, _, grad in net.param_grads():
        np.testing.assert_array_equal(grad, plain[key], err_msg=key)


@pytest.mark.parametrize("copier", [dict, copy.copy, lambda cache: {**cache}])
def test_conv_cache_after_a_fused_forward_is_a_plain_dict_the_next_forward_leaves_alone(copier):
    net = cnn()
    X, _ = data((8, 8, 2))
    net.fuse = False
    net.forward(X)
    plain = {key: value.copy() for key, value in net.layers[0].cache.items()}
    net.fuse = True
    net.forward(X)
    kept = copier(net.layers[0].cache)
    net.forward(X + 1.0)  # must not write into the arrays kept above
    assert set(kept) == {"cols", "Z"}
    for key, value in plain.items():
        np.testing.assert_array_equal(kept[key], value, err_msg=key)


def test_same_seed_gives_bit_identical_fused_steps():
    X, Y = data((8, 8, 2), dtype="float32")
    runs = [step(cnn(dtype="float32", seed=3), X, Y, fuse=True) for _ in range(2)]
    assert np.array_equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    for key, grad in runs[0][2].items():
        assert np.array_equal(grad, runs[1][2][key])


def test_buffers_are_reused_but_outputs_and_gradients_are_fresh():
    net = cnn()
    X, Y = data((8, 8, 2))
    first = net.forward(X)
    net.backward(Y, first)
    grad = net.layers[0].gradients["W"]
    second = net.forward(X + 1.0)
    net.backward(Y, second)
    assert not np.shares_memory(first, second) and not np.array_equal(first, second)
    assert not np.shares_memory(grad, net.layers[0].gradients["W"])


def test_backward_before_forward_is_a_clear_error():
    conv, pool = Conv2D(2, 3, "relu"), Pool2D(2, "max", stride=2)
    NeuralNetwork([conv, pool], "l2", dtype="float64", input_shape=(6, 6, 1))
    with pytest.raises(RuntimeError, match="forward pass"):
        ConvPool(conv, pool).backward(np.zeros((1, 3, 3, 2)))


@pytest.mark.parametrize(
    "conv,pool,in_shape,fused",
    [
        (lambda: Conv2D(2, 3, "relu"), lambda: Pool2D(2, "max", stride=2), (6, 6, 1), True),
        (lambda: Conv2D(2, 3, "linear"), lambda: Pool2D(2, "max", stride=2), (6, 6, 1), True),
        (lambda: Conv2D(2, 3, "relu", stride=2), lambda: Pool2D(2, "max", 2), (8, 8, 1), True),
        (lambda: Conv2D(2, 3, "tanh"), lambda: Pool2D(2, "max", stride=2), (6, 6, 1), False),
        (lambda: Conv2D(2, 3, "sigmoid"), lambda: Pool2D(2, "max", stride=2), (6, 6, 1), False),
        (lambda: Conv2D(2, 3, "leaky_relu"), lambda: Pool2D(2, "max", 2), (6, 6, 1), False),
        (lambda: Conv2D(2, 3, "softmax"), lambda: Pool2D(2, "max", stride=2), (6, 6, 1), False),
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


def test_strided_conv_fused_equals_unfused_exactly():
    layers = [Conv2D(3, 3, "relu", stride=2), Pool2D(2, "max", stride=2), Flatten()]
    net = NeuralNetwork(layers, "l2", dtype="float32", input_shape=(8, 8, 2))
    X, _ = data((8, 8, 2), dtype="float32")
    assert fused_stages(net) == 1
    assert_same_step(net, X, np.zeros((len(X), 12), dtype=np.float32))


def stem(act="relu", in_shape=(8, 8, 2), dtype="float64", pool_size=2):
    """conv → batch_norm → activation → pool → conv → flatten → fc: the pool can only fuse
    with the activation layer."""
    from nnctl.core import ActivationLayer, BatchNorm

    layers = [
        Conv2D(3, (3, 3), "linear", pad="same"),
        BatchNorm(),
        ActivationLayer(act),
        Pool2D(pool_size, "max", stride=pool_size),
        Conv2D(4, (3, 3), "relu", pad="same"),
        Flatten(),
        FullyConnected(3, "softmax"),
    ]
    return NeuralNetwork(layers, "cross_entropy", seed=0, dtype=dtype, input_shape=in_shape)


def activation_pools(net) -> int:
    net.fuse = True
    return sum(isinstance(stage, ActivationPool) for stage in net._stages())


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("act", MONOTONE)
@pytest.mark.parametrize("zero_background", [False, True])
def test_activation_pool_equals_unfused_exactly(act, dtype, zero_background):
    net = stem(act, dtype=dtype)
    assert activation_pools(net) == (1 if act in FUSED else 0)
    X, Y = data((8, 8, 2), dtype=dtype, zero_background=zero_background)
    assert_same_step(net, X, Y)
    net.eval()
    net.fuse = True
    fused = net.forward(X)
    net.fuse = False
    np.testing.assert_array_equal(fused, net.forward(X))


def test_activation_pool_ties_after_relu_route_like_the_plain_pool():
    """Inputs all <= 0 in some windows (relu gives four tied zeros) and exact ties above 0:
    the fused unit's choices and input gradient are the plain layers'."""
    from nnctl.core import ActivationLayer

    act, pool = ActivationLayer("relu"), Pool2D(2, "max", stride=2)
    act.build((4, 4, 1))
    pool.build((4, 4, 1))
    X = np.array([[-1.0, -2.0, 3.0, 3.0], [-0.5, -3.0, 1.0, 3.0], [0, 0, 2, 1], [0, 0, 1, 2]])
    X = X.reshape(1, 4, 4, 1)
    dY = np.arange(1.0, 5.0).reshape(1, 2, 2, 1)
    unit = ActivationPool(act, pool)
    out = unit.forward(X)
    arg, dX = pool.cache["arg"].copy(), unit.backward(dY)
    plain_out = pool.forward(act.forward(X))
    np.testing.assert_array_equal(out, plain_out)
    np.testing.assert_array_equal(arg, pool.cache["arg"])
    np.testing.assert_array_equal(dX, act.backward(pool.backward(dY)))
    assert dX[0, 0, 0, 0] == 0.0  # all-negative window: no gradient through relu
    assert dX[0, 0, 2, 0] == 2.0 and dX[0, 0, 3, 0] == 0.0  # tie at 3: the first one


@pytest.mark.parametrize(
    "in_shape,pool_size,fused",
    [((8, 8, 2), 2, True), ((7, 8, 2), 2, False), ((9, 9, 2), 3, True)],
)
def test_activation_pool_only_where_the_windows_tile(in_shape, pool_size, fused):
    net = stem(in_shape=in_shape, pool_size=pool_size)
    assert activation_pools(net) == int(fused)


def test_activation_pool_backward_before_forward_is_a_clear_error():
    from nnctl.core import ActivationLayer

    with pytest.raises(RuntimeError, match="forward pass"):
        ActivationPool(ActivationLayer("relu"), Pool2D(2)).backward(np.zeros((1, 2, 2, 1)))
