"""Per-epoch metrics logs: ``metrics.jsonl`` and ``metrics.csv`` in the run directory.

Rows are appended and fsynced at the end of every epoch. On resume the logs are rewritten
(atomically) to the rows the checkpoint has seen, so no epoch appears twice; a partial last
line (a crash during an append) is dropped then, and metrics.csv is rebuilt from the same
rows, so the two files always agree.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from nnctl import layout
from nnctl.core.checks import show
from nnctl.fileio import atomic_write_text

COLUMNS = [
    "epoch", "step", "lr", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
    "seconds", "samples_per_s",
]  # fmt: skip


class MetricsLog:
    """Appends one row per epoch to ``metrics.jsonl`` and ``metrics.csv``."""

    def __init__(self, run_dir: Path):
        self.jsonl = Path(run_dir) / layout.METRICS_JSONL
        self.csv = Path(run_dir) / layout.METRICS_CSV

    def rows(self) -> list[dict]:
        """The rows logged so far ([] before the first epoch; a partial last line ignored).
        ValueError when a complete line is not a JSON object."""
        try:
            return layout.read_file(self.jsonl)
        except FileNotFoundError:
            return []

    def partial_line(self) -> str:
        """The partial last line a crash during an append left in metrics.jsonl, or ""."""
        try:
            text = self.jsonl.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return layout.split_partial_line(text)[1]

    def append(self, row: dict) -> None:
        self._append(self.jsonl, json.dumps(row, sort_keys=False) + "\n")
        new_csv = not self.csv.exists() or self.csv.stat().st_size == 0
        self._append(self.csv, self._csv_text([row], header=new_csv))

    def keep_until(self, epoch: int) -> str | None:
        """Rewrite both logs with only the rows of epochs <= ``epoch``, dropping a partial
        last line; returns what was repaired (None: nothing). ValueError when a complete
        line is not a JSON object."""
        partial = self.partial_line()
        rows = [row for row in self.rows() if _epoch(row) <= epoch]
        atomic_write_text(self.jsonl, "".join(json.dumps(r) + "\n" for r in rows))
        atomic_write_text(self.csv, self._csv_text(rows, header=True))
        if not partial:
            return None
        return (
            f"{self.jsonl}: dropped a partial last line ({show(partial, 40)}), left by a crash "
            "while it was written; metrics.csv rewritten to match"
        )

    @staticmethod
    def _csv_text(rows: list[dict], header: bool) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
        if header:
            writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})
        return buffer.getvalue()

    @staticmethod
    def _append(path: Path, text: str) -> None:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def _epoch(row: dict) -> float:
    epoch = row.get("epoch")
    return epoch if isinstance(epoch, (int, float)) else float("inf")  # unknown: dropped
