"""core/checks.py: every check converts good values and raises ArgumentError naming its
argument (as data, not only in the text) for bad ones."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from nnctl.core import checks
from nnctl.core.checks import ArgumentError

# (check, extra arguments, good value, converted, bad value, message)
TABLE = [
    (checks.number, (), -2, -2.0, float("nan"), "must be a finite number; got nan"),
    (checks.positive, (), 3, 3.0, 0, "must be a positive number; got 0"),
    (checks.non_negative, (), 0, 0.0, -1e-9, "must be a non-negative number; got -1e-09"),
    (checks.fraction, (), 0.5, 0.5, 1.0, "must be a number in [0, 1); got 1.0"),
    (checks.probability, (), 1, 1.0, 1.5, "must be a number in [0, 1]; got 1.5"),
    (
        checks.positive_range,
        (1.0,),
        [0.1, 1],
        (0.1, 1.0),
        [0.5, 0.2],
        "must be a pair [low, high] with 0 < low <= high <= 1; got [0.5, 0.2]",
    ),
    (checks.integer, (2,), np.int64(2), 2, 1, "must be an integer >= 2; got 1"),
    (checks.positive_int, (), 7, 7, True, "must be a positive integer; got True"),
    (checks.positive_int_pair, (), 3, (3, 3), [3, 0], "must be a positive integer; got 0"),
    (checks.flag, (), np.bool_(True), True, 1, "must be true or false; got 1"),
    (checks.choice, (("a", "b"),), "b", "b", "c", "must be one of 'a', 'b'; got 'c'"),
]
CHECKS = [row[0] for row in TABLE]


@pytest.mark.parametrize(
    "check, extra, good, converted, bad, message", TABLE, ids=[c.__name__ for c in CHECKS]
)
def test_check_converts_and_raises_a_typed_error(check, extra, good, converted, bad, message):
    value = check("some_arg", good, *extra)
    assert value == converted and type(value) is type(converted)
    with pytest.raises(ArgumentError) as info:
        check("some_arg", bad, *extra)
    assert info.value.argument == "some_arg"
    assert info.value.message == message
    assert str(info.value) == f"some_arg {message}"
    assert isinstance(info.value, ValueError)  # callers catching ValueError still do


@pytest.mark.parametrize(
    "value, message",
    [
        ([1, 2, 3], "must be an integer or a pair of integers; got [1, 2, 3]"),
        ((2, "x"), "must be a positive integer; got 'x'"),
        (2.0, "must be a positive integer; got 2.0"),
    ],
)
def test_pair_errors_name_the_pair(value, message):
    with pytest.raises(ArgumentError) as info:
        checks.positive_int_pair("stride", value)
    assert (info.value.argument, info.value.message) == ("stride", message)


@pytest.mark.parametrize(
    "value", [[0, 1], [0.1], (0.1, 0.2, 0.3), [0.1, True], "0.1", None, [0.1, float("inf")]]
)
def test_positive_range_rejects_what_is_not_an_increasing_positive_pair(value):
    with pytest.raises(ArgumentError) as info:
        checks.positive_range("ratio", value)
    assert info.value.message.startswith("must be a pair [low, high] with 0 < low <= high;")


def test_booleans_and_infinities_are_not_numbers():
    for check in (
        checks.number,
        checks.positive,
        checks.non_negative,
        checks.fraction,
        checks.probability,
    ):
        for bad in (True, np.bool_(False), float("inf"), "1", None):
            with pytest.raises(ArgumentError):
                check("x", bad)


def test_every_check_is_in_the_table():
    """A check added to core/checks.py needs a row above."""
    predicates = {"show", "cut", "is_int", "is_real"}  # formatters and predicates
    public = {
        name
        for name, obj in inspect.getmembers(checks, inspect.isfunction)
        if obj.__module__ == checks.__name__ and not name.startswith("_")
    }
    assert public - predicates == {c.__name__ for c in CHECKS}


@pytest.mark.parametrize(
    "value, shown",
    [
        ("abc", "'abc'"),
        (3, "3"),
        (np.float64(0.1), "0.1"),
        ([1, "a", (2,)], "[1, 'a', (2,)]"),
        ({"b": [1], "a": None}, "{'b': [1], 'a': None}"),
        (True, "True"),
    ],
)
def test_show_writes_small_values_as_before(value, shown):
    assert checks.show(value) == shown


def test_show_cuts_long_values_and_says_how_long():
    assert checks.show("x" * 1000) == "'" + "x" * 119 + "... (1,000 characters)"
    text = checks.show(list(range(100_000)))
    assert text.startswith("[0, 1, 2, ") and text.endswith("... (a list of 100,000 items)")
    assert len(text) < checks.MAX_SHOWN + 40
    assert checks.show({str(i): i for i in range(1000)}).endswith("(a mapping of 1,000 keys)")


def test_show_never_renders_what_it_cuts():
    """A value shared a billion times over (what an alias bomb builds) or nested far beyond
    Python's recursion limit costs no more than a short one."""
    shared = ["x"] * 10
    for _ in range(9):
        shared = [shared] * 10  # 10**10 strings if it were printed
    assert checks.show(shared).startswith("[" * 10 + "'x', 'x'")
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    assert checks.show(deep).endswith("...")
    assert checks.show(10**5000) == "<an integer of about 5000 digits>"


def test_cut():
    assert checks.cut("short") == "short"
    assert checks.cut("a" * 200, 10) == "a" * 10 + "..."
