"""Normalization layers: ``BatchNorm`` and ``LayerNorm``.

Both standardize their input over some axes, ``x_hat = (X - mean) / sqrt(var + eps)``
with the biased variance, then apply a learned per-feature scale and shift,
``Y = gamma * x_hat + beta``. ``gamma`` (ones) and ``beta`` (zeros) have shape
``(features,)``, the size of the input's last axis (channels of NHWC images, features of
vectors). They differ in the axes they average over:

- ``BatchNorm``: every axis but the last (the batch and, for images, all positions), with
  running statistics for evaluation mode;
- ``LayerNorm``: the last axis only (the features of one example, or the channels of one
  image position), the same in training and evaluation.
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import numpy as np

from nnctl.core import checks
from nnctl.core.layers import LAYERS, Layer
from nnctl.errors import ShapeError


def standardize(X: np.ndarray, axes: tuple[int, ...], eps: float):
    """``(x_hat, mean, var, inv_std)`` of ``X`` over ``axes``; the statistics keep their
    dims so they broadcast against ``X``; ``var`` is the biased (population) variance."""
    mean = X.mean(axis=axes, keepdims=True)
    centered = X - mean
    var = np.mean(centered * centered, axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + X.dtype.type(eps))
    centered *= inv_std
    return centered, mean, var, inv_std


def standardize_backward(dxhat, xhat, inv_std, axes: tuple[int, ...]) -> np.ndarray:
    """dL/dX of ``x_hat = standardize(X, axes)`` given ``dxhat = dL/dx_hat``.

    The mean and the variance depend on every element they average over, hence the two
    correction terms: ``inv_std * (dxhat - mean(dxhat) - x_hat * mean(dxhat * x_hat))``.
    """
    mean_d = dxhat.mean(axis=axes, keepdims=True)
    mean_dx = np.mean(dxhat * xhat, axis=axes, keepdims=True)
    return inv_std * (dxhat - mean_d - xhat * mean_dx)


def _along(vector: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """A per-channel ``vector`` (C,) repeated along a row of ``rows`` (batch, values), whose
    last axis runs over positions then channels: shape (values,)."""
    return np.tile(vector, rows.shape[1] // len(vector))


def _column_sums(values: np.ndarray) -> np.ndarray:
    """``values`` (n, C) summed over its rows: (C,), as a product with a vector of ones."""
    return _ones(len(values), values.dtype) @ values


@functools.lru_cache(maxsize=16)
def _ones(n: int, dtype) -> np.ndarray:
    ones = np.ones(n, dtype=dtype)
    ones.flags.writeable = False
    return ones


class Normalization(Layer):
    """Shared parts: ``gamma``/``beta`` over the last axis, the affine map and its
    parameter gradients. Subclasses define ``_standardize`` and ``_standardize_backward``
    (``LayerNorm``), or replace ``forward`` and ``backward`` whole (``BatchNorm``, whose
    batch sums may span a split batch's parts)."""

    def __init__(self, eps: float) -> None:
        super().__init__()
        self.eps = checks.positive("eps", eps)

    def output_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ShapeError(f"{type(self).__name__}: input must have a feature axis; got ()")
        return tuple(input_shape)

    #: Operations per value at inference: subtract, divide, scale and shift.
    ops_per_value = 4

    def parameter_count(self, input_shape=None) -> int:
        if input_shape is not None:
            return 2 * int(input_shape[-1])
        return super().parameter_count()

    def flops(self, input_shape) -> int:
        """``ops_per_value`` per value of the input."""
        return self.ops_per_value * int(np.prod(input_shape))

    def _create_parameters(self, input_shape) -> None:
        n = input_shape[-1]
        self.parameters = OrderedDict(
            gamma=np.ones(n, dtype=self.dtype), beta=np.zeros(n, dtype=self.dtype)
        )

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X : (batch, ..., features) → Y of the same shape."""
        self._ensure_built(X)
        xhat, inv_std = self._standardize(X)
        self.cache["xhat"], self.cache["inv_std"] = xhat, inv_std
        return xhat * self.parameters["gamma"] + self.parameters["beta"]

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        """dLdY : (batch, ..., features) → dLdX of the same shape."""
        xhat, inv_std = self.cache["xhat"], self.cache["inv_std"]
        over = tuple(range(dLdY.ndim - 1))  # every axis but the features
        self.gradients["gamma"] = np.sum(dLdY * xhat, axis=over)
        self.gradients["beta"] = dLdY.sum(axis=over)
        if not self.needs_input_grad:
            return None
        return self._standardize_backward(dLdY * self.parameters["gamma"], xhat, inv_std)


@LAYERS.register("batch_norm")
class BatchNorm(Normalization):
    """Batch normalization: each channel of NHWC images (each feature of vectors)
    standardized with the statistics of the batch in training, of the running averages in
    evaluation; then scaled by ``gamma`` and shifted by ``beta``.

    Parameters
    ----------
    momentum : float in [0, 1)
        Keras convention: ``running = momentum * running + (1 - momentum) * batch``.
        The default 0.9 is PyTorch's default (``momentum=0.1`` there, the opposite
        convention).
    eps : float > 0
        Added to the variance before the square root (PyTorch's default 1e-5).

    Training normalizes with the biased batch variance and updates ``running_var`` with the
    unbiased one (times ``m / (m - 1)`` for ``m`` values per channel), as PyTorch does. The
    running statistics (``running_mean`` zeros, ``running_var`` ones, shape ``(features,)``)
    are ``buffers``: saved in checkpoints, never trained. Training needs more than one value
    per channel: a batch of one vector is a ShapeError (one image has rows * cols values).
    """

    sums_over_batch = True

    def __init__(self, momentum: float = 0.9, eps: float = 1e-5) -> None:
        super().__init__(eps)
        self.momentum = checks.fraction("momentum", momentum)
        #: Sums partial sums over a split batch's parts (``core.parallel``); None: whole.
        self.batch_total = None

    def _total(self, partial: np.ndarray) -> np.ndarray:
        """``partial`` (sums over this pass's rows) summed over the whole batch."""
        return partial if self.batch_total is None else self.batch_total(partial)

    def min_training_batch(self, input_shape) -> int:
        """2 for vectors (one value per feature per example), else 1 (an image has
        rows * cols values per channel)."""
        return 2 if int(np.prod(input_shape[:-1])) == 1 else 1

    def _create_parameters(self, input_shape) -> None:
        super()._create_parameters(input_shape)
        n = input_shape[-1]
        self.buffers = OrderedDict(
            running_mean=np.zeros(n, dtype=self.dtype), running_var=np.ones(n, dtype=self.dtype)
        )

    # The passes below work on rows of one example's values, (batch, values), with every
    # per-channel vector repeated along a row (``_along``): NumPy's loops over a (C,) vector
    # broadcast against NHWC run C-long inner loops, two to three times slower than over
    # whole rows. Sums over the batch are matrix products with a vector of ones (BLAS).

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X : (batch, ..., channels) → Y of the same shape."""
        self._ensure_built(X)
        rows = np.ascontiguousarray(X).reshape(len(X), -1)  # (batch, values per example)
        C = X.shape[-1]
        if self.training:
            mean, m = self._batch_mean(rows, C)
            centered = rows - _along(mean, rows)
            var = self._batch_variance(centered, C, m)
            self._update_running_from(mean, var, m)
            self.cache["count"] = m
        else:
            mean, var = self.buffers["running_mean"], self.buffers["running_var"]
            centered = rows - _along(mean, rows)
        inv_std = 1.0 / np.sqrt(var + X.dtype.type(self.eps))
        Y = centered * _along(self.parameters["gamma"] * inv_std, rows)
        Y += _along(self.parameters["beta"], rows)
        self.cache.update(centered=centered, inv_std=inv_std, batch_statistics=self.training)
        return Y.reshape(X.shape)

    def _batch_mean(self, rows: np.ndarray, C: int) -> tuple[np.ndarray, int]:
        """(mean (C,), values per channel) over the whole batch, split or not."""
        values = rows.reshape(-1, C)  # (values per channel in this pass, C)
        # one exchange of [sums, count], in float64 so that counts above 2**24 stay exact
        first = self._total(np.append(_column_sums(values).astype(np.float64), len(values)))
        m = int(first[-1])
        if m < 2:
            raise ShapeError(
                f"BatchNorm: training needs more than one value per channel to compute batch "
                f"statistics; got input of shape {rows.shape[:1] + self.input_shape} "
                f"(use batches of 2 or more)"
            )
        return first[:-1].astype(rows.dtype) / rows.dtype.type(m), m

    def _batch_variance(self, centered: np.ndarray, C: int, m: int) -> np.ndarray:
        """The biased variance (C,) over the whole batch from this pass's centered rows."""
        squares = centered * centered
        return self._total(_column_sums(squares.reshape(-1, C))) / centered.dtype.type(m)

    def _update_running_from(self, mean, var, m: int) -> None:
        """Running statistics of the whole batch, updated by one part of a split only."""
        if self.batch_total is not None and not self.batch_total.leader:
            return
        keep, new = self.dtype.type(self.momentum), self.dtype.type(1.0 - self.momentum)
        unbiased = var * var.dtype.type(m / (m - 1))
        for name, batch in (("running_mean", mean), ("running_var", unbiased)):
            running = self.buffers[name]  # in place: arrays handed out stay live
            running *= keep
            running += new * batch

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        """dLdY : (batch, ..., channels) → dLdX of the same shape.

        With ``a = gamma * inv_std`` and the batch sums ``db = sum(dY)`` and
        ``dg = sum(dY * x_hat)`` (the parameter gradients), training statistics give
        ``dX = a * dY - a * db / m - centered * a * inv_std * dg / m``; running ones
        ``dX = a * dY``.
        """
        centered, inv_std = self.cache["centered"], self.cache["inv_std"]
        dY = np.ascontiguousarray(dLdY).reshape(centered.shape)
        C = dLdY.shape[-1]
        product = dY * centered
        self.gradients["gamma"] = _column_sums(product.reshape(-1, C)) * inv_std
        self.gradients["beta"] = _column_sums(dY.reshape(-1, C))
        if not self.needs_input_grad:
            return None
        a = self.parameters["gamma"] * inv_std
        dX = dY * _along(a, dY)
        if self.cache["batch_statistics"]:
            sums = self._total(np.concatenate([self.gradients["beta"], self.gradients["gamma"]]))
            m = dY.dtype.type(self.cache["count"])
            np.multiply(centered, _along(a * inv_std * sums[C:] / m, dY), out=product)
            dX -= product
            dX -= _along(a * sums[:C] / m, dY)
        return dX.reshape(dLdY.shape)

    def get_config(self) -> dict:
        return {"type": self.type_name, "momentum": self.momentum, "eps": self.eps}


@LAYERS.register("layer_norm")
class LayerNorm(Normalization):
    """Layer normalization over the last axis: each example's features (or each image
    position's channels) standardized on their own, then scaled by ``gamma`` and shifted by
    ``beta``; the same in training and evaluation.

    Parameters
    ----------
    eps : float > 0
        Added to the variance before the square root (PyTorch's default 1e-5).

    This is Keras' ``LayerNormalization()`` (``axis=-1``) and PyTorch's
    ``nn.LayerNorm(features)``; on NHWC images it normalizes each position over its channels
    (``nn.LayerNorm([C, H, W])``, over every non-batch axis, is not what this computes).
    """

    #: The statistics of each example are computed at inference too: mean 1, variance 2.
    ops_per_value = 7

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__(eps)

    def _standardize(self, X: np.ndarray):
        xhat, _, _, inv_std = standardize(X, (-1,), self.eps)
        return xhat, inv_std

    def _standardize_backward(self, dxhat, xhat, inv_std):
        return standardize_backward(dxhat, xhat, inv_std, (-1,))

    def get_config(self) -> dict:
        return {"type": self.type_name, "eps": self.eps}
