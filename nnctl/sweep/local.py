"""The local backend: at most ``workers`` trials at a time, each a child process.

A trial spends its life in its own training process (see ``trial.run_trial``), so a
pool of threads that start and wait for those processes is all the scheduling needed; the
processes do the work, each with its share of BLAS threads. SIGINT or SIGTERM stops the
sweep: trials not started stay pending, running ones get SIGTERM, which makes them finish
their step, checkpoint and stop (they resume when the sweep is run again).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager

from nnctl.signals import handling_stop_signals
from nnctl.sweep.trial import TrialJob, run_trial


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class Stopped(Exception):
    """The sweep received SIGINT or SIGTERM."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def raise_on_signals():
    """SIGINT and SIGTERM raise Stopped in the main thread (a no-op in other threads)."""

    def handler(signum, frame):
        raise Stopped(signum)

    with handling_stop_signals(handler):
        yield


class JobSource:
    """Jobs handed out one at a time to worker threads: from a list, or made as they are
    needed by a generator (a search that learns asks for each trial when a worker is
    free, so that it has seen every trial finished before)."""

    def __init__(self, jobs: Iterable[TrialJob]):
        self.jobs = iter(jobs)
        self.lock = threading.Lock()

    def next(self) -> TrialJob | None:
        with self.lock:
            return next(self.jobs, None)


class LocalPool:
    """Runs trial jobs ``workers`` at a time; reports through two callbacks.

    ``on_start(job)`` when a trial starts, ``on_done(job, record)`` when it ends (both
    called from worker threads; the caller serializes them). ``jobs`` may be a generator
    that makes each job when a worker asks for it."""

    def __init__(self, workers: int, on_start: Callable, on_done: Callable):
        self.workers = workers
        self.on_start, self.on_done = on_start, on_done
        self.stop = threading.Event()
        self.children: dict[int, subprocess.Popen] = {}
        self.lock = threading.Lock()

    def run(self, jobs: Iterable[TrialJob]) -> int | None:
        """Run every job; the signal number if the sweep was stopped, else None."""
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="trial")
        source = JobSource(jobs)
        try:
            with raise_on_signals():
                pending: set[Future] = {pool.submit(self._drain, source)
                                        for _ in range(self.workers)}  # fmt: skip
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()  # a job source that failed (not a trial) raises here
                return None
        except (Stopped, KeyboardInterrupt) as stop:
            self._stop_children()
            return getattr(stop, "signum", signal.SIGINT)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _drain(self, source: JobSource) -> None:
        """One worker: run jobs until there are none left or the sweep stops."""
        while not self.stop.is_set():
            job = source.next()
            if job is None:
                return
            self._work(job)

    def _work(self, job: TrialJob) -> None:
        if self.stop.is_set():
            return
        try:
            self.on_start(job)
            record = run_trial(job, on_start=lambda process: self._started(job, process))
        except Exception as error:  # noqa: BLE001 (a trial must never stop the others)
            record = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        finally:
            with self.lock:
                self.children.pop(job.index, None)
        self.on_done(job, record)

    def _started(self, job: TrialJob, process: subprocess.Popen) -> None:
        with self.lock:
            self.children[job.index] = process
            stopped = self.stop.is_set()
        if stopped:  # the stop came between the start of the trial and of its process
            process.send_signal(signal.SIGTERM)

    def _stop_children(self) -> None:
        """No new trials; running ones checkpoint and stop (SIGTERM, their first)."""
        with self.lock:
            self.stop.set()
            children = list(self.children.values())
        for process in children:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
