"""Random batches shaped for a network, for timing and gradient checks without data."""

from __future__ import annotations

import numpy as np

from nnctl.core.network import NeuralNetwork


def synthetic_batch(
    network: NeuralNetwork,
    input_shape: tuple[int, ...],
    task: str,
    batch_size: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs and targets that fit ``network``.

    Parameters
    ----------
    network : NeuralNetwork
    input_shape : tuple of int
        One example's shape, without the batch axis.
    task : "classification", "multilabel" or "regression"
    batch_size : int
    rng : numpy.random.Generator

    Returns
    -------
    X : ndarray of shape (batch_size, *input_shape)
        Standard normal values in the network's dtype.
    Y : ndarray of shape (batch_size, *output_shape)
        One-hot rows over the last axis for classification, random 0/1 for multi-label,
        standard normal values for regression.
    """
    X = rng.standard_normal((batch_size, *input_shape)).astype(network.dtype)
    out_shape = network.output_shapes(input_shape)[-1]
    if task == "classification":
        n_classes = out_shape[-1]
        labels = rng.integers(0, n_classes, size=(batch_size, *out_shape[:-1]))
        Y = np.eye(n_classes, dtype=network.dtype)[labels]  # (batch, ..., n_classes)
    elif task == "multilabel":
        Y = rng.integers(0, 2, size=(batch_size, *out_shape)).astype(network.dtype)
    else:
        Y = rng.standard_normal((batch_size, *out_shape)).astype(network.dtype)
    return X, Y
