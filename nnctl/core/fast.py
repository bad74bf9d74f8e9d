"""Exact rewrites the network applies for speed; the layers' semantics stay unchanged.

``ConvPool`` runs a stride-1 ``Conv2D`` with a monotone (non-decreasing) activation ``f``
followed by a max ``Pool2D`` whose windows tile the conv output (stride == kernel, no
padding, dividing the output evenly). Because ``f`` and ``+ b`` are monotone,
``max(f(z + b)) == f(max(z) + b)``: the pool runs first on the raw conv output ``z`` and the
bias, the activation, its derivative and the bias gradient touch ``ph * pw`` times fewer
elements. The im2col rows are ordered by pool offset, so the pool is ``ph * pw - 1``
element-wise maxima of contiguous blocks.

The gradient of each pooling window goes to the first maximum of ``z`` in row-major window
order, as ``Pool2D`` does: exact ties in ``z`` (a zero background) resolve identically, and
where ``f(z + b) <= 0`` is flat (relu) the gradient is zero either way. Values of ``z`` that
differ but round to the same ``z + b`` or saturate ``f`` (measure-zero) may route to a
different, equally maximal position.

Large intermediates live in a ``Workspace`` reused across steps of the same batch size.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
from numpy.lib.stride_tricks import as_strided

from nnctl.core.activations import ReLU
from nnctl.core.conv import Conv2D, Pool2D, gather_windows, max_first, offset_slice, pad_images


class LazyCache(OrderedDict):
    """A layer's ``cache`` filled by a fused unit. Its entries have the layer's own keys,
    shapes and layouts, but are computed from the unit's intermediates on first read, so
    calling the layer's own ``backward`` after a fused forward still works (at the
    unfused cost) while the fused path never pays for them."""

    def __init__(self, **compute: Callable[[], np.ndarray]) -> None:
        self._compute: dict[str, Callable[[], np.ndarray]] = {}
        super().__init__((key, None) for key in compute)  # the keys, in order
        self._compute = compute

    def __getitem__(self, key):
        if key in self._compute:
            super().__setitem__(key, self._compute.pop(key)())
        return super().__getitem__(key)

    def __setitem__(self, key, value) -> None:
        self._compute.pop(key, None)
        super().__setitem__(key, value)

    def get(self, key, default=None):
        return self[key] if key in self else default  # noqa: SIM401 (must compute)

    def values(self):
        return [self[key] for key in self]

    def items(self):
        return [(key, self[key]) for key in self]


class Workspace:
    """Named scratch arrays, reallocated only when the shape or dtype changes."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, shape, dtype) -> np.ndarray:
        array = self._arrays.get(name)
        if array is None or array.shape != tuple(shape) or array.dtype != dtype:
            array = self._arrays[name] = np.empty(shape, dtype=dtype)
        return array


def fusable(conv, pool) -> bool:
    """Whether ``conv → pool`` may run as a ``ConvPool`` (both layers built; a conv without
    bias is not fused)."""
    return (
        type(conv) is Conv2D
        and type(pool) is Pool2D
        and conv.bias
        and conv.activation.monotone
        and conv.stride == (1, 1)
        and pool.mode == "max"
        and pool.stride == pool.kernel_shape
        and pool.pad == ((0, 0), (0, 0))
        and all(n % k == 0 for n, k in zip(conv.out_hw, pool.kernel_shape))
    )


def pooled_window_view(Xp: np.ndarray, kernel, pool, pooled_hw) -> np.ndarray:
    """Stride-1 conv windows grouped by pool offset, no copy: (batch, rows, cols, c) →
    (ph, pw, batch, pooled_rows, pooled_cols, kh, kw, c); window [a, b, n, p, q] is the one
    of conv output (n, ph * p + a, pw * q + b)."""
    sb, sr, sc, sch = Xp.strides
    (ph, pw), (kh, kw) = pool, kernel
    shape = (ph, pw, Xp.shape[0]) + tuple(pooled_hw) + (kh, kw, Xp.shape[3])
    strides = (sr, sc, sb, sr * ph, sc * pw, sr, sc, sch)
    return as_strided(Xp, shape, strides, writeable=False)


def _fwd(cols: np.ndarray, W2: np.ndarray, b: np.ndarray, Z: np.ndarray):
    """cols (P, M, K), W2 (K, n_out), b (1, n_out) → pooled ``max(z) + b`` (M, n_out) and the
    first-max block index (M, n_out); ``Z`` (P, M, n_out) receives the raw conv output."""
    P, M, K = cols.shape
    np.matmul(cols.reshape(P * M, K), W2, out=Z.reshape(P * M, -1))  # (P * M, n_out)
    zmax, arg = max_first(Z)
    zmax += b
    return zmax, arg


def _bwd_scatter(dZp: np.ndarray, arg: np.ndarray, dZ: np.ndarray) -> np.ndarray:
    """Pooled dL/dz (M, n_out) → full dL/dz (P, M, n_out), nonzero only at the first max."""
    hit = np.empty(arg.shape, dtype=bool)
    for k in range(dZ.shape[0]):
        np.equal(arg, k, out=hit)
        np.multiply(dZp, hit, out=dZ[k])
    return dZ


