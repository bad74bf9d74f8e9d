"""Global pooling: one value per channel of NHWC images, ``(batch, rows, cols, ch) →
(batch, ch)``. Windowed pooling is ``Pool2D`` in ``nnctl.core.conv``."""

from __future__ import annotations

import numpy as np

from nnctl.core.layers import LAYERS, Layer
from nnctl.errors import ShapeError


class GlobalPool(Layer):
    """Shared shape rule: images in, one value per channel out."""

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ShapeError(
                f"{type(self).__name__}: expects images (batch, rows, cols, channels); got "
                f"input shape (batch, {', '.join(map(str, input_shape))})"
            )
        return (int(input_shape[2]),)

    def flops(self, input_shape) -> int:
        """One operation (an addition or a comparison) per input value."""
        self.output_shape(input_shape)
        return int(np.prod(input_shape))


@LAYERS.register("global_avg_pool")
class GlobalAvgPool(GlobalPool):
    """The mean of each channel over all positions: (batch, rows, cols, ch) → (batch, ch)."""

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._ensure_built(X)
        return X.mean(axis=(1, 2))

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        """dLdY : (batch, ch) → dLdX (batch, rows, cols, ch), spread evenly."""
        rows, cols, ch = self.input_shape
        dX = np.empty((dLdY.shape[0], rows, cols, ch), dtype=dLdY.dtype)
        dX[...] = (dLdY * dLdY.dtype.type(1.0 / (rows * cols)))[:, None, None, :]
        return dX


@LAYERS.register("global_max_pool")
class GlobalMaxPool(GlobalPool):
    """The maximum of each channel over all positions: (batch, rows, cols, ch) → (batch, ch).

    The gradient goes to the first maximum in row-major order (rows, then columns), also
    when values tie, as ``Pool2D`` does; NaN propagates.
    """

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._ensure_built(X)
        flat = X.reshape(X.shape[0], -1, X.shape[3])  # (batch, rows * cols, ch)
        arg = flat.argmax(axis=1)[:, None, :]  # (batch, 1, ch): argmax takes the first
        self.cache["arg"] = arg
        return np.take_along_axis(flat, arg, axis=1)[:, 0, :]

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        """dLdY : (batch, ch) → dLdX (batch, rows, cols, ch), nonzero at the first maxima."""
        rows, cols, ch = self.input_shape
        dX = np.zeros((dLdY.shape[0], rows * cols, ch), dtype=dLdY.dtype)
        np.put_along_axis(dX, self.cache["arg"], dLdY[:, None, :], axis=1)
        return dX.reshape(dLdY.shape[0], rows, cols, ch)
