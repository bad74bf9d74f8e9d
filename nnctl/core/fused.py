"""Exact rewrites the network applies for speed: outputs and gradients are bit-identical
to those of the plain layers (as numbers: a zero gradient may differ in sign).

``ConvPool`` runs a ``Conv2D`` followed by a max ``Pool2D`` whose windows tile the conv
output (stride == kernel, no padding, dividing the output evenly), for the activations in
``POOL_RULES``. The conv computes its pre-activation ``a = z + b`` with its own code
(``Conv2D.forward_linear``: the im2col, matrix product, bias add and cache of its
``forward``); the pool runs on ``a`` instead of ``f(a)``, so the activation and its
derivative touch ``ph * pw`` times fewer elements and the pool's own backward pass is
skipped. Exact, for the same floats ``a`` and without NaN, because:

- linear: ``f(a) = a``, so the pool sees the same numbers.
- relu: if ``max a > 0``, the ``relu(a_k)`` equal to the maximum ``relu(max a) = max a``
  are exactly the ``a_k == max a`` (relu is the identity above 0 and 0 elsewhere), so the
  first maximum is the same position; if ``max a <= 0``, every ``relu(a_k)`` is 0 and the
  plain pool keeps the window's first position, as this unit does. Either way the
  derivative at the chosen position is ``relu'(max a)``.

``ActivationPool`` runs an ``ActivationLayer`` of those activations followed by such a pool
(``conv → batch_norm → activation → pool``, where the conv cannot take the pool itself): the
pool runs on the activation's input ``a``, the activation on the pooled values only, by the
same argument.

The backward pass forms ``dL/da``: ``dLdY * f'`` at the chosen position and 0 elsewhere,
the values the plain pool and activation backward passes give. ``ConvPool`` hands it, in
the conv's own layout, to ``Conv2D.backward_linear`` (the same products and sums);
``ActivationPool`` returns it.

Not fused, because they would not be exact:

- other monotone activations: rounding maps distinct ``a`` to equal ``f(a)`` (in float32
  ``tanh(a)`` rounds to 1 from ``a = 10`` on, ``sigmoid(a)`` from about 16.64;
  ``alpha * a`` rounds in leaky_relu), so the plain pool's first maximum of ``f(a)`` can
  precede the first maximum of ``a``, and finding it takes ``f`` of every element: the
  plain path.
- a pool on the raw product ``z`` (adding ``b`` after the pool): ``z + b`` rounds, so
  different ``z`` tie after the add (bias 1000, ``z`` 1e-5 and 2e-5 in float32).
- im2col rows grouped by pool offset (a contiguous pool): OpenBLAS rounds a matrix product
  differently when its rows are permuted, and the weight and bias gradients would be
  summed in another order.

With NaN in ``a`` the output is NaN either way, but the chosen position may differ.
"""

from __future__ import annotations

import numpy as np

from nnctl.core.activation_layer import ActivationLayer
from nnctl.core.activations import Linear, ReLU
from nnctl.core.conv import Conv2D, Pool2D, max_first, offset_slice


def _relu_choice(a_max: np.ndarray, arg: np.ndarray) -> None:
    """Windows with ``max a <= 0`` are all-tied relu zeros: their first position."""
    arg *= a_max > 0


def _linear_choice(a_max: np.ndarray, arg: np.ndarray) -> None:
    """The first maximum of ``a`` is the pool's choice."""


# Activation class → how the plain pool's choice on f(a) follows from the first max of a.
POOL_RULES = {Linear: _linear_choice, ReLU: _relu_choice}


