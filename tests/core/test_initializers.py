"""Weight initializers: fans, gains, bounds, statistics and explicit randomness."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnctl.core import INITIALIZERS, initialize_weights
from nnctl.core.checks import ArgumentError
from nnctl.core.initializers import compute_fans


def test_fans_of_dense_and_conv_kernels():
    assert compute_fans((30, 20)) == (30, 20)
    assert compute_fans((3, 5, 4, 8)) == (60, 120)


@pytest.mark.parametrize(
    "name,activation,shape,bound",
    [
        ("xavier_uniform", None, (300, 200), math.sqrt(6 / 500)),
        ("xavier_uniform", "tanh", (300, 200), 5 / 3 * math.sqrt(6 / 500)),
        ("he_uniform", "relu", (3, 3, 16, 32), math.sqrt(6 / 144)),
        ("he_uniform", "sigmoid", (400, 10), math.sqrt(3 / 400)),
    ],
)
def test_uniform_bounds_follow_fan_and_gain(name, activation, shape, bound):
    W = initialize_weights(name, activation=activation)(shape, np.random.default_rng(0))
    assert W.shape == shape and W.dtype == np.float32
    assert np.abs(W).max() <= bound
    assert np.abs(W).max() > 0.95 * bound  # really spans the interval
    assert abs(W.std() - bound / math.sqrt(3)) < 0.03 * bound


@pytest.mark.parametrize(
    "name,activation,shape,std",
    [
        ("xavier_normal", None, (400, 600), math.sqrt(2 / 1000)),
        ("he_normal", "relu", (3, 3, 32, 64), math.sqrt(2 / 288)),
        ("normal", None, (200, 200), 0.05),
    ],
)
def test_normal_standard_deviations(name, activation, shape, std):
    W = initialize_weights(name, activation=activation)(shape, np.random.default_rng(0))
    assert abs(W.std() - std) < 0.03 * std and abs(W.mean()) < 0.05 * std


def test_constant_zeros_ones():
    rng = np.random.default_rng(0)
    assert np.all(initialize_weights("zeros")((2, 3), rng) == 0)
    assert np.all(initialize_weights("ones")((2, 3), rng) == 1)
    assert np.all(
        initialize_weights({"type": "constant", "value": 0.3})((2,), rng) == np.float32(0.3)
    )
    W = initialize_weights({"type": "uniform", "low": 0.1, "high": 0.2})((50, 50), rng)
    assert 0.1 <= W.min() and W.max() < 0.2


@pytest.mark.parametrize("name", INITIALIZERS.names())
def test_randomness_comes_only_from_the_generator_passed_in(name):
    init = initialize_weights(name)
    np.random.seed(0)
    a = init((5, 4), np.random.default_rng(7))
    np.random.seed(1)  # the global state must not matter
    b = init((5, 4), np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert init((5, 4), np.random.default_rng(7), np.float64).dtype == np.float64


def test_unknown_initializer_suggests():
    with pytest.raises(ValueError, match="did you mean 'xavier_normal'"):
        initialize_weights("xavier_norml")


@pytest.mark.parametrize(
    "spec, argument, message",
    [
        ({"type": "constant", "value": "1"}, "value", "must be a finite number; got '1'"),
        ({"type": "uniform", "low": float("inf")}, "low", "must be a finite number; got inf"),
        ({"type": "uniform", "high": True}, "high", "must be a finite number; got True"),
        ({"type": "uniform", "low": 1, "high": 1}, "low", "must be smaller than high; got low=1"),
        ({"type": "normal", "mean": None}, "mean", "must be a finite number; got None"),
        ({"type": "normal", "std": 0}, "std", "must be a positive number; got 0"),
    ],
)
def test_bad_arguments_name_the_argument(spec, argument, message):
    with pytest.raises(ArgumentError) as info:
        initialize_weights(spec)
    assert info.value.argument == argument and info.value.message.startswith(message)
