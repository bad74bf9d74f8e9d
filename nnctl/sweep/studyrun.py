"""Run a sweep whose trials report to a study: a tpe search, or early stopping.

The plan, from the study and the trial folders: trials that completed or were pruned are
kept; trials the study still has running (interrupted, or never started) run again under
the same Optuna trial, resuming from their checkpoints; trials of a grid or random search
not yet in the study, and the rest of a tpe search's ``trials``, are asked for one at a
time as workers free up, so the sampler has seen every trial finished before. Failed
trials run again only with ``--retry-failed``, as a new Optuna trial.
"""

from __future__ import annotations

from pathlib import Path

from nnctl import layout
from nnctl.config import load_config
from nnctl.sweep import table
from nnctl.sweep.runner import (
    SweepOptions,
    SweepRun,
    announce,
    make_job,
    run_backend,
    to_run,
    trial_threads,
)
from nnctl.sweep.spec import SweepSpec, Trial
from nnctl.sweep.study import Study


def run_study(spec: SweepSpec, trials: list[Trial], out: Path, options: SweepOptions, echo):
    """(state, the signal that stopped the sweep or None); the local backend (Ray runs
    these sweeps with Ray Tune: ``nnctl.sweep.tune_backend``)."""
    study = Study(out, spec, options.jobs or 1)
    known = study.known()
    if spec.adaptive:
        trials = [spec.make_trial(i, known[i].user_attrs["params"]) for i in sorted(known)]
    state = SweepRun(out, trials, echo)
    _sync(study, known, state.rows)
    todo = sorted(to_run(state.rows, options.retry_failed))
    new = max(0, spec.trials - len(trials)) if spec.adaptive else 0
    table.write_table(out, list(state.rows.values()))
    state.total = len(todo) + new
    announce(echo, out, len(trials) + new, state.total)
    runner = _Runner(spec, out, options, study, state)
    jobs = runner.jobs(todo, known, range(len(trials), len(trials) + new))
    stopped = run_backend(jobs, options, state, state.total, runner.done) if state.total else None
    return state, stopped


def _sync(study: Study, known: dict, rows: dict[int, dict]) -> None:
    """Tell the study outcomes it missed (the sweep stopped before telling them)."""
    for index, trial in known.items():
        row = rows.get(index)
        if row is not None and row["status"] in ("completed", "pruned", "failed", "diverged"):
            study.tell(trial.number, row["status"], best_value(study.spec, Path(row["dir"])))


def best_value(spec: SweepSpec, trial_dir: Path) -> float | None:
    """The best value of the search's metric over the trial's epochs."""
    files = layout.RunFiles.read(trial_dir)
    return (max if spec.mode == "max" else min)(files.logged(spec.metric), default=None)


class _Runner:
    """Makes the jobs (asking the study when needed) and tells the study how they ended."""

    def __init__(self, spec: SweepSpec, out: Path, options: SweepOptions, study: Study, state):
        self.spec, self.out, self.options = spec, out, options
        self.study, self.state = study, state
        self.threads = trial_threads(options, state.total)
        self.numbers: dict[int, int] = {}  # trial index → Optuna trial number
        self.epochs = load_config(spec.base, spec.overrides).data["train"]["epochs"]

    def jobs(self, todo: list[int], known: dict, new):
        """Resumed and pending trials first, then new ones, each asked for when needed."""
        running = self.study.optuna.trial.TrialState.RUNNING
        for index in todo:
            trial, entry = self.state.trials[index], known.get(index)
            if entry is not None and entry.state == running:
                number = entry.number
            else:
                number, _ = self.study.ask(index, trial.params)
            yield self._job(trial, number)
        for index in new:
            number, params = self.study.ask(index)
            trial = self.spec.make_trial(index, params)
            self.state.add(trial)
            yield self._job(trial, number)

    def _job(self, trial: Trial, number: int):
        self.numbers[trial.index] = number
        report = None
        if self.spec.scheduler is not None:
            epochs = trial.params.get("train.epochs", self.epochs)
            report = self.study.report_request(number, epochs)
        return make_job(self.spec, trial, self.out, self.options, self.threads, report)

    def done(self, job, record: dict) -> None:
        row = self.state.done(job, record)
        value = best_value(self.spec, Path(job.trial_dir))
        self.study.tell(self.numbers[job.index], row["status"], value)
