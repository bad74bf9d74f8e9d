"""The Ray backend: each trial is a Ray task on a cluster (or on a local Ray).

The task runs the same ``trial.run_trial`` as the local backend, reserving
``cpus_per_trial`` CPUs and giving the trial as many BLAS threads. Ray retries a task whose
worker died (``max_retries``); the retried task finds the trial's checkpoint and resumes
from it. Run directories are written by the workers, so on a real cluster ``--out`` (and
the base config) must be on storage every node sees, and nnctl must be installed on every
node.

Ray is an optional extra: ``pip install 'nnctl[ray]'``.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import asdict

from nnctl.errors import NnctlError
from nnctl.sweep.local import Stopped, raise_on_signals
from nnctl.sweep.trial import TrialJob, run_trial

RAY_INSTALL = "the ray backend needs Ray: pip install 'nnctl[ray]'"
MAX_RETRIES = 3  # retries of a task whose worker process died


def import_ray():
    """The ``ray`` module, or NnctlError naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise NnctlError(RAY_INSTALL) from None
    return ray


def preflight(address: str | None) -> None:
    """Before anything is written: Ray is installed and the cluster answers."""
    import_ray()
    if address is not None:
        probe(address)


def remote_trial(job: dict) -> dict:
    """The Ray task: one trial (module level, so workers import it by name)."""
    return run_trial(job)


def connect(ray, address: str | None) -> None:
    """Connect to the cluster at ``address``, or start a local Ray for this sweep."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline: no usage reports
    options = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        options["include_dashboard"] = False
    else:
        probe(address)
    try:
        ray.init(address=address, **options)
    except (ConnectionError, ValueError, RuntimeError) as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        first = lines[0] if lines else type(error).__name__
        if address is None:
            raise NnctlError(f"cannot start a local Ray: {first}") from None
        raise NnctlError(f"cannot connect to Ray at {address}: {first} ({AUTH_HINT})") from None


AUTH_HINT = ("a cluster with token authentication needs RAY_AUTH_MODE=token and its token in "
             "~/.ray/auth_token or RAY_AUTH_TOKEN")  # fmt: skip


def probe(address: str, timeout: float = 5.0) -> None:
    """Fail fast when nothing listens at ``host:port`` (ray.init would retry for minutes)."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise NnctlError(f"--address: expected HOST:PORT or auto; got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise NnctlError(f"cannot reach Ray at {address}: {error.strerror or error}") from None


class RayRunner:
    """Submits trial jobs as Ray tasks, at most ``max_in_flight`` at a time (None: as
    many as the cluster's CPUs allow), and reports as the local pool does."""

    def __init__(self, on_start: Callable, on_done: Callable, address: str | None = None,
                 cpus_per_trial: int = 1, max_in_flight: int | None = None):  # fmt: skip
        self.on_start, self.on_done = on_start, on_done
        self.address, self.cpus = address, cpus_per_trial
        self.max_in_flight = max_in_flight

    def run(self, jobs: list[TrialJob]) -> int | None:
        """Run every job; the signal number if the sweep was stopped, else None."""
        ray = import_ray()
        connect(ray, self.address)
        task = ray.remote(num_cpus=self.cpus, max_retries=MAX_RETRIES,
                          retry_exceptions=False)(remote_trial)  # fmt: skip
        in_flight: dict = {}
        try:
            with raise_on_signals():
                self._loop(ray, task, list(jobs), in_flight)
            return None
        except (Stopped, KeyboardInterrupt) as stop:
            return self._cancel(ray, in_flight, getattr(stop, "signum", signal.SIGINT))
        finally:
            ray.shutdown()

    def _loop(self, ray, task, pending: list[TrialJob], in_flight: dict) -> None:
        while pending or in_flight:
            while pending and (self.max_in_flight is None or len(in_flight) < self.max_in_flight):
                job = pending.pop(0)
                self.on_start(job)
                in_flight[task.remote(asdict(job))] = job
            done, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in done:
                job = in_flight.pop(ref)
                self.on_done(job, self._result(ray, ref))

    @staticmethod
    def _result(ray, ref) -> dict:
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as error:  # retries used up, node lost, ...
            lines = [line for line in str(error).splitlines() if line.strip()]
            message = lines[0] if lines else type(error).__name__
            return {"status": "failed", "error": f"ray: {type(error).__name__}: {message}"}

    def _cancel(self, ray, in_flight: dict, signum: int) -> int:
        """Stop the running tasks (their trials stop and resume on the next run)."""
        for ref, job in in_flight.items():
            ray.cancel(ref, force=True)
            self.on_done(job, {"status": "interrupted", "error": "sweep stopped"})
        return signum
