"""Training with the batch split (``nnctl.core.parallel``): deterministic run to run,
bit-identical after an interrupted run resumes, and the unsplit run's numbers to rounding."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from nnctl.core import Dropout, FullyConnected, NeuralNetwork
from nnctl.core.optimizers import Adam
from nnctl.data import DataSpec, Preprocessor, Split, Splits
from nnctl.errors import Interrupted
from nnctl.train.timing import time_network
from nnctl.train.trainer import Trainer, TrainSettings


def make_splits(n=150, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    spec = DataSpec("toy", (6,), 3, "classification")
    return Splits(Split(X[:110], y[:110]), Split(X[110:130], y[110:130]),
                  Split(X[130:], y[130:]), spec, Preprocessor.fit(X, "none"))  # fmt: skip


def make_trainer(run_dir, threads=2, dtype="float32"):
    layers = [FullyConnected(12, "relu"), Dropout(0.3), FullyConnected(3, "softmax")]
    net = NeuralNetwork(layers, "cross_entropy", seed=3, dtype=dtype, input_shape=(6,))
    net.threads, net.split_min_values = threads, 0  # split even this small network
    settings = TrainSettings(epochs=3, batch_size=15)  # 8 batches, the last of 5: odd parts
    return Trainer(net, Adam(lr=0.05), None, make_splits(), settings, run_dir, seed=5)


class StopAt:
    """A reporter that asks the trainer to stop after a given global step."""

    def __init__(self, trainer, step):
        self.trainer, self.step = trainer, step

    def start_epoch(self, *args):
        pass

    def batch(self, progress, n):
        if progress.step == self.step:
            self.trainer.stop_signal = signal.SIGTERM

    def end_epoch(self, row):
        pass


def assert_same_weights(a, b):
    expected = a.network.state_dict()
    for key, value in b.network.state_dict().items():
        np.testing.assert_array_equal(value, expected[key], err_msg=key)


def test_split_training_is_deterministic_and_resumes_bit_identically(tmp_path):
    straight = make_trainer(tmp_path / "a")
    summary = straight.fit()
    assert straight.network._split is not None  # the split ran
    again = make_trainer(tmp_path / "b")
    assert again.fit()["test"] == summary["test"]
    assert_same_weights(straight, again)
    interrupted = make_trainer(tmp_path / "c")
    interrupted.reporter = StopAt(interrupted, step=11)  # inside epoch 2
    with pytest.raises(Interrupted):
        interrupted.fit()
    resumed = make_trainer(tmp_path / "c")
    resumed.restore(tmp_path / "c" / "checkpoints" / "last.npz")
    assert resumed.fit()["test"] == summary["test"]
    assert_same_weights(straight, resumed)
    assert resumed.network.rng.bit_generator.state == straight.network.rng.bit_generator.state


def test_split_training_follows_the_unsplit_run_to_rounding(tmp_path):
    split = make_trainer(tmp_path / "a", threads=2, dtype="float64")
    whole = make_trainer(tmp_path / "b", threads=1, dtype="float64")
    split.fit(), whole.fit()
    assert whole.network._split is None
    expected = whole.network.state_dict()
    for key, value in split.network.state_dict().items():
        np.testing.assert_allclose(value, expected[key], rtol=1e-9, atol=1e-12, err_msg=key)
    assert split.network.rng.bit_generator.state == whole.network.rng.bit_generator.state


def test_nnctl_time_times_the_layers_unsplit_and_keeps_the_setting(tmp_path):
    net = make_trainer(tmp_path).network
    spec = DataSpec("toy", (6,), 3, "classification")
    report = time_network(net, spec, batch_size=32, iterations=2, warmup=1)
    assert all(layer.forward_ms > 0 for layer in report.layers)  # the network's own layers ran
    assert net.threads == 2 and net._split is not None  # the step times ran split
