"""``ActivationLayer``: an activation on its own, ``{type: activation, activation: relu}``,
for where it must come after another layer (``conv2d → batch_norm → activation``)."""

from __future__ import annotations

import numpy as np

from nnctl.core.activations import initialize_activation
from nnctl.core.layers import LAYERS, Layer
from nnctl.registry import compact


@LAYERS.register("activation")
class ActivationLayer(Layer):
    """An activation as a layer of its own, ``Y = f(X)``: element-wise (softmax over the
    last axis), any input shape.

    Parameters
    ----------
    activation : str or mapping
        Activation name (``"relu"``) or ``{type: ..., ...}``.

    Like the layers with a built-in activation it caches its input as ``Z`` and has
    ``backward_linear`` (the identity), so a final softmax or sigmoid here still takes the
    network's exact combined gradient with cross-entropy.
    """

    def __init__(self, activation) -> None:
        super().__init__()
        self.activation = initialize_activation(activation)

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._ensure_built(X)
        self.cache["Z"] = X
        return self.activation.forward(X)

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        return self.activation.backward(self.cache["Z"], dLdY)

    def backward_linear(self, dLdZ: np.ndarray) -> np.ndarray:
        """dL/dZ is dL/dX: nothing lies between the input and the activation."""
        return dLdZ

    def get_config(self) -> dict:
        return {"type": self.type_name, "activation": compact(self.activation.get_config())}
