"""Conv2D's weight gradient by row blocks, and its two input gradients, by correlation (no scatter) and by per-offset products
scattered into the padded input, against a plain col2im written here: equal to float
rounding for every geometry each takes, and the correlation chosen only where it applies."""

from __future__ import annotations

import numpy as np
import pytest

from nnctl.core import Conv2D
from nnctl.core import conv as conv_module


def built(n_out, kernel, pad, in_shape, stride=1, dtype="float64"):
    conv = Conv2D(n_out, kernel, "linear", stride=stride, pad=pad)
    conv.build(in_shape, np.random.default_rng(0), dtype)
    return conv


def col2im(conv, dZ):
    """The reference: every input position gets, from every output window that saw it,
    that window's ``dZ @ W.T`` entry for its kernel offset (one add per window element)."""
    kh, kw = conv.kernel_shape
    (t, b), (l, r) = conv.pad
    rows, cols, c_in = conv.input_shape
    (sh, sw), (oh, ow) = conv.stride, conv.out_hw
    batch = dZ.shape[0]
    dcols = dZ.reshape(-1, conv.n_out) @ conv.parameters["W"].reshape(-1, conv.n_out).T
    dcols = dcols.reshape(batch, oh, ow, kh, kw, c_in)
    dXp = np.zeros((batch, rows + t + b, cols + l + r, c_in))
    for p in range(oh):
        for q in range(ow):
            dXp[:, p * sh : p * sh + kh, q * sw : q * sw + kw] += dcols[:, p, q]
    return dXp[:, t : t + rows, l : l + cols]


def gradients(conv, batch=3):
    """(by correlation or None where it does not apply, by scatter, reference)."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(batch, *conv.input_shape)).astype(conv.dtype)
    Z = conv.forward_linear(X)
    dZ = rng.normal(size=Z.shape).astype(conv.dtype)
    correlated = conv.correlate_input_gradient(dZ) if conv.correlates_input_gradient() else None
    scattered = conv.scatter_input_gradient(dZ.reshape(-1, conv.n_out), batch)
    return correlated, scattered, col2im(conv, dZ)


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
def test_correlation_and_scatter_equal_col2im_to_rounding(kernel, pad, in_shape):
    conv = built(4, kernel, pad, in_shape)
    assert conv.correlates_input_gradient()
    correlated, scattered, reference = gradients(conv)
    assert correlated.shape == scattered.shape == reference.shape == (3, *in_shape)
    np.testing.assert_allclose(correlated, reference, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scattered, reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "kernel,pad,stride,in_shape",
    [
        (3, "same", 2, (7, 6, 3)),
        (3, 1, 2, (8, 8, 2)),
        ((2, 3), "valid", (1, 2), (6, 7, 2)),
        (3, 3, 1, (5, 5, 2)),  # a pad beyond kernel - 1
        (1, 0, 2, (5, 5, 3)),
    ],
)
def test_scatter_equals_col2im_where_the_correlation_does_not_apply(kernel, pad, stride, in_shape):
    conv = built(4, kernel, pad, in_shape, stride=stride)
    assert not conv.correlates_input_gradient()
    _, scattered, reference = gradients(conv)
    np.testing.assert_allclose(scattered, reference, rtol=1e-12, atol=1e-12)


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
        (64, 3, "same", 1, (6, 6, 32), False),  # doubling 32 channels: the scatter is faster
        (4, 3, "same", 2, (6, 6, 2), False),  # strided
        (4, 3, 3, 1, (6, 6, 2), False),  # a pad beyond kernel - 1
    ],
)
def test_when_the_correlation_is_chosen(n_out, kernel, pad, stride, in_shape, expected):
    conv = built(n_out, kernel, pad, in_shape, stride=stride)
    assert conv.correlates_input_gradient() is expected


@pytest.mark.parametrize(
    "rows,columns,block_rows",
    [
        (4 * 16 + 5, 9, 16),  # blocks and a remainder
        (4 * 16, 27, 16),  # blocks only
        (20, 9, 16),  # fewer rows than two blocks: one product
        (70, 36, 16),  # many columns: one product
    ],
)
def test_weight_gradient_is_cols_t_dz_to_rounding(monkeypatch, rows, columns, block_rows):
    monkeypatch.setattr(conv_module, "BLOCK_ROWS", block_rows)
    rng = np.random.default_rng(3)
    dZ, cols = rng.normal(size=(rows, 5)), rng.normal(size=(rows, columns))
    got = conv_module.weight_gradient(dZ, cols)
    assert got.shape == (columns, 5)
    np.testing.assert_allclose(got, cols.T @ dZ, rtol=1e-12, atol=1e-12)


def test_first_layer_weight_gradient_by_blocks_in_backward(monkeypatch):
    """A 3x3 conv on one channel (9 im2col columns) takes the blocked sum in backward, and
    its gradient is the plain product's to rounding."""
    monkeypatch.setattr(conv_module, "BLOCK_ROWS", 8)
    calls = []
    plain = conv_module.weight_gradient
    monkeypatch.setattr(
        conv_module, "weight_gradient", lambda dZ, cols: calls.append(cols.shape) or plain(dZ, cols)
    )
    conv = built(4, 3, "same", (6, 6, 1))
    rng = np.random.default_rng(4)
    X = rng.normal(size=(2, 6, 6, 1))
    dZ = rng.normal(size=conv.forward_linear(X).shape)
    conv.backward_linear(dZ)
    assert calls == [(72, 9)]
    expected = conv.cache["cols"].T @ dZ.reshape(-1, 4)
    np.testing.assert_allclose(conv.gradients["W"].reshape(9, 4), expected, rtol=1e-12)
