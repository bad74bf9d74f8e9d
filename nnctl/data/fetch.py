"""Download a data set's official files (``nnctl data fetch NAME``).

A data set declares what to download (``base_url``, ``downloads``: file names with their
published SHA-256 and MD5; see ``nnctl.data.builtin``). Every file is downloaded to a
temporary file in the target folder and checked against both before any of them is moved
into place with ``os.replace``; a failed, truncated or corrupted download leaves nothing
behind. ``NNCTL_FETCH_BASE_URL`` overrides the download location (tests use a local server).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from nnctl.data import files
from nnctl.data.builtin import get_builtin
from nnctl.errors import DataError
from nnctl.fileio import create_temp, fsync_dir

TIMEOUT = 60


def _download(url: str, folder: Path, expected: files.Checksums) -> Path:
    """Stream ``url`` into a temp file in ``folder``; return it once its checksums match."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    fd, tmp = create_temp(folder, prefix=".fetch-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT) as resp:
            while block := resp.read(1 << 16):
                sha.update(block)
                md5.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        got = files.Checksums(sha.hexdigest(), md5.hexdigest())
        if got != expected:
            raise DataError(
                f"{url}: checksum mismatch (SHA-256 {got.sha256}, expected {expected.sha256}); "
                "the download is corrupt or truncated; nothing was written"
            )
        return tmp
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        tmp.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise DataError(f"{url}: download failed ({reason}); nothing was written") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
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
    if not ds.downloads:
        raise DataError(f"{name} is shipped with nnctl; there is nothing to download")
    base = (base_url or os.environ.get("NNCTL_FETCH_BASE_URL") or ds.base_url).rstrip("/")
    folder = files.default_fetch_dir(data_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    todo = {f: sums for f, sums in ds.downloads.items() if not _valid(folder / f, sums.sha256)}
    temps: list[tuple[Path, str]] = []
    try:
        for fname, sums in todo.items():
            echo(f"downloading {base}/{fname}")
            temps.append((_download(f"{base}/{fname}", folder, sums), fname))
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
