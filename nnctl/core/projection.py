"""``Projection``: the strided 1x1 convolution without bias of a residual shortcut."""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from nnctl.core.initializers import initialize_weights
from nnctl.core.layers import Layer
from nnctl.errors import ShapeError


class Projection(Layer):
    """A linear map of the last axis without bias, taking every ``stride``-th image
    position: a 1x1 convolution with no bias and no padding (a residual's shortcut).

    ``W`` is ``(1, 1, c_in, n_out)`` on images (a conv kernel), ``(n_in, n_out)`` on vectors.
    Not registered: ``Residual`` creates it.
    """

    type_name = "projection"

    def __init__(self, n_out: int, stride=(1, 1), weight_init="xavier_uniform") -> None:
        super().__init__()
        self.n_out = n_out
        self.stride = tuple(stride)
        self.init_weights = initialize_weights(weight_init)

    def output_shape(self, input_shape):
        if len(input_shape) == 3:
            rows, cols = (math.ceil(n / s) for n, s in zip(input_shape[:2], self.stride))
            return (rows, cols, self.n_out)
        if len(input_shape) == 1:
            return (self.n_out,)
        raise ShapeError(f"projection: expects vectors or images; got {tuple(input_shape)}")

    def parameter_count(self, input_shape=None) -> int:
        if input_shape is not None:
            return int(input_shape[-1]) * self.n_out
        return super().parameter_count()

    def flops(self, input_shape) -> int:
        """``c_in`` multiply-adds per output value."""
        return 2 * int(input_shape[-1]) * int(np.prod(self.output_shape(input_shape)))

    def _create_parameters(self, input_shape) -> None:
        shape = (1, 1) if len(input_shape) == 3 else ()
        shape += (input_shape[-1], self.n_out)
        self.parameters = OrderedDict(W=self.init_weights(shape, self._generator(), self.dtype))

    def _subsample(self, X: np.ndarray) -> np.ndarray:
        """(batch, rows, cols, c) → (batch, out_rows, out_cols, c), a view; vectors as is."""
        if X.ndim != 4:
            return X
        return X[:, :: self.stride[0], :: self.stride[1], :]

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._ensure_built(X)
        Xs = self._subsample(X)
        self.cache["Xs"] = Xs
        return Xs @ self.parameters["W"].reshape(-1, self.n_out)  # (..., n_out)

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        Xs, W = self.cache["Xs"], self.parameters["W"]
        W2 = W.reshape(-1, self.n_out)  # (c_in, n_out)
        dY2 = dLdY.reshape(-1, self.n_out)  # (batch * positions, n_out)
        self.gradients["W"] = (Xs.reshape(-1, W2.shape[0]).T @ dY2).reshape(W.shape)
        if not self.needs_input_grad:
            return None
        dXs = dLdY @ W2.T  # (..., c_in)
        if dLdY.ndim != 4:
            return dXs
        dX = np.zeros((dLdY.shape[0],) + self.input_shape, dtype=dLdY.dtype)
        dX[:, :: self.stride[0], :: self.stride[1], :] = dXs
        return dX

    def get_config(self) -> dict:
        return {"type": self.type_name, "n_out": self.n_out, "stride": list(self.stride)}


def matching_stride(in_size: int, out_size: int) -> int | None:
    """The smallest stride ``s`` with ``ceil(in_size / s) == out_size``, or None."""
    for s in range(1, in_size + 1):
        if math.ceil(in_size / s) == out_size:
            return s
    return None
