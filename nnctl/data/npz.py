"""Reader for ``.npz`` archives, always with ``allow_pickle=False``."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from nnctl.core.checks import cut
from nnctl.data.files import require_file
from nnctl.errors import DataError


def _check_zip(path: Path) -> None:
    require_file(path)
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an .npz file (not a zip archive)")


def npz_names(path: str | Path) -> list[str]:
    """Names of the arrays in an npz archive."""
    path = Path(path)
    _check_zip(path)
    with zipfile.ZipFile(path) as zf:
        return sorted(n[:-4] for n in zf.namelist() if n.endswith(".npy"))


def _missing(path: Path, key: str) -> DataError:
    have = cut(", ".join(npz_names(path))) or "none"
    return DataError(f"{path}: no array named '{key}' (the file has: {have})")


def npz_header(path: str | Path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array in an npz archive, reading only its header."""
    path = Path(path)
    _check_zip(path)
    with zipfile.ZipFile(path) as zf:
        if f"{key}.npy" not in zf.namelist():
            raise _missing(path, key)
        with zf.open(f"{key}.npy") as fh:
            try:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                else:
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
            except ValueError as e:
                raise DataError(f"{path}: array '{key}' is not a valid .npy ({e})") from None
    return tuple(shape), dtype


def read_npz_array(path: str | Path, key: str) -> np.ndarray:
    """One array of an npz archive; DataError if missing, pickled or non-numeric."""
    path = Path(path)
    _check_zip(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            if key not in archive.files:
                raise _missing(path, key)
            array = archive[key]
    except ValueError as e:
        if "pickle" in str(e):
            raise DataError(
                f"{path}: array '{key}' needs pickle to load (object data); "
                "nnctl only reads plain numeric arrays"
            ) from None
        raise DataError(f"{path}: cannot read array '{key}' ({e})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{path}: cannot read npz archive ({e})") from None
    return array
