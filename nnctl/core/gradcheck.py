"""Gradient checks: analytic gradients against float64 central differences.

``numerical_gradient`` differentiates a scalar function with respect to an array it reads,
``relative_error`` compares two gradients relative to their scale, and ``check_network``
does both for every parameter of a network. ``nnctl gradcheck`` and the test suite use
these same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from nnctl.core.chain import named_layers
from nnctl.core.network import NeuralNetwork

EPS = 1e-6
#: The rounding error of a loss, in units of its last place, that a network's forward pass
#: may accumulate: ``NOISE_ULPS * eps_machine * |L| / (2 eps)`` is the smallest gradient
#: difference the central differences resolve (about 4e-9 for a loss near 2.3, eps 1e-6).
NOISE_ULPS = 32


def central_differences(
    f: Callable[[], float], x: np.ndarray, entries, eps: float = EPS
) -> np.ndarray:
    """``(f(x + eps e_k) - f(x - eps e_k)) / (2 eps)`` for each flat index ``k`` in ``entries``.

    Parameters
    ----------
    f : callable
        A scalar function of the current contents of ``x`` (it takes no arguments).
    x : ndarray
        Changed in place one entry at a time, and restored.
    entries : sequence of int
        Flat indices into ``x``.

    Returns
    -------
    ndarray of shape (len(entries),), float64
    """
    flat = x.reshape(-1)  # a view: writing to it changes x
    numeric = np.empty(len(entries), dtype=np.float64)
    for n, k in enumerate(entries):
        original = flat[k]
        flat[k] = original + eps
        plus = f()
        flat[k] = original - eps
        minus = f()
        flat[k] = original
        numeric[n] = (plus - minus) / (2 * eps)
    return numeric


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = EPS) -> np.ndarray:
    """The gradient of ``f()`` with respect to every entry of ``x``: float64, ``x``'s shape."""
    return central_differences(f, x, range(x.size), eps).reshape(x.shape)


def relative_error(analytic, numeric, scale: float = 0.0) -> float:
    """``max |analytic - numeric| / max(max |analytic|, max |numeric|, scale, 1e-8)``.

    Relative to the gradient's scale, so that tiny entries do not drown in
    finite-difference noise. When ``analytic`` holds a sample of a gradient, pass the whole
    gradient's largest magnitude as ``scale``. 0 for empty arrays; ValueError when the
    shapes differ.
    """
    a, b = np.asarray(analytic, np.float64), np.asarray(numeric, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if not a.size:
        return 0.0
    scale = max(np.abs(a).max(), np.abs(b).max(), scale, 1e-8)
    return float(np.abs(a - b).max() / scale)


@dataclass
class ParameterCheck:
    """The result for one parameter: ``layers.<index>.<parameter>``, or inside a block
    ``layers.<index>.<child>.<parameter>`` (``child`` the dotted position in the block,
    ``layer`` the child's type)."""

    index: int
    layer: str
    parameter: str
    shape: tuple[int, ...]
    checked: int
    max_relative_error: float
    child: str = ""
    #: The largest |analytic - numeric| of the checked entries.
    max_abs_error: float = 0.0
    #: What the central differences cannot resolve: the loss's rounding over ``2 eps``.
    noise: float = 0.0

    def passes(self, tol: float) -> bool:
        """Within ``tol`` relative to the gradient's scale, or within the finite
        differences' noise (a gradient that is zero up to rounding, such as a conv bias
        just before a batch norm, which removes it)."""
        return self.max_relative_error <= tol or self.max_abs_error <= self.noise

    @property
    def key(self) -> str:
        """The parameter's key, as in ``param_grads`` and checkpoints (``layers.3.0.W``)."""
        parts = ("layers", self.index, self.child, self.parameter)
        return ".".join(str(p) for p in parts if p != "")


def named_leaves(layer):
    """``(dotted name, layer)`` of every layer without children inside ``layer`` (itself,
    named ``""``, when it has none), in build order: the layers that own parameters."""
    return [(name, x) for name, x, _ in named_layers(layer) if not x.named_children()]


def check_network(
    network: NeuralNetwork,
    X: np.ndarray,
    Y: np.ndarray,
    samples: int = 30,
    eps: float = EPS,
    rng: np.random.Generator | None = None,
) -> list[ParameterCheck]:
    """Compare ``network.backward``'s gradients with central differences of its loss.

    Parameters
    ----------
    network : NeuralNetwork
        float64; put in training mode. Its generator is reset before every forward pass,
        so dropout draws the same mask in every evaluation.
    X : ndarray of shape (batch, *input_shape)
    Y : ndarray of shape (batch, *output_shape)
    samples : int
        Tensors with more entries are checked on ``samples`` entries drawn from ``rng``.
    eps : float
        Step of the central differences.

    Returns
    -------
    list of ParameterCheck, in layer order; a block's parameters one per child
    """
    if network.dtype != np.float64:
        raise ValueError(f"gradcheck needs a float64 network; got {network.dtype}")
    rng = rng if rng is not None else np.random.default_rng(0)
    network.train()
    state = network.rng.bit_generator.state

    def forward() -> np.ndarray:
        network.rng.bit_generator.state = state
        return network.forward(X)

    def loss() -> float:
        return network.loss_value(Y, forward())

    value = network.backward(Y, forward())
    noise = NOISE_ULPS * np.finfo(np.float64).eps * max(abs(value), 1.0) / (2 * eps)
    analytic = {key: grad.copy() for key, _, grad in network.param_grads()}
    results = []
    for index, top in enumerate(network.layers):
        for child, layer in named_leaves(top):
            for name, param in layer.parameters.items():
                size = param.size
                entries = np.arange(size) if size <= samples else rng.choice(size, samples, False)
                shape = tuple(param.shape)
                result = ParameterCheck(index, layer.type_name, name, shape, len(entries), 0, child)
                numeric = central_differences(loss, param, entries, eps)
                grad = analytic[result.key]
                result.max_relative_error = _sampled_error(grad, entries, numeric)
                result.max_abs_error = float(np.abs(grad.reshape(-1)[entries] - numeric).max())
                result.noise = noise
                results.append(result)
    return results


def _sampled_error(grad: np.ndarray, entries, numeric: np.ndarray) -> float:
    """The relative error of ``grad``'s ``entries``, on the scale of the whole gradient."""
    scale = np.abs(grad).max() if grad.size else 0.0
    return relative_error(grad.reshape(-1)[entries], numeric, scale)
