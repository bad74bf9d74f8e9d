"""What the commands do: start, resume and finish runs; open trained models.

The CLI layer parses options and prints; everything here raises NnctlError subclasses
for the user's mistakes.
"""

from __future__ import annotations

import shlex
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl import data as datamod
from nnctl import layout
from nnctl.config import build, config_from_mapping, load_config
from nnctl.data import Preprocessor
from nnctl.errors import CheckpointError, Interrupted
from nnctl.signals import handling_stop_signals
from nnctl.train import rundir
from nnctl.train.checkpoint import load_checkpoint, split_prefix
from nnctl.train.lock import RunLock
from nnctl.train.report import Reporter
from nnctl.train.resume import plan_resume
from nnctl.train.trainer import Trainer, TrainSettings


class StopSignals:
    """SIGINT and SIGTERM during a training session (the handler while it is installed).

    Until the trainer runs (loading data, building, restoring) a signal stops at once:
    Interrupted, exit 130/143, nothing of the run changed. While it runs, the first signal
    asks it to finish its step, checkpoint and stop; a second one stops at once (the last
    checkpoint is intact). Either way meta.json records the run as interrupted.
    """

    def __init__(self):
        self.trainer: Trainer | None = None

    def __call__(self, signum, frame) -> None:
        trainer = self.trainer
        if trainer is None:
            raise Interrupted("interrupted before training started", signum)
        if trainer.stop_signal is not None:
            raise Interrupted(
                f"stopped at once; the last checkpoint is kept. Resume with: "
                f"nnctl resume {shlex.quote(str(trainer.run_dir))}",
                signum,
            )
        trainer.stop_signal = signum

    @contextmanager
    def installed(self):
        with handling_stop_signals(self):
            yield self


@dataclass
class Session:
    """What a training needs before its run directory is touched: the config, the built
    network and optimizer, the loaded data and the settings of the loop."""

    config: object
    experiment: object
    splits: object
    settings: TrainSettings

    @classmethod
    def prepare(cls, config) -> Session:
        experiment = build(config)
        splits = datamod.load(config.data["data"], seed=config.data.get("seed", 0))
        return cls(config, experiment, splits, TrainSettings.from_config(config.data))

    def trainer(self, run_dir: Path, reporter: Reporter) -> Trainer:
        e, config = self.experiment, self.config
        trainer = Trainer(
            e.network,
            e.optimizer,
            e.schedule,
            self.splits,
            self.settings,
            run_dir,
            seed=config.data.get("seed", 0),
            config_hash=config.hash(),
            reporter=reporter,
        )
        trainer.extra_meta = {"config": config.data}
        return trainer


def train(config, out=None, resume_dir=None, force=False, quiet=False, argv=None, bar=None):
    """Train ``config`` in a new run directory, or continue the run in ``resume_dir``.

    The config is built and the data loaded and checked before a new run directory is
    created, so a failing start leaves nothing behind; a failure after that is recorded in
    meta.json (``failed`` and the error). Returns (run_dir, summary).
    """
    reporter = Reporter(config.data["train"]["epochs"], quiet=quiet, bar=bar)
    with StopSignals().installed() as stop:
        if resume_dir is not None:
            return _resume(config, Path(resume_dir).expanduser(), force, reporter, argv, stop)
        return _start(config, out, reporter, argv, stop)


def _start(config, out, reporter: Reporter, argv, stop: StopSignals):
    if out is not None:
        rundir.check_new_run(Path(out).expanduser())  # before the data loads (it may be slow)
    session = Session.prepare(config)
    run_dir = Path(out).expanduser() if out else rundir.default_run_dir(config.name)
    with rundir.create_run(run_dir, note=reporter.message), rundir.recording_outcome(run_dir):
        rundir.write_config(run_dir, config.data)
        rundir.start_meta(run_dir, config, argv)
        trainer = session.trainer(run_dir, reporter)
        reporter.message(f"run directory: {run_dir}")
        return _fit(trainer, config, stop)