class ConvPool:
    """``conv → pool`` as one unit: ``forward`` maps the conv's input to the pool's output,
    ``backward`` the pool's output gradient to the conv's input gradient and fills the
    conv's ``gradients``. The layers' caches are filled too (``LazyCache`` for the conv), so
    their own ``backward`` still works.
    """

    def __init__(self, conv: Conv2D, pool: Pool2D) -> None:
        self.conv, self.pool = conv, pool
        self.layers = (conv, pool)
        self.work = Workspace()

    def im2col(self, X: np.ndarray) -> np.ndarray:
        """(batch, rows, cols, c_in) → (ph * pw, batch * pooled_rows * pooled_cols, K)."""
        conv, pool = self.conv, self.pool
        Xp = pad_images(X, conv.pad)
        view = pooled_window_view(Xp, conv.kernel_shape, pool.kernel_shape, pool.out_hw)
        cols = gather_windows(view, self.work.get("cols", view.shape, X.dtype))
        P = pool.kernel_shape[0] * pool.kernel_shape[1]
        return cols.reshape(P, -1, cols.shape[-3] * cols.shape[-2] * cols.shape[-1])

    def forward(self, X: np.ndarray) -> np.ndarray:
        """X : (batch, rows, cols, c_in) → (batch, pooled_rows, pooled_cols, n_out)."""
        conv, pool = self.conv, self.pool
        conv._ensure_built(X)
        cols = self.im2col(X)  # (P, M, K)
        W2 = conv.parameters["W"].reshape(-1, conv.n_out)  # (K, n_out)
        Z = self.work.get("Z", cols.shape[:2] + (conv.n_out,), X.dtype)
        zmax, arg = _fwd(cols, W2, conv.parameters["b"], Z)
        shape = (X.shape[0],) + pool.out_hw + (conv.n_out,)
        self.cols, self.Z, self.Zp = cols, Z, zmax.reshape(shape)
        Y = conv.activation.forward(self.Zp)
        if isinstance(conv.activation, ReLU):
            arg *= Y.reshape(arg.shape) != 0  # all tied at 0: the first position
        conv.cache = LazyCache(cols=self._natural_cols, Z=self._natural_Z)
        pool.cache["arg"] = arg.reshape(shape)
        return Y

    def _natural_cols(self) -> np.ndarray:
        """The conv's own im2col: rows in (batch, out_rows, out_cols) order."""
        (ph, pw), (poh, pow_) = self.pool.kernel_shape, self.pool.out_hw
        c8 = self.cols.reshape(ph, pw, -1, poh, pow_, self.cols.shape[-1])
        # (ph, pw, batch, poh, pow, K) → (batch, poh, ph, pow, pw, K)
        return c8.transpose(2, 3, 0, 4, 1, 5).reshape(-1, self.cols.shape[-1])

    def _natural_Z(self) -> np.ndarray:
        """The conv's own pre-activation z + b, (batch, out_rows, out_cols, n_out)."""
        (ph, pw), (poh, pow_) = self.pool.kernel_shape, self.pool.out_hw
        z6 = self.Z.reshape(ph, pw, -1, poh, pow_, self.conv.n_out)
        # (ph, pw, batch, poh, pow, n_out) → (batch, poh, ph, pow, pw, n_out)
        Z = z6.transpose(2, 3, 0, 4, 1, 5) + self.conv.parameters["b"]
        return Z.reshape((Z.shape[0],) + self.conv.out_hw + (self.conv.n_out,))

    def backward(self, dLdY: np.ndarray) -> np.ndarray | None:
        """dLdY : (batch, pooled_rows, pooled_cols, n_out) → dLdX (batch, rows, cols, c_in)."""
        conv, cols = self.conv, self.cols  # cols (P, M, K)
        dZp = conv.activation.backward(self.Zp, dLdY).reshape(-1, conv.n_out)  # (M, n_out)
        arg = self.pool.cache["arg"].reshape(dZp.shape)  # (M, n_out)
        dZ = _bwd_scatter(dZp, arg, self.work.get("dZ", cols.shape[:2] + dZp.shape[1:], dZp.dtype))
        dZ2 = dZ.reshape(-1, conv.n_out)  # (P * M, n_out)
        W2 = conv.parameters["W"].reshape(-1, conv.n_out)  # (K, n_out)
        dW = cols.reshape(-1, W2.shape[0]).T @ dZ2  # (K, n_out)
        conv.gradients["W"] = dW.reshape(conv.parameters["W"].shape)
        conv.gradients["b"] = dZp.sum(axis=0, keepdims=True)
        if not conv.needs_input_grad:
            return None
        dcols = self.work.get("dcols", (dZ2.shape[0], W2.shape[0]), dZ2.dtype)
        np.matmul(dZ2, W2.T, out=dcols)  # (P * M, K)
        return self.col2im(dcols, dLdY.shape[0])

    def col2im(self, dcols: np.ndarray, batch: int) -> np.ndarray:
        """(P * M, K) in pool-offset row order → dL/dX (batch, rows, cols, c_in)."""
        conv, pool = self.conv, self.pool
        (kh, kw), (ph, pw) = conv.kernel_shape, pool.kernel_shape
        rows, cols_, c = conv.input_shape
        (t, b), (l, r) = conv.pad
        dXp = np.zeros((batch, rows + t + b, cols_ + l + r, c), dtype=dcols.dtype)
        # (ph, pw, batch, pooled_rows, pooled_cols, kh, kw, c_in)
        d8 = dcols.reshape((ph, pw, batch) + pool.out_hw + (kh, kw, c))
        for a, bb, i, j in itertools.product(range(ph), range(pw), range(kh), range(kw)):
            where = offset_slice(a + i, bb + j, pool.stride, pool.out_hw)
            dXp[where] += d8[a, bb, :, :, :, i, j, :]
        return dXp[:, t : t + rows, l : l + cols_, :]


def plan(layers) -> list:
    """The layers as execution stages: each fusable ``conv → pool`` pair becomes a
    ``ConvPool``; every other layer stands for itself."""
    stages, i = [], 0
    while i < len(layers):
        if i + 1 < len(layers) and fusable(layers[i], layers[i + 1]):
            stages.append(ConvPool(layers[i], layers[i + 1]))
            i += 2
        else:
            stages.append(layers[i])
            i += 1
    return stages
