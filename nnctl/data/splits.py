"""Splitting (seeded, stratified) and batching by index."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def split_count(n: int, amount: float) -> int:
    """Examples taken from ``n`` by a fraction in (0, 1) or a count; 0 means none.

    A positive fraction takes at least one example and always leaves one.
    """
    if not amount:
        return 0
    if isinstance(amount, float) and amount < 1:
        return min(max(1, round(amount * n)), n - 1)
    return int(amount)


def stratified_split(
    y: np.ndarray, n_take: int, rng: np.random.Generator, stratify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices ``0..N-1`` into a kept part and ``n_take`` taken ones.

    Parameters
    ----------
    y : ndarray of shape (N,) int labels, or (N, k) regression targets
    n_take : int
        Size of the taken part, 0 <= n_take < N.
    rng : numpy.random.Generator
    stratify : bool
        Keep class proportions (largest-remainder rounding); ignored for 2-D ``y``.

    Returns
    -------
    keep, take : sorted int64 index arrays, disjoint, together ``0..N-1``.
    """
    n = len(y)
    if stratify and y.ndim == 1:
        take = _stratified_take(y, n_take, rng)
    else:
        take = rng.permutation(n)[:n_take]
    mask = np.zeros(n, dtype=bool)
    mask[take] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _stratified_take(y: np.ndarray, n_take: int, rng: np.random.Generator) -> np.ndarray:
    classes, counts = np.unique(y, return_counts=True)
    exact = counts * (n_take / len(y))
    quota = np.floor(exact).astype(np.int64)
    # hand the rounding remainder to the classes with the largest fractional parts
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[: n_take - quota.sum()]] += 1
    chosen = [
        rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota, strict=True)
    ]
    return np.concatenate(chosen) if chosen else np.empty(0, dtype=np.int64)


def iterate_batches(
    n: int,
    batch_size: int,
    rng: np.random.Generator,
    shuffle: bool = True,
    start_batch: int = 0,
    min_batch: int = 1,
) -> Iterator[np.ndarray]:
    """Index arrays of one epoch, from one permutation drawn from ``rng``.

    Parameters
    ----------
    n : int
        Number of examples.
    batch_size : int
        Examples per batch; the last batch may be smaller (it is kept, unless it is smaller
        than ``min_batch``: see ``batch_count``).
    rng : numpy.random.Generator
        The permutation is drawn from it when iteration starts, so saving ``rng`` state
        before the epoch and restoring it reproduces the epoch exactly.
    shuffle : bool
        False gives ``0..n-1`` in order and draws nothing from ``rng``.
    start_batch : int
        Skip this many batches (resume mid-epoch after restoring ``rng``).
    min_batch : int
        The smallest batch the model can train on (2 with batch normalization of vectors).

    Yields
    ------
    ndarray of shape (batch,), int64 indices; use ``X[idx]`` (a small copy).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size}")
    order = rng.permutation(n) if shuffle else np.arange(n)
    end = batch_count(n, batch_size, min_batch) * batch_size
    for begin in range(start_batch * batch_size, min(n, end), batch_size):
        yield order[begin : begin + batch_size]


def batch_count(n: int, batch_size: int, min_batch: int = 1) -> int:
    """Batches in an epoch of ``n`` examples: a last batch smaller than ``min_batch`` is
    dropped (its examples, a different few each epoch when shuffling, wait for the next)."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= min(min_batch, batch_size) and rest else 0)


def one_hot(y: np.ndarray, n_classes: int, dtype=np.float32) -> np.ndarray:
    """One-hot encode integer labels.

    Parameters
    ----------
    y : ndarray of shape (N,), integers in ``0..n_classes-1``

    Returns
    -------
    ndarray of shape (N, n_classes)
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"one_hot expects labels of shape (N,); got {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"labels must be in 0..{n_classes - 1}; got {y.min()}..{y.max()}")
    out = np.zeros((len(y), n_classes), dtype=dtype)
    out[np.arange(len(y)), y] = 1
    return out