class Workspace:
    """Named scratch arrays, reallocated only when the shape or dtype changes."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape, dtype) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None or array.shape != tuple(shape) or array.dtype != dtype:
            array = self._arrays[name] = np.empty(shape, dtype=dtype)
        return array


def tiling_max_pool(pool, in_hw) -> bool:
    """Whether ``pool`` is a max pool whose windows tile images of ``in_hw`` (rows, cols):
    stride == kernel, no padding, dividing both sides evenly."""
    return (
        type(pool) is Pool2D
        and pool.mode == "max"
        and pool.stride == pool.kernel_shape
        and pool.pad == ((0, 0), (0, 0))
        and all(n % k == 0 for n, k in zip(in_hw, pool.kernel_shape))
    )


def fusable(conv, pool) -> bool:
    """Whether ``conv → pool`` may run as a ``ConvPool`` (both layers built)."""
    return (
        type(conv) is Conv2D
        and type(conv.activation) in POOL_RULES
        and tiling_max_pool(pool, conv.out_hw)
    )


def activation_fusable(act, pool) -> bool:
    """Whether ``activation → pool`` may run as an ``ActivationPool`` (both layers built)."""
    return (
        type(act) is ActivationLayer
        and type(act.activation) in POOL_RULES
        and pool.input_shape is not None
        and len(pool.input_shape) == 3
        and tiling_max_pool(pool, pool.input_shape[:2])
    )


def pool_offsets(pool: Pool2D, A: np.ndarray) -> list[np.ndarray]:
    """Views of ``A`` (batch, rows, cols, ch), one per window offset in row-major order, each
    (batch, pooled_rows, pooled_cols, ch): the blocks ``Pool2D`` takes the maximum of."""
    return [A[offset_slice(i, j, pool.stride, pool.out_hw)] for i, j in pool._offsets()]


class PoolUnit:
    """A layer and the tiling max pool after it as one unit (``layers``): the pool runs on
    the values before the activation, the activation on the pooled ones (the module says
    why that is exact)."""

    def __init__(self, first, pool: Pool2D) -> None:
        self.layers, self.pool = (first, pool), pool
        self.work = Workspace()
        self.a_max: np.ndarray | None = None

    def _pool(self, A: np.ndarray, activation) -> np.ndarray:
        """A (batch, rows, cols, ch), the values before ``activation`` → the pool's output
        (batch, pooled_rows, pooled_cols, ch): the first maximum of each window of ``A``,
        and in the pool's cache the plain pool's choice on ``activation(A)``."""
        a_max, arg = max_first(pool_offsets(self.pool, A))
        POOL_RULES[type(activation)](a_max, arg)
        self.pool.cache["arg"], self.a_max = arg, a_max
        return activation.forward(a_max)

    def _check_forward(self) -> None:
        if self.a_max is None:
            name = type(self).__name__
            raise RuntimeError(f"{name}.backward needs a forward pass of the same unit first")

    def _routed(self, dLdY: np.ndarray, activation, shape, fresh: bool) -> np.ndarray:
        """dLdY (batch, pooled_rows, pooled_cols, ch) → dL/dA of ``shape`` (before the
        activation, tiled by the windows): ``dLdY * f'`` at each window's chosen position, 0
        elsewhere; in a new array if ``fresh``, else in this unit's workspace."""
        dA_max = activation.backward(self.a_max, dLdY)  # the derivative at the choice
        arg = self.pool.cache["arg"]
        if fresh:
            dA = np.empty(shape, dtype=dA_max.dtype)
        else:
            dA = self.work.get("dA", shape, dA_max.dtype)
        hit = self.work.get("hit", arg.shape, bool)
        for k, block in enumerate(pool_offsets(self.pool, dA)):
            np.equal(arg, k, out=hit)
            np.multiply(dA_max, hit, out=block)
        return dA


class ConvPool(PoolUnit):
    """``conv → pool`` as one unit: ``forward`` maps the conv's input to the pool's output,
    ``backward`` the pool's output gradient to the conv's input gradient and fills the
    conv's ``gradients``. Both layers' caches hold what their plain forward passes leave
    (the conv's ``cols`` and ``Z``, the pool's ``arg``), so their own ``backward`` works
    after a fused forward too.
    """

    def __init__(self, conv: Conv2D, pool: Pool2D) -> None:
        super().__init__(conv, pool)
        self.conv = conv

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X : (batch, rows, cols, c_in) → (batch, pooled_rows, pooled_cols, n_out)."""
        A = self.conv.forward_linear(X)  # (batch, out_rows, out_cols, n_out)
        return self._pool(A, self.conv.activation)

    def backward(self, dLdY: np.ndarray) -> np.ndarray | None:
        """dLdY : (batch, pooled_rows, pooled_cols, n_out) → dLdX (batch, rows, cols, c_in)."""
        self._check_forward()
        conv = self.conv
        dA = self._routed(dLdY, conv.activation, conv.cache["Z"].shape, fresh=False)
        return conv.backward_linear(dA)


class ActivationPool(PoolUnit):
    """``activation → pool`` as one unit: ``forward`` maps the activation's input to the
    pool's output, ``backward`` the pool's output gradient to the activation's input
    gradient. The caches hold what the plain forward passes leave (the activation layer's
    ``Z``, the pool's ``arg``), so each layer's own ``backward`` works after it."""

    def __init__(self, act: ActivationLayer, pool: Pool2D) -> None:
        super().__init__(act, pool)
        self.act = act

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X : (batch, rows, cols, ch) → (batch, pooled_rows, pooled_cols, ch)."""
        self.act._ensure_built(X)
        self.act.cache["Z"] = X
        return self._pool(X, self.act.activation)

    def backward(self, dLdY: np.ndarray) -> np.ndarray:
        """dLdY : (batch, pooled_rows, pooled_cols, ch) → dLdX (batch, rows, cols, ch), a new
        array (every element written)."""
        self._check_forward()
        return self._routed(dLdY, self.act.activation, self.act.cache["Z"].shape, fresh=True)


#: (first layer's fusability test, unit): the patterns ``plan`` fuses, tried in order.
FUSIONS = ((fusable, ConvPool), (activation_fusable, ActivationPool))


def plan(layers) -> list:
    """The layers as execution stages: each fusable pair (``FUSIONS``: ``conv → pool``,
    ``activation → pool``) becomes one unit; every other layer stands for itself."""
    stages, i = [], 0
    while i < len(layers):
        pair = layers[i : i + 2]
        unit = next((u for fits, u in FUSIONS if len(pair) == 2 and fits(*pair)), None)
        if unit is not None:
            stages.append(unit(*pair))
            i += 2
        else:
            stages.append(layers[i])
            i += 1
    return stages
