"""The registered gradient-descent optimizers: SGD (momentum, Nesterov), Adam, AdamW,
RMSProp and AdaGrad, each a subclass of ``optimizer_base.Optimizer`` that declares its
arguments and its update rule (the order of operations of a step is described there).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from nnctl.core.checks import ArgumentError, flag, fraction, non_negative, positive
from nnctl.core.optimizer_base import (  # noqa: F401 (re-exported: the public names)
    CLIP_MODES,
    COMMON,
    REQUIRED,
    Argument,
    Optimizer,
    grad_norm,
)
from nnctl.registry import Registry

OPTIMIZERS = Registry("optimizer")


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    ``b = momentum * b + g`` (``b = g`` on the first step); the step is ``lr * b``, or
    ``lr * (g + momentum * b)`` with ``nesterov``. State: ``momentum.<key>``.

    Parameters
    ----------
    lr : float
        Learning rate, > 0 (required).
    momentum : float
        Momentum factor in [0, 1); 0 disables the buffer.
    nesterov : bool
        Nesterov momentum; requires ``momentum > 0``.
    weight_decay, clip_norm, clip_mode
        See ``Optimizer``.
    """

    slots = ("momentum",)
    arguments: ClassVar[dict[str, Argument]] = {
        "lr": Argument(REQUIRED, positive),
        "momentum": Argument(0.0, fraction),
        "nesterov": Argument(False, flag),
    }

    def _check(self) -> None:
        if self.nesterov and self.momentum == 0:
            raise ArgumentError("nesterov", f"requires momentum > 0; got momentum={self.momentum}")

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        step = self._tmp("update", key, p)
        if not self.momentum:
            np.multiply(g, self.lr, out=step)
        else:
            buf = self._state["momentum"].get(key)
            if buf is None:
                buf = self._state["momentum"][key] = np.array(g, dtype=p.dtype)
            else:
                buf = self._slot("momentum", key, p)
                buf *= self.momentum
                buf += g
            if self.nesterov:
                np.multiply(buf, self.momentum, out=step)
                step += g
                step *= self.lr
            else:
                np.multiply(buf, self.lr, out=step)
        p -= step


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Adam with bias correction; ``weight_decay`` is an L2 term added to the gradient.

    ``m = beta1 m + (1 - beta1) g``, ``v = beta2 v + (1 - beta2) g**2``, and the step is
    ``lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)`` at step ``t``
    (1-based). State: ``m.<key>``, ``v.<key>``.

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    beta1, beta2 : float
        Decay rates of the first and second moment estimates, in [0, 1).
    eps : float
        Added to the denominator, > 0.
    weight_decay, clip_norm, clip_mode
        See ``Optimizer``.
    """

    slots = ("m", "v")
    arguments: ClassVar[dict[str, Argument]] = {
        "lr": Argument(0.001, positive),
        "beta1": Argument(0.9, fraction),
        "beta2": Argument(0.999, fraction),
        "eps": Argument(1e-8, positive),
    }

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        if self.decoupled_weight_decay and self.weight_decay:
            p *= 1.0 - self.lr * self.weight_decay
        m, v = self._slot("m", key, p), self._slot("v", key, p)
        step = self._tmp("update", key, p)
        b1, b2, t = self.beta1, self.beta2, self.iterations
        m *= b1
        np.multiply(g, 1.0 - b1, out=step)
        m += step
        v *= b2
        np.multiply(g, g, out=step)
        step *= 1.0 - b2
        v += step
        np.sqrt(v, out=step)
        step /= math.sqrt(1.0 - b2**t)
        step += self.eps  # denominator
        np.divide(m, step, out=step)
        step *= self.lr / (1.0 - b1**t)
        p -= step


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    """Adam with decoupled weight decay: ``param *= 1 - lr * weight_decay`` before the update.

    Parameters are those of ``Adam``; ``weight_decay`` defaults to 0.01 and is not added to
    the gradient.
    """

    decoupled_weight_decay = True
    defaults: ClassVar[dict[str, object]] = {"weight_decay": 0.01}


@OPTIMIZERS.register("rmsprop")
class RMSProp(Optimizer):
    """RMSProp: ``v = rho v + (1 - rho) g**2``; the step is ``lr * g / (sqrt(v) + eps)``.

    With ``momentum > 0``: ``b = momentum * b + g / (sqrt(v) + eps)`` and the step is
    ``lr * b``. State: ``v.<key>`` and, with momentum, ``momentum.<key>``.

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    rho : float
        Decay rate of the squared-gradient average, in [0, 1).
    eps : float
        Added to the denominator, > 0.
    momentum : float
        Momentum factor in [0, 1).
    weight_decay, clip_norm, clip_mode
        See ``Optimizer``.
    """

    slots = ("v", "momentum")
    arguments: ClassVar[dict[str, Argument]] = {
        "lr": Argument(0.001, positive),
        "rho": Argument(0.9, fraction),
        "eps": Argument(1e-8, positive),
        "momentum": Argument(0.0, fraction),
    }

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        v = self._slot("v", key, p)
        step = self._tmp("update", key, p)
        v *= self.rho
        np.multiply(g, g, out=step)
        step *= 1.0 - self.rho
        v += step
        np.sqrt(v, out=step)
        step += self.eps
        np.divide(g, step, out=step)
        if self.momentum:
            buf = self._slot("momentum", key, p)
            buf *= self.momentum
            buf += step
            np.multiply(buf, self.lr, out=step)
        else:
            step *= self.lr
        p -= step


@OPTIMIZERS.register("adagrad")
class AdaGrad(Optimizer):
    """AdaGrad: ``s += g**2``; the step is ``lr * g / (sqrt(s) + eps)``. State: ``sum.<key>``.

    Parameters
    ----------
    lr : float
        Learning rate, > 0.
    eps : float
        Added to the denominator, > 0.
    initial_accumulator : float
        Starting value of ``s``, >= 0.
    weight_decay, clip_norm, clip_mode
        See ``Optimizer``.
    """

    slots = ("sum",)
    arguments: ClassVar[dict[str, Argument]] = {
        "lr": Argument(0.01, positive),
        "eps": Argument(1e-10, positive),
        "initial_accumulator": Argument(0.0, non_negative),
    }

    def _update(self, key: str, p: np.ndarray, g: np.ndarray) -> None:
        s = self._slot("sum", key, p, fill=self.initial_accumulator)
        step = self._tmp("update", key, p)
        np.multiply(g, g, out=step)
        s += step
        np.sqrt(s, out=step)
        step += self.eps
        np.divide(g, step, out=step)
        step *= self.lr
        p -= step
