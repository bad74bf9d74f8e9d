"""``nnctl runs``: one row per run directory, read from its files (``nnctl.layout``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from nnctl import layout
from nnctl.errors import NnctlError
from nnctl.fileio import user_path

SORT_KEYS = ("name", "config", "optimizer", "lr", "batch_size", "epochs", "status",
             "val_accuracy", "test_accuracy", "wall_seconds")  # fmt: skip
DESCENDING = ("val_accuracy", "test_accuracy")


@dataclass
class RunRow:
    """One line of ``nnctl runs``; None where a value is unknown."""

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
    wall_seconds: float | None = None
    problems: list[str] = field(default_factory=list)


def _get(mapping, *keys):
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def _seconds_between(start, end) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def _wall_seconds(files: layout.RunFiles) -> float | None:
    """Training time over all sessions: the summary's, else the epochs' sum, else the
    time between meta.json's start and end."""
    if files.summary.get("train_seconds") is not None:
        return files.summary["train_seconds"]
    seconds = files.logged("seconds")
    if seconds:
        return round(sum(seconds), 3)
    return _seconds_between(files.meta.get("start_time"), files.meta.get("end_time"))


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
        status=meta.get("status") or summary.get("status"),
        val_accuracy=files.best("val_accuracy"),
        test_accuracy=_get(summary, "test", "accuracy"),
        wall_seconds=_wall_seconds(files),
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
