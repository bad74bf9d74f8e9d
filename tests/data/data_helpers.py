"""Shared helpers for data tests: small IDX files written into tmp_path, their checksums.
(Fixtures stay in conftest.py; a module imported by name must not be called ``conftest``,
or it shadows tests/conftest.py for the test modules that import that one by name.)"""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np

from nnctl.data.builtin import IDX_FILES, FashionMnist
from nnctl.data.files import Checksums


def write_idx(path, array: np.ndarray, compress: bool = True, extra: bytes = b"") -> None:
    """Write ``array`` (uint8) as an IDX file, gzip-compressed if asked."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes() + extra
    path.write_bytes(gzip.compress(payload) if compress else payload)


def declare_checksums(monkeypatch, folder) -> dict[str, Checksums]:
    """Make fashion_mnist declare the checksums of the fake files in ``folder``, as they are
    now, in place of the official ones; return the download checksums."""
    downloads, content = {}, {}
    for name in IDX_FILES:
        data = (folder / name).read_bytes()
        downloads[name] = Checksums(hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest())
        content[name] = hashlib.sha256(gzip.decompress(data)).hexdigest()
    monkeypatch.setattr(FashionMnist, "downloads", downloads)
    monkeypatch.setattr(FashionMnist, "content_sha256", content)
    return downloads
