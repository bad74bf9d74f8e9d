"""The improvement rule, one table, checked through every watcher that uses it."""

from __future__ import annotations

import math

import pytest

from nnctl.config.schema import resolve_train
from nnctl.monitor import improves, resolve_mode
from nnctl.train.callbacks import EarlyStopping, ReduceLROnPlateau, Tracker

NAN, INF = math.nan, math.inf

# (value, best so far, mode, min_delta, improves?)
IMPROVES = [
    # nothing seen yet: any finite value improves, whatever min_delta
    (1.0, None, "min", 0.0, True),
    (-3.0, None, "max", 0.0, True),
    (5.0, None, "min", 10.0, True),
    (NAN, None, "min", 0.0, False),
    (INF, None, "min", 0.0, False),
    (-INF, None, "max", 0.0, False),
    # min: strictly lower, by more than min_delta
    (0.9, 1.0, "min", 0.0, True),
    (1.0, 1.0, "min", 0.0, False),
    (1.1, 1.0, "min", 0.0, False),
    (0.95, 1.0, "min", 0.1, False),
    (0.5, 1.0, "min", 0.5, False),  # exactly min_delta better is not enough
    (0.4, 1.0, "min", 0.5, True),
    # max: strictly higher, by more than min_delta
    (0.6, 0.5, "max", 0.0, True),
    (0.5, 0.5, "max", 0.0, False),
    (0.4, 0.5, "max", 0.0, False),
    (0.55, 0.5, "max", 0.1, False),
    (0.7, 0.5, "max", 0.1, True),
    # NaN never improves
    (NAN, 1.0, "min", 0.0, False),
    (NAN, 1.0, "max", 0.0, False),
]


def tracker_with_best(cls, best, mode, min_delta):
    tracker = cls(monitor="val_loss", mode=mode, min_delta=min_delta)
    tracker.load_state({**tracker.state(), "best": best, "best_epoch": None if best is None else 1})
    return tracker


@pytest.mark.parametrize("value, best, mode, min_delta, expected", IMPROVES)
def test_improvement_rule(value, best, mode, min_delta, expected):
    assert improves(value, best, mode, min_delta) is expected
    # every watcher decides with the same rule
    for cls in (Tracker, EarlyStopping, ReduceLROnPlateau):
        tracker = tracker_with_best(cls, best, mode, min_delta)
        assert tracker.update({"epoch": 2, "val_loss": value}) is expected, cls.__name__
        assert tracker.best == (value if expected else best)


def test_auto_is_not_a_direction():
    with pytest.raises(ValueError, match="mode must be 'min' or 'max'; got 'auto'"):
        improves(1.0, 2.0, "auto")


# (monitor, configured mode, resolved mode)
MODES = [
    ("val_accuracy", "auto", "max"),
    ("train_accuracy", "auto", "max"),
    ("val_loss", "auto", "min"),
    ("train_loss", "auto", "min"),
    ("val_accuracy", "min", "min"),
    ("val_loss", "max", "max"),
]


@pytest.mark.parametrize("monitor, mode, expected", MODES)
def test_auto_mode(monitor, mode, expected):
    assert resolve_mode(monitor, mode) == expected
    assert Tracker(monitor, mode).mode == expected
    section = {"monitor": monitor, "mode": mode}
    errors: list = []
    train = resolve_train(
        {"checkpoint": section, "early_stopping": section, "reduce_lr_on_plateau": section},
        has_validation=True,
        task="classification",
        errors=errors,
    )
    assert errors == []
    for key in ("checkpoint", "early_stopping", "reduce_lr_on_plateau"):
        assert train[key]["mode"] == expected, key
