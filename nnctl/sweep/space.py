"""Parameter spaces: the values a searched key may take.

A space entry in a sweep file is a distribution or a list::

    optimizer.lr: {loguniform: [1.0e-4, 1.0e-1]}   # log-uniform between the bounds
    optimizer.momentum: {uniform: [0.5, 0.99]}      # uniform between the bounds
    model.layers[0].n_out: {int: [16, 128]}         # an integer, bounds included
    data.batch_size: {choice: [16, 32, 64]}         # one of the values
    seed: [0, 1, 2]                                 # a list: every value on a grid, a
                                                    # choice for random and tpe searches

An entry is kept as ``(kind, args)``: ``("loguniform", [0.0001, 0.1])``. Random samples
come from Python's Mersenne Twister (stable across versions), floats rounded to
``SIGNIFICANT_DIGITS`` so that the override text is the exact value trained with.
"""

from __future__ import annotations

import math
import random

from nnctl.core.checks import show
from nnctl.errors import ConfigError
from nnctl.registry import did_you_mean

SIGNIFICANT_DIGITS = 6
Dimension = tuple[str, list]


def round_float(value: float) -> float:
    """``value`` to ``SIGNIFICANT_DIGITS`` significant digits."""
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _loguniform(rng: random.Random, low: float, high: float) -> float:
    return round_float(math.exp(rng.uniform(math.log(low), math.log(high))))


SAMPLERS = {
    "uniform": lambda rng, args: round_float(rng.uniform(*args)),
    "loguniform": lambda rng, args: _loguniform(rng, *args),
    "int": lambda rng, args: rng.randint(*args),
    "choice": lambda rng, args: rng.choice(args),
}
RANGES = ("uniform", "loguniform", "int")  # the kinds given as [low, high]


def sample_space(space: dict[str, Dimension], trials: int, seed: int) -> list[dict]:
    """``trials`` samples of the space, the same for the same seed."""
    rng = random.Random(seed)
    return [{key: SAMPLERS[kind](rng, args) for key, (kind, args) in space.items()}
            for _ in range(trials)]  # fmt: skip


def representatives(dimension: Dimension) -> list:
    """The values that stand for a dimension when it is checked: its bounds or choices."""
    return list(dimension[1])


def is_log(dimension: Dimension) -> bool:
    return dimension[0] == "loguniform"


def _range_error(where: str, kind: str, args) -> ConfigError | None:
    """Why ``args`` is not a ``[low, high]`` range of ``kind``, or None."""
    integer = kind == "int"
    allowed = (int,) if integer else (int, float)
    numbers = isinstance(args, list) and len(args) == 2 and all(
        isinstance(a, allowed) and not isinstance(a, bool) for a in args)  # fmt: skip
    rule = {"int": "two integers", "loguniform": "two positive numbers"}.get(kind, "two numbers")
    if not numbers:
        return ConfigError(f"{where}.{kind}", f"expected [low, high], {rule}; got {show(args)}")
    low, high = args
    if not all(math.isfinite(a) for a in args):
        return ConfigError(f"{where}.{kind}", f"expected finite bounds; got {show(args)}")
    if low > high or (low == high and not integer):
        return ConfigError(f"{where}.{kind}", f"expected [low, high], {rule} with low < high; "
                           f"got {show(args)}")  # fmt: skip
    if kind == "loguniform" and low <= 0:
        return ConfigError(f"{where}.{kind}", f"expected [low, high], {rule} (a log-uniform "
                           f"range cannot include 0); got {show(args)}")  # fmt: skip
    return None


def check_distribution(value, where: str) -> Dimension:
    """``{loguniform: [1e-4, 1e-1]}`` → ``("loguniform", [0.0001, 0.1])``; ConfigError if bad."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError(where, "expected one of {uniform: [low, high]}, "
                          "{loguniform: [low, high]}, {int: [low, high]}, {choice: [values]}; "
                          f"got {show(value)}")  # fmt: skip
    ((kind, args),) = value.items()
    if kind not in SAMPLERS:
        hint = did_you_mean(kind, list(SAMPLERS))
        raise ConfigError(where, f"unknown distribution '{kind}'{hint} "
                          f"(choose from {', '.join(SAMPLERS)})")  # fmt: skip
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{where}.choice", f"expected a non-empty list; got {show(args)}")
        return kind, args
    problem = _range_error(where, kind, args)
    if problem is not None:
        raise problem
    return kind, [int(a) for a in args] if kind == "int" else [float(a) for a in args]


def check_entry(value, where: str) -> Dimension:
    """A space entry: a non-empty list is ``("choice", list)``, else a distribution."""
    if isinstance(value, list):
        if not value:
            raise ConfigError(where, "expected a non-empty list of values")
        return "choice", value
    return check_distribution(value, where)
