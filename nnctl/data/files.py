"""Where data files live and how they are checked.

The shipped data sets sit in the package ``nnctl.datasets`` (the repository's top-level
``datasets/`` folder); Fashion-MNIST is looked up in a data directory, the user cache and
Debian's ``/usr/share/datasets/fashion-mnist/``. Every built-in file is checked against
a SHA-256 recorded here; a check is done once per process per file.
"""

from __future__ import annotations

import gzip
import hashlib
import os
from pathlib import Path

from nnctl.errors import DataError

#: SHA-256 of each file shipped in ``datasets/`` (also listed in ``datasets/NOTICE.md``).
SHIPPED_SHA256 = {
    "digits.npz": "b2dab7b501728c22e9119ad76740b2e17c77a231e42d1e592380d90886f1a05e",
    "iris.npz": "a285219f025db3dbb13946bb3792a18bd06561963e377225d6eb048c6fff8724",
    "mnist/train-images-idx3-ubyte.gz": (
        "0b367032e93c5d0cea0925647cfdb18614af8ee15f83e6f2fc2ad904a6835971"
    ),
    "mnist/train-labels-idx1-ubyte.gz": (
        "1787548bbe0bff1ec2ecdc0ef292b02df999e2d1a6002d27500982c652b17203"
    ),
    "mnist/t10k-images-idx3-ubyte.gz": (
        "1a1a05eab793c14bb050b398624a11b0ffd1a2953baed553b1b9bd079e2a20be"
    ),
    "mnist/t10k-labels-idx1-ubyte.gz": (
        "b91679a0acfe4ba0e50a2437a903084cba1f5f92592b016a25a7dfd00455798b"
    ),
}

#: SHA-256 of the *uncompressed* Fashion-MNIST IDX files. The official .gz files and
#: Debian's re-compressed ones differ byte for byte but hold the same IDX content, whose
#: MD5s the Fashion-MNIST project also lists; this is what is checked on load.
FASHION_RAW_SHA256 = {
    "train-images-idx3-ubyte.gz": (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"
    ),
    "train-labels-idx1-ubyte.gz": (
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"
    ),
    "t10k-images-idx3-ubyte.gz": (
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"
    ),
}

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")

_verified: set[tuple[str, int, int, str]] = set()


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


def shipped_file(relpath: str) -> Path:
    """Path of a shipped file, checked against its recorded SHA-256."""
    path = shipped_root() / relpath
    if not path.is_file():
        raise DataError(f"{path}: shipped data file is missing; reinstall nnctl")
    verify_sha256(path, SHIPPED_SHA256[relpath])
    return path


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _key(path: Path, expected: str) -> tuple[str, int, int, str]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns, expected)


def verify_sha256(path: Path, expected: str) -> None:
    """Raise DataError if ``path`` does not hash to ``expected`` (cached per process)."""
    key = _key(path, expected)
    if key in _verified:
        return
    actual = sha256_of(path)
    if actual != expected:
        raise DataError(
            f"{path}: checksum mismatch (SHA-256 {actual}, expected {expected}); "
            "the file is corrupt or not the expected one"
        )
    _verified.add(key)


def verify_raw_sha256(path: Path, expected: str) -> None:
    """Like :func:`verify_sha256` but hashes the gzip-decompressed content."""
    key = _key(path, "raw:" + expected)
    if key in _verified:
        return
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable gzip file ({e})") from None
    if digest.hexdigest() != expected:
        raise DataError(
            f"{path}: checksum mismatch (SHA-256 of content {digest.hexdigest()}, "
            f"expected {expected}); the file is corrupt or not the expected one"
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
    roots = [Path(d).expanduser() for d in (data_dir, os.environ.get("NNCTL_DATA")) if d]
    return roots + [user_cache_dir()]


def default_fetch_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The first of :func:`data_roots`: where ``nnctl data fetch`` writes."""
    return data_roots(data_dir)[0]
