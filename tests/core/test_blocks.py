"""Residual and Concat blocks: children's arrays under dotted names, settings that reach
the children, shortcuts, shape errors, configs, nesting, ties. Gradient checks:
test_gradients.py; PyTorch: test_torch_oracle_modern.py."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.core import (
    BatchNorm,
    Concat,
    Conv2D,
    Dropout,
    Flatten,
    FullyConnected,
    GlobalMaxPool,
    LayerNorm,
    NeuralNetwork,
    Pool2D,
    Residual,
    initialize_layer,
)
from nnctl.core.gradcheck import numerical_gradient, relative_error
from nnctl.core.optimizers import SGD
from nnctl.errors import ConfigError, ShapeError


def built(layer, shape, dtype=np.float64, seed=0):
    layer.build(shape, rng=np.random.default_rng(seed), dtype=dtype)
    return layer


def nested():
    """A residual inside a concat branch inside a residual."""
    inner = Residual([Conv2D(2, 3, "tanh"), BatchNorm()], activation="tanh")
    return Residual([Concat([[inner], [Conv2D(1, 1)], []]), Conv2D(3, 1)], activation="relu")


def test_parameters_are_the_childrens_arrays_under_dotted_names():
    block = built(Residual([Conv2D(4, 3, "relu", stride=2), Conv2D(4, 3)]), (6, 6, 2))
    conv0, conv1 = block.layers
    assert block.parameters["1.b"] is conv1.parameters["b"]
    assert list(block.parameters) == ["0.W", "0.b", "1.W", "1.b", "shortcut.W"]
    assert block.parameters["0.W"] is conv0.parameters["W"]
    assert block.parameters["shortcut.W"] is block.projection.parameters["W"]
    assert block.parameters["shortcut.W"].shape == (1, 1, 2, 4)  # a 1x1 conv kernel, no bias
    concat = built(Concat([[Conv2D(2, 3)], [], [Conv2D(1, 1), LayerNorm()]]), (4, 4, 3))
    assert list(concat.parameters) == [
        "branches.0.0.W",
        "branches.0.0.b",
        "branches.2.0.W",
        "branches.2.0.b",
        "branches.2.1.gamma",
        "branches.2.1.beta",
    ]
    deep = built(nested(), (4, 4, 3))
    assert "0.branches.0.0.shortcut.W" in deep.parameters
    assert "0.branches.0.0.1.running_mean" in deep.buffers
    assert set(deep.gradients) == set(deep.parameters)


def test_an_optimizer_step_on_the_block_updates_the_children_in_place():
    net = NeuralNetwork([nested(), Flatten(), FullyConnected(2)], "l2", input_shape=(4, 4, 3))
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(3, 4, 4, 3)), rng.normal(size=(3, 2))
    net.backward(Y, net.forward(X))
    keys = [key for key, _, _ in net.param_grads()]
    assert "layers.0.0.branches.0.0.0.W" in keys and "layers.0.1.b" in keys
    conv = net.layers[0].layers[0].branches[0][0].layers[0]
    before = conv.parameters["W"].copy()
    grad = conv.gradients["W"].copy()
    assert np.any(grad != 0)
    SGD(lr=0.5).step(net.param_grads())
    np.testing.assert_allclose(conv.parameters["W"], before - 0.5 * grad, rtol=1e-6)


def test_gradients_read_the_childrens_current_arrays():
    block = built(Residual([FullyConnected(3, "tanh")]), (3,))
    rng = np.random.default_rng(1)
    for scale in (1.0, 2.0):
        X = rng.normal(size=(4, 3))
        block.forward(X)
        block.backward(scale * np.ones((4, 3)))
        child = block.layers[0].gradients
        assert block.gradients["0.W"] is child["W"]
        assert block.gradients["0.b"] is child["b"]


def test_a_block_cannot_be_given_parameters_of_its_own():
    block = Residual([FullyConnected(3)])
    with pytest.raises(AttributeError, match="children"):
        block.parameters = {"W": np.zeros(3)}


def test_training_rng_and_dtype_reach_every_child():
    block = nested()
    rng = np.random.default_rng(5)
    block.build((4, 4, 3), rng=rng, dtype=np.float64)
    children = _all_layers(block)
    # concat, outer 1x1 conv; inner residual, 1x1 conv; inner conv, batch norm, projection
    assert len(children) == 7
    assert all(layer.rng is rng for layer in children)
    assert all(layer.dtype == np.float64 for layer in children)
    assert all(a.dtype == np.float64 for a in block.parameters.values())
    block.training = False
    assert not any(layer.training for layer in children)
    block.training = True
    assert all(layer.training for layer in children)


def _all_layers(block) -> list:
    found = []
    for _, child in block.named_children():
        found.append(child)
        if hasattr(child, "named_children"):
            found += _all_layers(child)
    return found


def test_needs_input_grad_reaches_only_the_children_that_see_the_block_input():
    net = NeuralNetwork(
        [Residual([Conv2D(2, 3), Conv2D(4, 3)]), Flatten(), FullyConnected(2)],
        "l2",
        input_shape=(4, 4, 1),
    )
    block = net.layers[0]
    assert not block.needs_input_grad
    assert not block.layers[0].needs_input_grad and not block.projection.needs_input_grad
    assert block.layers[1].needs_input_grad
    rng = np.random.default_rng(2)
    out = net.forward(rng.normal(size=(2, 4, 4, 1)))
    net.backward(rng.normal(size=(2, 2)), out)
    assert block.backward(rng.normal(size=(2, 4, 4, 4))) is None
    block.needs_input_grad = True
    assert block.layers[0].needs_input_grad and block.projection.needs_input_grad


def test_residual_computes_activation_of_the_sum():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2, 5, 5, 3))
    block = built(Residual([Conv2D(3, 3, "tanh"), Conv2D(3, 3)], "identity", "tanh"), X.shape[1:])
    a, b = block.layers
    expected = np.tanh(b.forward(a.forward(X)) + X)
    np.testing.assert_allclose(block.forward(X), expected, rtol=1e-12)


@pytest.mark.parametrize(
    "input_shape,stride,out_shape",
    [
        ((8, 8, 3), (2, 2), (4, 4, 6)),
        ((7, 5, 3), (2, 2), (4, 3, 6)),
        ((6, 6, 3), (1, 1), (6, 6, 6)),
    ],
)
def test_auto_shortcut_projects_with_the_stride_that_matches_the_size(
    input_shape, stride, out_shape
):
    s = stride[0]
    block = built(Residual([Conv2D(6, 3, "relu", stride=s)], "auto"), input_shape)
    assert block.output_shape(input_shape) == out_shape
    assert block.projection.stride == stride
    X = np.random.default_rng(4).normal(size=(2,) + input_shape)
    Y = block.forward(X)
    conv, W = block.layers[0], block.parameters["shortcut.W"][0, 0]  # (c_in, n_out)
    shortcut = X[:, ::s, ::s, :] @ W
    np.testing.assert_allclose(Y, np.maximum(conv.forward(X) + shortcut, 0), rtol=1e-12)


def test_auto_is_the_identity_when_the_shape_is_kept_and_projection_can_be_forced():
    same = built(Residual([Conv2D(3, 3)]), (5, 5, 3))
    assert same.projection is None and "shortcut.W" not in same.parameters
    forced = built(Residual([Conv2D(3, 3)], "projection"), (5, 5, 3))
    assert forced.projection.stride == (1, 1)
    assert forced.parameters["shortcut.W"].shape == (1, 1, 3, 3)
    vectors = built(Residual([FullyConnected(4)]), (6,))
    assert vectors.parameters["shortcut.W"].shape == (6, 4)


def test_identity_shortcut_with_a_shape_change_names_both_shapes():
    block = Residual([Conv2D(8, 3, stride=2)], "identity")
    with pytest.raises(ShapeError) as error:
        block.output_shape((8, 8, 3))
    assert "(8, 8, 3)" in str(error.value) and "(4, 4, 8)" in str(error.value)
    assert "shortcut: projection" in str(error.value)


@pytest.mark.parametrize(
    "layers,input_shape,shapes",
    [
        ([Conv2D(4, 3, pad="valid")], (8, 8, 3), ["(8, 8, 3)", "(6, 6, 4)"]),  # 8 → 6: no stride
        ([Flatten(), FullyConnected(4)], (4, 4, 2), ["(4, 4, 2)", "(4,)"]),  # rank changes
    ],
)
def test_no_projection_can_match_names_both_shapes(layers, input_shape, shapes):
    with pytest.raises(ShapeError) as error:
        Residual(layers).output_shape(input_shape)
    assert all(shape in str(error.value) for shape in shapes)


def test_shape_errors_inside_a_block_name_the_position():
    block = Residual([Conv2D(3, 3), Conv2D(3, 9, pad="valid")])
    with pytest.raises(ShapeError, match=r"residual layers\[1\]: Conv2D: kernel 9x9"):
        block.output_shape((5, 5, 3))
    concat = Concat([[Conv2D(2, 3)], [Pool2D(5, "max", stride=1)]])
    with pytest.raises(ShapeError, match=r"concat branches\[1\]\[0\]: Pool2D: kernel 5x5"):
        concat.output_shape((4, 4, 3))


def test_concat_joins_branches_on_the_last_axis():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(2, 4, 4, 3))
    block = built(
        Concat([[Conv2D(2, 3, "tanh")], [], [Pool2D(3, "max", stride=1, pad=1)]]), X.shape[1:]
    )
    assert block.output_shape(X.shape[1:]) == (4, 4, 8)
    conv, pool = block.branches[0][0], block.branches[2][0]
    expected = np.concatenate([conv.forward(X), X, pool.forward(X)], axis=-1)
    np.testing.assert_array_equal(block.forward(X), expected)
    dY = rng.normal(size=(2, 4, 4, 8))
    dX = block.backward(dY)
    conv.forward(X)
    pool.forward(X)
    manual = conv.backward(dY[..., :2]) + dY[..., 2:5] + pool.backward(dY[..., 5:])
    np.testing.assert_allclose(dX, manual, rtol=1e-12)


def test_concat_with_mismatched_positions_names_both_shapes():
    block = Concat([[Conv2D(4, 3)], [Conv2D(4, 3, stride=2)]])
    with pytest.raises(ShapeError) as error:
        block.output_shape((8, 8, 3))
    message = str(error.value)
    assert "(8, 8, 4)" in message and "(4, 4, 4)" in message and "branch 1" in message


def test_config_round_trip_nested():
    config = nested().get_config()
    assert config["type"] == "residual"
    inner = config["layers"][0]["branches"][0][0]
    assert inner["type"] == "residual" and inner["layers"][1]["type"] == "batch_norm"
    assert config["layers"][0]["branches"][2] == []
    rebuilt = initialize_layer(config)
    assert rebuilt.get_config() == config
    kwargs = {k: v for k, v in config.items() if k != "type"}
    assert Residual(**kwargs).get_config() == config


def test_layer_specs_as_in_a_config():
    block = initialize_layer(
        {
            "type": "residual",
            "layers": [
                {"type": "conv2d", "n_out": 8, "kernel_shape": 3, "stride": 2},
                "batch_norm",
                {"type": "activation", "activation": "relu"},
            ],
            "shortcut": "auto",
            "activation": {"type": "leaky_relu", "alpha": 0.1},
        }
    )
    assert block.output_shape((8, 8, 3)) == (4, 4, 8)
    assert block.get_config()["activation"] == {"type": "leaky_relu", "alpha": 0.1}
    assert block.get_config()["layers"][1] == {"type": "batch_norm", "momentum": 0.9, "eps": 1e-5}


@pytest.mark.parametrize(
    "spec,path,message",
    [
        (
            {"type": "residual", "layers": [{"type": "conv2", "n_out": 3}]},
            "layers[0].type",
            "did you mean 'conv2d'",
        ),
        (
            {"type": "residual", "layers": [{"type": "conv2d", "n_out": -3}]},
            "layers[0].n_out",
            "must be a positive integer; got -3",
        ),
        (
            {"type": "concat", "branches": [[], [{"type": "residual", "layers": ["flaten"]}]]},
            "branches[1][0].layers[0].type",
            "unknown layer 'flaten'",
        ),
        ({"type": "residual", "layers": [{"n_out": 3}]}, "layers[0]", "mapping with 'type'"),
    ],
)
def test_bad_child_specs_are_config_errors_with_their_path(spec, path, message):
    with pytest.raises(ConfigError) as error:
        initialize_layer(spec)
    assert error.value.path == path
    assert message in error.value.message


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: Residual([]), "layers must be a non-empty list of layers; got []"),
        (lambda: Residual([Conv2D(3)], "projected"), "shortcut must be one of 'auto', "),
        (lambda: Concat([]), "branches must be a non-empty list of layer lists; got []"),
        (lambda: Concat([Conv2D(3)]), "branches[0]: must be a list of layers"),
    ],
)
def test_bad_block_arguments(make, message):
    with pytest.raises(ValueError) as error:
        make()
    assert message in str(error.value)


@pytest.mark.parametrize("shape", [(4, 4, 3), (6, 6, 3)])
def test_parameter_count_before_and_after_building(shape):
    blocks = [
        nested(),
        Residual([Conv2D(5, 3, stride=2), BatchNorm(), Conv2D(5, 3)]),
        Concat([[Conv2D(2, 1), LayerNorm()], [], [Residual([Conv2D(4, 3)])]]),
    ]
    for block in blocks:
        expected = block.parameter_count(shape)
        built(block, shape)
        assert block.parameter_count() == expected == sum(a.size for a in block.parameters.values())


def test_dropout_inside_a_block_follows_the_mode():
    block = built(Residual([Dropout(0.5)], activation="linear"), (20,))
    X = np.ones((4, 20))
    assert np.any(block.forward(X) == 1.0)  # dropped: 0 + 1
    block.training = False
    np.testing.assert_array_equal(block.forward(X), 2 * X)


def test_ties_in_a_global_max_pool_after_a_residual_take_the_first_maximum():
    """An all-zero image makes positions equal (those the same distance from a border), and
    a very negative bias zeroes a channel after the relu. The gradient of each channel goes
    to the first maximum (row-major), and parameter gradients still match finite
    differences because tied positions are the same function of the parameters."""
    layers = [
        Conv2D(3, 3, "tanh"),
        Residual([Conv2D(3, 3, "tanh"), Conv2D(3, 3)], activation="relu"),
        GlobalMaxPool(),
        FullyConnected(2, "softmax"),
    ]
    net = NeuralNetwork(layers, "cross_entropy", dtype="float64", input_shape=(10, 10, 1))
    rng = np.random.default_rng(4)
    for _, param, _ in net.param_grads():
        param[...] = rng.normal(scale=0.5, size=param.shape)
    net.layers[1].layers[1].parameters["b"][0, 2] = -20.0  # channel 2: relu(negative) = 0
    X = np.zeros((3, 10, 10, 1))  # sample 0 all zero
    X[1, 8:, 8:, :] = rng.normal(size=(2, 2, 1))  # sample 1: one small non-zero corner
    X[2] = rng.normal(size=(10, 10, 1))
    Y = np.eye(2)[[0, 1, 0]]
    pre_pool = net.layers[1].forward(net.layers[0].forward(X))  # (3, 10, 10, 3)
    flat = pre_pool.reshape(3, 100, 3)
    top = flat.max(axis=1, keepdims=True)
    tied = (flat == top).sum(axis=1)  # how many positions hold each channel's maximum
    assert tied[0, 0] > 1 and top[0, 0, 0] > 0  # a tie at a positive maximum
    assert np.all(tied[:, 2] == 100) and np.all(top[:, 0, 2] == 0)  # a zeroed channel
    net.forward(X)
    first = np.argmax(flat == top, axis=1)  # the first (row-major) of them
    np.testing.assert_array_equal(net.layers[2].cache["arg"][:, 0, :], first)

    def objective():
        return net.loss_value(Y, net.forward(X))

    for key, param, _ in net.param_grads():
        net.backward(Y, net.forward(X))
        analytic = {k: g.copy() for k, _, g in net.param_grads()}[key]
        assert relative_error(analytic, numerical_gradient(objective, param)) < 1e-6, key
