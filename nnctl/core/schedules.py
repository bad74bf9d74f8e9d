"""Learning-rate schedules: closed-form maps from a position to a learning rate.

A position counts epochs or iterations from 0, as chosen by ``unit``; the trainer sets
``optimizer.lr = schedule.lr_at(optimizer.base_lr, position)`` before each step.

Warm-up is shared by every schedule. With ``warmup = w`` and ``f`` the schedule proper::

    lr_at(base, p) = f(base, 0) * (p + 1) / (w + 1)    for p < w  (linear ramp)
    lr_at(base, p) = f(base, p - w)                     for p >= w

so the rate reaches ``f(base, 0)`` (= ``base``) at position ``w`` and the schedule proper
starts there: its positions (``step_size``, ``milestones``, ``t_max``...) count from the end
of the warm-up.

Every schedule is a pure function of the position, with no state, so resuming is exact.
Reducing the rate when a metric stops improving is not a schedule but a callback,
``train.reduce_lr_on_plateau``, which scales whatever rate the schedule gives.
"""

from __future__ import annotations

import bisect
import inspect
import itertools
import math

from nnctl.core.checks import (
    ArgumentError,
    choice,
    flag,
    integer,
    is_int,
    is_real,
    non_negative,
    show,
)
from nnctl.registry import Registry

SCHEDULES = Registry("schedule")
SCHEDULES.retire(
    "plateau",
    "use train.reduce_lr_on_plateau instead (it scales the rate of any schedule)",
)

UNITS = ("epoch", "iteration")


def _decay_factor(name: str, value) -> float:
    """A multiplicative decay in (0, 1]."""
    if not (is_real(value) and 0 < value <= 1):
        raise ArgumentError(name, f"must be a number in (0, 1]; got {show(value)}")
    return float(value)


class Schedule:
    """Base class: warm-up, position checks and configuration.

    Subclasses implement ``_lr(base_lr, position)``, the schedule proper after warm-up.

    Parameters
    ----------
    unit : {"epoch", "iteration"}
        What one position counts; the trainer passes the 0-based epoch index or the
        0-based global iteration accordingly.
    warmup : int
        Length of the linear warm-up in units, >= 0 (see the module docstring).
    """

    type_name: str

    def __init__(self, unit: str = "epoch", warmup: int = 0):
        self.unit = choice("unit", unit, UNITS)
        self.warmup = integer("warmup", warmup, 0)

    def lr_at(self, base_lr: float, position: int) -> float:
        """The learning rate at ``position``.

        Parameters
        ----------
        base_lr : float
            The configured learning rate (``optimizer.base_lr``).
        position : int
            0-based epoch or iteration, per ``unit``.

        Returns
        -------
        float
        """
        if not (is_int(position) and position >= 0):
            raise ValueError(f"position must be an integer >= 0; got {show(position)}")
        if position < self.warmup:
            return float(self._lr(base_lr, 0) * (position + 1) / (self.warmup + 1))
        return float(self._lr(base_lr, int(position) - self.warmup))

    def _lr(self, base_lr: float, position: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict:
        """``{"type": name, **constructor arguments}``."""
        names = list(inspect.signature(type(self).__init__).parameters)[1:]
        return {"type": self.type_name, **{n: _plain(getattr(self, n)) for n in names}}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "type")
        return f"{type(self).__name__}({args})"


def _plain(value):
    return list(value) if isinstance(value, (list, tuple)) else value


@SCHEDULES.register("constant")
class Constant(Schedule):
    """The base learning rate at every position (after any warm-up).

    Parameters
    ----------
    unit, warmup
        See ``Schedule``.
    """

    def _lr(self, base_lr: float, position: int) -> float:
        return base_lr


