"""Losses: ``forward(Y, Y_hat) -> float`` and ``backward(Y, Y_hat) -> dL/dY_hat``.

``Y`` and ``Y_hat`` have the same shape ``(batch, ...)``; losses are averaged over the
batch so gradients do not scale with the batch size.

A loss is a component like a layer: configs name it (``loss: l2``) or give it arguments
(``loss: {type: NAME, ARGUMENT: VALUE}``), checked against the constructor's signature,
and ``get_config()`` returns its type and every argument a config may set.
"""

from __future__ import annotations

import numpy as np

from nnctl.core import checks
from nnctl.core.activations import Sigmoid, SoftMax
from nnctl.errors import ShapeError
from nnctl.registry import Registry

LOSSES = Registry("loss")


class Loss:
    """Base class; ``__call__`` is ``forward``.

    A subclass with arguments returns them from ``get_config`` too, so that
    ``initialize_loss(loss.get_config())`` rebuilds the same loss.
    """

    type_name = "loss"
    # The output activation whose gradient combines with this loss's into one exact
    # ``backward_logits`` (the network then also takes the loss from ``forward_logits``).
    fused_activation: type | None = None

    def __call__(self, Y: np.ndarray, Y_hat: np.ndarray) -> float:
        return self.forward(Y, Y_hat)

    def forward(self, Y: np.ndarray, Y_hat: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self, Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"type": self.type_name}


