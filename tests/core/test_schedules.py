"""Learning-rate schedules: closed forms, warm-up, config, errors.

Reducing the rate on a plateau is a callback now; see tests/train/test_callbacks.py.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnctl.core.schedules import SCHEDULES, Cosine, Exponential, MultiStep, Step
from nnctl.errors import ConfigError

BASE = 0.1
POSITIONS = range(61)

# name -> [(kwargs, closed form lr(base, p))], the closed forms written out independently.
CLOSED_FORMS = {
    "constant": [({}, lambda b, p: b)],
    "exponential": [
        ({"lr_decay": 0.9, "stage_length": 3}, lambda b, p: b * 0.9 ** (p / 3)),
        ({"lr_decay": 0.5, "stage_length": 2, "staircase": True}, lambda b, p: b * 0.5 ** (p // 2)),
        ({"lr_decay": 1.0}, lambda b, p: b),
    ],
    "step": [({"step_size": 5, "gamma": 0.5}, lambda b, p: b * 0.5 ** (p // 5))],
    "multistep": [
        ({"milestones": [3, 7, 20]}, lambda b, p: b * 0.1 ** sum(p >= m for m in (3, 7, 20))),
    ],
    "cosine": [
        (
            {"t_max": 40, "min_lr": 1e-3},
            lambda b, p: 1e-3 + (b - 1e-3) * (1 + math.cos(math.pi * min(p, 40) / 40)) / 2,
        ),
    ],
}

# Non-default arguments for every schedule, for config round trips.
RICH = {
    "constant": {"unit": "iteration", "warmup": 3},
    "exponential": {"lr_decay": 0.9, "stage_length": 4, "staircase": True, "warmup": 2},
    "step": {"step_size": 10, "gamma": 0.5, "unit": "iteration"},
    "multistep": {"milestones": [5, 10], "gamma": 0.2, "warmup": 1},
    "cosine": {"t_max": 100, "min_lr": 1e-5, "unit": "iteration", "warmup": 10},
}  # fmt: skip


def test_every_schedule_has_a_closed_form_and_rich_config():
    assert set(CLOSED_FORMS) == set(SCHEDULES.names())
    assert set(RICH) == set(SCHEDULES.names())


@pytest.mark.parametrize(
    "name, kwargs, closed_form",
    [(name, kw, f) for name, cases in CLOSED_FORMS.items() for kw, f in cases],
)
def test_matches_closed_form_at_many_positions(name, kwargs, closed_form):
    schedule = SCHEDULES.get(name)(**kwargs)
    for p in POSITIONS:
        lr = schedule.lr_at(BASE, p)
        assert isinstance(lr, float)
        assert lr == pytest.approx(closed_form(BASE, p), rel=1e-12, abs=0), p


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_lr_at_is_a_pure_function_of_position(name):
    schedule = SCHEDULES.get(name)(**RICH[name])
    forward = [schedule.lr_at(BASE, p) for p in POSITIONS]
    backward = [schedule.lr_at(BASE, p) for p in reversed(POSITIONS)]
    assert forward == backward[::-1]
    assert schedule.lr_at(BASE, np.int64(7)) == forward[7]


def test_staircase_is_constant_within_a_stage():
    stairs = Exponential(lr_decay=0.5, stage_length=2, staircase=True)
    assert [stairs.lr_at(1.0, p) for p in range(6)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    smooth = Exponential(lr_decay=0.5, stage_length=2)
    assert smooth.lr_at(1.0, 1) == pytest.approx(math.sqrt(0.5))
    assert smooth.lr_at(1.0, 2) == 0.5


def test_step_and_multistep_explicit_values():
    step = Step(step_size=3, gamma=0.5)
    assert [step.lr_at(1.0, p) for p in range(7)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25]
    multi = MultiStep(milestones=[2, 5], gamma=0.1)
    got = [multi.lr_at(1.0, p) for p in range(7)]
    np.testing.assert_allclose(got, [1, 1, 0.1, 0.1, 0.1, 0.01, 0.01], rtol=1e-15)


def test_cosine_endpoints():
    cosine = Cosine(t_max=10, min_lr=0.01)
    assert cosine.lr_at(1.0, 0) == 1.0
    assert cosine.lr_at(1.0, 5) == pytest.approx((1.0 + 0.01) / 2)
    assert cosine.lr_at(1.0, 10) == pytest.approx(0.01, abs=1e-15)
    assert cosine.lr_at(1.0, 11) == cosine.lr_at(1.0, 1000) == pytest.approx(0.01, abs=1e-15)
    assert Cosine(t_max=4).lr_at(2.0, 4) == pytest.approx(0.0, abs=1e-15)


# -- warm-up ----------------------------------------------------------------------------------


def test_warmup_ramps_linearly_then_the_schedule_starts():
    schedule = Step(step_size=2, gamma=0.5, warmup=4)
    got = [schedule.lr_at(1.0, p) for p in range(9)]
    np.testing.assert_allclose(got, [0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 0.5, 0.5, 0.25], rtol=1e-15)


def test_warmup_shifts_the_schedule_proper():
    plain, warm = Cosine(t_max=10, min_lr=0.01), Cosine(t_max=10, min_lr=0.01, warmup=3)
    for p in range(30):
        assert warm.lr_at(BASE, p + 3) == plain.lr_at(BASE, p)
    assert warm.lr_at(BASE, 13) == pytest.approx(0.01)


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_every_schedule_warms_up_to_the_base_rate(name):
    kwargs = {**RICH[name], "warmup": 5}
    schedule = SCHEDULES.get(name)(**kwargs)
    ramp = [schedule.lr_at(BASE, p) for p in range(6)]
    np.testing.assert_allclose(ramp, [BASE * (k + 1) / 6 for k in range(6)], rtol=1e-15)


# -- state -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_schedules_have_no_state(name):
    """The trainer saves no schedule state: resuming needs only the position."""
    schedule = SCHEDULES.get(name)(**RICH[name])
    assert not hasattr(schedule, "state_dict") and not hasattr(schedule, "observe")


def test_the_plateau_schedule_is_gone_with_a_pointer_to_the_callback():
    assert "plateau" not in SCHEDULES.names()
    with pytest.raises(ConfigError) as info:
        SCHEDULES.get("plateau", "schedule.type")
    assert str(info.value) == (
        "schedule.type: schedule 'plateau' was removed; use train.reduce_lr_on_plateau "
        "instead (it scales the rate of any schedule)"
    )


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_get_config_round_trips(name):
    cls = SCHEDULES.get(name)
    config = {"type": name, **RICH[name]}
    full = cls(**RICH[name]).get_config()
    assert {k: full[k] for k in config} == config
    assert cls(**{k: v for k, v in full.items() if k != "type"}).get_config() == full


def test_defaults():
    assert SCHEDULES.get("constant")().get_config() == {
        "type": "constant", "unit": "epoch", "warmup": 0,
    }  # fmt: skip
    assert Exponential().get_config() == {
        "type": "exponential", "lr_decay": 0.5, "stage_length": 1, "staircase": False,
        "unit": "epoch", "warmup": 0,
    }  # fmt: skip


# -- bad arguments ----------------------------------------------------------------------------

BAD = [
    ("exponential", {"lr_decay": 0.0}, "lr_decay must be a number in (0, 1]; got 0.0"),
    ("exponential", {"lr_decay": 1.5}, "lr_decay must be a number in (0, 1]; got 1.5"),
    ("exponential", {"stage_length": 0}, "stage_length must be an integer >= 1; got 0"),
    ("exponential", {"stage_length": 1.5}, "stage_length must be an integer >= 1; got 1.5"),
    ("exponential", {"staircase": "yes"}, "staircase must be true or false; got 'yes'"),
    ("step", {"step_size": 0}, "step_size must be an integer >= 1; got 0"),
    ("step", {"step_size": 2, "gamma": 0}, "gamma must be a number in (0, 1]; got 0"),
    ("step", {"step_size": 2, "staircase": True}, "staircase"),  # TypeError, see below
    ("multistep", {"milestones": []}, "milestones must be a non-empty list"),
    ("multistep", {"milestones": [5, 3]}, "strictly increasing positive integers; got [5, 3]"),
    ("multistep", {"milestones": [0, 3]}, "milestones must be"),
    ("multistep", {"milestones": [2, 2]}, "milestones must be"),
    ("multistep", {"milestones": "10,20"}, "milestones must be"),
    ("multistep", {"milestones": [2], "gamma": 2.0}, "gamma must be a number in (0, 1]"),
    ("cosine", {"t_max": 0}, "t_max must be an integer >= 1; got 0"),
    ("cosine", {"t_max": 10, "min_lr": -1.0}, "min_lr must be a non-negative number; got -1.0"),
]  # fmt: skip
REQUIRED = {"step": {"step_size": 2}, "multistep": {"milestones": [2]}, "cosine": {"t_max": 2}}
BAD += [
    (name, {**REQUIRED.get(name, {}), **bad}, message)
    for name in SCHEDULES.names()
    for bad, message in [
        ({"unit": "epochs"}, "unit must be one of 'epoch', 'iteration'; got 'epochs'"),
        ({"warmup": -1}, "warmup must be an integer >= 0; got -1"),
        ({"warmup": True}, "warmup must be an integer >= 0; got True"),
    ]
]


@pytest.mark.parametrize("name, kwargs, message", BAD)
def test_bad_arguments_name_the_argument_rule_and_value(name, kwargs, message):
    # A keyword the class does not take (staircase for step) is a TypeError; the config
    # layer reports unknown keys before building.
    error = TypeError if "staircase" in kwargs and name != "exponential" else ValueError
    with pytest.raises(error) as info:
        SCHEDULES.get(name)(**kwargs)
    assert message in str(info.value)


@pytest.mark.parametrize("position", [-1, 1.5, "3", None])
def test_bad_positions(position):
    with pytest.raises(ValueError, match="position must be an integer >= 0"):
        Step(step_size=2).lr_at(BASE, position)
