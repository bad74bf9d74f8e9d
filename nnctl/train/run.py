"""What the commands do: start, resume and finish runs; open trained models.

The CLI layer parses options and prints; everything here raises NnctlError subclasses
for the user's mistakes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl import layout
from nnctl.config import build, config_from_mapping, load_config
from nnctl.core.checks import show
from nnctl.data import Preprocessor, resolve_data_config
from nnctl.data.preprocess import MODES
from nnctl.errors import CheckpointError, ConfigError, ConfigErrors
from nnctl.fileio import user_path
from nnctl.loggers import RunInfo
from nnctl.train import rundir
from nnctl.train.checkpoint import load_checkpoint, loading, spec_from_meta, split_prefix
from nnctl.train.lock import RunLock
from nnctl.train.report import Reporter
from nnctl.train.resume import plan_resume
from nnctl.train.session import EpochSaved, Session, StopSignals
from nnctl.train.trainer import Trainer


def train(config, out=None, resume_dir=None, force=False, quiet=False, argv=None, bar=None,
          on_epoch_end=None):  # fmt: skip
    """Train ``config`` in a new run directory, or continue the run in ``resume_dir``.

    The config is checked, the loggers prepared, the data loaded and checked (``class_weights:
    balanced`` becomes the weights of its training labels in the config the run records)
    and the model built before a new run directory is created, so a failing start leaves
    nothing behind; a failure after that is recorded in meta.json (``failed`` and the
    error). ``on_epoch_end(row)`` is called after every epoch is checkpointed (a sweep trial
    reports its metric; it may raise TrialPruned). Returns (run_dir, summary).
    """
    reporter = Reporter(config.data["train"]["epochs"], quiet=quiet, bar=bar)
    callbacks = [EpochSaved(on_epoch_end)] if on_epoch_end else []
    with StopSignals().installed() as stop:
        if resume_dir is not None:
            run_dir = user_path(resume_dir)
            return _resume(config, run_dir, force, reporter, argv, stop, callbacks)
        return _start(config, out, reporter, argv, stop, callbacks)


def _start(config, out, reporter: Reporter, argv, stop: StopSignals, callbacks: list):
    if out is not None:
        rundir.check_new_run(user_path(out))  # before the data loads (it may be slow)
    session = Session.prepare(config, callbacks)
    session.init_weights(reporter)
    config = session.config
    run_dir = user_path(out) if out else rundir.default_run_dir(config.name)
    with rundir.create_run(run_dir, note=reporter.message), rundir.recording_outcome(run_dir):
        rundir.write_config(run_dir, config.data)
        rundir.start_meta(run_dir, config, argv)
        trainer = session.trainer(run_dir, reporter)
        reporter.message(f"run directory: {run_dir}")
        return _fit(trainer, session, stop, resumed=False)


def _resume(config, run_dir: Path, force: bool, reporter: Reporter, argv, stop, callbacks):
    if not layout.is_run_dir(run_dir):
        raise CheckpointError(f"{run_dir}: not an nnctl run directory (no config.yaml/meta.json)")
    with RunLock(run_dir):
        session = Session.prepare(config, callbacks)  # balanced class weights resolved
        config = session.config
        plan = plan_resume(run_dir, config, force)
        epochs = config.data["train"]["epochs"]
        if plan.is_complete(epochs) and _finished(run_dir):
            reporter.message(plan.complete_message(epochs))
            return run_dir, layout.read_required(run_dir / layout.SUMMARY_FILE)
        trainer = session.trainer(run_dir, reporter)
        if plan.arrays is not None:
            trainer.load_state(plan.arrays, plan.meta, layout.last_checkpoint(run_dir))
        else:
            session.init_weights(reporter)  # training again from epoch 1
            trainer.log.keep_until(0)
        with rundir.recording_outcome(run_dir):
            if plan.changed:
                rundir.write_config(run_dir, config.data)
            rundir.record_resume(run_dir, config, argv, trainer.progress, plan.changed)
            for note in plan.notes:
                reporter.message(note)
            reporter.message(_resuming(run_dir, trainer.progress, epochs))
            return _fit(trainer, session, stop, resumed=plan.arrays is not None)


def _resuming(run_dir: Path, progress, epochs: int) -> str:
    if progress.stopped_early or progress.epoch >= epochs:
        return f"{run_dir}: every epoch is trained; finishing it (summary, test metrics)"
    return f"resuming {run_dir} at epoch {progress.epoch + 1} of {epochs}, step {progress.step}"


def _finished(run_dir: Path) -> bool:
    """The run's last session ended well (a run can also be complete in its checkpoint but
    stopped before writing its summary: resuming it writes the summary)."""
    meta = layout.load_json(run_dir / layout.META_FILE)
    return meta.get("status") == "completed" and (run_dir / layout.SUMMARY_FILE).is_file()


def _fit(trainer: Trainer, session: Session, stop: StopSignals, resumed: bool):
    """Train to the end with the loggers; write summary.json and mark the run completed."""
    stop.trainer = trainer
    run_dir, config, loggers = trainer.run_dir, session.config, session.loggers
    info = RunInfo(run_dir, config.name, config.data, trainer.progress.step, resumed)
    with loggers.session(info):
        summary = trainer.fit()
        summary = {"run_dir": str(run_dir), "config": config.name, **summary}
        rundir.write_summary(run_dir, summary)
        loggers.summary = summary
    rundir.finish_meta(run_dir, "completed")
    return run_dir, summary


def run_config(run_dir: Path, overrides=()):
    """The Config a run was trained with (its resolved config.yaml), with ``overrides``."""
    run_dir = user_path(run_dir)
    if not layout.is_run_dir(run_dir):
        raise CheckpointError(f"{run_dir}: not an nnctl run directory (no config.yaml/meta.json)")
    refuse_extends(layout.read_required(run_dir / layout.CONFIG_FILE), run_dir / layout.CONFIG_FILE)
    config = load_config(run_dir / layout.CONFIG_FILE, tuple(overrides))
    config.name = run_dir.name
    return config


@dataclass
class TrainedModel:
    """A network restored from a checkpoint, with its config and preprocessing.

    ``data`` is the ``data:`` section ``eval`` may load: the run's own (from its
    config.yaml) for a checkpoint of a run directory, a built-in data set's for a checkpoint
    given alone; None when a checkpoint given alone names data files of its own (they are
    not opened: the user passes ``--data FILE``).
    """

    config: object
    network: object
    preprocess: Preprocessor
    checkpoint: Path
    meta: dict
    data: dict | None = None
    run_dir: Path | None = None

    def data_to_load(self) -> dict:
        """The ``data:`` section to evaluate on, checked; CheckpointError when there is
        none to open (a checkpoint given alone that names its own files)."""
        if self.data is None:
            raise CheckpointError(
                f"{self.checkpoint}: was trained on data files of its own, which are not "
                "opened for a checkpoint given alone (it could name any file); pass "
                "--data FILE or evaluate its run directory"
            )
        try:
            return resolve_data_config(self.data, "data", Path.cwd())
        except ConfigErrors as error:
            source = str(self.run_dir / layout.CONFIG_FILE if self.run_dir else self.checkpoint)
            located = [ConfigError(e.path, e.message, source) for e in error.errors]
            raise ConfigErrors(located) from None


def open_model(target) -> TrainedModel:
    """Load RUN_DIR (the checkpoint its summary reports, else last) or a checkpoint file.

    A checkpoint is data, never instructions: its embedded config must be resolved already
    (no ``extends``) and no file it names is opened. The model is built from the data
    description the checkpoint records (older checkpoints: from the run's data); the data
    files that ``eval`` reads come from the run directory's config.yaml, the user's own
    file, when the checkpoint belongs to a run directory.
    """
    checkpoint, run_dir = _locate(user_path(target))
    arrays, meta = load_checkpoint(checkpoint)
    embedded = _embedded_config(checkpoint, meta)
    data = _data_to_open(run_dir, embedded["data"])
    spec = spec_from_meta(checkpoint, meta)
    if spec is None and data is None:
        raise CheckpointError(
            f"{checkpoint}: an older checkpoint that names its own data files cannot be used "
            "alone (they are not opened); use its run directory"
        )
    mapping = {**embedded, "data": data} if spec is None else embedded
    config = config_from_mapping(mapping, name=checkpoint.stem, source=str(checkpoint), spec=spec)
    network = build(config).network
    with loading(checkpoint):
        network.load_state_dict(split_prefix(arrays, "model"))
        preprocess = Preprocessor.from_state_dict(split_prefix(arrays, "prep"))
        _check_preprocess(preprocess, config.spec)
    network.eval()
    return TrainedModel(config, network, preprocess, checkpoint, meta, data, run_dir)


def _locate(target: Path) -> tuple[Path, Path | None]:
    """The checkpoint to open and the run directory it belongs to (None: given alone)."""
    if target.is_dir():
        if not layout.is_run_dir(target):
            raise CheckpointError(
                f"{target}: not an nnctl run directory (no config.yaml/meta.json) or checkpoint"
            )
        return layout.model_checkpoint(target), target
    if not target.exists():
        raise CheckpointError(f"{target}: no such run directory or checkpoint")
    folder = target.resolve().parent
    in_run = folder.name == layout.CHECKPOINT_DIR and layout.is_run_dir(folder.parent)
    return target, folder.parent if in_run else None


def refuse_extends(config: dict, source: Path) -> None:
    """A run's config.yaml and a checkpoint's config are resolved already: they never name
    other files to read (``extends``); CheckpointError naming ``source`` if one does."""
    if "extends" in config:
        raise CheckpointError(
            f"{source}: a run's or checkpoint's config is resolved already; "
            "it may not extend other files ('extends')"
        )


def _embedded_config(checkpoint: Path, meta: dict) -> dict:
    config = meta.get("config")
    if config is None:
        raise CheckpointError(f"{checkpoint}: checkpoint has no config")
    refuse_extends(config, checkpoint)
    if not isinstance(config.get("data"), dict):
        raise CheckpointError(f"{checkpoint}: the config in the checkpoint has no data section")
    return config


def _data_to_open(run_dir: Path | None, embedded: dict) -> dict | None:
    """The data section whose files may be opened: the run's own config.yaml's; for a
    checkpoint given alone a built-in data set (its ``data_dir`` dropped: the standard
    places are searched), else None."""
    if run_dir is not None:
        path = run_dir / layout.CONFIG_FILE
        config = layout.read_required(path)
        refuse_extends(config, path)
        if not isinstance(config.get("data"), dict):
            raise CheckpointError(f"{path}: has no data section")
        return config["data"]
    if "dataset" in embedded:
        return {k: v for k, v in embedded.items() if k != "data_dir"}
    return None


def _check_preprocess(preprocess: Preprocessor, spec) -> None:
    """The preprocessing's statistics fit its own input and its output fits the model."""
    if preprocess.mode not in MODES:
        raise CheckpointError(f"unknown preprocessing mode {show(preprocess.mode)}")
    shape = preprocess.sample_shape
    for name in ("shift", "scale"):
        stat = getattr(preprocess, name)
        if stat.shape not in ((), shape):
            raise CheckpointError(f"preprocessing {name} of shape {stat.shape} for {shape}")
    if preprocess.mode != "none" and not (preprocess.scale > 0).all():
        raise CheckpointError("preprocessing scale must be positive")
    if preprocess.output_shape != tuple(spec.input_shape):
        raise CheckpointError(
            f"preprocessing gives examples of shape {preprocess.output_shape}; "
            f"the model takes {tuple(spec.input_shape)}"
        )


def same_preprocessing(a: Preprocessor, b: Preprocessor) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return all(np.array_equal(sa[k], sb[k]) for k in sa)
