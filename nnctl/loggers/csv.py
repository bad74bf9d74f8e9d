"""``csv``: the run's own metrics files, ``metrics.jsonl`` and ``metrics.csv``."""

from __future__ import annotations

from nnctl.loggers import LOGGERS, Logger


@LOGGERS.register("csv")
class CsvLogger(Logger):
    """metrics.jsonl and metrics.csv in the run directory, one row per epoch.

    Every run writes them, listed or not: resume, `nnctl runs` and `nnctl plot` read them
    (the trainer's MetricsLog, nnctl/train/logs.py, writes and trims them).
    """
