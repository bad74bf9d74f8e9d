"""Epoch-end callbacks configured under ``train:``: early stopping, LR reduction on
plateau, and the best-value tracker that decides which checkpoint is "best".

Each keeps its state as JSON-able numbers (``state()`` / ``load_state()``) so a resumed
run continues exactly where it stopped.
"""

from __future__ import annotations

import math


def resolve_mode(monitor: str, mode: str) -> str:
    """ "auto" → "max" for accuracies, "min" otherwise."""
    if mode == "auto":
        return "max" if monitor.endswith("accuracy") else "min"
    return mode


class Tracker:
    """Best value of a monitored metric and the epochs since it last improved."""

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0):
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.min_delta = float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    def improves(self, value: float) -> bool:
        if self.best is None:
            return math.isfinite(value)
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def update(self, row: dict) -> bool:
        """Feed one epoch's metrics row; True when the monitored value improved."""
        value = row.get(self.monitor)
        if value is None:
            return False
        if self.improves(value):
            self.best, self.best_epoch, self.bad_epochs = float(value), int(row["epoch"]), 0
            return True
        self.bad_epochs += 1
        return False

    def state(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]


class EarlyStopping(Tracker):
    """Stop after ``patience`` epochs without an improvement larger than ``min_delta``."""

    def __init__(self, monitor="val_loss", mode="auto", patience=5, min_delta=0.0):
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience


class ReduceLROnPlateau(Tracker):
    """Multiply the learning rate by ``factor`` after ``patience`` epochs without
    improvement, never below ``min_lr``."""

    def __init__(self, monitor="val_loss", mode="auto", factor=0.1, patience=3, min_delta=0.0,
                 min_lr=0.0):  # fmt: skip
        super().__init__(monitor, mode, min_delta)
        self.factor, self.patience, self.min_lr = float(factor), int(patience), float(min_lr)
        self.scale = 1.0

    def update(self, row: dict) -> bool:
        improved = super().update(row)
        if self.bad_epochs >= self.patience:
            self.scale *= self.factor
            self.bad_epochs = 0
        return improved

    def apply(self, lr: float) -> float:
        return lr if self.scale == 1.0 else max(lr * self.scale, self.min_lr)

    def state(self) -> dict:
        return {**super().state(), "scale": self.scale}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.scale = state["scale"]
