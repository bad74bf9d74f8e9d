"""Would Winograd F(2x2, 3x3) speed up nnctl's stride-1 3x3 convolutions? A forward-pass
probe against the im2col path that ``Conv2D`` runs, on the shapes of the residual recipe.

    python benchmarks/winograd_probe.py [--threads 1] [--repeats 30]

F(2x2, 3x3) computes each 2x2 output tile from a 4x4 input tile with 16 products per
input/output channel pair instead of 36 (2.25x fewer multiplications):
``Y = A^T [(G g G^T) ⊙ (B^T d B)] A``, summed over input channels, so the channel sums
become 16 matrix products of (tiles, c_in) @ (c_in, n_out). The transforms are additions of
whole arrays. The probe checks that its output equals the im2col convolution to float32
rounding, then prints the median times of both (one process, NumPy only).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys

import harness
import numpy as np
from numpy.lib.stride_tricks import as_strided

sys.path.insert(0, str(harness.ROOT))

from step_benchmark import time_steps

from nnctl.core import Conv2D

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], np.float32)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], np.float32)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], np.float32)


def kernel_transform(W: np.ndarray) -> np.ndarray:
    """W (3, 3, c_in, n_out) → U (16, c_in, n_out)."""
    U = np.einsum("ai,ijco,bj->abco", G, W, G)
    return np.ascontiguousarray(U.reshape(16, *W.shape[2:]))


def winograd_forward(X: np.ndarray, U: np.ndarray) -> np.ndarray:
    """'same' 3x3 conv of X (batch, rows, cols, c_in), rows and cols even → (batch, rows,
    cols, n_out)."""
    n, rows, cols, c = X.shape
    tr, tc = rows // 2, cols // 2
    Xp = np.zeros((n, rows + 2, cols + 2, c), X.dtype)
    Xp[:, 1:-1, 1:-1] = X
    s = Xp.strides
    d = as_strided(Xp, (n, tr, tc, 4, 4, c), (s[0], 2 * s[1], 2 * s[2], s[1], s[2], s[3]))
    # B^T d B as sums of rows then columns of each tile: 16 arrays (batch, tr, tc, c)
    rows_t = [sum(B_T[a, i] * d[:, :, :, i] for i in range(4) if B_T[a, i]) for a in range(4)]
    V = np.empty((16, n * tr * tc, c), X.dtype)
    for a in range(4):
        for b in range(4):
            V[4 * a + b] = sum(
                B_T[b, j] * rows_t[a][:, :, :, j] for j in range(4) if B_T[b, j]
            ).reshape(-1, c)
    M = np.matmul(V, U)  # (16, tiles, n_out): 16 products
    M = M.reshape(4, 4, -1)
    k = U.shape[-1]
    top = [sum(A_T[p, a] * M[a] for a in range(4) if A_T[p, a]) for p in range(2)]
    Y = np.empty((n, tr, 2, tc, 2, k), X.dtype)
    for p in range(2):
        for q in range(2):
            tile = sum(A_T[q, b] * top[p][b] for b in range(4) if A_T[q, b])
            Y[:, :, p, :, q] = tile.reshape(n, tr, tc, k)
    return Y.reshape(n, rows, cols, k)


def median_ms(f, repeats: int) -> float:
    """Median milliseconds of ``repeats`` calls after one warm-up (``time_steps``)."""
    return statistics.median(time_steps(f, 1, repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    print("shape (batch 64)         im2col ms  winograd ms  max rel. difference")
    with threadpool_limits(args.threads):
        for rows, c_in, n_out in [(14, 32, 32), (28, 32, 32), (8, 64, 64), (16, 64, 64)]:
            X = rng.normal(size=(64, rows, rows, c_in)).astype(np.float32)
            conv = Conv2D(n_out, 3, bias=False)
            conv.build(X.shape[1:], rng, np.float32)
            U = kernel_transform(conv.parameters["W"])
            plain = conv.forward_linear(X)
            fast = winograd_forward(X, U)
            error = np.abs(fast - plain).max() / np.abs(plain).max()
            t_plain = median_ms(functools.partial(conv.forward_linear, X), args.repeats)
            t_fast = median_ms(functools.partial(winograd_forward, X, U), args.repeats)
            print(
                f"{rows}x{rows}x{c_in} -> {n_out:<12} {t_plain:9.2f}  {t_fast:11.2f}  {error:.1e}"
            )


if __name__ == "__main__":
    main()
