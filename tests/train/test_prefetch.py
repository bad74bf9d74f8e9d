"""prefetch: results in order, the next one prepared on another thread meanwhile, errors
raised where their result would have come, NumPy's error state carried over."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from nnctl.train.prefetch import prefetch


def test_yields_every_prepared_item_in_order():
    assert list(prefetch(range(7), lambda i: i * i)) == [i * i for i in range(7)]
    assert list(prefetch([], lambda i: i)) == []


def test_the_next_item_is_prepared_on_another_thread_while_the_current_is_used():
    started = {}
    ready = threading.Event()

    def prepare(i):
        started[i] = threading.get_ident()
        if i == 1:
            ready.set()
        return i

    results = prefetch(range(3), prepare)
    assert next(results) == 0
    assert ready.wait(5)  # item 1 is prepared before the caller asks for it
    assert started[1] != threading.get_ident()
    assert list(results) == [1, 2]


def test_an_error_is_raised_when_its_item_is_reached():
    def prepare(i):
        if i == 2:
            raise ValueError("bad batch 2")
        return i

    results = prefetch(range(4), prepare)
    assert [next(results), next(results)] == [0, 1]
    with pytest.raises(ValueError, match="bad batch 2"):
        next(results)


def test_numpy_error_state_reaches_the_worker():
    def prepare(_):
        return np.float32(3e38) * np.float32(10)  # overflows

    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        list(prefetch(range(1), prepare))
