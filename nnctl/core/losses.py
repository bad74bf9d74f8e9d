"""Losses: ``forward(Y, Y_hat) -> float`` and ``backward(Y, Y_hat) -> dL/dY_hat``.

``Y`` and ``Y_hat`` have the same shape ``(batch, ...)``; losses are averaged over the
batch so gradients do not scale with the batch size.

A loss is a component like a layer: configs name it (``loss: l2``) or give it arguments
(``loss: {type: NAME, ARGUMENT: VALUE}``), checked against the constructor's signature,
and ``get_config()`` returns its type and every argument a config may set.
"""

from __future__ import annotations

import numpy as np

from nnctl.registry import Registry

LOSSES = Registry("loss")


class Loss:
    """Base class; ``__call__`` is ``forward``.

    A subclass with arguments returns them from ``get_config`` too, so that
    ``initialize_loss(loss.get_config())`` rebuilds the same loss.
    """

    type_name = "loss"

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
    ``(Y_hat - Y) / batch`` and ``forward_logits`` for the loss.
    """

    def __init__(self, name: str = "cross_entropy", eps: float | None = None):
        self.name = name
        self.eps = eps

    def _eps(self, Y_hat: np.ndarray) -> float:
        return self.eps if self.eps is not None else float(np.finfo(Y_hat.dtype).tiny)

    def forward(self, Y, Y_hat):
        p = np.clip(Y_hat, self._eps(Y_hat), 1.0)
        return float(-np.sum(Y * np.log(p), dtype=np.float64) / Y.shape[0])

    def backward(self, Y, Y_hat):
        return -(Y / np.clip(Y_hat, self._eps(Y_hat), 1.0)) / Y.shape[0]

    @staticmethod
    def forward_logits(Y: np.ndarray, Z: np.ndarray) -> float:
        """Loss from softmax logits ``Z`` (batch, classes): mean of logsumexp(Z) - <Y, Z>."""
        Z64 = Z.astype(np.float64, copy=False)
        top = Z64.max(axis=-1, keepdims=True)
        lse = np.log(np.exp(Z64 - top).sum(axis=-1, keepdims=True)) + top
        return float(np.sum(Y * (lse - Z64)) / Y.shape[0])


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
