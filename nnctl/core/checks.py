"""Argument checks shared by the core's constructors.

Each check returns the value converted (``float``, ``int``, ``bool``, ``str``, a pair) or
raises ``ArgumentError``, which names the argument as data (``error.argument``) next to the
rule and the value (``error.message``): ``str(error)`` reads
``lr must be a positive number; got -0.1``. The config layer builds the key path
(``optimizer.lr``) from ``error.argument``, never from the text.
"""

from __future__ import annotations

import math

import numpy as np


class ArgumentError(ValueError):
    """A constructor argument breaks its rule.

    Parameters
    ----------
    argument : str
        The argument's name, as in the constructor's signature (``n_out``).
    message : str
        The rule and the value, without the name: ``must be a positive integer; got -3``.
    """

    def __init__(self, argument: str, message: str):
        self.argument = argument
        self.message = message
        super().__init__(f"{argument} {message}")


#: Characters of a rejected value that a message shows; the rest is cut.
MAX_SHOWN = 120
_MAX_INT_BITS = 4 * MAX_SHOWN  # longer integers are described, not printed


class _Full(Exception):
    """The shown text has reached its limit."""


def show(value, limit: int = MAX_SHOWN) -> str:
    """How a rejected value appears in a message: strings quoted, numbers as written, and
    anything longer than ``limit`` characters cut, with its size: ``[0, 1, 2, ...] (a list
    of 100000 items)``. Only the shown part is ever rendered, so a huge or deeply nested
    value costs no more than a small one."""
    pieces: list[str] = []
    try:
        _render(value, pieces, [limit], top=True)
    except _Full:
        return cut("".join(pieces), limit) + _size(value)
    return "".join(pieces)


def cut(text: str, limit: int = MAX_SHOWN) -> str:
    """``text``, or its first ``limit`` characters and ``...`` when it is longer."""
    return text if len(text) <= limit else text[:limit].rstrip() + "..."


def _emit(text: str, pieces: list[str], budget: list[int]) -> None:
    pieces.append(text)
    budget[0] -= len(text)
    if budget[0] < 0:
        raise _Full


def _render(value, pieces: list[str], budget: list[int], top: bool = False) -> None:
    if isinstance(value, (list, tuple, dict)):
        _render_container(value, pieces, budget)
    elif isinstance(value, str):
        _emit(repr(value[: budget[0] + 1]), pieces, budget)
    elif is_int(value) and int(value).bit_length() > _MAX_INT_BITS:
        digits = int(int(value).bit_length() * 0.30103)
        _emit(f"<an integer of about {digits} digits>", pieces, budget)
    else:
        text = str(value) if top else repr(value)
        _emit(text[: budget[0] + 1], pieces, budget)


def _render_container(value, pieces: list[str], budget: list[int]) -> None:
    opening, closing = {dict: "{}", tuple: "()"}.get(type(value), "[]")
    _emit(opening, pieces, budget)
    items = value.items() if isinstance(value, dict) else value
    for index, item in enumerate(items):
        if index:
            _emit(", ", pieces, budget)
        if isinstance(value, dict):
            _render(item[0], pieces, budget)
            _emit(": ", pieces, budget)
            item = item[1]
        _render(item, pieces, budget)
    if isinstance(value, tuple) and len(value) == 1:
        _emit(",", pieces, budget)
    _emit(closing, pieces, budget)


_SIZES = (
    (str, "{:,} characters"),
    (dict, "a mapping of {:,} keys"),
    ((list, tuple), "a list of {:,} items"),
)


def _size(value) -> str:
    """`` (1,000 characters)``, `` (a list of 5 items)``: the size of what was cut."""
    for kind, text in _SIZES:
        if isinstance(value, kind) and len(value) > 1:
            return f" ({text.format(len(value))})"
    return ""


def is_int(value) -> bool:
    """An int or NumPy integer (booleans excluded)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value) -> bool:
    """A finite int or float (booleans excluded)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        return False
    return math.isfinite(value)


def number(name: str, value) -> float:
    """Any finite number: an initializer's ``mean``, ``low``, ``value``."""
    if not is_real(value):
        raise ArgumentError(name, f"must be a finite number; got {show(value)}")
    return float(value)


def positive(name: str, value) -> float:
    if not (is_real(value) and value > 0):
        raise ArgumentError(name, f"must be a positive number; got {show(value)}")
    return float(value)


def non_negative(name: str, value) -> float:
    if not (is_real(value) and value >= 0):
        raise ArgumentError(name, f"must be a non-negative number; got {show(value)}")
    return float(value)


def fraction(name: str, value) -> float:
    """A number in [0, 1): momentum, betas, rho, a dropout rate."""
    if not (is_real(value) and 0 <= value < 1):
        raise ArgumentError(name, f"must be a number in [0, 1); got {show(value)}")
    return float(value)


def probability(name: str, value) -> float:
    """A number in [0, 1]: the chance that a random augmentation is applied."""
    if not (is_real(value) and 0 <= value <= 1):
        raise ArgumentError(name, f"must be a number in [0, 1]; got {show(value)}")
    return float(value)


def positive_range(name: str, value, upper: float = math.inf) -> tuple[float, float]:
    """A pair ``[low, high]`` with ``0 < low <= high <= upper``: a range to draw from."""
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(is_real(v) for v in value)
        and 0 < value[0] <= value[1] <= upper
    )
    if not ok:
        bound = "" if upper == math.inf else f" <= {upper:g}"
        raise ArgumentError(
            name, f"must be a pair [low, high] with 0 < low <= high{bound}; got {show(value)}"
        )
    return float(value[0]), float(value[1])


def integer(name: str, value, minimum: int) -> int:
    if not (is_int(value) and value >= minimum):
        raise ArgumentError(name, f"must be an integer >= {minimum}; got {show(value)}")
    return int(value)


def positive_int(name: str, value) -> int:
    """An integer >= 1: a width, a kernel size, a batch size."""
    if not (is_int(value) and value >= 1):
        raise ArgumentError(name, f"must be a positive integer; got {show(value)}")
    return int(value)


def positive_int_pair(name: str, value) -> tuple[int, int]:
    """A positive integer or a pair of them, as ``(rows, cols)``: a kernel shape, a stride."""
    if not isinstance(value, (list, tuple)):
        v = positive_int(name, value)
        return v, v
    if len(value) != 2:
        raise ArgumentError(name, f"must be an integer or a pair of integers; got {value!r}")
    return positive_int(name, value[0]), positive_int(name, value[1])


def flag(name: str, value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise ArgumentError(name, f"must be true or false; got {show(value)}")


def choice(name: str, value, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ArgumentError(name, f"must be one of {options}; got {show(value)}")
    return value
