"""Layer semantics beyond gradients: shapes, tie rules, modes, errors."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.core import ELU, Conv2D, Dropout, Flatten, FullyConnected, Layer, LeakyReLU, Pool2D
from nnctl.core.checks import ArgumentError
from nnctl.errors import ShapeError


def test_fully_connected_matches_seed_maths_and_lazy_init():
    layer = FullyConnected(3, "relu")
    X = np.arange(8, dtype=np.float32).reshape(2, 4) / 8
    Y = layer.forward(X)  # parameters created from the first input, as in the seed
    W, b = layer.parameters["W"], layer.parameters["b"]
    assert W.shape == (4, 3) and b.shape == (1, 3) and W.dtype == np.float32
    np.testing.assert_allclose(Y, np.maximum(X @ W + b, 0), rtol=1e-6)
    assert set(layer.gradients) == {"W", "b"} and set(layer.cache) >= {"X", "Z"}


def test_build_from_known_shape_equals_lazy_init():
    lazy, eager = Conv2D(4, (3, 3), "relu"), Conv2D(4, (3, 3), "relu")
    X = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
    lazy.rng, eager.rng = np.random.default_rng(1), np.random.default_rng(1)
    assert eager.build((6, 6, 3)) == (6, 6, 4)
    lazy.forward(X)
    np.testing.assert_array_equal(lazy.parameters["W"], eager.parameters["W"])


@pytest.mark.parametrize(
    "pad,stride,kernel,in_hw,out_hw",
    [
        ("same", 1, (3, 3), (28, 28), (28, 28)),
        ("same", 2, (3, 3), (7, 7), (4, 4)),
        ("same", 1, (2, 2), (5, 5), (5, 5)),
        ("valid", 1, (3, 3), (8, 6), (6, 4)),
        ("valid", 2, (3, 2), (7, 7), (3, 3)),
        (1, 1, (3, 3), (5, 5), (5, 5)),
        ([2, 0], 1, (5, 3), (5, 5), (5, 3)),
    ],
)
def test_conv_output_shapes(pad, stride, kernel, in_hw, out_hw):
    layer = Conv2D(5, kernel, "linear", stride=stride, pad=pad)
    assert layer.output_shape(in_hw + (2,)) == out_hw + (5,)
    X = np.ones((1,) + in_hw + (2,), dtype=np.float32)
    assert layer.forward(X).shape == (1,) + out_hw + (5,)


def test_conv_is_cross_correlation_of_known_values():
    layer = Conv2D(1, (2, 2), "linear", pad="valid")
    layer.build((3, 3, 1))
    layer.parameters["W"][...] = np.array([1, 2, 3, 4], dtype=np.float32).reshape(2, 2, 1, 1)
    layer.parameters["b"][...] = 10
    X = np.arange(9, dtype=np.float32).reshape(1, 3, 3, 1)
    # top-left window [[0, 1], [3, 4]] · [[1, 2], [3, 4]] = 0 + 2 + 9 + 16 = 27
    expected = np.array([[27, 37], [57, 67]], dtype=np.float32) + 10
    np.testing.assert_array_equal(layer.forward(X)[0, :, :, 0], expected)


def test_max_pool_ties_send_gradient_to_first_maximum_only():
    pool = Pool2D((2, 2), "max", stride=2)
    X = np.zeros((1, 4, 4, 1), dtype=np.float32)  # all tied, as after relu on a background
    X[0, 2, 3, 0] = X[0, 3, 2, 0] = 5.0  # tie inside the bottom-right window
    pool.forward(X)
    dX = pool.backward(np.ones((1, 2, 2, 1), dtype=np.float32))[0, :, :, 0]
    expected = np.zeros((4, 4))
    expected[0, 0] = expected[0, 2] = expected[2, 0] = 1  # first position of each zero window
    expected[2, 3] = 1  # first of the two 5s in row-major order
    np.testing.assert_array_equal(dX, expected)


def test_overlapping_max_pool_ties_accumulate_per_window():
    pool = Pool2D((2, 2), "max", stride=1)
    X = np.zeros((1, 3, 3, 1))
    pool.forward(X)
    dX = pool.backward(np.ones((1, 2, 2, 1)))[0, :, :, 0]
    # each window credits its own top-left corner
    np.testing.assert_array_equal(dX, [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


def test_max_pool_padding_never_wins():
    pool = Pool2D((3, 3), "max", stride=1, pad=1)
    X = -np.ones((1, 2, 2, 1))
    np.testing.assert_array_equal(pool.forward(X), -np.ones((1, 2, 2, 1)))


def test_average_pool_value():
    pool = Pool2D((2, 2), "average", stride=2)
    X = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1)
    np.testing.assert_allclose(pool.forward(X)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_dropout_is_inverted_and_only_active_in_training():
    layer = Dropout(0.25)
    X = np.ones((400, 50), dtype=np.float32)
    Y = layer.forward(X)
    kept = Y != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(Y[kept], 1 / 0.75)
    layer.training = False
    np.testing.assert_array_equal(layer.forward(X), X)


def test_flatten_round_trip():
    layer = Flatten()
    X = np.arange(24.0).reshape(2, 3, 2, 2)
    assert layer.forward(X).shape == (2, 12)
    np.testing.assert_array_equal(layer.backward(layer.forward(X)), X)


@pytest.mark.parametrize(
    "make,shape,fragment",
    [
        (lambda: Conv2D(4, (3, 3), "relu"), (2, 8, 8), "expects images"),
        (lambda: Conv2D(4, (5, 5), "relu", pad="valid"), (1, 3, 3, 1), "larger than its padded"),
        (lambda: Pool2D((4, 4), "max"), (1, 3, 3, 1), "kernel 4x4 is larger"),
    ],
)
def test_bad_input_shapes_are_named(make, shape, fragment):
    with pytest.raises(ShapeError, match=fragment):
        make().forward(np.zeros(shape))


def test_channel_mismatch_after_build_is_reported():
    layer = Conv2D(2, (3, 3), "relu")
    layer.build((5, 5, 3))
    with pytest.raises(ShapeError, match=r"expected input of shape \(batch, 5, 5, 3\)"):
        layer.forward(np.zeros((1, 5, 5, 1)))


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda: FullyConnected(3, "rleu"), "did you mean 'relu'"),
        (lambda: FullyConnected(3, "relu", "he_unifrom"), "did you mean 'he_uniform'"),
    ],
)
def test_unknown_component_names(make, fragment):
    with pytest.raises(ValueError, match=fragment):
        make()


@pytest.mark.parametrize(
    "make,argument,message",
    [
        (lambda: FullyConnected(0, "relu"), "n_out", "must be a positive integer; got 0"),
        (lambda: FullyConnected(-3, "relu"), "n_out", "must be a positive integer; got -3"),
        (lambda: Conv2D(3, (0, 3)), "kernel_shape", "must be a positive integer; got 0"),
        (lambda: Conv2D(3, (3, 3, 3)), "kernel_shape", "must be an integer or a pair"),
        (lambda: Conv2D(3, stride=True), "stride", "must be a positive integer; got True"),
        (lambda: Conv2D(3, (3, 3), pad="full"), "pad", "must be 'same', 'valid'"),
        (lambda: Conv2D(3, (3, 3), pad=[1, -1]), "pad", "must be 'same', 'valid', an"),
        (lambda: Pool2D((2, 2), "median"), "mode", "must be one of 'max', 'average'"),
        (lambda: Dropout(1.0), "rate", "must be a number in [0, 1); got 1.0"),
        (lambda: Dropout(True), "rate", "must be a number in [0, 1); got True"),
        (lambda: LeakyReLU(1.5), "alpha", "must be a number in [0, 1); got 1.5"),
        (lambda: ELU(0), "alpha", "must be a positive number; got 0"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(make, argument, message):
    with pytest.raises(ArgumentError) as info:
        make()
    assert info.value.argument == argument
    assert info.value.message.startswith(message)
    assert str(info.value).startswith(f"{argument} {message}")


def test_flops_and_parameters_by_hand():
    # conv 3x3 over 8x8x2 -> 8x8x4: 18 multiply-adds per output value, + bias/activation
    conv = Conv2D(4, (3, 3), "relu")
    assert conv.parameter_count((8, 8, 2)) == (3 * 3 * 2 + 1) * 4
    assert conv.flops((8, 8, 2)) == (2 * 18 + 1) * 8 * 8 * 4
    # pool 2x2 stride 2 -> 4x4x4: one operation per window element
    assert Pool2D((2, 2), stride=2).flops((8, 8, 4)) == 4 * 4 * 4 * 4
    assert Pool2D((2, 2), stride=2).parameter_count((8, 8, 4)) == 0
    # an image into fully_connected: 64 inputs per output
    fc = FullyConnected(10, "softmax")
    assert fc.parameter_count((4, 4, 4)) == (64 + 1) * 10
    assert fc.flops((4, 4, 4)) == (2 * 64 + 1) * 10
    for free in (Flatten(), Dropout(0.5)):
        assert free.flops((4, 4, 4)) == 0 and free.parameter_count((4, 4, 4)) == 0


def test_base_layer_defaults():
    class Identity(Layer):
        def forward(self, X):
            return X

    assert Identity().flops((3, 5)) == 0 and Identity().parameter_count((3, 5)) == 0


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda: FullyConnected(5), (7,)),
        (lambda: FullyConnected(5), (3, 3, 2)),
        (lambda: Conv2D(3, (2, 3), stride=2, pad="valid"), (7, 6, 2)),
        (lambda: Pool2D((3, 3), "average", pad=1), (5, 5, 2)),
        (lambda: Flatten(), (2, 3)),
        (lambda: Dropout(0.1), (4,)),
    ],
)
def test_parameter_count_before_build_equals_the_built_count(make, shape):
    layer = make()
    expected = layer.parameter_count(shape)
    layer.build(shape)
    assert layer.parameter_count() == expected
    assert sum(p.size for p in layer.parameters.values()) == expected
