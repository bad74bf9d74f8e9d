"""The improvement rule: when a monitored metric counts as better, and ``mode: auto``.

One rule for everything that watches a metric: early stopping, the tracker that picks the
best checkpoint, learning-rate reduction on a plateau, and the config schema (which
resolves ``mode: auto`` when it fills defaults). It imports nothing from nnctl, so both
``config/`` and ``train/`` may use it.
"""

from __future__ import annotations

import math

#: The directions a metric can improve in; configs also accept ``"auto"``.
MODES = ("min", "max")


def resolve_mode(monitor: str, mode: str) -> str:
    """``"auto"`` becomes ``"max"`` for accuracy monitors and ``"min"`` otherwise.

    ``"min"`` and ``"max"`` are returned unchanged.
    """
    if mode == "auto":
        return "max" if monitor.endswith("accuracy") else "min"
    return mode


def improves(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta``.

    Parameters
    ----------
    value : float
        The metric just observed.
    best : float or None
        The best value so far; None before any value has improved, in which case any
        finite value improves.
    mode : {"min", "max"}
        Whether lower or higher values are better (resolve ``"auto"`` first).
    min_delta : float
        Margin, >= 0: ``value < best - min_delta`` in ``"min"`` mode,
        ``value > best + min_delta`` in ``"max"`` mode.

    Returns
    -------
    bool
        False for NaN, whatever ``best`` is.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be 'min' or 'max'; got {mode!r}")
    if best is None:
        return math.isfinite(value)
    if mode == "min":
        return value < best - min_delta
    return value > best + min_delta
