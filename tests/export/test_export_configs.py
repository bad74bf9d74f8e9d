"""The network of every example config in configs/, trained briefly, exported by the real
``nnctl export``: onnxruntime on the raw test images gives ``nnctl predict``'s
probabilities (max abs difference <= 1e-5 in float32).

Each network is trained for one epoch on the first examples of its data set, through the
trainer, with the preprocessing statistics of the whole training part (as a full run has),
so the test stays quick for the MNIST networks; a data set that is not available (Fashion-
MNIST not downloaded) skips its config.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import onnx
from export_helpers import TOL, nnctl, run_onnx

from nnctl import data as datamod
from nnctl.config import build, load_config
from nnctl.data import Split, Splits, resolve_data_config
from nnctl.data.load import _read_builtin
from nnctl.errors import DataError
from nnctl.train.trainer import Trainer, TrainSettings

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))
N_TRAIN, N_OTHER = 256, 200  # training examples; validation and test images


def _head(split: Split | None, n: int) -> Split | None:
    return None if split is None else Split(split.X[:n], split.y[:n])


def train_briefly(config_path: Path, run_dir: Path) -> Path:
    """One epoch of ``config_path``'s network on its data set's first examples; the
    checkpoint's path. Skips when the data set is not available."""
    config = load_config(config_path, ["train.epochs=1"])
    try:
        splits = datamod.load(config.data["data"], seed=config.seed)
    except DataError as error:
        pytest.skip(f"{config_path.name}: {error}")
    small = Splits(_head(splits.train, N_TRAIN), _head(splits.validation, N_OTHER),
                   _head(splits.test, N_OTHER), splits.spec, splits.preprocess)  # fmt: skip
    experiment = build(config)
    trainer = Trainer(experiment.network, experiment.optimizer, experiment.schedule, small,
                      TrainSettings.from_config(config.data), run_dir, seed=config.seed,
                      config_hash=config.hash())  # fmt: skip
    trainer.extra_meta = {"config": config.data}
    trainer.fit()
    return run_dir / "checkpoints" / "last.npz"


def raw_test_images(config_path: Path) -> tuple[np.ndarray, tuple]:
    """The first raw (unscaled) test examples of the config's data set and its classes."""
    cfg = resolve_data_config(load_config(config_path).data["data"])
    _, _, X_test, _, spec = _read_builtin(cfg)
    return X_test[:N_OTHER], spec.class_names


@pytest.mark.parametrize("config_path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_exported_example_network_predicts_what_nnctl_predicts(config_path, tmp_path):
    checkpoint = train_briefly(config_path, tmp_path / "run")
    X, class_names = raw_test_images(config_path)
    np.save(tmp_path / "test.npy", X)
    model_path = tmp_path / "model.onnx"
    nnctl("export", checkpoint, "--format", "onnx", "-o", model_path, check=0)
    nnctl("predict", checkpoint, "--input", tmp_path / "test.npy",
          "--output", tmp_path / "p.npz", check=0)  # fmt: skip
    with np.load(tmp_path / "p.npz") as predicted:
        expected, classes = predicted["probabilities"], predicted["class"]

    got = run_onnx(model_path, X.astype(np.float32))  # raw inputs: the graph scales them
    assert got.shape == expected.shape == (len(X), len(class_names))
    assert np.max(np.abs(got - expected)) <= TOL
    assert np.array_equal(got.argmax(axis=1), classes)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)  # probabilities

    metadata = {p.key: p.value for p in onnx.load(model_path).metadata_props}
    assert json.loads(metadata["class_names"]) == list(class_names)
    assert metadata["input_layout"] == ("NHWC" if X.ndim == 4 else "NC")
    assert json.loads(metadata["input_shape"]) == list(X.shape[1:])
