"""The training loop: batches, updates, validation, callbacks, checkpoints, exact resume.

Everything that decides what happens next (weights, optimizer moments, callback state,
both random generators, the position inside the epoch and the running sums of the
epoch) goes into every checkpoint, so a run resumed from a checkpoint is
bit-for-bit the run that never stopped. Training batches are augmented (``data.augment``)
with a generator seeded from ``[seed, 3, step]``, a function of the saved step, so the
augmentation needs no state of its own.
"""

from __future__ import annotations

import math
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nnctl import layout
from nnctl.core.optimizers import grad_norm
from nnctl.data import batch_count, iterate_batches
from nnctl.errors import CheckpointError, DivergedError, Interrupted
from nnctl.train.callbacks import EarlyStopping, ReduceLROnPlateau, Tracker
from nnctl.train.checkpoint import (
    load_checkpoint,
    loading,
    rng_from_arrays,
    rng_to_arrays,
    save_checkpoint,
    spec_to_meta,
    split_prefix,
    with_prefix,
)
from nnctl.train.evaluate import evaluate, targets_for
from nnctl.train.logs import MetricsLog
from nnctl.train.metrics import HITS
from nnctl.train.prefetch import prefetch


@dataclass
class Progress:
    """Where training stands; saved in every checkpoint's metadata."""

    epoch: int = 0  # completed epochs
    step: int = 0  # completed iterations
    batch_in_epoch: int = 0  # batches done in the unfinished epoch
    loss_sum: float = 0.0  # running sums of the unfinished epoch
    correct: int = 0
    seen: int = 0
    seconds: float = 0.0
    wall_time: float = 0.0  # seconds spent training, over all sessions
    stopped_early: bool = False
    lr: float = 0.0

    def start_epoch(self) -> None:
        self.batch_in_epoch, self.loss_sum, self.correct, self.seen, self.seconds = (
            0,
            0.0,
            0,
            0,
            0.0,
        )


@dataclass
class TrainSettings:
    """The ``train:`` section and the data options the loop needs."""

    epochs: int
    batch_size: int
    shuffle: bool = True
    checkpoint_every: int = 1
    keep: str = "last"  # last | best | all
    monitor: str = "val_loss"
    monitor_mode: str = "auto"
    test_checkpoint: str = "best"  # best | last
    early_stopping: dict | None = None
    reduce_lr_on_plateau: dict | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict) -> TrainSettings:
        train, data = config["train"], config["data"]
        checkpoint = train.get("checkpoint") or {}
        return cls(
            epochs=train["epochs"],
            batch_size=data["batch_size"],
            shuffle=data.get("shuffle", True),
            checkpoint_every=checkpoint.get("every", 1),
            keep=checkpoint.get("keep", "last"),
            monitor=checkpoint.get("monitor", "val_loss"),
            monitor_mode=checkpoint.get("mode", "auto"),
            test_checkpoint=train.get("test_checkpoint", "best"),
            early_stopping=train.get("early_stopping"),
            reduce_lr_on_plateau=train.get("reduce_lr_on_plateau"),
        )


