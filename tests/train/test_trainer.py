"""The training loop in-process: exact resume, divergence, callbacks, checkpoints."""

from __future__ import annotations

import math
import signal

import numpy as np
import pytest

from nnctl.core import BatchNorm, Dropout, FullyConnected, NeuralNetwork, Residual
from nnctl.core.optimizers import SGD, Adam
from nnctl.core.schedules import Exponential
from nnctl.data import DataSpec, Preprocessor, Split, Splits
from nnctl.errors import DivergedError, Interrupted
from nnctl.train.checkpoint import load_checkpoint
from nnctl.train.trainer import Trainer, TrainSettings


def make_splits(n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    spec = DataSpec("toy", (6,), 3, "classification")
    prep = Preprocessor.fit(X, "none")
    return Splits(Split(X[:80], y[:80]), Split(X[80:100], y[80:100]),
                  Split(X[100:], y[100:]), spec, prep)  # fmt: skip


def make_trainer(run_dir, lr=0.05, optimizer=None, **settings):
    net = NeuralNetwork([FullyConnected(8, "relu"), Dropout(0.2), FullyConnected(3, "softmax")],
                        "cross_entropy", seed=3, input_shape=(6,))  # fmt: skip
    opt = optimizer or Adam(lr=lr)
    schedule = Exponential(lr_decay=0.5, stage_length=2, staircase=True)
    options = {"epochs": 4, "batch_size": 16, **settings}
    return Trainer(net, opt, schedule, make_splits(), TrainSettings(**options), run_dir, seed=5)


class StopAt:
    """A reporter that raises a stop signal at a given global step."""

    def __init__(self, trainer, step, signum=signal.SIGTERM):
        self.trainer, self.step, self.signum = trainer, step, signum

    def start_epoch(self, *args):
        pass

    def batch(self, progress, n):
        if progress.step == self.step:
            self.trainer.stop_signal = self.signum

    def end_epoch(self, row):
        pass


def weights(trainer):
    return trainer.network.state_dict()


def test_interrupted_and_resumed_run_is_bit_identical(tmp_path):
    straight = make_trainer(tmp_path / "a")
    summary_a = straight.fit()
    interrupted = make_trainer(tmp_path / "b")
    interrupted.reporter = StopAt(interrupted, step=13)  # inside epoch 3 (5 batches/epoch)
    with pytest.raises(Interrupted) as info:
        interrupted.fit()
    assert info.value.exit_code == 143 and "nnctl resume" in str(info.value)
    resumed = make_trainer(tmp_path / "b")
    resumed.restore(tmp_path / "b" / "checkpoints" / "last.npz")
    assert resumed.progress.step == 13 and resumed.progress.batch_in_epoch == 3
    summary_b = resumed.fit()
    for key, value in weights(straight).items():
        assert np.array_equal(value, weights(resumed)[key]), key
    assert summary_a["test"] == summary_b["test"]
    assert straight.log.rows() == [
        {**row, "seconds": r2["seconds"], "samples_per_s": r2["samples_per_s"]}
        for row, r2 in zip(resumed.log.rows(), straight.log.rows())
    ]


def test_resume_from_epoch_end_is_bit_identical(tmp_path):
    straight = make_trainer(tmp_path / "a")
    straight.fit()
    first = make_trainer(tmp_path / "b", epochs=2)
    first.fit()
    second = make_trainer(tmp_path / "b")
    second.restore(tmp_path / "b" / "checkpoints" / "last.npz")
    second.fit()
    for key, value in weights(straight).items():
        assert np.array_equal(value, weights(second)[key]), key
    assert [r["epoch"] for r in second.log.rows()] == [1, 2, 3, 4]


class Overflow:
    """A reporter that keeps the weights after every applied step and, once the first epoch
    (and its checkpoint) is done, sets a learning rate that makes training diverge."""

    def __init__(self, trainer):
        self.trainer, self.after_step, self.after_epoch = trainer, None, None

    def start_epoch(self, *args):
        pass

    def batch(self, progress, n):
        self.after_step = weights(self.trainer)

    def end_epoch(self, row):
        self.after_epoch = weights(self.trainer)
        self.trainer.base_lr = 1e30


def test_divergence_stops_before_the_update_and_keeps_the_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, optimizer=SGD(lr=0.05), epochs=5)
    trainer.reporter = spy = Overflow(trainer)
    with pytest.raises(DivergedError) as info:
        trainer.fit()
    assert info.value.exit_code == 3
    message = str(info.value)
    last = tmp_path / "checkpoints" / "last.npz"
    assert "at epoch 2, step" in message and "clip_norm" in message
    assert f"the last good checkpoint is {last}" in message
    for key, value in weights(trainer).items():  # the bad update was not applied
        assert np.array_equal(value, spy.after_step[key]), key
    arrays, meta = load_checkpoint(last)
    assert meta["progress"]["epoch"] == 1
    for key, value in spy.after_epoch.items():
        assert np.array_equal(arrays[f"model/{key}"], value), key


