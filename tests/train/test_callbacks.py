"""ReduceLROnPlateau on its own: Keras semantics, cooldown, composition with a schedule,
state. (The improvement rule itself is tabled in tests/test_monitor.py.)"""

from __future__ import annotations

import json
import math

import pytest

from nnctl.config.schema import resolve_train
from nnctl.train.callbacks import ReduceLROnPlateau


def feed(callback, values, scheduled=1.0, start=1):
    """The learning rate after each epoch's value, for a constant scheduled rate."""
    lrs = []
    for epoch, value in enumerate(values, start=start):
        callback.update({"epoch": epoch, "val_loss": value})
        lrs.append(callback.apply(scheduled))
    return lrs


def test_defaults_are_keras_in_the_callback_and_the_schema():
    keras = {"monitor": "val_loss", "mode": "min", "factor": 0.1, "patience": 10}
    keras.update(min_delta=1e-4, cooldown=0, min_lr=0.0)
    callback = ReduceLROnPlateau()
    assert {k: getattr(callback, k) for k in keras} == keras
    errors: list = []
    train = resolve_train({"reduce_lr_on_plateau": {}}, True, "classification", errors)
    assert errors == [] and train["reduce_lr_on_plateau"] == keras


def test_reduces_at_patience_epochs_without_improvement_then_restarts_the_count():
    callback = ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.0)
    values = [1.0, 0.9, 0.95, 0.95, 0.95, 0.96, 0.97, 0.98, 0.5, 0.6, 0.6]
    # the second bad epoch in a row halves the rate and restarts the count
    expected = [1, 1, 1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125, 0.125, 0.0625]
    assert feed(callback, values) == expected
    assert callback.best == 0.5 and callback.bad_epochs == 0


def test_min_delta_and_max_mode():
    callback = ReduceLROnPlateau(factor=0.5, patience=1, min_delta=0.1)
    assert feed(callback, [1.0, 0.95, 0.8]) == [1.0, 0.5, 0.5]  # 0.95 is not 0.1 better
    accuracy = ReduceLROnPlateau(mode="max", factor=0.5, patience=1, min_delta=0.0)
    assert feed(accuracy, [0.5, 0.6, 0.55, 0.7]) == [1.0, 1.0, 0.5, 0.5]


def test_nan_is_never_an_improvement():
    callback = ReduceLROnPlateau(factor=0.5, patience=2)
    assert feed(callback, [1.0, math.nan, math.nan]) == [1.0, 1.0, 0.5]


def test_an_epoch_without_the_metric_changes_nothing():
    callback = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=1)
    feed(callback, [1.0, 2.0])  # reduced; one epoch of cooldown pending
    before = callback.state()
    callback.update({"epoch": 3, "val_loss": None})
    callback.update({"epoch": 4, "train_loss": 0.1})
    assert callback.state() == before


@pytest.mark.parametrize(
    "cooldown, expected",
    [
        (0, [1, 0.5, 0.25, 0.125, 0.0625, 0.03125, 0.015625]),
        (1, [1, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]),
        (2, [1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]),
    ],
)
def test_cooldown_epochs_after_a_reduction_are_not_counted(cooldown, expected):
    callback = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=cooldown)
    assert feed(callback, [1.0] + [2.0] * 6) == expected


def test_improvements_during_cooldown_still_set_the_best_value():
    callback = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=3, min_delta=0.0)
    feed(callback, [1.0, 2.0, 0.5])
    assert callback.best == 0.5 and callback.best_epoch == 3 and callback.cooldown_counter == 2


def test_min_lr_is_a_floor():
    callback = ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.01)
    lrs = feed(callback, [1.0] + [2.0] * 10)
    assert lrs[:3] == [1.0, pytest.approx(0.1), pytest.approx(0.01)]
    assert min(lrs) == 0.01 and lrs[-1] == 0.01


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.01, 0.0])
@pytest.mark.parametrize("scheduled", [1.0, 0.05, 0.001, 0.0])
def test_never_raises_the_scheduled_rate(scheduled, scale):
    callback = ReduceLROnPlateau(min_lr=0.01)
    callback.scale = scale
    lr = callback.apply(scheduled)
    assert lr <= scheduled
    assert lr == (scheduled if scale == 1.0 or scheduled <= 0.01 else max(scheduled * scale, 0.01))


def test_state_round_trips_through_json_mid_count_and_mid_cooldown():
    values = [1.0, 0.8, 0.85, 0.9, 0.7, 0.75, 0.75, 0.76, 0.77, 0.78]
    straight = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=2, min_delta=0.0)
    expected = feed(straight, values)
    for split in range(1, len(values)):
        first = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=2, min_delta=0.0)
        feed(first, values[:split])
        second = ReduceLROnPlateau(factor=0.5, patience=2, cooldown=2, min_delta=0.0)
        second.load_state(json.loads(json.dumps(first.state())))  # as checkpoint metadata
        assert feed(second, values[split:], start=split + 1) == expected[split:], split
        assert second.state() == straight.state(), split
    assert expected[-1] == 0.25  # two reductions, each followed by a cooldown


def test_state_from_before_cooldown_existed_loads():
    callback = ReduceLROnPlateau()
    callback.load_state({"best": 0.5, "best_epoch": 2, "bad_epochs": 1, "scale": 0.1})
    assert callback.cooldown_counter == 0 and callback.apply(1.0) == pytest.approx(0.1)
