"""Download a data set's official files (``nnctl data fetch NAME``).

Every file is downloaded to a temporary file in the target folder and checked against the
official SHA-256 (and MD5) before any of them is moved into place with ``os.replace``; a
failed, truncated or corrupted download leaves nothing behind. ``NNCTL_FETCH_BASE_URL``
overrides the download location (tests use a local server).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from nnctl.data import files
from nnctl.data.builtin import IDX_FILES, get_builtin
from nnctl.errors import DataError
from nnctl.fileio import fsync_dir

#: Where the Fashion-MNIST project publishes its files.
FASHION_BASE_URL = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"
)

#: Official SHA-256 and MD5 (the MD5s published in the Fashion-MNIST README) of the .gz files.
FASHION_GZ_CHECKSUMS = {
    "train-images-idx3-ubyte.gz": (
        "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    ),
    "train-labels-idx1-ubyte.gz": (
        "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        "25c81989df183df01b3e8a0aad5dffbe",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        "bef4ecab320f06d8554ea6380940ec79",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ),
}
TIMEOUT = 60


def _download(url: str, folder: Path, expected: tuple[str, str]) -> Path:
    """Stream ``url`` into a temp file in ``folder``; return it once its checksums match."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".fetch-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            while block := resp.read(1 << 16):
                sha.update(block)
                md5.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if (sha.hexdigest(), md5.hexdigest()) != expected:
            raise DataError(
                f"{url}: checksum mismatch (SHA-256 {sha.hexdigest()}, expected {expected[0]}); "
                "the download is corrupt or truncated; nothing was written"
            )
        return Path(tmp)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        Path(tmp).unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise DataError(f"{url}: download failed ({reason}); nothing was written") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def fetch(
    name: str,
    data_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    echo: Callable[[str], None] = lambda msg: None,
) -> Path:
    """Download data set ``name`` into ``<data dir>/<name>/``; return that folder.

    Files already present with the right checksum are kept. Raises DataError when the
    data set cannot be downloaded or a download fails its checksum.
    """
    ds = get_builtin(name, "")
    if not ds.fetchable:
        raise DataError(f"{name} is shipped with nnctl; there is nothing to download")
    base = base_url or os.environ.get("NNCTL_FETCH_BASE_URL") or FASHION_BASE_URL
    folder = files.default_fetch_dir(data_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    todo = [f for f in IDX_FILES if not _valid(folder / f, FASHION_GZ_CHECKSUMS[f][0])]
    temps: list[tuple[Path, str]] = []
    try:
        for fname in todo:
            echo(f"downloading {base.rstrip('/')}/{fname}")
            temps.append(
                (
                    _download(f"{base.rstrip('/')}/{fname}", folder, FASHION_GZ_CHECKSUMS[fname]),
                    fname,
                )
            )
    except BaseException:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise
    for tmp, fname in temps:
        os.replace(tmp, folder / fname)
    fsync_dir(folder)
    return folder


def _valid(path: Path, sha256: str) -> bool:
    return path.is_file() and files.sha256_of(path) == sha256
