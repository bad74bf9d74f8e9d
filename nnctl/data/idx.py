"""Reader for the IDX format of MNIST-like data sets, gzip-compressed or raw.

IDX is big-endian: two zero bytes, a type byte (0x08 = uint8, ...), the number of
dimensions ``n``, ``n`` uint32 sizes, then the data in C order.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import numpy as np

from nnctl.data.files import require_file
from nnctl.errors import DataError

_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _open(path: Path):
    require_file(path)
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _parse_header(path: Path, fh) -> tuple[np.dtype, tuple[int, ...]]:
    head = fh.read(4)
    if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _DTYPES or not 1 <= head[3] <= 4:
        raise DataError(f"{path}: not an IDX file (bad magic number {head.hex() or 'empty'})")
    ndim = head[3]
    dims = fh.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(f"{path}: IDX header is truncated")
    return _DTYPES[head[2]], struct.unpack(f">{ndim}I", dims)


def read_idx_header(path: str | Path) -> tuple[np.dtype, tuple[int, ...]]:
    """Element dtype and shape from an IDX header, without reading the data. An
    uncompressed file's size is checked against the header too."""
    path = Path(path)
    try:
        with _open(path) as fh:
            dtype, shape = _parse_header(path, fh)
            compressed = isinstance(fh, gzip.GzipFile)
        if not compressed:
            _check_size(path, dtype, shape, path.stat().st_size - 4 - 4 * len(shape))
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read IDX file ({e})") from None
    return dtype, shape


def _check_size(path: Path, dtype: np.dtype, shape: tuple[int, ...], size: int) -> None:
    expected = math.prod(shape) * dtype.itemsize  # Python integers: header sizes may be huge
    if size != expected:
        raise DataError(
            f"{path}: IDX header says shape {tuple(shape)} ({expected} bytes) "
            f"but the file holds {size} data bytes"
        )


def read_idx(path: str | Path) -> np.ndarray:
    """Read a whole IDX file.

    Returns
    -------
    ndarray of the header's shape, e.g. (N, rows, cols) uint8 for images, (N,) for labels
        Read-only view of the file's bytes when the element type is uint8.
    """
    path = Path(path)
    dtype, shape = read_idx_header(path)  # an uncompressed file's size is checked here
    try:
        with _open(path) as fh:
            _parse_header(path, fh)
            data = _read_at_most(fh, math.prod(shape) * dtype.itemsize + 1)
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read IDX file ({e})") from None
    _check_size(path, dtype, shape, len(data))
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    if dtype.itemsize > 1:
        return array.astype(dtype.newbyteorder("="))
    array.flags.writeable = False  # a view of the file's bytes
    return array


def _read_at_most(fh, limit: int, chunk: int = 1 << 24) -> bytearray:
    """Up to ``limit`` bytes, read in chunks into one buffer: a header's size is never
    allocated at once, and a compressed file holding more than it says is not read to its
    end."""
    data = bytearray()
    while len(data) < limit:
        block = fh.read(min(chunk, limit - len(data)))
        if not block:
            break
        data += block
    return data
