"""Layer options and what every layer answers without being built: ``bias=False``, the
pool stride default, FLOPs and parameters of the new layers and blocks by hand, the
children a block walks, the smallest training batch, and repeat in layer specs."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.core import (
    ActivationLayer,
    BatchNorm,
    Concat,
    Conv2D,
    Flatten,
    FullyConnected,
    GlobalAvgPool,
    GlobalMaxPool,
    LayerNorm,
    NeuralNetwork,
    Pool2D,
    Residual,
    initialize_layer,
)
from nnctl.core.chain import walk_layers
from nnctl.core.checks import ArgumentError
from nnctl.core.fused import ConvPool, fusable
from nnctl.errors import ConfigError

# --- bias=False ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda b: Conv2D(4, 3, "relu", bias=b), (6, 6, 2)),
        (lambda b: FullyConnected(5, bias=b), (7,)),
    ],
)
def test_without_bias_the_parameters_hold_only_w(make, shape):
    with_bias, without = make(True), make(False)
    with_bias.build(shape, rng=np.random.default_rng(0))
    without.build(shape, rng=np.random.default_rng(0))
    assert list(without.parameters) == ["W"] and list(without.gradients) == ["W"]
    n_out = without.n_out
    assert without.parameter_count(shape) == with_bias.parameter_count(shape) - n_out
    assert without.parameter_count() == without.parameters["W"].size
    outputs = int(np.prod(without.output_shape(shape)))
    assert with_bias.flops(shape) - without.flops(shape) == outputs  # one add per output
    # the same weights and a zero bias compute the same outputs and W gradients
    X = np.random.default_rng(1).normal(size=(3, *shape)).astype(np.float32)
    np.testing.assert_array_equal(with_bias.forward(X), without.forward(X))
    dY = np.ones((3, *without.output_shape(shape)), dtype=np.float32)
    np.testing.assert_allclose(with_bias.backward(dY), without.backward(dY), rtol=1e-6)
    np.testing.assert_allclose(with_bias.gradients["W"], without.gradients["W"], rtol=1e-6)
    assert without.get_config()["bias"] is False
    assert initialize_layer(without.get_config()).get_config() == without.get_config()


def test_bias_must_be_a_flag():
    with pytest.raises(ArgumentError) as error:
        Conv2D(3, bias="no")
    assert error.value.argument == "bias"


def test_a_conv_without_bias_is_fused_and_exact():
    def net():
        layers = [Conv2D(3, 3, "relu", bias=False), Pool2D(2), Flatten(), FullyConnected(2)]
        return NeuralNetwork(layers, "l2", dtype="float64", input_shape=(6, 6, 1))

    fused, plain = net(), net()
    plain.fuse = False
    assert fusable(fused.layers[0], fused.layers[1])
    assert any(isinstance(stage, ConvPool) for stage in fused._stages())
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(4, 6, 6, 1)), rng.normal(size=(4, 2))
    for network in (fused, plain):
        network.backward(Y, network.forward(X))
    np.testing.assert_array_equal(fused.forward(X), plain.forward(X))
    for (key, _, a), (_, _, b) in zip(fused.param_grads(), plain.param_grads()):
        np.testing.assert_array_equal(a, b, err_msg=key)
    assert [key for key, _, _ in fused.param_grads()][:1] == ["layers.0.W"]


# --- pool2d stride ----------------------------------------------------------------------


def test_pool_stride_defaults_to_the_kernel_size():
    assert Pool2D((2, 3)).stride == (2, 3)
    assert Pool2D(3, stride=1).stride == (1, 1)
    assert Pool2D(2).output_shape((8, 8, 4)) == (4, 4, 4)  # not 7x7: windows side by side
    assert Pool2D(2).get_config()["stride"] == 2  # resolved configs write it out
    assert Pool2D((2, 3)).get_config()["stride"] == [2, 3]


# --- FLOPs and parameters by hand ---------------------------------------------------------


def test_flops_of_the_new_layers_by_hand():
    assert BatchNorm().flops((4, 4, 3)) == 4 * 48  # subtract, divide, scale, shift
    assert LayerNorm().flops((5,)) == 7 * 5  # + mean and variance of each example
    assert GlobalAvgPool().flops((4, 4, 3)) == 48 and GlobalMaxPool().flops((4, 4, 3)) == 48
    assert ActivationLayer("relu").flops((4, 4, 3)) == 0  # activations are not counted
    assert BatchNorm().parameter_count((4, 4, 3)) == 6  # gamma, beta; buffers are not
    conv = lambda n, s=1: Conv2D(n, 3, stride=s, bias=False)
    block = Residual([conv(8, 2), BatchNorm(), conv(8)])
    c1, c2 = 2 * 27 * 4 * 4 * 8, 2 * 72 * 4 * 4 * 8  # 3x3x3 and 3x3x8 multiply-adds
    shortcut = 2 * 3 * 4 * 4 * 8  # the 1x1 projection, stride 2
    assert block.flops((8, 8, 3)) == c1 + 4 * 128 + c2 + shortcut + 128  # + the sum
    assert block.parameter_count((8, 8, 3)) == 27 * 8 + 16 + 72 * 8 + 3 * 8
    concat = Concat([[conv(2)], [], [Pool2D(3, stride=1, pad=1)]])
    assert concat.flops((5, 5, 3)) == 2 * 27 * 25 * 2 + 9 * 25 * 3  # the join is a copy
    assert concat.parameter_count((5, 5, 3)) == 27 * 2


def test_a_block_walks_its_children_with_their_input_shapes():
    block = Residual([Conv2D(4, 3, stride=2), Concat([[BatchNorm()], [Conv2D(2, 1)]])])
    rows = [
        (name, layer.type_name, shape)
        for name, layer, shape, _ in walk_layers(block, (6, 6, 2), "3")
    ]
    assert rows == [
        ("3", "residual", (6, 6, 2)),
        ("3.0", "conv2d", (6, 6, 2)),
        ("3.1", "concat", (3, 3, 4)),
        ("3.1.branches.0.0", "batch_norm", (3, 3, 4)),
        ("3.1.branches.1.0", "conv2d", (3, 3, 4)),
        ("3.shortcut", "projection", (6, 6, 2)),
    ]
    block.build((6, 6, 2), rng=np.random.default_rng(0))
    (_name, projection, _), *_ = [row for row in block.walk((6, 6, 2)) if row[0] == "shortcut"]
    assert projection is block.projection  # the built one once there is one


def test_the_smallest_training_batch():
    assert BatchNorm().min_training_batch((5,)) == 2
    assert BatchNorm().min_training_batch((1, 1, 5)) == 2  # one position per channel
    assert BatchNorm().min_training_batch((2, 2, 5)) == 1
    assert LayerNorm().min_training_batch((5,)) == 1
    block = Residual([FullyConnected(4), Concat([[BatchNorm()], []])])
    assert block.min_training_batch((4,)) == 2
    net = NeuralNetwork(
        [Conv2D(2, 3), GlobalAvgPool(), block, FullyConnected(2)], "l2", input_shape=(4, 4, 1)
    )
    assert net.min_training_batch() == 2
    assert NeuralNetwork([Conv2D(2, 3), BatchNorm()], "l2").min_training_batch((4, 4, 1)) == 1


# --- repeat in specs ----------------------------------------------------------------------


def test_repeat_in_a_block_spec_makes_independent_copies():
    block = initialize_layer(
        {"type": "residual", "layers": [{"type": "conv2d", "n_out": 3, "repeat": 3}]}
    )
    assert len(block.layers) == 3 and len({id(layer) for layer in block.layers}) == 3
    block.build((4, 4, 3), rng=np.random.default_rng(0))
    first, second = (layer.parameters["W"] for layer in block.layers[:2])
    assert not np.array_equal(first, second)
    assert "repeat" not in block.get_config()["layers"][0]


@pytest.mark.parametrize("repeat", [0, -1, 1.5, "2", True])
def test_repeat_must_be_a_positive_integer(repeat):
    with pytest.raises(ConfigError) as error:
        initialize_layer({"type": "residual", "layers": [{"type": "flatten", "repeat": repeat}]})
    assert error.value.path == "layers[0].repeat"
    assert error.value.message.startswith("must be a positive integer")
