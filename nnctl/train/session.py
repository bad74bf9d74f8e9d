"""A training session's parts: what is ready before its run directory is touched
(``Session``), and how SIGINT/SIGTERM stop it (``StopSignals``)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from nnctl import data as datamod
from nnctl.config import build
from nnctl.config.build import resolve_class_weights
from nnctl.errors import Interrupted
from nnctl.loggers import LoggerSet
from nnctl.signals import handling_stop_signals
from nnctl.train.finetune import init_from
from nnctl.train.report import Reporter
from nnctl.train.trainer import Trainer, TrainSettings


@dataclass
class EpochSaved:
    """A callable as the trainer's ``on_epoch_saved`` callback."""

    on_epoch_saved: Callable[[dict], None]


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
    """What a training needs before its run directory is touched: the config (with
    ``class_weights: balanced`` resolved from the training labels), its loggers (prepared:
    a missing extra or an unreachable server fails here), the loaded data, the built network
    and optimizer, and the settings of the loop."""

    config: object
    experiment: object
    splits: object
    settings: TrainSettings
    loggers: LoggerSet
    callbacks: list = field(default_factory=list)

    @classmethod
    def prepare(cls, config, callbacks=()) -> Session:
        loggers = LoggerSet.from_specs(config.data["train"]["loggers"])
        loggers.prepare()
        splits = datamod.load(config.data["data"], seed=config.data.get("seed", 0))
        config = resolve_class_weights(config, splits.train.y, splits.spec.n_classes)
        experiment = build(config)
        settings = TrainSettings.from_config(config.data)
        return cls(config, experiment, splits, settings, loggers, list(callbacks))

    def init_weights(self, reporter: Reporter) -> None:
        """Copy ``model.init_from``'s weights into the new network (fine-tuning)."""
        source = self.config.data["model"].get("init_from")
        if source:
            reporter.message(init_from(self.experiment.network, source).describe())

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
            callbacks=[self.loggers, *self.callbacks],
        )
        trainer.extra_meta = {"config": config.data}
        return trainer
