"""Element-wise activations and softmax.

Every activation maps pre-activations ``Z`` to outputs of the same shape.
``forward(Z)`` returns ``f(Z)``; ``backward(Z, dY)`` returns ``dL/dZ`` given
``dY = dL/df(Z)``. All are stable for any finite ``Z`` (no overflow warnings).
"""

from __future__ import annotations

import numpy as np

from nnctl.core.checks import fraction, positive
from nnctl.registry import Registry

ACTIVATIONS = Registry("activation")


class Activation:
    """Base class: ``forward(Z)`` and ``backward(Z, dY)``, both of ``Z``'s shape.

    ``monotone`` marks non-decreasing functions, for which max-pooling commutes with
    the activation: ``max(f(z)) == f(max(z))``.
    """

    monotone = False
    type_name = "activation"

    def __call__(self, Z: np.ndarray) -> np.ndarray:
        return self.forward(Z)

    def forward(self, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, Z: np.ndarray, dY: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"type": self.type_name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@ACTIVATIONS.register("linear")
class Linear(Activation):
    """Identity: f(z) = z."""

    monotone = True

    def forward(self, Z):
        return Z

    def backward(self, Z, dY):
        return dY


@ACTIVATIONS.register("sigmoid")
class Sigmoid(Activation):
    """Logistic function 1 / (1 + exp(-z)), computed from exp(-|z|) so it never overflows."""

    monotone = True

    def forward(self, Z):
        e = np.exp(-np.abs(Z))
        # z >= 0: 1 / (1 + e^-z); z < 0: e^z / (1 + e^z); both use e = exp(-|z|) <= 1.
        return np.where(Z >= 0, 1.0, e) / (1.0 + e)

    def backward(self, Z, dY):
        s = self.forward(Z)
        return dY * s * (1.0 - s)


@ACTIVATIONS.register("tanh")
class Tanh(Activation):
    """Hyperbolic tangent."""

    monotone = True

    def forward(self, Z):
        return np.tanh(Z)

    def backward(self, Z, dY):
        t = np.tanh(Z)
        return dY * (1.0 - t * t)


@ACTIVATIONS.register("relu")
class ReLU(Activation):
    """max(0, z); the derivative at 0 is taken as 0."""

    monotone = True

    def forward(self, Z):
        return np.maximum(Z, 0)

    def backward(self, Z, dY):
        return dY * (Z > 0)


@ACTIVATIONS.register("leaky_relu")
class LeakyReLU(Activation):
    """z for z > 0, alpha * z otherwise."""

    monotone = True

    def __init__(self, alpha: float = 0.01):
        self.alpha = fraction("alpha", alpha)

    def forward(self, Z):
        return np.where(Z > 0, Z, Z * Z.dtype.type(self.alpha))

    def backward(self, Z, dY):
        return np.where(Z > 0, dY, dY * dY.dtype.type(self.alpha))

    def get_config(self):
        return {"type": self.type_name, "alpha": self.alpha}


@ACTIVATIONS.register("elu")
class ELU(Activation):
    """z for z > 0, alpha * (exp(z) - 1) otherwise."""

    monotone = True

    def __init__(self, alpha: float = 1.0):
        self.alpha = positive("alpha", alpha)

    def forward(self, Z):
        neg = np.expm1(np.minimum(Z, 0)) * Z.dtype.type(self.alpha)
        return np.where(Z > 0, Z, neg)

    def backward(self, Z, dY):
        slope = np.exp(np.minimum(Z, 0)) * Z.dtype.type(self.alpha)
        return np.where(Z > 0, dY, dY * slope)

    def get_config(self):
        return {"type": self.type_name, "alpha": self.alpha}


@ACTIVATIONS.register("arctan")
class ArcTan(Activation):
    """arctan(z), derivative 1 / (1 + z^2)."""

    monotone = True

    def forward(self, Z):
        return np.arctan(Z)

    def backward(self, Z, dY):
        return dY / (1.0 + Z * Z)


@ACTIVATIONS.register("softmax")
class SoftMax(Activation):
    """Softmax over the last axis, shifted by the row maximum so exp never overflows."""

    def forward(self, Z):
        shifted = Z - Z.max(axis=-1, keepdims=True)
        e = np.exp(shifted)
        e /= e.sum(axis=-1, keepdims=True)
        return e

    def backward(self, Z, dY):
        s = self.forward(Z)
        return s * (dY - np.sum(dY * s, axis=-1, keepdims=True))


def initialize_activation(spec) -> Activation:
    """An Activation from a name (``"relu"``), a mapping (``{type: elu, alpha: 0.5}``)
    or an Activation instance."""
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, dict):
        kwargs = dict(spec)
        cls = ACTIVATIONS.get(kwargs.pop("type", None), "activation")
        return cls(**kwargs)
    return ACTIVATIONS.get(spec, "activation")()
