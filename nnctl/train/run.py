"""What the commands do: start, resume and finish runs; open trained models.

The CLI layer parses options and prints; everything here raises NnctlError subclasses
for the user's mistakes.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl import data as datamod
from nnctl import layout
from nnctl.config import build, config_from_mapping, load_config
from nnctl.data import Preprocessor
from nnctl.errors import CheckpointError, DivergedError, Interrupted, NnctlError, TrialPruned
from nnctl.signals import handling_stop_signals
from nnctl.train import rundir
from nnctl.train.checkpoint import load_checkpoint, split_prefix
from nnctl.train.report import Reporter
from nnctl.train.trainer import Trainer, TrainSettings


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

    ``on_epoch_end(row)`` is called after every epoch (see ``Trainer``). Returns
    (run_dir, summary).
    """
    if resume_dir is not None:
        run_dir = _check_resume(Path(resume_dir).expanduser(), config, force)
    else:
        run_dir = rundir.prepare_new_run(Path(out) if out else rundir.default_run_dir(config.name))
        rundir.write_config(run_dir, config.data)
        rundir.start_meta(run_dir, config, argv)
    experiment = build(config)
    splits = datamod.load(config.data["data"], seed=config.data.get("seed", 0))
    settings = TrainSettings.from_config(config.data)
    reporter = Reporter(settings.epochs, quiet=quiet, bar=bar)
    trainer = Trainer(experiment.network, experiment.optimizer, experiment.schedule, splits,
                      settings, run_dir, seed=config.data.get("seed", 0),
                      config_hash=config.hash(), reporter=reporter,
                      on_epoch_end=on_epoch_end)  # fmt: skip
    trainer.extra_meta = {"config": config.data}
    last = layout.last_checkpoint(run_dir)
    if resume_dir is not None and last.exists():
        trainer.restore(last)
        reporter.message(f"resuming {run_dir} at epoch {trainer.progress.epoch + 1}, "
                         f"step {trainer.progress.step}")  # fmt: skip
    reporter.message(f"run directory: {run_dir}")
    try:
        with stop_on_signals(trainer):
            summary = trainer.fit()
    except Interrupted:
        rundir.finish_meta(run_dir, "interrupted")
        raise
    except DivergedError:
        rundir.finish_meta(run_dir, "diverged")
        raise
    except TrialPruned:
        rundir.finish_meta(run_dir, "pruned")
        raise
    summary = {"run_dir": str(run_dir), "config": config.name, **summary}
    rundir.write_summary(run_dir, summary)
    rundir.finish_meta(run_dir, "completed")
    return run_dir, summary


def _check_resume(run_dir: Path, config, force: bool) -> Path:
    if not layout.is_run_dir(run_dir):
        raise CheckpointError(f"{run_dir}: not an nnctl run directory (no config.yaml/meta.json)")
    saved = layout.read_required(run_dir / layout.CONFIG_FILE)
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
    run_dir = Path(run_dir).expanduser()
    if not layout.is_run_dir(run_dir):
        raise CheckpointError(f"{run_dir}: not an nnctl run directory (no config.yaml/meta.json)")
    config = load_config(run_dir / layout.CONFIG_FILE)
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