@SCHEDULES.register("exponential")
class Exponential(Schedule):
    """``base_lr * lr_decay ** (p / stage_length)``; with ``staircase`` the exponent is
    ``floor(p / stage_length)``, so the rate is constant within each stage.

    Parameters
    ----------
    lr_decay : float
        Factor per stage, in (0, 1].
    stage_length : int
        Positions per stage, >= 1.
    staircase : bool
        Decay in whole stages instead of continuously.
    unit, warmup
        See ``Schedule``.
    """

    def __init__(
        self,
        lr_decay: float = 0.5,
        stage_length: int = 1,
        staircase: bool = False,
        unit: str = "epoch",
        warmup: int = 0,
    ):
        super().__init__(unit, warmup)
        self.lr_decay = _decay_factor("lr_decay", lr_decay)
        self.stage_length = integer("stage_length", stage_length, 1)
        self.staircase = flag("staircase", staircase)

    def _lr(self, base_lr: float, position: int) -> float:
        if self.staircase:
            exponent = position // self.stage_length
        else:
            exponent = position / self.stage_length
        return base_lr * self.lr_decay**exponent


@SCHEDULES.register("step")
class Step(Schedule):
    """``base_lr * gamma ** floor(p / step_size)``.

    Parameters
    ----------
    step_size : int
        Positions between decays, >= 1.
    gamma : float
        Factor per decay, in (0, 1].
    unit, warmup
        See ``Schedule``.
    """

    def __init__(self, step_size: int, gamma: float = 0.1, unit: str = "epoch", warmup: int = 0):
        super().__init__(unit, warmup)
        self.step_size = integer("step_size", step_size, 1)
        self.gamma = _decay_factor("gamma", gamma)

    def _lr(self, base_lr: float, position: int) -> float:
        return base_lr * self.gamma ** (position // self.step_size)


@SCHEDULES.register("multistep")
class MultiStep(Schedule):
    """``base_lr * gamma ** k``, ``k`` the number of milestones ``<= p``.

    Parameters
    ----------
    milestones : list of int
        Positions (counted after warm-up) where the rate is multiplied by ``gamma``;
        non-empty, each >= 1, strictly increasing.
    gamma : float
        Factor per milestone, in (0, 1].
    unit, warmup
        See ``Schedule``.
    """

    def __init__(
        self, milestones: list[int], gamma: float = 0.1, unit: str = "epoch", warmup: int = 0
    ):
        super().__init__(unit, warmup)
        ok = isinstance(milestones, (list, tuple)) and len(milestones) > 0
        ok = ok and all(is_int(m) and m >= 1 for m in milestones)
        ok = ok and all(a < b for a, b in itertools.pairwise(milestones))
        if not ok:
            raise ArgumentError(
                "milestones",
                "must be a non-empty list of strictly increasing positive integers; "
                f"got {show(milestones)}",
            )
        self.milestones = [int(m) for m in milestones]
        self.gamma = _decay_factor("gamma", gamma)

    def _lr(self, base_lr: float, position: int) -> float:
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, position)


@SCHEDULES.register("cosine")
class Cosine(Schedule):
    """Cosine annealing from ``base_lr`` at 0 to ``min_lr`` at ``t_max``, held after:
    ``min_lr + (base_lr - min_lr) * (1 + cos(pi * min(p, t_max) / t_max)) / 2``.

    Parameters
    ----------
    t_max : int
        Length of the annealing in positions, >= 1.
    min_lr : float
        Final learning rate, >= 0 (meant to be below the base rate).
    unit, warmup
        See ``Schedule``.
    """

    def __init__(self, t_max: int, min_lr: float = 0.0, unit: str = "epoch", warmup: int = 0):
        super().__init__(unit, warmup)
        self.t_max = integer("t_max", t_max, 1)
        self.min_lr = non_negative("min_lr", min_lr)

    def _lr(self, base_lr: float, position: int) -> float:
        t = min(position, self.t_max)
        cosine = (1.0 + math.cos(math.pi * t / self.t_max)) / 2.0
        return self.min_lr + (base_lr - self.min_lr) * cosine