def test_schedule_staircase_is_applied_per_epoch(tmp_path):
    trainer = make_trainer(tmp_path)
    trainer.fit()
    lrs = [row["lr"] for row in trainer.log.rows()]
    assert lrs == [0.05, 0.05, 0.025, 0.025]


def test_early_stopping_and_best_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, lr=1e-6, epochs=30, keep="all",
                           early_stopping={"monitor": "val_loss", "patience": 2,
                                           "min_delta": 10.0})  # fmt: skip
    summary = trainer.fit()
    assert summary["stopped_early"] and summary["epochs"] == 3
    assert summary["checkpoint"] == "checkpoints/best.npz"
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["best.npz", "epoch-0001.npz", "epoch-0002.npz", "epoch-0003.npz", "last.npz"]
    arrays, meta = load_checkpoint(tmp_path / "checkpoints" / "best.npz")
    assert meta["progress"]["epoch"] == summary["best_epoch"] and "model/layers.0.W" in arrays
    best_row = trainer.log.rows()[summary["best_epoch"] - 1]
    assert best_row["val_loss"] == min(row["val_loss"] for row in trainer.log.rows())


def test_reduce_lr_on_plateau(tmp_path):
    trainer = make_trainer(tmp_path, lr=1e-6, epochs=4,
                           reduce_lr_on_plateau={"patience": 1, "factor": 0.5,
                                                 "min_delta": 10.0})  # fmt: skip
    trainer.schedule = None
    trainer.fit()
    assert [row["lr"] for row in trainer.log.rows()] == [1e-6, 1e-6, 5e-7, 2.5e-7]


def test_reduce_lr_on_plateau_scales_the_schedule_and_never_raises_it(tmp_path):
    # The schedule halves 0.05 every two epochs; every epoch after the first is a plateau.
    trainer = make_trainer(tmp_path, epochs=6,
                           reduce_lr_on_plateau={"patience": 1, "factor": 0.5,
                                                 "min_delta": 10.0, "min_lr": 0.02})  # fmt: skip
    trainer.fit()
    lrs = [row["lr"] for row in trainer.log.rows()]
    # epochs 3-4: 0.025 scaled below min_lr is floored at 0.02; epochs 5-6: the scheduled
    # 0.0125 is already below min_lr and stays there
    assert lrs == [0.05, 0.05, 0.02, 0.02, 0.0125, 0.0125]


PLATEAU = {"patience": 1, "factor": 0.5, "min_delta": 0.05, "cooldown": 1}


@pytest.mark.parametrize("stop_step", [13, 18])  # before the first reduction; in cooldown
def test_resume_with_reduce_lr_on_plateau_is_bit_identical(tmp_path, stop_step):
    straight = make_trainer(tmp_path / "a", epochs=6, reduce_lr_on_plateau=PLATEAU)
    straight.fit()
    interrupted = make_trainer(tmp_path / "b", epochs=6, reduce_lr_on_plateau=PLATEAU)
    interrupted.reporter = StopAt(interrupted, step=stop_step)
    with pytest.raises(Interrupted):
        interrupted.fit()
    resumed = make_trainer(tmp_path / "b", epochs=6, reduce_lr_on_plateau=PLATEAU)
    resumed.restore(tmp_path / "b" / "checkpoints" / "last.npz")
    resumed.fit()
    assert resumed.plateau.state() == straight.plateau.state()
    lrs = [row["lr"] for row in straight.log.rows()]
    assert [row["lr"] for row in resumed.log.rows()] == lrs
    scheduled = [straight.schedule.lr_at(straight.base_lr, epoch) for epoch in range(6)]
    assert lrs != scheduled  # the callback did reduce the rate, before the stop or after it
    for key, value in weights(straight).items():
        assert np.array_equal(value, weights(resumed)[key]), key


def test_the_gradient_norm_is_computed_once_per_step(tmp_path, monkeypatch):
    import nnctl.train.trainer as trainer_module
    from nnctl.core import optimizers

    calls, real = [], optimizers.grad_norm

    def counting(params):
        calls.append(1)
        return real(params)

    monkeypatch.setattr(trainer_module, "grad_norm", counting)
    monkeypatch.setattr(optimizers, "grad_norm", counting)
    trainer = make_trainer(tmp_path, epochs=1, optimizer=Adam(lr=0.01, clip_norm=0.1))
    trainer.fit()
    assert trainer.progress.step == 5 and len(calls) == 5


