"""Geometric warps of NHWC image batches: each image read at its own fractional positions.

Pure NumPy, vectorized over the batch: positions are computed for every output pixel of
every image at once and the four neighbours gathered by flat index (``np.take``).
"""

from __future__ import annotations

import numpy as np


def rotate(X: np.ndarray, angles: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """Rotate each image of ``X`` by its own angle, counter-clockwise as displayed (row 0 at
    the top), as torchvision's ``rotate``.

    Parameters
    ----------
    X : ndarray of shape (batch, rows, cols, channels)
    angles : ndarray of shape (batch,)
        Radians; an angle of 0 returns the image exactly.
    fill : float
        Value of the pixels that come from outside the image.

    Returns
    -------
    ndarray of shape (batch, rows, cols, channels), X's dtype
    """
    _, rows, cols, _ = X.shape
    cy, cx = (rows - 1) / 2, (cols - 1) / 2
    y = (np.arange(rows) - cy)[None, :, None]  # (1, rows, 1): offsets from the centre
    x = (np.arange(cols) - cx)[None, None, :]  # (1, 1, cols)
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    # each output pixel reads the input at its own position rotated back by the angle
    source_y = cos * y + sin * x + cy  # (batch, rows, cols)
    source_x = cos * x - sin * y + cx
    return sample_bilinear(X, source_y, source_x, fill)


def sample_bilinear(X: np.ndarray, y: np.ndarray, x: np.ndarray, fill: float) -> np.ndarray:
    """``X`` read at fractional positions, blending the four nearest pixels.

    Parameters
    ----------
    X : ndarray of shape (batch, rows, cols, channels)
    y, x : ndarray of shape (batch, out_rows, out_cols)
        Row and column positions in ``X``; positions outside blend with ``fill``.
    fill : float

    Returns
    -------
    ndarray of shape (batch, out_rows, out_cols, channels), X's dtype
    """
    n, rows, cols, channels = X.shape
    # a ring of fill around the image (two on the far sides, for the lower/right neighbours)
    fill = np.asarray(fill, X.dtype)
    padded = np.pad(X, ((0, 0), (1, 2), (1, 2), (0, 0)), constant_values=fill)
    stride = cols + 3  # one padded row
    flat = padded.reshape(-1, channels)  # (batch * (rows + 3) * (cols + 3), channels)
    y = np.clip(y + 1, 0, rows + 1)  # beyond the ring everything reads the ring
    x = np.clip(x + 1, 0, cols + 1)
    y0, x0 = y.astype(np.intp), x.astype(np.intp)  # the floor, as y, x >= 0
    wy = (y - y0).astype(X.dtype)[..., None]  # (batch, out_rows, out_cols, 1)
    wx = (x - x0).astype(X.dtype)[..., None]
    # flat index of each output pixel's upper-left neighbour: (batch, out_rows, out_cols)
    corner = (np.arange(n)[:, None, None] * (rows + 3) + y0) * stride + x0

    def at(offset: int) -> np.ndarray:  # (batch, out_rows, out_cols, channels)
        return flat.take(corner + offset, axis=0)

    upper = at(0) * (1 - wx) + at(1) * wx
    lower = at(stride) * (1 - wx) + at(stride + 1) * wx
    return (upper * (1 - wy) + lower * wy).astype(X.dtype, copy=False)
