"""Every file in configs/ checks and builds; build round-trips through get_config()."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnctl.config import build, load_config

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))

DIGITS_MLP = """\
seed: 0
data:
  dataset: digits
  validation: 0.1
  batch_size: 32
model:
  layers:
    - {type: fully_connected, n_out: 64, activation: relu, weight_init: he_uniform}
    - {type: fully_connected, n_out: 10, activation: softmax}
  loss: cross_entropy
optimizer: {type: adam, lr: 0.001}
train:
  epochs: 30
"""

MNIST_CNN = """\
seed: 0
data:
  dataset: mnist
  validation: 5000
  batch_size: 64
model:
  layers:
    - {type: conv2d, n_out: 32, kernel_shape: [3, 3], pad: same, activation: relu}
    - {type: pool2d, kernel_shape: [2, 2], stride: 2, mode: max}
    - {type: conv2d, n_out: 64, kernel_shape: [3, 3], pad: same, activation: relu}
    - {type: pool2d, kernel_shape: [2, 2], stride: 2, mode: max}
    - {type: flatten}
    - {type: fully_connected, n_out: 128, activation: relu}
    - {type: fully_connected, n_out: 10, activation: softmax}
  loss: cross_entropy
optimizer: {type: sgd, lr: 0.05, momentum: 0.9, clip_norm: 5.0}
schedule: {type: exponential, lr_decay: 0.5, stage_length: 2, staircase: true}
train:
  epochs: 6
"""


def test_there_are_examples():
    names = {p.name for p in CONFIGS}
    assert {"digits-mlp.yaml", "mnist-cnn.yaml", "iris-mlp.yaml", "fashion-mnist-cnn.yaml"} <= names
    assert any("extends:" in p.read_text() for p in CONFIGS)


@pytest.mark.parametrize(
    "name, text", [("digits-mlp.yaml", DIGITS_MLP), ("mnist-cnn.yaml", MNIST_CNN)]
)
def test_issue_examples_are_verbatim(name, text):
    assert (CONFIGS[0].parent / name).read_text() == text


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_builds_and_round_trips(path):
    config = load_config(path)
    experiment = build(config)
    network = experiment.network
    assert network.input_shape == tuple(experiment.spec.input_shape)
    assert network.get_config() == {
        "layers": config.data["model"]["layers"],
        "loss": config.data["model"]["loss"],
    }
    assert experiment.optimizer.get_config() == config.data["optimizer"]
    schedule = config.data["schedule"]
    assert (experiment.schedule.get_config() if schedule else None) == schedule
    out = network.forward(np.zeros((2, *experiment.spec.input_shape), dtype=np.float32))
    assert out.shape == (2, experiment.spec.n_classes)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_resolved_config_is_a_fixed_point(path, tmp_path):
    """Loading the resolved config again gives the same config (and hash)."""
    import yaml

    config = load_config(path)
    again = tmp_path / "resolved.yaml"
    again.write_text(yaml.safe_dump(config.data))
    assert load_config(again).data == config.data
    assert load_config(again).hash() == config.hash()


def test_build_is_deterministic():
    path = CONFIGS[0].parent / "mnist-cnn.yaml"
    a, b = build(load_config(path)).network, build(load_config(path)).network
    for (ka, pa, _), (kb, pb, _) in zip(a.param_grads(), b.param_grads()):
        assert ka == kb and pa.dtype == pb.dtype and np.array_equal(pa, pb)
    c = build(load_config(path, ["seed=1"])).network
    assert not np.array_equal(a.layers[0].parameters["W"], c.layers[0].parameters["W"])


def test_defaults_are_filled():
    data = load_config(CONFIGS[0].parent / "digits-mlp.yaml").data
    assert data["model"]["dtype"] == "float32"
    assert data["model"]["layers"][1]["weight_init"] == "xavier_uniform"
    assert data["optimizer"] == {
        "type": "adam", "lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
        "weight_decay": 0.0, "clip_norm": None, "clip_mode": "global",
    }  # fmt: skip
    assert data["schedule"] is None
    assert data["train"] == {
        "epochs": 30,
        "test_checkpoint": "best",
        "checkpoint": {"every": 1, "keep": "last", "monitor": "val_loss", "mode": "min"},
        "early_stopping": None,
        "reduce_lr_on_plateau": None,
        "loggers": ["csv"],
    }
    assert data["data"]["batch_size"] == 32 and "shuffle" in data["data"]
    assert "extends" not in data


def test_hash_is_stable_and_sensitive():
    path = CONFIGS[0].parent / "digits-mlp.yaml"
    h = load_config(path).hash()
    assert h == load_config(path).hash() and len(h) == 64
    assert load_config(path, ["optimizer.lr=0.002"]).hash() != h
    # Writing a default explicitly does not change the resolved config.
    assert load_config(path, ["model.dtype=float32"]).hash() == h


def test_config_name_and_path():
    path = CONFIGS[0].parent / "digits-mlp.yaml"
    config = load_config(path)
    assert config.name == "digits-mlp" and config.path == path and config.seed == 0


RESNET = CONFIGS[0].parent / "fashion-mnist-resnet.yaml"


def _layer_specs(layers):
    """Every layer spec of a layer list, blocks' children included."""
    for layer in layers:
        yield layer
        yield from _layer_specs(layer.get("layers", []))
        for branch in layer.get("branches", []):
            yield from _layer_specs(branch)


def test_resnet_recipe_is_written_with_the_new_components():
    import yaml

    raw = yaml.safe_load(RESNET.read_text())
    specs = list(_layer_specs(raw["model"]["layers"]))
    kinds = {spec["type"] for spec in specs}
    assert {"residual", "batch_norm", "global_avg_pool", "activation"} <= kinds
    assert raw["data"]["augment"]
    # pool2d's default stride is changing to the kernel size: the recipe writes it out
    assert all("stride" in spec for spec in specs if spec["type"] == "pool2d")


def test_resnet_recipe_trains_on_random_images():
    """A few steps of the recipe's network and optimizer on one augmented batch of random
    28x28x1 images: finite losses that go down, every parameter and running statistic moved."""
    from nnctl.data import Augmenter

    config = load_config(RESNET)
    experiment = build(config)
    network, optimizer = experiment.network.train(), experiment.optimizer
    rng = np.random.default_rng(0)
    augment = Augmenter.from_config(config.data["data"]["augment"])
    X = augment(rng.normal(size=(16, 28, 28, 1)).astype(np.float32), rng)
    Y = np.eye(10, dtype=np.float32)[np.arange(16) % 10]
    params = {key: p.copy() for key, p, _ in network.param_grads()}
    stats = {key: a.copy() for key, a in network.state_arrays() if "running" in key}
    assert stats
    losses = []
    for _ in range(5):
        losses.append(network.backward(Y, network.forward(X)))
        optimizer.step(network.param_grads())
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    for key, p, _ in network.param_grads():
        assert not np.array_equal(p, params[key]), key
    for key, a in network.state_arrays():
        if key in stats:
            assert not np.array_equal(a, stats[key]), key
