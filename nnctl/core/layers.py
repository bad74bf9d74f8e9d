"""Layers: the ``Layer`` base class, ``FullyConnected``, ``Flatten`` and ``Dropout``.

Every layer keeps three ordered dicts, as in the seed: ``parameters`` (``"W"``, ``"b"``),
``gradients`` (same keys and shapes) and ``cache`` (forward intermediates for backward),
plus ``buffers``: state that is saved and restored with the parameters but never trained
(batch normalization's running statistics).
Parameters are created lazily from the first input's shape, or up front by
``build(input_shape)`` when the shape is known (``input_shape`` excludes the batch axis).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from nnctl.core.activations import initialize_activation
from nnctl.core.checks import flag, fraction, positive_int
from nnctl.core.initializers import initialize_weights
from nnctl.errors import ShapeError
from nnctl.registry import Registry, compact

LAYERS = Registry("layer")


class Layer:
    """Base layer: ``forward(X)``, ``backward(dLdY) -> dLdX``, shapes and config.

    Subclasses define ``output_shape(input_shape)`` (validates, no side effects),
    ``_create_parameters(input_shape)`` when they have parameters, ``forward`` and
    ``backward``.
    """

    type_name = "layer"
    #: Whether training sums over the batch (batch statistics): a split batch then gives
    #: the layer a ``batch_total`` that adds up the parts' sums (``core.parallel``).
    sums_over_batch = False

    def __init__(self) -> None:
        self.n_in = None
        self.input_shape: tuple[int, ...] | None = None
        self.parameters: OrderedDict[str, np.ndarray] = OrderedDict()
        self.gradients: OrderedDict[str, np.ndarray] = OrderedDict()
        self.cache: OrderedDict[str, object] = OrderedDict()
        self.buffers: OrderedDict[str, np.ndarray] = OrderedDict()
        self.training = True
        self.rng: np.random.Generator | None = None
        self.dtype = np.dtype(np.float32)
        # The first layer of a network needs no gradient with respect to its input.
        self.needs_input_grad = True

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "type")
        return f"{type(self).__name__}({args})"

    # --- shapes and parameters -------------------------------------------------------
    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Output shape (without batch) for ``input_shape``; ShapeError if it does not fit."""
        return tuple(input_shape)

    def build(self, input_shape, rng=None, dtype=None) -> tuple[int, ...]:
        """Create parameters for ``input_shape`` (no batch axis); return the output shape."""
        input_shape = tuple(int(d) for d in input_shape)
        out_shape = self.output_shape(input_shape)
        if rng is not None:
            self.rng = rng
        if dtype is not None:
            self.dtype = np.dtype(dtype)
        self.input_shape = input_shape
        self.n_in = input_shape[-1] if input_shape else None
        self._create_parameters(input_shape)
        self.gradients = OrderedDict((k, np.zeros_like(v)) for k, v in self.parameters.items())
        return out_shape

    def _create_parameters(self, input_shape) -> None:
        """Fill ``self.parameters``; parameter-free layers keep it empty."""

    def _init_parameters(self, X_shape) -> None:
        """Seed-compatible lazy initialisation from a batch shape ``(batch, ...)``."""
        self.build(X_shape[1:])

    def _ensure_built(self, X: np.ndarray) -> None:
        if self.input_shape is None:
            self._init_parameters(X.shape)
        elif X.shape[1:] != self.input_shape:
            raise ShapeError(
                f"{type(self).__name__}: expected input of shape (batch, "
                f"{', '.join(map(str, self.input_shape))}); got {X.shape}"
            )

    def _generator(self) -> np.random.Generator:
        if self.rng is None:
            # Deterministic default for a layer used on its own, never the global state.
            self.rng = np.random.default_rng(0)
        return self.rng

    def parameter_count(self, input_shape=None) -> int:
        """Number of parameters for ``input_shape`` (no batch axis), or of the built ones.

        The base counts ``self.parameters``: 0 for a parameter-free layer. A layer whose
        parameters depend on its input answers for any ``input_shape`` without being built.
        """
        return int(sum(p.size for p in self.parameters.values()))

    def flops(self, input_shape) -> int:
        """Operations of one forward pass (inference) of one example of ``input_shape``.

        A multiply-add counts 2; activations are not counted. The base is 0: layers that
        only move or mask data (flatten, dropout at inference) are free.
        """
        return 0

    def named_children(self) -> list[tuple[str, Layer]]:
        """The layers inside this one with their dotted names: none for a plain layer."""
        return []

    def walk(self, input_shape) -> list[tuple[str, Layer, tuple[int, ...]]]:
        """``(name, child, child's input shape)`` of the layers inside this one, in build
        order, without building: none for a plain layer (blocks list their children)."""
        return []

    def min_training_batch(self, input_shape) -> int:
        """The smallest batch this layer can train on with ``input_shape`` (1; batch
        normalization needs two values per channel)."""
        return 1

    # --- computation -------------------------------------------------------------
    def forward(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"type": self.type_name}


