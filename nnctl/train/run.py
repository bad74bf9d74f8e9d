"""What the commands do: start, resume and finish runs; open trained models.

The CLI layer parses options and prints; everything here raises NnctlError subclasses
for the user's mistakes.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl import data as datamod
from nnctl import layout
from nnctl.config import build, config_from_mapping, load_config
from nnctl.config.build import resolve_class_weights
from nnctl.core.checks import show
from nnctl.data import Preprocessor, resolve_data_config
from nnctl.data.preprocess import MODES
from nnctl.errors import (
    CheckpointError,
    ConfigError,
    ConfigErrors,
    DivergedError,
    Interrupted,
    NnctlError,
    TrialPruned,
)
from nnctl.fileio import user_path
from nnctl.loggers import LoggerSet, RunInfo
from nnctl.signals import handling_stop_signals
from nnctl.train import rundir
from nnctl.train.checkpoint import load_checkpoint, loading, spec_from_meta, split_prefix
from nnctl.train.finetune import init_from
from nnctl.train.report import Reporter
from nnctl.train.trainer import Trainer, TrainSettings


@dataclass
class EpochSaved:
    """A callable as the trainer's ``on_epoch_saved`` callback."""

    on_epoch_saved: Callable[[dict], None]


@contextmanager
def stop_on_signals(trainer: Trainer):
    """SIGINT/SIGTERM ask the trainer to finish its step, checkpoint and stop; a second
    signal of the same kind stops at once (the last checkpoint is still intact)."""

    def request_stop(signum, frame):
        trainer.stop_signal = signum
        signal.signal(signum, previous[signum])

    with handling_stop_signals(request_stop) as previous:
        yield


def train(config, out=None, resume_dir=None, force=False, quiet=False, argv=None, bar=None,
          on_epoch_end=None):  # fmt: skip
    """Train ``config`` in a new run directory, or continue the run in ``resume_dir``.

    The data is loaded first: ``class_weights: balanced`` becomes the weights of its
    training labels in the config the run records. ``on_epoch_end(row)`` is called after
    every epoch is checkpointed (a sweep trial reports its metric; it may raise TrialPruned).
    Returns (run_dir, summary).
    """
    loggers = LoggerSet.from_specs(config.data["train"]["loggers"])
    loggers.prepare()  # a missing extra or an unreachable server: before the run directory
    splits = datamod.load(config.data["data"], seed=config.data.get("seed", 0))
    config = resolve_class_weights(config, splits.train.y, splits.spec.n_classes)
    if resume_dir is not None:
        run_dir = _check_resume(user_path(resume_dir), config, force)
    else:
        run_dir = rundir.prepare_new_run(Path(out) if out else rundir.default_run_dir(config.name))
        rundir.write_config(run_dir, config.data)
        rundir.start_meta(run_dir, config, argv)
    experiment = build(config)
    settings = TrainSettings.from_config(config.data)
    reporter = Reporter(settings.epochs, quiet=quiet, bar=bar)
    trainer = Trainer(experiment.network, experiment.optimizer, experiment.schedule, splits,
                      settings, run_dir, seed=config.data.get("seed", 0),
                      config_hash=config.hash(), reporter=reporter,
                      callbacks=[loggers, *([EpochSaved(on_epoch_end)] if on_epoch_end else [])])  # fmt: skip
    trainer.extra_meta = {"config": config.data}
    last = layout.last_checkpoint(run_dir)
    init_source = config.data["model"].get("init_from")
    if init_source and not (resume_dir is not None and last.exists()):
        reporter.message(init_from(experiment.network, init_source).describe())
    if resume_dir is not None and last.exists():
        trainer.restore(last)
        reporter.message(f"resuming {run_dir} at epoch {trainer.progress.epoch + 1}, "
                         f"step {trainer.progress.step}")  # fmt: skip
    reporter.message(f"run directory: {run_dir}")
    resumed = resume_dir is not None and last.exists()
    session = RunInfo(run_dir, config.name, config.data, trainer.progress.step, resumed)
    try:
        with loggers.session(session), stop_on_signals(trainer):
            summary = trainer.fit()
            summary = {"run_dir": str(run_dir), "config": config.name, **summary}
            rundir.write_summary(run_dir, summary)
            loggers.summary = summary
    except Interrupted:
        rundir.finish_meta(run_dir, "interrupted")
        raise
    except DivergedError:
        rundir.finish_meta(run_dir, "diverged")
        raise
    except TrialPruned:
        rundir.finish_meta(run_dir, "pruned")
        raise
    rundir.finish_meta(run_dir, "completed")
    return run_dir, summary


def _check_resume(run_dir: Path, config, force: bool) -> Path:
    if not layout.is_run_dir(run_dir):
        raise CheckpointError(f"{run_dir}: not an nnctl run directory (no config.yaml/meta.json)")
    path = run_dir / layout.CONFIG_FILE
    # resolved again, so that arguments added since the run started (with their defaults)
    # are not differences
    saved = config_from_mapping(layout.read_required(path), source=str(path)).data
    differing = rundir.config_differences(saved, config.data)
    if differing and not force:
        shown = ", ".join(differing[:10]) + (" ..." if len(differing) > 10 else "")
        raise NnctlError(
            f"{run_dir}: the config differs from the run's in {shown}; "
            "use --force to resume with the new config"
        )
    if differing:
        rundir.write_config(run_dir, config.data)
    return run_dir


def run_config(run_dir: Path):
    """The Config a run was trained with (its resolved config.yaml)."""
    run_dir = user_path(run_dir)
    if not layout.is_run_dir(run_dir):
        raise CheckpointError(f"{run_dir}: not an nnctl run directory (no config.yaml/meta.json)")
    refuse_extends(layout.read_required(run_dir / layout.CONFIG_FILE), run_dir / layout.CONFIG_FILE)
    config = load_config(run_dir / layout.CONFIG_FILE)
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
