"""Argument checks shared by the core's constructors.

Each returns the value converted (``float``, ``int``, ``bool``, ``str``) or raises
ValueError naming the argument, the rule and the value:
``lr must be a positive number; got -0.1``.
"""

from __future__ import annotations

import math

import numpy as np


def show(value) -> str:
    """How a rejected value appears in a message (strings quoted)."""
    return repr(value) if isinstance(value, str) else str(value)


def is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """A finite int or float (booleans excluded)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return False
    return math.isfinite(value)


def positive(name: str, value) -> float:
    if not (is_real(value) and value > 0):
        raise ValueError(f"{name} must be a positive number; got {show(value)}")
    return float(value)


def non_negative(name: str, value) -> float:
    if not (is_real(value) and value >= 0):
        raise ValueError(f"{name} must be a non-negative number; got {show(value)}")
    return float(value)


def fraction(name: str, value) -> float:
    """A number in [0, 1): momentum, betas, rho."""
    if not (is_real(value) and 0 <= value < 1):
        raise ValueError(f"{name} must be a number in [0, 1); got {show(value)}")
    return float(value)


def integer(name: str, value, minimum: int) -> int:
    if not (is_int(value) and value >= minimum):
        raise ValueError(f"{name} must be an integer >= {minimum}; got {show(value)}")
    return int(value)


def flag(name: str, value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ValueError(f"{name} must be true or false; got {show(value)}")


def choice(name: str, value, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {options}; got {show(value)}")
    return value
