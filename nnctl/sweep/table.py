"""The sweep's table: ``sweep.jsonl`` and ``sweep.csv``, one row per trial.

Rows are built from the trial folders (``summary.json``, ``metrics.jsonl``, ``meta.json``
and ``trial.json``, read by ``nnctl.layout``), so the table can always be rebuilt from the
runs. Both files are rewritten atomically (temporary file, fsync, rename) whenever a trial
starts or finishes: a reader sees the old table or the new one, never half a table.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from nnctl import layout
from nnctl.fileio import atomic_write_text
from nnctl.sweep.spec import Trial, format_value
from nnctl.sweep.trial import FAILED, FINISHED, read_record

#: ``train_seconds`` is the time spent in training steps (the run's summary.json, as in
#: ``nnctl runs``); ``wall_seconds`` the trial's whole wall-clock time over all its attempts,
#: process start-up, data loading and evaluation included.
RESULT_COLUMNS = ("epochs", "best_val_loss", "best_val_accuracy", "test_loss", "test_accuracy",
                  "train_seconds", "wall_seconds", "attempts", "error")  # fmt: skip
STOP_COLUMNS = ("stopped_epoch",)  # the epoch a pruned (or early-stopped) trial stopped at


def trial_status(trial_dir: Path) -> str:
    """completed, pruned, diverged or failed (recorded outcomes), interrupted (started, not
    finished: resumable), or pending (never started)."""
    meta = layout.load_json(trial_dir / layout.META_FILE)
    if meta.get("status") == "completed" and (trial_dir / layout.SUMMARY_FILE).is_file():
        return "completed"
    recorded = read_record(trial_dir).get("status")
    if recorded in (*FAILED, "pruned"):
        return recorded
    if meta.get("status") in ("diverged", "pruned"):
        return meta["status"]
    return "interrupted" if recorded or meta else "pending"


def trial_results(trial_dir: Path) -> dict:
    """Epochs, best validation and test metrics, training time, from the summary (or the
    epoch log)."""
    files = layout.RunFiles.read(trial_dir)
    test = files.summary.get("test") or {}
    return {
        "epochs": files.epochs,
        "best_val_loss": files.best("val_loss", min),
        "best_val_accuracy": files.best("val_accuracy"),
        "test_loss": test.get("loss"),
        "test_accuracy": test.get("accuracy"),
        "train_seconds": files.train_seconds,
    }


def stopped_epoch(trial_dir: Path, status: str, epochs: int | None) -> int | None:
    """The epoch a trial stopped at before its planned epochs: pruned by the search or
    stopped by the config's early stopping; None otherwise."""
    if status == "pruned":
        return epochs
    summary = layout.load_json(trial_dir / layout.SUMMARY_FILE)
    return summary.get("epochs") if summary.get("stopped_early") else None


def make_row(trial: Trial, trial_dir: Path, status: str | None = None) -> dict:
    """The table row of ``trial`` (``status`` overrides the one read from its folder)."""
    record = read_record(trial_dir)
    status = status or trial_status(trial_dir)
    results = trial_results(trial_dir)
    return {"index": trial.index, "name": trial.name, "status": status,
            "params": trial.params, "overrides": trial.overrides, **results,
            "wall_seconds": record.get("wall_seconds"), "attempts": record.get("attempts", 0),
            "error": record.get("error") if status not in FINISHED else None,
            "dir": str(trial_dir),
            "stopped_epoch": stopped_epoch(trial_dir, status, results["epochs"])}  # fmt: skip


def write_table(out: Path, rows: list[dict]) -> None:
    """Rewrite ``sweep.jsonl`` and ``sweep.csv`` in ``out`` (rows in index order)."""
    rows = sorted(rows, key=lambda row: row["index"])
    lines = "".join(json.dumps(row, sort_keys=False) + "\n" for row in rows)
    atomic_write_text(out / layout.SWEEP_JSONL, lines)
    atomic_write_text(out / layout.SWEEP_CSV, to_csv(rows))


def to_csv(rows: list[dict]) -> str:
    """index, name, status, one column per swept key, results, overrides."""
    keys = list(dict.fromkeys(key for row in rows for key in row["params"]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = (*RESULT_COLUMNS, *STOP_COLUMNS)
    writer.writerow(["index", "name", "status", *keys, *columns, "overrides"])
    for row in rows:
        params = [format_value(row["params"][key]) if key in row["params"] else ""
                  for key in keys]  # fmt: skip
        results = [_cell(row.get(column)) for column in columns]
        writer.writerow([row["index"], row["name"], row["status"], *params, *results,
                         " ".join(row["overrides"])])  # fmt: skip
    return buffer.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)