def _resume(config, run_dir: Path, force: bool, reporter: Reporter, argv, stop: StopSignals):
    if not layout.is_run_dir(run_dir):
        raise CheckpointError(f"{run_dir}: not an nnctl run directory (no config.yaml/meta.json)")
    with RunLock(run_dir):
        plan = plan_resume(run_dir, config, force)
        epochs = config.data["train"]["epochs"]
        if plan.is_complete(epochs) and _finished(run_dir):
            reporter.message(plan.complete_message(epochs))
            return run_dir, layout.read_required(run_dir / layout.SUMMARY_FILE)
        session = Session.prepare(config)
        trainer = session.trainer(run_dir, reporter)
        if plan.arrays is not None:
            trainer.load_state(plan.arrays, plan.meta)
        else:
            trainer.log.keep_until(0)
        with rundir.recording_outcome(run_dir):
            if plan.changed:
                rundir.write_config(run_dir, config.data)
            rundir.record_resume(run_dir, config, argv, trainer.progress, plan.changed)
            for note in plan.notes:
                reporter.message(note)
            reporter.message(_resuming(run_dir, trainer.progress, epochs))
            return _fit(trainer, config, stop)


def _resuming(run_dir: Path, progress, epochs: int) -> str:
    if progress.stopped_early or progress.epoch >= epochs:
        return f"{run_dir}: every epoch is trained; finishing it (summary, test metrics)"
    return f"resuming {run_dir} at epoch {progress.epoch + 1} of {epochs}, step {progress.step}"


def _finished(run_dir: Path) -> bool:
    """The run's last session ended well (a run can also be complete in its checkpoint but
    stopped before writing its summary: resuming it writes the summary)."""
    meta = layout.load_json(run_dir / layout.META_FILE)
    return meta.get("status") == "completed" and (run_dir / layout.SUMMARY_FILE).is_file()


def _fit(trainer: Trainer, config, stop: StopSignals):
    """Train to the end; write summary.json and mark the run completed."""
    stop.trainer = trainer
    summary = trainer.fit()
    run_dir = trainer.run_dir
    summary = {"run_dir": str(run_dir), "config": config.name, **summary}
    rundir.write_summary(run_dir, summary)
    rundir.finish_meta(run_dir, "completed")
    return run_dir, summary


def run_config(run_dir: Path, overrides=()):
    """The Config a run was trained with (its resolved config.yaml), with ``overrides``."""
    run_dir = Path(run_dir).expanduser()
    if not layout.is_run_dir(run_dir):
        raise CheckpointError(f"{run_dir}: not an nnctl run directory (no config.yaml/meta.json)")
    config = load_config(run_dir / layout.CONFIG_FILE, tuple(overrides))
    config.name = run_dir.name
    return config


@dataclass
class TrainedModel:
    """A network restored from a checkpoint, with its config and preprocessing."""

    config: object
    network: object
    preprocess: Preprocessor
    checkpoint: Path
    meta: dict


def open_model(target) -> TrainedModel:
    """Load RUN_DIR (the checkpoint its summary reports, else last) or a checkpoint file."""
    target = Path(target).expanduser()
    if target.is_dir():
        summary_path = target / layout.SUMMARY_FILE
        if summary_path.exists():
            checkpoint = target / layout.read_required(summary_path)["checkpoint"]
        else:
            checkpoint = layout.last_checkpoint(target)
    elif target.exists():
        checkpoint = target
    else:
        raise CheckpointError(f"{target}: no such run directory or checkpoint")
    arrays, meta = load_checkpoint(checkpoint)
    if "config" not in meta:
        raise CheckpointError(f"{checkpoint}: checkpoint has no config")
    config = config_from_mapping(meta["config"], name=checkpoint.stem, source=str(checkpoint))
    network = build(config).network
    network.load_state_dict(split_prefix(arrays, "model"))
    network.eval()
    preprocess = Preprocessor.from_state_dict(split_prefix(arrays, "prep"))
    return TrainedModel(config, network, preprocess, checkpoint, meta)


def same_preprocessing(a: Preprocessor, b: Preprocessor) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(np.array_equal(sa[k], sb[k]) for k in sa)
