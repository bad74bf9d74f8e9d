"""``nnctl runs``: one row per run directory, read from its files (``nnctl.layout``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nnctl import layout
from nnctl.errors import NnctlError
from nnctl.fileio import user_path
from nnctl.train.lock import is_locked

SORT_KEYS = ("name", "config", "optimizer", "lr", "batch_size", "epochs", "status",
             "val_accuracy", "test_accuracy", "val_loss", "train_loss", "test_loss",
             "train_seconds")  # fmt: skip
#: Sorted best first: accuracies descending; everything else (losses too) ascending.
DESCENDING = ("val_accuracy", "test_accuracy")


@dataclass
class RunRow:
    """One line of ``nnctl runs``; None where a value is unknown.

    ``val_*`` and ``train_loss`` are the best checkpoint's epoch's (else the best logged),
    ``test_*`` the summary's; ``train_seconds`` is the time spent in training steps over
    all sessions (not start-up, data loading or evaluation); ``error`` is why a failed or
    diverged run stopped (meta.json's).
    """

    name: str
    path: str
    config: str | None = None
    optimizer: str | None = None
    lr: float | None = None
    batch_size: int | None = None
    epochs: int | None = None
    epochs_planned: int | None = None
    status: str | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    val_loss: float | None = None
    train_loss: float | None = None
    test_loss: float | None = None
    train_seconds: float | None = None
    error: str | None = None
    problems: list[str] = field(default_factory=list)


def _get(mapping, *keys):
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def _status(path: Path, recorded: str | None, problems: list[str]) -> str | None:
    """meta.json's status, except that a run recorded as ``running`` whose lock no process
    holds was killed (kill -9, a crash, a power loss): it is ``interrupted``, resumable."""
    if recorded == "running" and (path / layout.LOCK_FILE).is_file() and not is_locked(path):
        problems.append("its process is gone")
        return "interrupted"
    return recorded


def read_run(path: Path, root: Path) -> RunRow:
    """The table row of the run in ``path``; unreadable files are listed in ``problems``."""
    name = path.name if path == root else path.relative_to(root).as_posix()
    files = layout.RunFiles.read(path)
    config, meta, summary = files.config, files.meta, files.summary
    config_file = meta.get("config_file")
    return RunRow(
        name=name,
        path=str(path),
        config=summary.get("config") or (Path(config_file).stem if config_file else None),
        optimizer=_get(config, "optimizer", "type"),
        lr=_get(config, "optimizer", "lr"),
        batch_size=_get(config, "data", "batch_size"),
        epochs=files.epochs,
        epochs_planned=_get(config, "train", "epochs"),
        status=_status(path, meta.get("status") or summary.get("status"), files.problems),
        val_accuracy=files.best("val_accuracy"),
        test_accuracy=_get(summary, "test", "accuracy"),
        val_loss=files.best("val_loss", min),
        train_loss=files.best("train_loss", min),
        test_loss=_get(summary, "test", "loss"),
        train_seconds=files.train_seconds,
        error=meta.get("error"),
        problems=files.problems,
    )


def sort_runs(rows: list[RunRow], key: str) -> list[RunRow]:
    """Sorted by ``key`` (accuracies best first); unknown values always last."""
    known = [row for row in rows if getattr(row, key) is not None]
    unknown = [row for row in rows if getattr(row, key) is None]
    try:
        known.sort(key=lambda row: getattr(row, key), reverse=key in DESCENDING)
    except TypeError:  # mixed types from a hand-edited file
        known.sort(key=lambda row: str(getattr(row, key)), reverse=key in DESCENDING)
    return known + unknown


def list_runs(root: Path, sort: str = "name") -> list[RunRow]:
    """The rows of every run in ``root`` (see ``layout.find_runs``), sorted by ``sort``."""
    root = user_path(root)
    if not root.is_dir():
        raise NnctlError(f"{root}: no such directory")
    return sort_runs([read_run(path, root) for path in layout.find_runs(root)], sort)
