"""Installing SIGINT/SIGTERM handlers for the length of a ``with`` block."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def handling_stop_signals(handler: Callable[[int, object], None]) -> Iterator[dict]:
    """Route SIGINT and SIGTERM to ``handler(signum, frame)`` inside the block, then restore
    the previous handlers (yielded as ``{signum: handler}``). Outside the main thread,
    where Python cannot install handlers, this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield {}
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield previous
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
