"""Run one trial: a training (or its resumption) in a child process, in the trial's folder.

The same function runs in a local worker thread and inside a Ray task, so a trial behaves
the same on both backends. It is idempotent: a trial whose folder holds a checkpoint is
resumed from it (exact resume), so a Ray task retried after its worker died continues
where it stopped. The child gets its share of BLAS threads in its environment, set before
NumPy loads.

Each trial folder is a normal run directory plus ``trial.json`` (index, overrides, status,
error, attempts, whether the last attempt resumed, process ids) and ``trial.log`` (the
child's output).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nnctl
from nnctl import layout
from nnctl.fileio import atomic_write_json
from nnctl.sweep.child import PARENT_VARIABLE

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")  # fmt: skip
FAILED = ("failed", "diverged")
FINISHED = ("completed", "pruned")  # outcomes that are not failures
INTERRUPTED_CODES = (130, 143)
PRUNED_CODE = 4  # nnctl.errors.TrialPruned


@dataclass
class TrialJob:
    """Everything a worker needs to run a trial; plain data, so it pickles for Ray."""

    index: int
    name: str
    base: str  # absolute path of the base config
    overrides: list[str]  # the sweep's shared overrides, then the trial's
    params: dict  # the trial's own values, {key: value}
    trial_dir: str  # absolute
    threads: int = 1
    retry_failed: bool = False
    env: dict = field(default_factory=dict)  # added to the child's environment
    report: dict | None = None  # where the child reports its metric (nnctl.sweep.report)


def read_record(trial_dir: Path) -> dict:
    """The trial's ``trial.json``, or {} if it has none (or a broken one)."""
    return layout.load_json(Path(trial_dir) / layout.TRIAL_FILE)


def write_record(trial_dir: Path, record: dict) -> None:
    atomic_write_json(Path(trial_dir) / layout.TRIAL_FILE, record)


def can_resume(trial_dir: Path) -> bool:
    return layout.is_run_dir(trial_dir) and layout.last_checkpoint(trial_dir).is_file()


def run_trial(job: TrialJob | dict, on_start: Callable | None = None) -> dict:
    """Train (or resume) the trial; return its ``trial.json`` record.

    ``on_start(process)`` is called once the child runs (the local backend keeps it to
    forward signals). Never raises for a failing trial: the record says what happened.
    """
    job = job if isinstance(job, TrialJob) else TrialJob(**job)
    trial_dir = Path(job.trial_dir)
    record = read_record(trial_dir)
    fresh = job.retry_failed and record.get("status") in FAILED
    resume = can_resume(trial_dir) and not fresh
    if not resume and trial_dir.exists():  # a failed run or one stopped before a checkpoint
        shutil.rmtree(trial_dir)
        record = {}
    trial_dir.mkdir(parents=True, exist_ok=True)
    record = {**_identity(job), "attempts": record.get("attempts", 0) + 1,
              "wall_seconds": record.get("wall_seconds", 0.0), "status": "running",
              "error": None, "resumed": resume, "host": socket.gethostname(),
              "worker_pid": os.getpid()}  # fmt: skip
    write_record(trial_dir, record)
    code, seconds, error = _run_child(job, trial_dir, resume, record, on_start)
    record.update(status=status_of(code), exit_code=code, error=error,
                  wall_seconds=round(record["wall_seconds"] + seconds, 3))  # fmt: skip
    if record["status"] in FINISHED:
        record["error"] = None
    write_record(trial_dir, record)
    return record


def _identity(job: TrialJob) -> dict:
    return {"index": job.index, "name": job.name, "base": job.base,
            "overrides": job.overrides, "params": job.params}  # fmt: skip


def nnctl_command(job: TrialJob, trial_dir: Path, resume: bool) -> list[str]:
    """The ``nnctl`` command line that does what the trial does (kept in meta.json)."""
    if resume:
        return ["nnctl", "resume", str(trial_dir), "--quiet"]
    sets = [arg for override in job.overrides for arg in ("--set", override)]
    return ["nnctl", "train", job.base, *sets, "--out", str(trial_dir), "--quiet"]


def _command(job: TrialJob, trial_dir: Path, resume: bool) -> list[str]:
    """The child process: ``nnctl.sweep.child`` with the training to run, as JSON."""
    request = {"argv": nnctl_command(job, trial_dir, resume)}
    if job.report:
        request["report"] = job.report
    if resume:
        request["resume_dir"] = str(trial_dir)
    else:
        request.update(config=job.base, overrides=job.overrides, out=str(trial_dir))
    return [sys.executable, "-m", "nnctl.sweep.child", json.dumps(request)]


def child_environment(threads: int) -> dict[str, str]:
    """This process's environment with BLAS threads capped and nnctl importable."""
    env = {**os.environ, **{name: str(threads) for name in THREAD_VARIABLES}}
    env[PARENT_VARIABLE] = str(os.getpid())
    root = str(Path(nnctl.__file__).resolve().parents[1])
    if "site-packages" not in root and "dist-packages" not in root:  # a source checkout
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def _run_child(job, trial_dir: Path, resume: bool, record: dict, on_start):
    """Run the child to its end; (exit code, seconds, error message or None)."""
    log_path = trial_dir / layout.TRIAL_LOG
    start = time.monotonic()
    with open(log_path, "ab") as log:
        offset = log.tell()
        fds = tuple((job.report or {}).get(key) for key in ("rows_fd", "reply_fd"))
        process = subprocess.Popen(_command(job, trial_dir, resume), stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=log,
                                   env={**child_environment(job.threads), **job.env},
                                   pass_fds=tuple(fd for fd in fds if fd is not None))  # fmt: skip
        record["pid"] = process.pid
        write_record(trial_dir, record)
        if on_start is not None:
            on_start(process)
        code = process.wait()
    seconds = time.monotonic() - start
    return code, seconds, None if code == 0 else error_message(log_path, offset, code)


def status_of(code: int) -> str:
    """The trial status for the child's exit code (negative: killed by that signal)."""
    if code == 0:
        return "completed"
    if code == 3:
        return "diverged"
    if code == PRUNED_CODE:
        return "pruned"
    if code in INTERRUPTED_CODES or code < 0:
        return "interrupted"
    return "failed"


def error_message(log_path: Path, offset: int, code: int) -> str:
    """The child's ``error:`` lines from this attempt, else its last line, else the code."""
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            lines = log.read().decode("utf-8", "replace").splitlines()
    except OSError:
        lines = []
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    if errors:
        return "; ".join(errors)
    if code < 0:
        return f"killed by signal {-code}"
    last = [line.strip() for line in lines if line.strip()]
    return last[-1] if last else f"exit code {code}"
