"""Fixtures for data tests. Helpers imported by name live in data_helpers.py."""

from __future__ import annotations

import numpy as np
import pytest
from data_helpers import write_idx


@pytest.fixture
def fake_mnist(tmp_path):
    """A tiny MNIST-like set: 30 train and 10 test 28x28 images, 10 classes."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (30, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(30) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (10, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": np.arange(10) % 10,
    }
    folder = tmp_path / "src"
    folder.mkdir()
    for name, array in arrays.items():
        write_idx(folder / name, array)
    return folder
