"""Shared helpers for data tests: small IDX files written into tmp_path. (Fixtures stay in
conftest.py; a module imported by name must not be called ``conftest``, or it shadows
tests/conftest.py for the test modules that import that one by name.)"""

from __future__ import annotations

import gzip
import struct

import numpy as np


def write_idx(path, array: np.ndarray, compress: bool = True, extra: bytes = b"") -> None:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed if asked."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes() + extra
    path.write_bytes(gzip.compress(payload) if compress else payload)
