"""Conv2D's input gradient by correlation (no col2im scatter) against col2im: equal to float
rounding for every stride-1 geometry it takes, and chosen only where it applies."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.core import Conv2D


def built(n_out, kernel, pad, in_shape, stride=1, dtype="float64"):
    conv = Conv2D(n_out, kernel, "linear", stride=stride, pad=pad)
    conv.build(in_shape, np.random.default_rng(0), dtype)
    return conv


def both_gradients(conv, batch=3):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(batch, *conv.input_shape)).astype(conv.dtype)
    Z = conv.forward_linear(X)
    dZ = rng.normal(size=Z.shape).astype(conv.dtype)
    W = conv.parameters["W"].reshape(-1, conv.n_out)
    by_col2im = conv.col2im(dZ.reshape(-1, conv.n_out) @ W.T, batch)
    return conv.correlate_input_gradient(dZ), by_col2im


@pytest.mark.parametrize(
    "kernel,pad,in_shape",
    [
        (3, "same", (7, 6, 2)),
        (3, "valid", (7, 6, 2)),
        (3, 1, (5, 5, 3)),
        ((2, 3), "same", (6, 5, 2)),  # even kernel: the extra pad row at the bottom
        (5, (2, 0), (8, 7, 1)),
        (1, 0, (4, 4, 3)),
        ((3, 1), (2, 0), (5, 4, 2)),  # pad of kernel - 1
    ],
)
def test_correlation_equals_col2im_to_rounding(kernel, pad, in_shape):
    conv = built(4, kernel, pad, in_shape)
    assert conv.correlates_input_gradient()
    correlated, scattered = both_gradients(conv)
    assert correlated.shape == scattered.shape == (3, *in_shape)
    np.testing.assert_allclose(correlated, scattered, rtol=1e-12, atol=1e-12)


def test_backward_uses_the_correlation_where_chosen():
    conv = built(4, 3, "same", (6, 6, 2), dtype="float32")
    X = np.random.default_rng(2).normal(size=(2, 6, 6, 2)).astype(np.float32)
    dZ = np.ones_like(conv.forward_linear(X))
    np.testing.assert_array_equal(conv.backward_linear(dZ), conv.correlate_input_gradient(dZ))


@pytest.mark.parametrize(
    "n_out,kernel,pad,stride,in_shape,expected",
    [
        (4, 3, "same", 1, (6, 6, 2), True),  # few input channels
        (32, 3, "same", 1, (6, 6, 32), True),  # as many outputs as inputs
        (64, 3, "same", 1, (6, 6, 32), False),  # doubling 32 channels: col2im measured faster
        (4, 3, "same", 2, (6, 6, 2), False),  # strided
        (4, 3, 3, 1, (6, 6, 2), False),  # a pad beyond kernel - 1
    ],
)
def test_when_the_correlation_is_chosen(n_out, kernel, pad, stride, in_shape, expected):
    conv = built(n_out, kernel, pad, in_shape, stride=stride)
    assert conv.correlates_input_gradient() is expected
