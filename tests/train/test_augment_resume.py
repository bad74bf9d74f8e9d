"""Augmented training in-process: training batches only, and a run stopped mid-epoch (by
SIGTERM, which checkpoints, or killed, which does not) resumes bit for bit."""

from __future__ import annotations

import signal

import numpy as np
import pytest

from nnctl.core import Conv2D, Dropout, FullyConnected, NeuralNetwork, Pool2D
from nnctl.core.optimizers import SGD
from nnctl.data import Augmenter, DataSpec, Preprocessor, Split, Splits
from nnctl.data.augment import black_value
from nnctl.errors import Interrupted
from nnctl.train.trainer import Trainer, TrainSettings

AUGMENT = [
    {"type": "random_crop", "pad": 1},
    {"type": "flip", "horizontal": True, "vertical": True, "p": 0.5},
    {"type": "random_erasing", "p": 0.5, "value": "random"},
    {"type": "gaussian_noise", "std": 0.1, "p": 0.5},
    {"type": "random_rotation", "degrees": 15},
]
STEPS_PER_EPOCH = 6  # 90 training images in batches of 16


def image_splits(augment=AUGMENT):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 255, size=(130, 6, 6, 1)).astype(np.float32)
    y = (X[:, :3].mean(axis=(1, 2, 3)) > X[:, 3:].mean(axis=(1, 2, 3))).astype(np.int64)
    prep = Preprocessor.fit(X[:90], "standard")
    X = prep.transform(X)
    spec = DataSpec("toy-images", (6, 6, 1), 2, "classification")
    augmenter = Augmenter.from_config(augment, black_value(prep)) if augment else None
    return Splits(
        Split(X[:90], y[:90]),
        Split(X[90:110], y[90:110]),
        Split(X[110:], y[110:]),
        spec,
        prep,
        augmenter,
    )


def make_trainer(run_dir, splits=None, epochs=3):
    layers = [
        Conv2D(4, 3, "relu"),
        Pool2D(2, "max", stride=2),
        Dropout(0.2),
        FullyConnected(2, "softmax"),
    ]
    net = NeuralNetwork(layers, "cross_entropy", seed=3, input_shape=(6, 6, 1))
    splits = splits or image_splits()
    settings = TrainSettings(epochs=epochs, batch_size=16, test_checkpoint="last")  # final weights
    return Trainer(net, SGD(lr=0.05, momentum=0.9), None, splits, settings, run_dir, seed=5)


class Killed(Exception):
    """Stands for SIGKILL: the process is gone, no checkpoint is written."""


class StopAt:
    """A reporter that, after global step ``step``, asks for a stop (``signum``) or dies."""

    def __init__(self, trainer, step, signum=None):
        self.trainer, self.step, self.signum = trainer, step, signum

    def start_epoch(self, *args):
        pass

    def batch(self, progress, n):
        if progress.step == self.step:
            if self.signum is None:
                raise Killed
            self.trainer.stop_signal = self.signum

    def end_epoch(self, row):
        pass


def assert_same_weights(a, b):
    wa, wb = a.network.state_dict(), b.network.state_dict()
    assert wa.keys() == wb.keys()
    for key in wa:
        assert np.array_equal(wa[key], wb[key]), key


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    trainer = make_trainer(tmp_path_factory.mktemp("straight"))
    trainer.fit()
    return trainer


def test_sigterm_mid_epoch_then_resume_is_bit_identical(straight, tmp_path):
    interrupted = make_trainer(tmp_path)
    interrupted.reporter = StopAt(interrupted, step=STEPS_PER_EPOCH + 4, signum=signal.SIGTERM)
    with pytest.raises(Interrupted):
        interrupted.fit()
    resumed = make_trainer(tmp_path)
    resumed.restore(tmp_path / "checkpoints" / "last.npz")
    assert (resumed.progress.epoch, resumed.progress.batch_in_epoch) == (1, 4)
    resumed.fit()
    assert_same_weights(straight, resumed)
    assert [r["train_loss"] for r in resumed.log.rows()] == [
        r["train_loss"] for r in straight.log.rows()
    ]


def test_killed_mid_epoch_then_resumed_from_the_epoch_checkpoint_is_bit_identical(
    straight, tmp_path
):
    killed = make_trainer(tmp_path)
    killed.reporter = StopAt(killed, step=2 * STEPS_PER_EPOCH + 3)  # inside epoch 3
    with pytest.raises(Killed):
        killed.fit()
    resumed = make_trainer(tmp_path)
    resumed.restore(tmp_path / "checkpoints" / "last.npz")  # written at the end of epoch 2
    assert (resumed.progress.epoch, resumed.progress.batch_in_epoch) == (2, 0)
    resumed.fit()
    assert_same_weights(straight, resumed)


def test_augmentation_changes_training(straight, tmp_path):
    plain = make_trainer(tmp_path, splits=image_splits(augment=None))
    plain.fit()
    weights = straight.network.state_dict()
    assert any(not np.array_equal(v, weights[k]) for k, v in plain.network.state_dict().items())


class Spy(Augmenter):
    """Records every batch it is given and what it made of it."""

    def __init__(self, augmenter):
        super().__init__(augmenter.augmentations)
        self.seen, self.made = [], []

    def __call__(self, X, rng):
        self.seen.append(X.copy())
        self.made.append(super().__call__(X, rng))
        return self.made[-1]


def test_only_training_batches_are_augmented(tmp_path):
    splits = image_splits()
    splits.augment = spy = Spy(splits.augment)
    trainer = make_trainer(tmp_path, splits=splits, epochs=2)
    summary = trainer.fit()
    assert len(spy.seen) == trainer.progress.step == 2 * STEPS_PER_EPOCH
    seen = np.concatenate(spy.seen)
    assert seen.shape == (2 * 90, 6, 6, 1)  # every training image twice, nothing else
    rows = {x.tobytes() for x in splits.train.X}
    assert all(x.tobytes() in rows for x in seen)
    assert summary["test"] is not None and trainer.log.rows()[-1]["val_loss"] is not None


def test_step_k_draws_from_a_generator_seeded_with_seed_3_k(tmp_path):
    """A function of the seed and the saved step only: why resume needs no extra state."""
    splits = image_splits()
    splits.augment = spy = Spy(splits.augment)
    make_trainer(tmp_path, splits=splits, epochs=2).fit()
    augmenter = image_splits().augment
    for step, (X, made) in enumerate(zip(spy.seen, spy.made)):
        assert np.array_equal(made, augmenter(X, np.random.default_rng([5, 3, step]))), step
