"""Where data files live and how they are checked.

The shipped data sets sit in the package ``nnctl.datasets`` (the repository's top-level
``datasets/`` folder); downloadable ones are looked up in a data directory, ``$NNCTL_DATA``
and the user cache. Each data set declares its files and their SHA-256 (see
``nnctl.data.builtin``); this module finds and checks them, once per process per file.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path
from typing import NamedTuple

from nnctl.errors import DataError
from nnctl.fileio import user_path


class Checksums(NamedTuple):
    """SHA-256 and MD5 of a file as its publisher lists them (hex digests)."""

    sha256: str
    md5: str


_verified: set[tuple[str, int, int, str, bool]] = set()


def require_file(path: Path) -> None:
    """DataError ``<path>: file not found`` unless ``path`` is a file."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")


def shipped_root() -> Path:
    """The folder holding the shipped data sets (installed package or the clone)."""
    try:
        from importlib.resources import files

        root = files("nnctl.datasets")
        if isinstance(root, Path) and (root / "digits.npz").is_file():
            return root
    except (ImportError, TypeError):
        pass
    return Path(__file__).resolve().parents[2] / "datasets"


def shipped_file(relpath: str, sha256: str) -> Path:
    """Path of a shipped file, checked against its SHA-256."""
    path = shipped_root() / relpath
    if not path.is_file():
        raise DataError(f"{path}: shipped data file is missing; reinstall nnctl")
    verify_sha256(path, sha256)
    return path


def sha256_of(path: Path, opener=open) -> str:
    """SHA-256 hex digest of a file (``opener=gzip.open``: of its content), read in chunks."""
    digest = hashlib.sha256()
    with opener(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _content_sha256(path: Path) -> str:
    try:
        return sha256_of(path, gzip.open)
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable gzip file ({e})") from None


def verify_sha256(path: Path, expected: str, content: bool = False) -> None:
    """Raise DataError if ``path`` does not hash to ``expected`` (cached per process).

    With ``content``, the gzip-decompressed content is hashed instead of the file.
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected, content)
    if key in _verified:
        return
    actual = _content_sha256(path) if content else sha256_of(path)
    if actual != expected:
        what = "SHA-256 of content" if content else "SHA-256"
        raise DataError(
            f"{path}: checksum mismatch ({what} {actual}, expected {expected}); "
            "the file is corrupt or not the expected one"
        )
    _verified.add(key)


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/nnctl``, or ``~/.cache/nnctl``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "nnctl"


def data_roots(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for downloadable data sets, in order.

    ``data_dir`` (config or ``--data-dir``), ``$NNCTL_DATA``, the user cache.
    """
    roots = [user_path(d) for d in (data_dir, os.environ.get("NNCTL_DATA")) if d]
    return roots + [user_cache_dir()]


def default_fetch_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The first of :func:`data_roots`: where ``nnctl data fetch`` writes."""
    return data_roots(data_dir)[0]