class Trainer:
    """Trains ``network`` on ``splits`` with ``optimizer`` and an optional ``schedule``.

    Parameters
    ----------
    network, optimizer, schedule : core objects (schedule may be None)
    splits : nnctl.data.Splits
        ``train`` (required), ``validation`` and ``test`` (optional), ``spec``, ``preprocess``.
    settings : TrainSettings
    run_dir : Path
        Where checkpoints and logs go (``checkpoints/``, ``metrics.jsonl``, ``metrics.csv``).
    seed : int
        Seeds the batch order and the augmentation draws.
    reporter : object with ``start_epoch(epoch, total_batches)``, ``batch(...)``,
        ``end_epoch(row)``; see ``nnctl.train.report``.
    callbacks : sequence of objects with any of ``on_step(step, values)`` (after every
        update: ``{"train_loss", "lr"}``), ``on_epoch_end(row)`` (each epoch's metrics row, as
        it is logged, before checkpoints; e.g. ``nnctl.loggers.LoggerSet``) and
        ``on_epoch_saved(row)`` (once the epoch is checkpointed, as ``checkpoint.every`` says;
        it may raise to stop training: a sweep's scheduler raises TrialPruned).
    """

    def __init__(self, network, optimizer, schedule, splits, settings: TrainSettings,
                 run_dir: Path, seed: int, config_hash: str = "", reporter=None,
                 callbacks=()):  # fmt: skip
        self.network, self.optimizer, self.schedule = network, optimizer, schedule
        self.splits, self.settings, self.run_dir = splits, settings, Path(run_dir)
        self.spec = splits.spec
        self.config_hash = config_hash
        self.reporter = reporter
        self.callbacks = list(callbacks)
        self.base_lr = optimizer.base_lr
        self.shuffle_rng = np.random.default_rng([seed, 2])
        self.seed = seed
        self.epoch_start_state = self.shuffle_rng.bit_generator.state
        self.progress = Progress(lr=self.base_lr)
        self.tracker = Tracker(settings.monitor, settings.monitor_mode)
        self.early = EarlyStopping(**settings.early_stopping) if settings.early_stopping else None
        plateau = settings.reduce_lr_on_plateau
        self.plateau = ReduceLROnPlateau(**plateau) if plateau else None
        self.log = MetricsLog(self.run_dir)
        self.checkpoint_dir = self.run_dir / layout.CHECKPOINT_DIR
        self.stop_signal: int | None = None  # set by a signal handler
        self.extra_meta: dict = {}  # stored in every checkpoint (the resolved config)

    # --- the loop ---------------------------------------------------------------
    def fit(self) -> dict:
        """Train until ``epochs`` or early stopping; return the summary (also test metrics)."""
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        while self.progress.epoch < self.settings.epochs and not self.progress.stopped_early:
            self._run_epoch()
        self._save(layout.LAST_CHECKPOINT)
        return self._finish()

    def _run_epoch(self) -> None:
        p, train = self.progress, self.splits.train
        if p.batch_in_epoch == 0:
            self.epoch_start_state = self.shuffle_rng.bit_generator.state
        else:  # resuming inside an epoch: replay the same permutation
            self.shuffle_rng.bit_generator.state = self.epoch_start_state
        # batch norm of vectors cannot train on one example: such a last batch is dropped
        least = self.network.min_training_batch(self.spec.input_shape)
        batches = iterate_batches(
            len(train),
            self.settings.batch_size,
            self.shuffle_rng,
            shuffle=self.settings.shuffle,
            start_batch=p.batch_in_epoch,
            min_batch=least,
        )
        total = batch_count(len(train), self.settings.batch_size, least)
        self._report("start_epoch", p.epoch + 1, total, p.batch_in_epoch)
        network = self.network.train()
        for X, y, targets in prefetch(enumerate(batches, start=p.step), self._batch):
            started = time.perf_counter()
            with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported below
                self._step(X, y, targets)
            elapsed = time.perf_counter() - started
            p.seconds += elapsed
            p.wall_time += elapsed
            self._report("batch", p, len(y))
            if self.stop_signal is not None:
                self._interrupt()
        self._end_epoch(network)

    def _batch(self, item: tuple[int, np.ndarray]) -> tuple[np.ndarray, ...]:
        """(X augmented, y, network targets) of the batch ``item = (step, rows)``, prepared
        one batch ahead on a worker thread (``prefetch``): a pure function of the step and
        the rows, so a resumed run prepares what the uninterrupted one did."""
        step, rows = item
        X, y = self.splits.train.X[rows], self.splits.train.y[rows]
        if self.splits.augment is not None:  # a generator of its own per step
            X = self.splits.augment(X, np.random.default_rng([self.seed, 3, step]))
        return X, y, targets_for(y, self.spec, self.network.dtype)

    def _step(self, X: np.ndarray, y: np.ndarray, targets: np.ndarray) -> None:
        p, network = self.progress, self.network
        lr = self._learning_rate()
        out = network.forward(X)
        loss = network.backward(targets, out)
        params = network.trainable_param_grads()
        norm = grad_norm(params)  # once: the divergence check must come before the update
        if not (math.isfinite(loss) and math.isfinite(norm)):
            self._diverged(loss)
        self.optimizer.lr = lr
        self.optimizer.step(params, norm=norm)
        p.lr, p.step, p.batch_in_epoch = lr, p.step + 1, p.batch_in_epoch + 1
        p.loss_sum += loss * len(X)
        p.seen += len(X)
        if self.spec.task in HITS:
            p.correct += HITS[self.spec.task](out, y)
        self._notify("on_step", p.step, {"train_loss": float(loss), "lr": lr})

    def _learning_rate(self) -> float:
        lr = self.base_lr
        if self.schedule is not None:
            unit = getattr(self.schedule, "unit", "epoch")
            position = self.progress.epoch if unit == "epoch" else self.progress.step
            lr = self.schedule.lr_at(self.base_lr, position)
        return self.plateau.apply(lr) if self.plateau else lr

    def _end_epoch(self, network) -> None:
        p = self.progress
        row = self._epoch_row()
        # the next epoch's permutation starts from here; checkpoints record this state
        self.epoch_start_state = self.shuffle_rng.bit_generator.state
        p.epoch += 1
        p.start_epoch()
        self.log.append(row)
        self._report("end_epoch", row)
        self._notify("on_epoch_end", row)
        if self.plateau:
            self.plateau.update(row)
        improved = self.tracker.update(row)
        if self.early:
            self.early.update(row)
            p.stopped_early = self.early.should_stop
            if self._stop_reason():
                self._report(
                    "message",
                    f"early stopping: {self._stop_reason()}; stopped after "
                    f"epoch {p.epoch} of {self.settings.epochs}",
                )
        if improved and (self.settings.keep in ("best", "all")
                         or self.settings.test_checkpoint == "best"):  # fmt: skip
            self._save(layout.BEST_CHECKPOINT)
        if p.epoch % self.settings.checkpoint_every == 0 or p.stopped_early:
            self._save(layout.LAST_CHECKPOINT)
            if self.settings.keep == "all":
                self._save(layout.epoch_checkpoint(p.epoch))
        self._notify("on_epoch_saved", row)

    def _epoch_row(self) -> dict:
        p = self.progress
        row = {
            "epoch": p.epoch + 1,
            "step": p.step,
            "lr": p.lr,
            "train_loss": p.loss_sum / max(p.seen, 1),
            "train_accuracy": p.correct / max(p.seen, 1) if self.spec.task in HITS else None,
            "val_loss": None,
            "val_accuracy": None,
        }  # fmt: skip
        if self.splits.validation is not None:
            result = evaluate(self.network, self.splits.validation, self.spec)
            row["val_loss"], row["val_accuracy"] = result["loss"], result.get("accuracy")
        row["seconds"] = round(p.seconds, 4)
        row["samples_per_s"] = round(p.seen / p.seconds, 1) if p.seconds > 0 else None
        return row

    # --- stopping -------------------------------------------------------------------
    def _diverged(self, loss: float) -> None:
        p = self.progress
        what = f"loss {loss}" if not math.isfinite(loss) else "gradient norm inf/nan"
        last = self.checkpoint_dir / layout.LAST_CHECKPOINT
        kept = f"; the last good checkpoint is {last}" if last.exists() else ""
        raise DivergedError(
            f"training diverged ({what}) at epoch {p.epoch + 1}, step {p.step + 1}; the bad "
            f"update was not applied{kept}. Try a lower optimizer.lr or set optimizer.clip_norm"
        )

    def _interrupt(self) -> None:
        self._save(layout.LAST_CHECKPOINT)
        signum, p = self.stop_signal, self.progress
        raise Interrupted(
            f"interrupted at epoch {p.epoch + 1}, step {p.step}; checkpoint written. "
            f"Resume with: nnctl resume {shlex.quote(str(self.run_dir))}",
            signum,
        )

    def _stop_reason(self) -> str | None:
        """Why early stopping ended the run before its last epoch (None: it did not)."""
        p, e = self.progress, self.early
        if not (e and p.stopped_early and p.epoch < self.settings.epochs):
            return None
        best = f" on {e.best:.6g} (epoch {e.best_epoch})" if e.best is not None else ""
        return f"{e.monitor} did not improve{best} for {e.patience} epochs"

    def _finish(self) -> dict:
        use_best = self.settings.test_checkpoint == "best"
        best = self.checkpoint_dir / layout.BEST_CHECKPOINT
        checkpoint = (
            best if use_best and best.exists() else self.checkpoint_dir / layout.LAST_CHECKPOINT
        )
        arrays, _ = load_checkpoint(checkpoint)
        self.network.load_state_dict(split_prefix(arrays, "model"))
        summary = {
            "status": "completed",
            "epochs": self.progress.epoch,
            "steps": self.progress.step,
            "stopped_early": self.progress.stopped_early,
            "stop_reason": self._stop_reason(),
            "monitor": self.tracker.monitor,
            "best_epoch": self.tracker.best_epoch,
            "best": self._best_row(),
            "checkpoint": str(checkpoint.relative_to(self.run_dir)),
            "test": None,
            "train_seconds": round(self.progress.wall_time, 3),
        }
        if self.splits.test is not None:
            summary["test"] = evaluate(self.network, self.splits.test, self.spec)
        return summary

    def _best_row(self) -> dict | None:
        for row in self.log.rows():
            if row["epoch"] == self.tracker.best_epoch:
                return {k: v for k, v in row.items() if k.startswith(("val_", "train_"))}
        return None

    def _report(self, event: str, *args) -> None:
        handler = getattr(self.reporter, event, None)  # a reporter may listen to some events
        if handler is not None:
            handler(*args)

    def _notify(self, event: str, *args) -> None:
        """Call ``event`` on every callback that has it."""
        for callback in self.callbacks:
            method = getattr(callback, event, None)
            if method is not None:
                method(*args)

    # --- checkpoints ------------------------------------------------------------------
    def state(self) -> tuple[dict, dict]:
        """(arrays, meta) describing the whole training state."""
        epoch_rng = np.random.default_rng()
        epoch_rng.bit_generator.state = self.epoch_start_state
        arrays = {
            **with_prefix("model", self.network.state_dict()),
            **with_prefix("optim", self.optimizer.state_dict()),
            **with_prefix("prep", self.splits.preprocess.state_dict()),
            **with_prefix("rng/network", rng_to_arrays(self.network.rng)),
            **with_prefix("rng/epoch", rng_to_arrays(epoch_rng)),
        }
        meta = {
            "progress": vars(self.progress).copy(),
            "config_hash": self.config_hash,
            "base_lr": self.base_lr,
            "tracker": self.tracker.state(),
            "early_stopping": self.early.state() if self.early else None,
            "reduce_lr_on_plateau": self.plateau.state() if self.plateau else None,
            "data_spec": spec_to_meta(self.spec),
            **self.extra_meta,
        }
        return arrays, meta

    def _save(self, name: str) -> None:
        arrays, meta = self.state()
        save_checkpoint(self.checkpoint_dir / name, arrays, meta)

    def restore(self, path: Path) -> None:
        """Continue from the checkpoint at ``path`` (normally ``checkpoints/last.npz``)."""
        self.load_state(*load_checkpoint(path), path)

    def load_state(self, arrays: dict, meta: dict, source: Path) -> None:
        """Continue from the ``(arrays, meta)`` of the checkpoint at ``source`` (named by a
        failure to restore them); the metrics logs are cut to the epochs it has seen (a
        partial last line, left by a crash, is dropped with a warning)."""
        with loading(source):
            self._restore(arrays, meta)
        try:
            repaired = self.log.keep_until(self.progress.epoch)
        except ValueError as error:
            raise CheckpointError(f"{self.log.jsonl}: malformed ({error})") from None
        if repaired:
            self._report("warning", repaired)

    def _restore(self, arrays: dict, meta: dict) -> None:
        self.network.load_state_dict(split_prefix(arrays, "model"))
        self.optimizer.load_state_dict(split_prefix(arrays, "optim"))
        rng_from_arrays(split_prefix(arrays, "rng/network"), self.network.rng)
        epoch_rng = np.random.default_rng()
        rng_from_arrays(split_prefix(arrays, "rng/epoch"), epoch_rng)
        self.epoch_start_state = epoch_rng.bit_generator.state
        self.shuffle_rng.bit_generator.state = self.epoch_start_state
        self.progress = Progress(**meta["progress"])
        self.tracker.load_state(meta["tracker"])
        if self.early and meta.get("early_stopping"):
            self.early.load_state(meta["early_stopping"])
        if self.plateau and meta.get("reduce_lr_on_plateau"):
            self.plateau.load_state(meta["reduce_lr_on_plateau"])
