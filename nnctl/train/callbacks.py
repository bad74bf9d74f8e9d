"""Epoch-end callbacks configured under ``train:``: early stopping, LR reduction on
plateau, and the best-value tracker that decides which checkpoint is "best".

All three decide "did the metric improve?" with ``nnctl.monitor.improves``. Each keeps its
state as JSON-able numbers (``state()`` / ``load_state()``) so a resumed run continues
exactly where it stopped.
"""

from __future__ import annotations

from nnctl.monitor import improves, resolve_mode


class Tracker:
    """Best value of a monitored metric and the epochs since it last improved.

    An epoch whose row lacks the metric (None) changes nothing.
    """

    def __init__(self, monitor: str, mode: str = "auto", min_delta: float = 0.0):
        self.monitor = monitor
        self.mode = resolve_mode(monitor, mode)
        self.min_delta = float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    def update(self, row: dict) -> bool:
        """Feed one epoch's metrics row; True when the monitored value improved."""
        value = row.get(self.monitor)
        if value is None:
            return False
        if improves(value, self.best, self.mode, self.min_delta):
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
    """Scale the learning rate by ``factor`` after ``patience`` epochs without improvement
    (Keras' ``ReduceLROnPlateau``).

    When ``patience`` consecutive epochs have not improved on the best value by more than
    ``min_delta``, ``scale`` is multiplied by ``factor`` and the count restarts; the
    ``cooldown`` epochs after a reduction are not counted (the best value is still
    updated). The scale applies to whatever rate the schedule gives (``apply``), so the
    two compose; the result is never below ``min_lr`` and never above the scheduled rate.
    """

    def __init__(
        self,
        monitor="val_loss",
        mode="auto",
        factor=0.1,
        patience=10,
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
    ):
        super().__init__(monitor, mode, min_delta)
        self.factor, self.patience, self.min_lr = float(factor), int(patience), float(min_lr)
        self.cooldown = int(cooldown)
        self.cooldown_counter = 0  # epochs of cooldown left
        self.scale = 1.0

    def update(self, row: dict) -> bool:
        if row.get(self.monitor) is None:
            return False
        improved = super().update(row)
        if self.cooldown_counter > 0:  # an epoch of cooldown: not counted
            self.cooldown_counter -= 1
            self.bad_epochs = 0
        elif not improved and self.bad_epochs >= self.patience:
            self.scale *= self.factor
            self.cooldown_counter, self.bad_epochs = self.cooldown, 0
        return improved

    def apply(self, lr: float) -> float:
        """The scheduled rate ``lr`` scaled, floored at ``min_lr`` but never raised."""
        return min(lr, max(lr * self.scale, self.min_lr))

    def state(self) -> dict:
        return {**super().state(), "scale": self.scale, "cooldown_counter": self.cooldown_counter}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.scale = state["scale"]
        self.cooldown_counter = state.get("cooldown_counter", 0)  # absent before cooldown existed
