"""Where a run's metrics go besides its own files: ``train.loggers``.

A logger is a small class in the ``LOGGERS`` registry (its constructor arguments are its
config keys, as for every component) that hears four things::

    prepare()                   before the run directory exists: the extra is installed,
                                the destination can be reached (else a one-line error)
    start(run)                  the run (``RunInfo``) starts or resumes at ``run.step``
    log_step(step, values)      every ``log_every`` training steps: {"train_loss", "lr"}
    log_epoch(row)              each epoch's row, as metrics.jsonl has it
    finish(status, summary)     completed | interrupted | diverged | pruned | failed

``metrics.jsonl`` and ``metrics.csv`` are the run's own record (resume, ``nnctl runs`` and
``nnctl plot`` read them): the trainer writes them for every run, and the ``csv`` logger
only names them. ``LoggerSet`` fans the trainer's events out to the loggers of a config
(it is one of the trainer's ``callbacks``). The libraries (tensorboardX, MLflow) are
imported by ``prepare``, never at import time, so configs are checked without them.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nnctl.errors import LoggerError, run_status
from nnctl.registry import Registry

LOGGERS = Registry("logger")


@dataclass(frozen=True)
class RunInfo:
    """What a logger knows of the run it records."""

    run_dir: Path
    name: str  # the config's name (digits-mlp)
    config: dict  # the resolved config
    step: int = 0  # the step training starts from (0, or the restored checkpoint's)
    resumed: bool = False


class Logger:
    """Base class: every event is ignored unless a subclass records it."""

    type_name = "logger"
    #: Training steps between two ``log_step`` calls; None: epochs only.
    log_every: int | None = None

    def get_config(self) -> dict:
        return {"type": self.type_name}

    def prepare(self) -> None:
        """Check, before the run directory exists, that this logger can work."""

    def start(self, run: RunInfo) -> None:
        """The run starts (``run.step`` 0) or resumes (at ``run.step``)."""

    def log_step(self, step: int, values: dict) -> None:
        """``values`` of training step ``step`` (1-based): ``train_loss``, ``lr``."""

    def log_epoch(self, row: dict) -> None:
        """One epoch's row: epoch, step, lr, train/val loss and accuracy, seconds, ..."""

    def finish(self, status: str, summary: dict | None) -> None:
        """The session ends: ``completed`` (with the summary), ``interrupted``,
        ``diverged`` or ``failed``."""


def require(module: str, extra: str, what: str):
    """Import ``module`` or raise LoggerError naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise LoggerError(
            f"the {what} logger needs {module}: pip install 'nnctl[{extra}]'"
        ) from None


class LoggerSet:
    """The loggers of one run; the trainer calls ``on_step`` and ``on_epoch_end``.

    A logger that fails after training has started is switched off with a warning on
    stderr: a tracking server that goes away at epoch 7 does not stop the training (its
    metrics are still in metrics.jsonl).
    """

    def __init__(self, loggers: list[Logger], warn=None):
        self.loggers = list(loggers)
        self.stepped = [lg for lg in self.loggers if lg.log_every]
        self.summary: dict | None = None  # set by the body of ``session`` on completion
        self.warn = warn or (lambda text: print(f"warning: {text}", file=sys.stderr, flush=True))

    @classmethod
    def from_specs(cls, specs, warn=None) -> LoggerSet:
        """The loggers of resolved ``train.loggers`` entries (a name or ``{type: ...}``)."""
        loggers = []
        for spec in specs or ():
            kwargs = {"type": spec} if isinstance(spec, str) else dict(spec)
            loggers.append(LOGGERS.get(kwargs.pop("type"))(**kwargs))
        return cls(loggers, warn)

    def prepare(self) -> None:
        for logger in self.loggers:
            logger.prepare()

    @contextmanager
    def session(self, run: RunInfo):
        """Start the loggers, run the body, finish them with its outcome.

        The body sets ``self.summary`` when the run completes."""
        for logger in self.loggers:
            logger.start(run)
        try:
            yield self
        except BaseException as error:
            self._each("finish", run_status(error), None)
            raise
        self._each("finish", "completed", self.summary)

    # --- the trainer's callbacks ----------------------------------------------------
    def on_step(self, step: int, values: dict) -> None:
        for logger in self.stepped:
            if step % logger.log_every == 0:
                self._call(logger, "log_step", step, values)

    def on_epoch_end(self, row: dict) -> None:
        self._each("log_epoch", row)

    def _each(self, event: str, *args) -> None:
        for logger in list(self.loggers):
            self._call(logger, event, *args)

    def _call(self, logger: Logger, event: str, *args) -> None:
        try:
            getattr(logger, event)(*args)
        except LoggerError as error:
            self.warn(f"{error}; {logger.type_name} logging stopped, training goes on")
            self.loggers.remove(logger)
            if logger in self.stepped:
                self.stepped.remove(logger)


# Registration happens where each logger is defined.
from nnctl.loggers import csv, mlflow, tensorboard  # noqa: F401

__all__ = ["LOGGERS", "Logger", "LoggerSet", "RunInfo", "require"]
