"""Run a sweep: validate every trial, plan what is left, run it on a backend, keep the table.

Rerunning a sweep in the same folder skips completed trials, resumes interrupted ones from
their last checkpoint and leaves failed ones alone unless ``retry_failed``. ``sweep.json``
in the folder identifies the sweep, so a different sweep cannot mix its trials in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nnctl import layout
from nnctl.errors import NnctlError
from nnctl.fileio import atomic_write_json, make_dirs, user_path
from nnctl.sweep import table, tracking
from nnctl.sweep.local import LocalPool, available_cpus
from nnctl.sweep.spec import SweepSpec, Trial
from nnctl.sweep.trial import FAILED, FINISHED, TrialJob
from nnctl.sweep.validate import validate_sweep

BACKENDS = ("local", "ray")


@dataclass
class SweepResult:
    out: Path
    rows: list[dict]
    stopped: int | None = None  # the signal that stopped the sweep

    @property
    def unfinished(self) -> list[dict]:
        """Trials that did not complete (a pruned trial finished: the search stopped it)."""
        return [row for row in self.rows if row["status"] not in FINISHED]


@dataclass
class SweepOptions:
    out: str | Path | None = None
    backend: str = "local"
    jobs: int | None = None  # local: workers (default: CPUs); ray: tasks in flight
    address: str | None = None
    cpus_per_trial: int = 1  # ray: CPUs reserved per task
    retry_failed: bool = False


def prepare_folder(out: Path, spec: SweepSpec) -> None:
    """Create ``out`` with ``sweep.json``; refuse a folder that holds another sweep."""
    fingerprint = spec.fingerprint()
    path = out / layout.SWEEP_SPEC_FILE
    if path.exists():
        try:
            saved = layout.read_file(path)
        except (OSError, ValueError) as error:
            raise NnctlError(f"{path}: unreadable ({error})") from None
        differing = [key for key in fingerprint if saved.get(key) != fingerprint[key]]
        if differing:
            raise NnctlError(f"{out}: holds a different sweep (its {', '.join(differing)} "
                             "differ); choose another --out")  # fmt: skip
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise NnctlError(f"{out}: exists and is not a sweep folder; choose another --out")
    make_dirs(out, "sweep folder")
    atomic_write_json(path, fingerprint)


def to_run(rows: dict[int, dict], retry_failed: bool) -> set[int]:
    """Indices of the trials still to run."""
    wanted = ("pending", "interrupted", *(FAILED if retry_failed else ()))
    return {index for index, row in rows.items() if row["status"] in wanted}


class SweepRun:
    """The table of one sweep run, updated from backend callbacks (thread-safe)."""

    def __init__(self, out: Path, trials: list[Trial], echo: Callable[[str], None]):
        self.out, self.echo = out, echo
        self.trials = {trial.index: trial for trial in trials}
        self.rows = {t.index: table.make_row(t, out / t.name) for t in trials}
        self.lock = threading.Lock()
        self.finished, self.total = 0, 0

    def add(self, trial: Trial) -> None:
        """A trial made while the sweep runs (a tpe search asks for them one by one)."""
        with self.lock:
            self.trials[trial.index] = trial
            self.rows[trial.index] = table.make_row(trial, self.out / trial.name)

    def sorted_rows(self) -> list[dict]:
        with self.lock:
            return [self.rows[i] for i in sorted(self.rows)]

    def start(self, job: TrialJob, status: str = "running") -> None:
        with self.lock:
            trial = self.trials[job.index]
            self.rows[job.index] = table.make_row(trial, self.out / trial.name, status)
            table.write_table(self.out, list(self.rows.values()))

    def done(self, job: TrialJob, record: dict) -> dict:
        """Record a finished trial; its new row."""
        with self.lock:
            trial = self.trials[job.index]
            row = table.make_row(trial, self.out / trial.name, record.get("status", "failed"))
            if row["error"] is None and row["status"] not in FINISHED:
                row["error"] = record.get("error")
            self.rows[job.index] = row
            table.write_table(self.out, list(self.rows.values()))
            self.finished += 1
            self.echo(f"[{self.finished}/{self.total}] {progress_line(row)}")
            return row


def progress_line(row: dict) -> str:
    """``003-optimizer.lr=0.01: completed, val acc 0.9792, test acc 0.9610, 30 epochs, 1.2s``."""
    parts = []
    if row["best_val_accuracy"] is not None:
        parts.append(f"val acc {row['best_val_accuracy']:.4f}")
    if row["test_accuracy"] is not None:
        parts.append(f"test acc {row['test_accuracy']:.4f}")
    elif row["test_loss"] is not None:
        parts.append(f"test loss {row['test_loss']:.4g}")
    if row["epochs"] is not None:
        parts.append(f"{row['epochs']} epochs")
    if row["wall_seconds"] is not None:
        parts.append(f"{row['wall_seconds']:.1f}s")
    text = f"{row['name']}: {row['status']}"
    if row["status"] == "pruned" and row.get("stopped_epoch"):
        text += f" after epoch {row['stopped_epoch']}"
    if row["status"] not in FINISHED and row["error"]:
        text += f" ({row['error']})"
    return text + (", " + ", ".join(parts) if parts else "")


def run_sweep(spec: SweepSpec, options: SweepOptions, echo: Callable[[str], None]) -> SweepResult:
    """Validate every trial, then run those not done yet; the final table."""
    if options.backend not in BACKENDS:
        raise NnctlError(f"unknown backend '{options.backend}' (choose from local, ray)")
    trials = validate_sweep(spec)
    if options.backend == "ray":
        from nnctl.sweep.ray_backend import preflight

        preflight(options.address)  # a missing extra or cluster, before anything is written
    if spec.uses_study:
        from nnctl.sweep.study import import_optuna

        import_optuna()  # a missing extra, before anything is written (Ray Tune uses it too)
    out = user_path(options.out or spec.default_out()).resolve()
    prepare_folder(out, spec)
    if spec.uses_study and options.backend == "ray":
        from nnctl.sweep.tune_backend import run_tune

        state, stopped = run_tune(spec, trials, out, options, echo)
    elif spec.uses_study:
        from nnctl.sweep.studyrun import run_study

        state, stopped = run_study(spec, trials, out, options, echo)
    else:
        state, stopped = run_fixed(spec, trials, out, options, echo)
    return SweepResult(out, state.sorted_rows(), stopped)


def announce(echo, out: Path, count: int, todo: int) -> None:
    """``sweep OUT: 9 trials, 4 already done, running 5``."""
    skipped = count - todo
    echo(f"sweep {out}: {count} trials" + (f", {skipped} already done" if skipped else "")
         + (f", running {todo}" if todo else ""))  # fmt: skip


def run_fixed(spec: SweepSpec, trials: list[Trial], out: Path, options: SweepOptions, echo):
    """A grid or random search without a study: (state, signal that stopped it or None)."""
    state = SweepRun(out, trials, echo)
    todo = sorted(to_run(state.rows, options.retry_failed))
    table.write_table(out, list(state.rows.values()))
    state.total = len(todo)
    announce(echo, out, len(trials), len(todo))
    parent = tracking.start_parent(spec, trials, out) if todo else None  # MLflow, if logged to
    threads = trial_threads(options, len(todo))
    jobs = [make_job(spec, state.trials[i], out, options, threads) for i in todo]
    for job in jobs if parent else ():
        job.env = parent.env
    stopped = run_backend(jobs, options, state, len(jobs)) if jobs else None
    if parent:
        parent.finish(out, state.sorted_rows(), stopped)
    return state, stopped


def trial_threads(options: SweepOptions, count: int) -> int:
    """BLAS threads per trial: locally the CPUs shared by the workers; on Ray its CPUs."""
    if options.backend != "local":
        return options.cpus_per_trial
    return max(1, available_cpus() // workers(options, count))


def workers(options: SweepOptions, count: int) -> int:
    return min(options.jobs or available_cpus(), max(count, 1))


def make_job(spec: SweepSpec, trial: Trial, out: Path, options: SweepOptions, threads: int,
             report: dict | None = None) -> TrialJob:  # fmt: skip
    return TrialJob(index=trial.index, name=trial.name, base=str(spec.base),
                    overrides=[*spec.overrides, *trial.overrides], params=trial.params,
                    trial_dir=str(out / trial.name), threads=threads,
                    retry_failed=options.retry_failed, report=report)  # fmt: skip


def run_backend(jobs, options: SweepOptions, state: SweepRun, count: int,
                on_done: Callable | None = None) -> int | None:  # fmt: skip
    """Run ``jobs`` (a list, or a generator making them as workers free up) of ``count``
    trials; the signal that stopped the sweep, or None."""
    on_done = on_done or state.done
    if options.backend == "ray":
        from nnctl.sweep.ray_backend import RayRunner

        runner = RayRunner(lambda job: state.start(job, "submitted"), on_done,
                           address=options.address, cpus_per_trial=options.cpus_per_trial,
                           max_in_flight=options.jobs)  # fmt: skip
        return runner.run(list(jobs))
    return LocalPool(workers(options, count), state.start, on_done).run(jobs)