@LOSSES.register("cross_entropy")
class CrossEntropy(Loss):
    """Cross-entropy of one-hot (or soft) targets ``Y`` against probabilities ``Y_hat``.

    ``Y_hat`` is clipped to ``[eps, 1]`` so ``log(0)`` never happens. After a softmax the
    network bypasses ``backward`` and uses the exact combined gradient
    ``(Y_hat - Y) / batch`` (``backward_logits``) and ``forward_logits`` for the loss.

    Parameters
    ----------
    label_smoothing : float in [0, 1)
        Targets become ``(1 - label_smoothing) * Y + label_smoothing / classes``.
    class_weights : list of positive numbers, one per class, or None
        With weights ``w`` the loss is ``sum(w * Y_smooth * -log(Y_hat)) / sum(w * Y)``:
        each row weighted, divided by the total weight of the targets, as PyTorch's
        ``cross_entropy(weight=w, label_smoothing=...)`` does with class-index targets.
        ``balanced`` (``n_samples / (n_classes * count_c)``, see ``balanced_class_weights``)
        is resolved from the training labels before the loss is built.
    """

    fused_activation = SoftMax

    def __init__(
        self,
        name: str = "cross_entropy",
        eps: float | None = None,
        label_smoothing: float = 0.0,
        class_weights=None,
    ):
        self.name = name
        self.eps = eps
        self.label_smoothing = checks.fraction("label_smoothing", label_smoothing)
        self.class_weights = check_class_weights(class_weights)

    def _eps(self, Y_hat: np.ndarray) -> float:
        return self.eps if self.eps is not None else float(np.finfo(Y_hat.dtype).tiny)

    def forward(self, Y, Y_hat):
        A, total = self.weighted_targets(Y)
        p = np.clip(Y_hat, self._eps(Y_hat), 1.0)
        return float(-np.sum(A * np.log(p), dtype=np.float64) / total)

    def backward(self, Y, Y_hat):
        A, total = self.weighted_targets(Y)
        return -(A / np.clip(Y_hat, self._eps(Y_hat), 1.0)) / total

    def forward_logits(self, Y: np.ndarray, Z: np.ndarray) -> float:
        """Loss from softmax logits ``Z`` (batch, classes): mean of logsumexp(Z) - <Y, Z>."""
        A, total = self.weighted_targets(Y)
        Z64 = Z.astype(np.float64, copy=False)
        top = Z64.max(axis=-1, keepdims=True)
        lse = np.log(np.exp(Z64 - top).sum(axis=-1, keepdims=True)) + top
        return float(np.sum(A * (lse - Z64)) / total)

    def backward_logits(self, Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
        """dL/dZ for ``Y_hat = softmax(Z)``: ``(Y_hat * sum(A) - A) / total`` for the
        weighted smoothed targets ``A``; ``(Y_hat - Y) / batch`` without options."""
        if not self.label_smoothing and self.class_weights is None:
            return (Y_hat - Y) * Y_hat.dtype.type(1.0 / Y_hat.shape[0])
        A, total = self.weighted_targets(Y)
        return (Y_hat * A.sum(axis=-1, keepdims=True) - A) * Y_hat.dtype.type(1.0 / total)

    def weighted_targets(self, Y: np.ndarray) -> tuple[np.ndarray, float]:
        """``(A, total)``: the smoothed targets times the class weights, and the divisor
        (the batch size, or the total class weight of the un-smoothed targets)."""
        A = Y
        if self.label_smoothing:
            s = self.label_smoothing
            A = Y * Y.dtype.type(1.0 - s) + Y.dtype.type(s / Y.shape[-1])
        if self.class_weights is None:
            return A, Y.shape[0]
        w = class_weight_vector(self.class_weights, Y)
        return A * w, float(np.sum(Y * w, dtype=np.float64))

    def get_config(self) -> dict:
        weights = None if self.class_weights is None else list(self.class_weights)
        return {
            "type": self.type_name,
            "label_smoothing": self.label_smoothing,
            "class_weights": weights,
        }


@LOSSES.register("l2")
class L2(Loss):
    """Mean squared error: mean over all elements of (Y_hat - Y)²."""

    def __init__(self, name: str = "l2"):
        self.name = name

    def forward(self, Y, Y_hat):
        diff = (Y_hat - Y).astype(np.float64, copy=False)
        return float(np.mean(diff * diff))

    def backward(self, Y, Y_hat):
        return (Y_hat - Y) * Y_hat.dtype.type(2.0 / Y.size)


def initialize_loss(spec) -> Loss:
    """A Loss from a name, a ``{type: ...}`` mapping or an instance."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, dict):
        kwargs = dict(spec)
        return LOSSES.get(kwargs.pop("type", None), "model.loss")(**kwargs)
    return LOSSES.get(spec, "model.loss")()


# --- class weights, binary cross-entropy and robust regression losses ------------------


def check_class_weights(weights) -> tuple[float, ...] | None:
    """None, or a non-empty sequence of positive finite numbers as a tuple of floats."""
    if weights is None:
        return None
    values = []
    if isinstance(weights, (list, tuple, np.ndarray)):
        values = list(np.asarray(weights, dtype=object).reshape(-1))
    if not values or not all(checks.is_real(v) and v > 0 for v in values):
        hint = ""
        if isinstance(weights, str):
            hint = " ('balanced' is resolved from the training labels before the loss is built)"
        raise checks.ArgumentError(
            "class_weights",
            f"must be a list of positive numbers, one per class; got {checks.show(weights)}{hint}",
        )
    return tuple(float(v) for v in values)


def class_weight_vector(weights: tuple[float, ...], Y: np.ndarray) -> np.ndarray:
    """The weights as an array of ``Y``'s dtype; ShapeError unless one per class."""
    if len(weights) != Y.shape[-1]:
        raise ShapeError(
            f"class_weights has {len(weights)} entries but the targets have {Y.shape[-1]} classes"
        )
    return np.asarray(weights, dtype=Y.dtype)


def balanced_class_weights(counts) -> list[float]:
    """``n_samples / (n_classes * count_c)`` for each class's training count ``count_c``
    (scikit-learn's ``class_weight="balanced"``); every class must occur."""
    counts = np.asarray(counts, dtype=np.int64).reshape(-1)
    if counts.size == 0 or np.any(counts < 1):
        missing = [int(c) for c in np.flatnonzero(counts < 1)]
        raise ValueError(
            f"balanced class weights need every class in the training labels; "
            f"classes {missing} have no examples"
        )
    return [float(w) for w in counts.sum() / (counts.size * counts.astype(np.float64))]


@LOSSES.register("binary_cross_entropy")
class BinaryCrossEntropy(Loss):
    """Binary cross-entropy of 0/1 (or soft) targets ``Y`` against sigmoid outputs
    ``Y_hat``, each output its own yes/no question (multi-label): the mean over every
    element of ``-(Y log Y_hat + (1 - Y) log(1 - Y_hat))``.

    ``Y_hat`` is clipped to ``[eps, 1 - epsneg]`` so no log of 0 happens. After a sigmoid
    the network uses the exact combined gradient ``(Y_hat - Y) / Y.size``
    (``backward_logits``) and the loss from the logits, stable for any logit
    (``forward_logits``).
    """

    fused_activation = Sigmoid

    def __init__(self, eps: float | None = None):
        self.eps = eps

    def _clipped(self, Y_hat: np.ndarray) -> np.ndarray:
        info = np.finfo(Y_hat.dtype)
        low = self.eps if self.eps is not None else float(info.tiny)
        return np.clip(Y_hat, low, 1.0 - float(info.epsneg))

    def forward(self, Y, Y_hat):
        p = self._clipped(Y_hat).astype(np.float64)
        Y64 = Y.astype(np.float64, copy=False)
        return float(-np.mean(Y64 * np.log(p) + (1.0 - Y64) * np.log1p(-p)))

    def backward(self, Y, Y_hat):
        p = self._clipped(Y_hat)
        return (p - Y) / (p * (1.0 - p)) * Y_hat.dtype.type(1.0 / Y.size)

    def forward_logits(self, Y: np.ndarray, Z: np.ndarray) -> float:
        """The loss from logits ``Z``: mean of ``max(z, 0) - z * y + log(1 + exp(-|z|))``."""
        Z64, Y64 = Z.astype(np.float64, copy=False), Y.astype(np.float64, copy=False)
        return float(np.mean(np.maximum(Z64, 0.0) - Z64 * Y64 + np.log1p(np.exp(-np.abs(Z64)))))

    def backward_logits(self, Y: np.ndarray, Y_hat: np.ndarray) -> np.ndarray:
        """dL/dZ for ``Y_hat = sigmoid(Z)``: ``(Y_hat - Y) / Y.size``."""
        return (Y_hat - Y) * Y_hat.dtype.type(1.0 / Y.size)

    def get_config(self) -> dict:
        return {"type": self.type_name}


@LOSSES.register("huber")
class Huber(Loss):
    """Huber loss, mean over all elements: ``d² / 2`` where ``|d| <= delta``, else
    ``delta * (|d| - delta / 2)``, for ``d = Y_hat - Y`` (PyTorch's ``HuberLoss``).

    Parameters
    ----------
    delta : float > 0
        Where the loss turns from quadratic to linear; the gradient is ``d``, clipped to
        ``[-delta, delta]``, over the number of elements.
    """

    def __init__(self, delta: float = 1.0):
        self.delta = checks.positive("delta", delta)

    def forward(self, Y, Y_hat):
        d = np.abs((Y_hat - Y).astype(np.float64, copy=False))
        quadratic = np.minimum(d, self.delta)
        return float(np.mean(quadratic * (d - 0.5 * quadratic)))

    def backward(self, Y, Y_hat):
        delta = Y_hat.dtype.type(self.delta)
        return np.clip(Y_hat - Y, -delta, delta) * Y_hat.dtype.type(1.0 / Y.size)

    def get_config(self) -> dict:
        return {"type": self.type_name, "delta": self.delta}


@LOSSES.register("l1")
class L1(Loss):
    """Mean absolute error: mean over all elements of ``|Y_hat - Y|``; the gradient is
    ``sign(Y_hat - Y) / Y.size`` (0 where they are equal)."""

    def forward(self, Y, Y_hat):
        return float(np.mean(np.abs((Y_hat - Y).astype(np.float64, copy=False))))

    def backward(self, Y, Y_hat):
        return np.sign(Y_hat - Y) * Y_hat.dtype.type(1.0 / Y.size)
