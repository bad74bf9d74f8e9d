"""Shared helpers for data tests: small IDX/npz/CSV files written into tmp_path."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest


def write_idx(path, array: np.ndarray, compress: bool = True, extra: bytes = b"") -> None:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed if asked."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes() + extra
    path.write_bytes(gzip.compress(payload) if compress else payload)


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
