"""The next batch prepared on a background thread while the current one trains.

``prefetch(items, prepare)`` yields ``prepare(item)`` for each item in order, calling it
for the next item on a worker thread as soon as the current result is handed out. The
trainer's ``prepare`` is a pure function of its item (the batch's step number and rows:
it gathers the rows and makes the targets), so the batches are exactly those of a plain
loop and a resumed run prepares what the straight run did.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cache
from itertools import islice
from typing import TypeVar

Item = TypeVar("Item")
Prepared = TypeVar("Prepared")


@cache
def _worker() -> ThreadPoolExecutor:
    """The process's one preparing thread, started on first use."""
    return ThreadPoolExecutor(1, thread_name_prefix="nnctl-prefetch")


def _submit(prepare: Callable, item) -> Future:
    # The context carries NumPy's error state (np.errstate) to the worker.
    return _worker().submit(contextvars.copy_context().run, prepare, item)


def prefetch(items: Iterable[Item], prepare: Callable[[Item], Prepared]) -> Iterator[Prepared]:
    """``prepare(item)`` for every item, in order, one item ahead on a worker thread.

    An error in ``prepare`` is raised where its result would have been yielded. ``items``
    is read one ahead of what has been yielded.
    """
    iterator = iter(items)
    pending = [_submit(prepare, item) for item in islice(iterator, 1)]
    while pending:
        ready = pending.pop().result()
        pending = [_submit(prepare, item) for item in islice(iterator, 1)]
        yield ready
