"""``csv``: the run's own metrics files, ``metrics.jsonl`` and ``metrics.csv``."""

from __future__ import annotations

from nnctl.loggers import LOGGERS, Logger


@LOGGERS.register("csv")
class CsvLogger(Logger):
    """metrics.jsonl and metrics.csv in the run directory, one row per epoch; every run
    writes them, listed or not (resume, `nnctl runs` and `nnctl plot` read them).

    The trainer's MetricsLog (nnctl/train/logs.py) writes them and trims them on resume;
    this entry only gives them their name in ``train.loggers``.
    """