class ActivatedLayer(Layer):
    """A layer computing ``Y = activation(Z)`` from an affine map ``Z`` of its input.

    ``backward(dLdY)`` goes through the activation then calls ``backward_linear(dLdZ)``,
    which the network calls directly when it fuses softmax with cross-entropy.
    """

    def __init__(self, n_out: int, activation, weight_init, bias: bool = True) -> None:
        super().__init__()
        self.n_out = positive_int("n_out", n_out)
        self.activation = initialize_activation(activation)
        self.init_weights = initialize_weights(weight_init, activation=self.activation)
        self.bias = flag("bias", bias)

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        return self.backward_linear(self.activation.backward(self.cache["Z"], dLdY))

    def backward_linear(self, dLdZ: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def fan_in(self, input_shape) -> int:
        """How many inputs each output value sums over (rows of ``W`` as a matrix)."""
        raise NotImplementedError

    def parameter_count(self, input_shape=None) -> int:
        """``(fan_in + 1) * n_out``: the weights and one bias per output channel (no bias
        with ``bias=False``)."""
        if input_shape is None:
            return super().parameter_count()
        return (self.fan_in(input_shape) + self.bias) * self.n_out

    def flops(self, input_shape) -> int:
        """Per output value: ``fan_in`` multiply-adds, then one for the bias (if any)."""
        outputs = int(np.prod(self.output_shape(input_shape)))
        return (2 * self.fan_in(input_shape) + self.bias) * outputs

    def _linear_parameters(self, W: np.ndarray) -> None:
        """``parameters``: ``W``, then the bias ``b`` (1, n_out) of zeros unless disabled."""
        self.parameters = OrderedDict(W=W)
        if self.bias:
            self.parameters["b"] = np.zeros((1, self.n_out), dtype=self.dtype)

    def _bias_gradient(self, dZ2: np.ndarray) -> None:
        """``gradients["b"]`` from dL/dZ as (positions, n_out), when there is a bias."""
        if self.bias:
            # The column sums as a matrix product: 8x faster than dZ2.sum(axis=0), which adds
            # the rows one by one, and more accurate (BLAS keeps many partial sums).
            self.gradients["b"] = np.ones((1, len(dZ2)), dtype=dZ2.dtype) @ dZ2  # (1, n_out)

    def _config_common(self) -> dict:
        return {
            "n_out": self.n_out,
            "activation": compact(self.activation.get_config()),
            "weight_init": compact(self.init_weights.get_config()),
            "bias": self.bias,
        }


@LAYERS.register("fully_connected")
class FullyConnected(ActivatedLayer):
    """Affine map then activation: ``Y = f(X @ W + b)``.

    Parameters
    ----------
    n_out : int
        Output width.
    activation : str or mapping
        Activation name (``"relu"``) or ``{type: ..., ...}``.
    weight_init : str or mapping
        Initializer of ``W`` (n_in, n_out); ``b`` (1, n_out) starts at zero.
    bias : bool
        False: no ``b`` (``Y = f(X @ W)``), e.g. before a batch normalization.

    Input of shape ``(batch, n_in)``; input with more axes (an image) is flattened to
    ``(batch, prod(rest))`` first, so no explicit ``Flatten`` is needed.
    """

    def __init__(
        self, n_out: int, activation="linear", weight_init="xavier_uniform", bias: bool = True
    ) -> None:
        super().__init__(n_out, activation, weight_init, bias)

    def output_shape(self, input_shape):
        if len(input_shape) < 1:
            raise ShapeError(f"FullyConnected: input must have a feature axis; got {input_shape}")
        return (self.n_out,)

    def _create_parameters(self, input_shape) -> None:
        n_in = int(np.prod(input_shape))
        self.n_in = n_in
        self._linear_parameters(
            self.init_weights((n_in, self.n_out), self._generator(), self.dtype)
        )

    def fan_in(self, input_shape) -> int:
        return int(np.prod(input_shape))

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X : (batch, n_in) or (batch, ...) → (batch, n_out)."""
        self._ensure_built(X)
        X2 = X.reshape(X.shape[0], -1)  # (batch, n_in)
        Z = X2 @ self.parameters["W"]
        if self.bias:
            Z += self.parameters["b"]
        self.cache["X"], self.cache["Z"] = X2, Z
        return self.activation.forward(Z)

    def backward_linear(self, dLdZ: np.ndarray) -> np.ndarray:
        """dLdZ : (batch, n_out) → dLdX of the input's shape."""
        X2 = self.cache["X"]
        self.gradients["W"] = X2.T @ dLdZ
        self._bias_gradient(dLdZ)
        if not self.needs_input_grad:
            return None
        return (dLdZ @ self.parameters["W"].T).reshape((X2.shape[0],) + self.input_shape)

    def get_config(self) -> dict:
        return {"type": self.type_name, **self._config_common()}


@LAYERS.register("flatten")
class Flatten(Layer):
    """(batch, d1, d2, ...) → (batch, d1 * d2 * ...)."""

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._ensure_built(X)
        return X.reshape(X.shape[0], -1)

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        return dLdY.reshape((dLdY.shape[0],) + self.input_shape)


@LAYERS.register("dropout")
class Dropout(Layer):
    """Inverted dropout: in training mode zero each input with probability ``rate`` and scale
    the rest by ``1 / (1 - rate)``; identity in evaluation mode. Any input shape."""

    def __init__(self, rate: float = 0.5) -> None:
        super().__init__()
        self.rate = fraction("rate", rate)

    def forward(self, X: np.ndarray) -> np.ndarray:
        self._ensure_built(X)
        if not self.training or self.rate == 0.0:
            self.cache["mask"] = None
            return X
        keep = self._generator().random(X.shape, dtype=np.float64) >= self.rate
        mask = keep.astype(X.dtype) * X.dtype.type(1.0 / (1.0 - self.rate))
        self.cache["mask"] = mask
        return X * mask

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        mask = self.cache.get("mask")
        return dLdY if mask is None else dLdY * mask

    def get_config(self) -> dict:
        return {"type": self.type_name, "rate": self.rate}
