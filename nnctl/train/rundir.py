"""Starting and finishing a run directory: the folder, its lock, the resolved config and
meta.json.

The file names and readers are ``nnctl.layout``'s; this is the training side that writes.
meta.json's ``status`` is ``running`` while a process trains the run (and holds its lock,
``nnctl.train.lock``), then ``completed``, ``interrupted``, ``diverged``, ``pruned`` or
``failed`` (with ``error``); ``resumes`` lists every later session.
"""

from __future__ import annotations

import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

from nnctl import __version__, layout
from nnctl.core.checks import cut
from nnctl.errors import SYSTEM_ERRORS, NnctlError, message, run_status
from nnctl.fileio import atomic_write_json, atomic_write_text, make_dirs, user_path
from nnctl.train.lock import RunLock


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_run_dir(config_name: str, root: Path = layout.RUNS_ROOT) -> Path:
    """Create and return ``runs/<config-name>-<timestamp>``, with ``-2``, ``-3``... if that
    exists already: each folder is created by exactly one process (``mkdir`` fails for the
    others), so runs started in the same second never share one."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, suffix = root / f"{config_name}-{stamp}", 2
    while True:
        try:
            return make_dirs(candidate, "run directory", exist_ok=False)
        except FileExistsError:
            candidate = root / f"{config_name}-{stamp}-{suffix}"
            suffix += 1


def check_new_run(path: Path) -> None:
    """Refuse ``path`` for a new run if it is not a folder or holds a run with training in
    it; checked before the data loads, and again under the lock by ``create_run``."""
    path = user_path(path)
    if path.exists() and not path.is_dir():
        raise NnctlError(f"{path}: exists and is not a directory")
    if _holds_run(path) and holds_training(path):
        raise NnctlError(
            f"{path}: already holds a run; resume it with "
            f"'nnctl resume {shlex.quote(str(path))}' or choose another --out"
        )


def create_run(path: Path, note: Callable[[str], None]) -> RunLock:
    """Create ``path`` for a new run and lock it; returns the held lock.

    A folder that holds a run without any training in it (one that failed, or was stopped,
    before its first checkpoint and epoch) is cleared and reused, with a ``note``; a run
    with training is never overwritten.
    """
    path = user_path(path)
    check_new_run(path)
    make_dirs(path, "run directory")
    lock = RunLock(path).acquire()
    try:
        check_new_run(path)  # again, now that no other process can be starting it
        if _holds_run(path):
            status = layout.load_json(path / layout.META_FILE).get("status", "unknown")
            note(f"{path}: reusing the folder of a run that never trained (status {status})")
            _clear_run(path)
        (path / layout.CHECKPOINT_DIR).mkdir(exist_ok=True)
    except BaseException:
        lock.release()
        raise
    return lock


def _holds_run(path: Path) -> bool:
    """Any trace of a run: one of its files, or its checkpoints folder."""
    return layout.looks_like_run(path) or (path / layout.CHECKPOINT_DIR).exists()


def holds_training(path: Path) -> bool:
    """Whether the run in ``path`` has trained at all: a checkpoint, a logged epoch or a
    summary (an unreadable epoch log counts: it is never thrown away)."""
    checkpoints = Path(path) / layout.CHECKPOINT_DIR
    if checkpoints.is_dir() and any(checkpoints.glob("*.npz")):
        return True
    if (path / layout.SUMMARY_FILE).exists():
        return True
    try:
        return bool(layout.read_file(path / layout.METRICS_JSONL))
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True


def _clear_run(path: Path) -> None:
    for name in (*layout.RUN_FILES, layout.METRICS_CSV):
        (path / name).unlink(missing_ok=True)
    shutil.rmtree(path / layout.CHECKPOINT_DIR, ignore_errors=True)


def blas_info() -> str:
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{deps.get('name', '?')} {deps.get('version', '')}".strip()
    except (KeyError, TypeError, AttributeError):  # not a stable numpy API
        return "unknown"


def write_config(run_dir: Path, config: dict) -> None:
    atomic_write_text(run_dir / layout.CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))


def start_meta(run_dir: Path, config, argv: list[str]) -> None:
    """Write the new run's meta.json: versions, seed, config hash, command, status running."""
    meta = {
        "nnctl": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "blas": blas_info(),
        "seed": config.data.get("seed", 0),
        "config_hash": config.hash(),
        "config_file": str(config.path) if config.path else None,
        "command": argv or sys.argv,
        "start_time": now_iso(),
        "end_time": None,
        "status": "running",
        "error": None,
    }
    atomic_write_json(run_dir / layout.META_FILE, meta)


def record_resume(run_dir: Path, config, argv: list[str], progress, changed: list[str]) -> None:
    """A resumed session starts: meta.json's status is ``running`` again, its config hash
    the (possibly changed) config's, and ``resumes`` gains the session's command, config
    hash, start time, the epoch and step it starts from and the config keys it changed."""
    path = run_dir / layout.META_FILE
    meta = layout.read_required(path)
    resumes = meta.get("resumes") if isinstance(meta.get("resumes"), list) else []
    resumes.append(
        {
            "command": argv or sys.argv,
            "config_hash": config.hash(),
            "start_time": now_iso(),
            "epoch": progress.epoch,
            "step": progress.step,
            "changed": changed,
        }
    )
    meta.update(
        status="running", end_time=None, error=None, config_hash=config.hash(), resumes=resumes
    )
    atomic_write_json(path, meta)


def finish_meta(run_dir: Path, status: str, error: str | None = None) -> None:
    """Record the end time, final status and error (None when it ended well) in meta.json."""
    path = run_dir / layout.META_FILE
    meta = layout.read_required(path) if path.exists() else {}
    meta.update(end_time=now_iso(), status=status, error=error)
    atomic_write_json(path, meta)


#: Longest error meta.json keeps.
MAX_ERROR_CHARS = 2000
#: Endings that are no error of the run: nothing is recorded in meta.json's ``error``.
NO_ERROR = ("interrupted", "pruned")


def describe_error(error: BaseException) -> str:
    """The error as meta.json keeps it: the line the command line shows (``errors.message``),
    with the exception's type for one nnctl does not expect."""
    expected = isinstance(error, (NnctlError, *SYSTEM_ERRORS))
    text = message(error) if expected else f"{type(error).__name__}: {error}"
    return cut(text.rstrip(": ") or type(error).__name__, MAX_ERROR_CHARS)


@contextmanager
def recording_outcome(run_dir: Path):
    """Run the block; when it raises anything, record in meta.json how the run ended
    (``errors.run_status``: interrupted, diverged, pruned or failed, with the error) and
    re-raise, so no run is left at ``running`` by a failure."""
    try:
        yield
    except BaseException as error:
        status = run_status(error)
        try:
            finish_meta(run_dir, status, None if status in NO_ERROR else describe_error(error))
        except (OSError, NnctlError):
            pass  # nothing can be recorded (a read-only or full disk): the error itself matters
        raise


def write_summary(run_dir: Path, summary: dict) -> None:
    atomic_write_json(run_dir / layout.SUMMARY_FILE, summary)
