"""Writing files so that a crash leaves the old version or the new one, never half of one.

A write goes to a temporary file in the target's folder, is flushed and fsynced, then
renamed over the target (``os.replace`` is atomic within a file system); the folder is
fsynced last so that the rename itself survives a power loss. Checkpoints, run and sweep
files, predictions and downloads all go through here.

Temporary files are created with mode 0666 less the umask, as ``open`` creates files (0644
under the usual umask 022), so that the renamed file can be read by whoever may read the
folder; ``tempfile.mkstemp`` would make every run file private (0600).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from nnctl.errors import NnctlError

FILE_MODE = 0o666  # less the umask, as for any file ``open`` creates
_ATTEMPTS = 100


def create_temp(folder: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """A new, empty file in ``folder`` with a random name, opened for writing.

    Returns ``(fd, path)``. Like ``tempfile.mkstemp`` (never reuses an existing name, no
    symlink is followed) but with the umask's mode rather than 0600.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(_ATTEMPTS):
        path = Path(folder) / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(path, flags, FILE_MODE), path
        except FileExistsError:
            continue
    raise FileExistsError(f"{folder}: no free temporary file name after {_ATTEMPTS} tries")


def fsync_dir(folder: Path) -> None:
    """Flush ``folder``'s entries (renames, new files) to disk; a no-op where folders cannot
    be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one."""
    path = Path(path)
    fd, tmp = create_temp(path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one;
    NnctlError naming ``path`` when it cannot be written (no permission, a full disk)."""
    try:
        _write_atomically(path, data)
    except OSError as error:
        raise NnctlError(f"cannot write {path}: {error.strerror or error}") from error


def atomic_write_text(path: Path, text: str) -> None:
    """``atomic_write_bytes`` of ``text`` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data) -> None:
    """``data`` as indented JSON (keys in their order) and a final newline, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


# --- paths users give --------------------------------------------------------------------


def user_path(path: str | os.PathLike) -> Path:
    """``path`` with a leading ``~`` or ``~user`` expanded; NnctlError when that user does
    not exist (``Path.expanduser`` raises RuntimeError)."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        user = str(path).split("/", 1)[0]
        raise NnctlError(f"{path}: cannot expand '{user}': no such user") from None


def make_dirs(path: Path, what: str = "folder", exist_ok: bool = True) -> Path:
    """Create ``path`` and its missing parents; NnctlError saying why it cannot be (a parent
    that is a file, no permission, a full disk). With ``exist_ok=False`` the folder is
    claimed: FileExistsError when it exists already (another process made it first)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=exist_ok)
    except OSError as error:
        if isinstance(error, FileExistsError) and not exist_ok and path.is_dir():
            raise
        raise NnctlError(f"cannot create {what} {path}: {_why(path, error)}") from None
    return path


def _why(path: Path, error: OSError) -> str:
    if isinstance(error, (NotADirectoryError, FileExistsError)):
        for parent in (path, *path.parents):
            if parent.exists() and not parent.is_dir():
                return f"{parent} is a file, not a folder"
    return error.strerror or str(error)
