"""One training process per run directory: an advisory lock on ``RUN_DIR/.lock``.

``fcntl.flock`` is held by the open file, so the kernel releases it when the process ends,
however it ends (``kill -9`` included): a lock is never left behind by a dead process, and
there is nothing stale to clean up. The file stays in the run directory (removing it would
let a waiting process lock a file that no longer has a name); it holds the process id of
the last holder, for the error message. Readers (``eval``, ``runs``, ``plot``) never lock.
Where ``fcntl`` does not exist (Windows) runs are not locked.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from nnctl import layout
from nnctl.errors import NnctlError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

RETRIES, RETRY_SECONDS = 5, 0.02


class RunLock:
    """The lock of the run in ``run_dir``; ``with RunLock(path):`` holds it for the block.

    ``acquire`` raises NnctlError at once (it never waits) when another process holds it.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / layout.LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        if fcntl is None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as error:
            raise NnctlError(
                f"{self.run_dir}: cannot create {layout.LOCK_FILE} ({error.strerror})"
            ) from None
        if not _try_lock(fd):
            os.close(fd)
            raise NnctlError(
                f"{self.run_dir}: another nnctl process{_holder(self.path)} is training this "
                "run; wait for it to finish or stop it first"
            ) from None
        self.fd = fd
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the file releases the lock
            self.fd = None

    def __enter__(self):
        return self.acquire() if self.fd is None else self

    def __exit__(self, *exc) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock without waiting for a holder; a few quick retries ride out
    ``is_locked``'s momentary probe (``nnctl runs`` looking at the folder)."""
    for attempt in range(RETRIES):
        if attempt:
            time.sleep(RETRY_SECONDS)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            pass
    return False


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


def is_locked(run_dir: Path) -> bool:
    """Whether a live process holds the lock of ``run_dir`` (a read-only probe: nothing is
    created, and a folder without a lock file is not locked)."""
    if fcntl is None:
        return False
    try:
        fd = os.open(Path(run_dir) / layout.LOCK_FILE, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