def test_metrics_rows_have_the_documented_columns(tmp_path):
    trainer = make_trainer(tmp_path, epochs=1)
    trainer.fit()
    row = trainer.log.rows()[0]
    assert set(row) == {"epoch", "step", "lr", "train_loss", "train_accuracy", "val_loss",
                        "val_accuracy", "seconds", "samples_per_s"}  # fmt: skip
    assert row["step"] == 5 and 0 <= row["val_accuracy"] <= 1 and math.isfinite(row["val_loss"])
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,step,lr,train_loss")


def make_bn_trainer(run_dir):
    """Batch normalization inside a residual block: running statistics must resume too."""
    layers = [
        FullyConnected(8, "relu"),
        Residual([BatchNorm(momentum=0.8), FullyConnected(8, "tanh"), Dropout(0.2)]),
        BatchNorm(),
        FullyConnected(3, "softmax"),
    ]
    loss = {"type": "cross_entropy", "label_smoothing": 0.1, "class_weights": [1.0, 2.0, 3.0]}
    net = NeuralNetwork(layers, loss, seed=3, input_shape=(6,))
    settings = TrainSettings(epochs=4, batch_size=16)
    return Trainer(net, Adam(lr=0.05), None, make_splits(), settings, run_dir, seed=5)


def test_batch_norm_statistics_resume_bit_identically(tmp_path):
    straight = make_bn_trainer(tmp_path / "a")
    straight.fit()
    interrupted = make_bn_trainer(tmp_path / "b")
    interrupted.reporter = StopAt(interrupted, step=13)
    with pytest.raises(Interrupted):
        interrupted.fit()
    resumed = make_bn_trainer(tmp_path / "b")
    resumed.restore(tmp_path / "b" / "checkpoints" / "last.npz")
    resumed.fit()
    expected = weights(straight)
    assert "layers.1.0.running_var" in expected and "layers.2.running_mean" in expected
    assert not np.array_equal(expected["layers.2.running_var"], np.ones(8, np.float32))
    for key, value in weights(resumed).items():
        assert np.array_equal(value, expected[key]), key


class CountBatches:
    """A reporter that records the size of every batch and the announced totals."""

    def __init__(self):
        self.sizes, self.totals = [], []

    def start_epoch(self, epoch, total, done=0):
        self.totals.append(total)

    def batch(self, progress, n):
        self.sizes.append(n)

    def end_epoch(self, row):
        pass


@pytest.mark.parametrize("batch_size, dropped", [(79, True), (16, False), (40, False)])
def test_a_trailing_batch_of_one_is_dropped_only_with_batch_norm_on_vectors(
    tmp_path, batch_size, dropped
):
    """80 training examples: with batches of 79 the last holds one example, which batch
    normalization of vectors cannot train on; it is dropped (a different example each epoch),
    and resume stays exact."""
    trainer = make_bn_trainer(tmp_path / "a")
    trainer.settings.batch_size, trainer.settings.epochs = batch_size, 2
    trainer.reporter = counter = CountBatches()
    trainer.fit()
    per_epoch = -(-80 // batch_size) - dropped
    assert counter.totals == [per_epoch, per_epoch] and len(counter.sizes) == 2 * per_epoch
    assert (1 in counter.sizes) is False
    assert trainer.progress.step == 2 * per_epoch
    plain = make_trainer(tmp_path / "b", batch_size=79, epochs=1)  # no batch norm: kept
    plain.reporter = counter = CountBatches()
    plain.fit()
    assert counter.sizes == [79, 1]


def test_resume_after_a_dropped_batch_is_bit_identical(tmp_path):
    def trainer(run_dir):
        t = make_bn_trainer(run_dir)
        t.settings.batch_size = 79
        return t

    straight = trainer(tmp_path / "a")
    straight.fit()
    interrupted = trainer(tmp_path / "b")
    interrupted.reporter = StopAt(interrupted, step=2)  # after epoch 2's only batch
    with pytest.raises(Interrupted):
        interrupted.fit()
    resumed = trainer(tmp_path / "b")
    resumed.restore(tmp_path / "b" / "checkpoints" / "last.npz")
    resumed.fit()
    assert resumed.progress.step == straight.progress.step == 4
    for key, value in weights(resumed).items():
        assert np.array_equal(value, weights(straight)[key]), key
