"""Weight initializers.

``initialize_weights(name, activation=None, **kwargs)`` returns a function
``init(shape, rng, dtype) -> ndarray``. Fans are computed for dense kernels
``(n_in, n_out)`` and conv kernels ``(kh, kw, in_channels, n_out)``; the variance-scaling
schemes multiply by the activation's gain (relu sqrt(2), tanh 5/3, otherwise 1).
All randomness comes from the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from nnctl.core.checks import ArgumentError, number, positive
from nnctl.registry import Registry

INITIALIZERS = Registry("initializer")

GAINS = {"relu": math.sqrt(2.0), "tanh": 5.0 / 3.0}

Init = Callable[..., np.ndarray]


def compute_fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a dense ``(n_in, n_out)`` or conv ``(kh, kw, c_in, c_out)`` kernel."""
    if len(shape) == 2:
        return shape[0], shape[1]
    if len(shape) == 4:
        receptive = shape[0] * shape[1]
        return shape[2] * receptive, shape[3] * receptive
    size = int(np.prod(shape))
    return size, size


def activation_gain(activation) -> float:
    """The recommended gain for an activation name (or instance); 1 when unknown."""
    name = getattr(activation, "type_name", activation)
    return GAINS.get(name, 1.0) if isinstance(name, str) else 1.0


class Initializer:
    """Base: ``__call__(shape, rng, dtype=np.float32) -> ndarray of shape``."""

    type_name = "initializer"

    def __init__(self, gain: float = 1.0):
        self.gain = gain

    def __call__(self, shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
        return np.asarray(self.sample(tuple(shape), rng), dtype=dtype)

    def sample(self, shape, rng):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"type": self.type_name}


@INITIALIZERS.register("zeros")
class Zeros(Initializer):
    """Every weight 0."""

    def sample(self, shape, rng):
        return np.zeros(shape)


@INITIALIZERS.register("ones")
class Ones(Initializer):
    """Every weight 1."""

    def sample(self, shape, rng):
        return np.ones(shape)


@INITIALIZERS.register("constant")
class Constant(Initializer):
    """Every weight equal to ``value``."""

    def __init__(self, gain: float = 1.0, value: float = 0.0):
        super().__init__(gain)
        self.value = number("value", value)

    def sample(self, shape, rng):
        return np.full(shape, self.value)

    def get_config(self):
        return {"type": self.type_name, "value": self.value}


@INITIALIZERS.register("uniform")
class Uniform(Initializer):
    """U(low, high)."""

    def __init__(self, gain: float = 1.0, low: float = -0.05, high: float = 0.05):
        super().__init__(gain)
        self.low, self.high = number("low", low), number("high", high)
        if self.low >= self.high:
            raise ArgumentError("low", f"must be smaller than high; got low={low}, high={high}")

    def sample(self, shape, rng):
        return rng.uniform(self.low, self.high, size=shape)

    def get_config(self):
        return {"type": self.type_name, "low": self.low, "high": self.high}


@INITIALIZERS.register("normal")
class Normal(Initializer):
    """N(mean, std²)."""

    def __init__(self, gain: float = 1.0, mean: float = 0.0, std: float = 0.05):
        super().__init__(gain)
        self.mean, self.std = number("mean", mean), positive("std", std)

    def sample(self, shape, rng):
        return rng.normal(self.mean, self.std, size=shape)

    def get_config(self):
        return {"type": self.type_name, "mean": self.mean, "std": self.std}


@INITIALIZERS.register("xavier_uniform")
class XavierUniform(Initializer):
    """U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""

    def sample(self, shape, rng):
        fan_in, fan_out = compute_fans(shape)
        bound = self.gain * math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-bound, bound, size=shape)


@INITIALIZERS.register("xavier_normal")
class XavierNormal(Initializer):
    """N(0, std²), std = gain * sqrt(2 / (fan_in + fan_out))."""

    def sample(self, shape, rng):
        fan_in, fan_out = compute_fans(shape)
        return rng.normal(0.0, self.gain * math.sqrt(2.0 / (fan_in + fan_out)), size=shape)


@INITIALIZERS.register("he_uniform")
class HeUniform(Initializer):
    """U(-a, a), a = gain * sqrt(3 / fan_in) (He et al., 2015; sqrt(6 / fan_in) for relu)."""

    def sample(self, shape, rng):
        fan_in, _ = compute_fans(shape)
        bound = self.gain * math.sqrt(3.0 / fan_in)
        return rng.uniform(-bound, bound, size=shape)


@INITIALIZERS.register("he_normal")
class HeNormal(Initializer):
    """N(0, std²), std = gain / sqrt(fan_in) (sqrt(2 / fan_in) for relu)."""

    def sample(self, shape, rng):
        fan_in, _ = compute_fans(shape)
        return rng.normal(0.0, self.gain / math.sqrt(fan_in), size=shape)


def initialize_weights(name="xavier_uniform", activation=None, **kwargs) -> Initializer:
    """The initializer registered as ``name`` (or a ``{type: ..., ...}`` mapping), with the
    gain of ``activation``. Returns a callable ``init(shape, rng, dtype) -> ndarray``."""
    if isinstance(name, Initializer):
        return name
    if isinstance(name, dict):
        kwargs = {**name, **kwargs}
        name = kwargs.pop("type", None)
    cls = INITIALIZERS.get(name, "weight_init")
    return cls(gain=activation_gain(activation), **kwargs)
