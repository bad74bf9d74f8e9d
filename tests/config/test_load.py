"""Loading: YAML line numbers, several errors at once, extends chains and cycles."""

from __future__ import annotations

import functools

import pytest
from config_helpers import config_dict, error_lines, write_config

from nnctl.config import load_config
from nnctl.config.paths import format_path, parent, parse_path
from nnctl.errors import ConfigErrors


@pytest.fixture
def write(tmp_path):
    """``write(content, name="c.yaml")`` → the path of the written config."""
    return functools.partial(write_config, tmp_path)


LINES = """\
seed: 0
data:
  dataset: digits
  batch_size: 0
model:
  layers:
    - type: fully_connected
      n_out: 64
      activation: relu
    - {type: conv2d, n_out: -2}
    - type: fully_connected
      n_out: 12
      activation: softmax
  loss: cross_entropy
optimizer:
  type: adam
  lr: -1
  betaa1: 0.5
train:
  epochs: 0
  early_stopping: {patience: 0}
"""


def test_every_error_is_reported_with_its_line(write):
    lines = error_lines(write(LINES))
    expected = [
        (4, "data.batch_size: must be a positive integer; got 0"),
        (10, "model.layers[1].n_out: must be a positive integer; got -2"),
        (18, "optimizer: unknown key 'betaa1' for adam; did you mean 'beta1'?"),
        (17, "optimizer.lr: must be a positive number; got -1"),
        (20, "train.epochs: must be an integer >= 1; got 0"),
        (21, "train.early_stopping.patience: must be an integer >= 1; got 0"),
    ]
    assert len(lines) == len(expected), "\n".join(lines)
    for line, (number, message) in zip(lines, expected):
        assert line.endswith(f"c.yaml:{number}: {message}"), line


def test_shape_errors_are_reported_next_to_other_errors(write):
    patch = {
        "optimizer": {"lr": 0},
        "model": {"layers": [{"type": "conv2d", "n_out": 4, "kernel_shape": 9, "pad": "valid"},
                             {"type": "fully_connected", "n_out": 10, "activation": "softmax"}]},
    }  # fmt: skip
    lines = error_lines(write(config_dict(patch)))
    assert any("model.layers[0]: Conv2D: kernel 9x9 is larger" in line for line in lines)
    assert any("optimizer.lr: must be a positive number; got 0" in line for line in lines)


def test_config_errors_is_raised(write):
    with pytest.raises(ConfigErrors) as info:
        load_config(write(LINES))
    assert len(info.value.errors) == 6
    assert all(e.file and e.line for e in info.value.errors)


def test_scientific_notation_is_a_number(write):
    path = write(
        "data: {dataset: digits}\n"
        "model: {layers: [{type: fully_connected, n_out: 10, activation: softmax}], "
        "loss: cross_entropy}\n"
        "optimizer: {type: adam, lr: 1e-3, eps: 1E-7}\n"
    )
    config = load_config(path)
    assert config.data["optimizer"]["lr"] == 0.001 and config.data["optimizer"]["eps"] == 1e-7


def test_bare_names_for_components(write):
    path = write(
        "data: {dataset: digits}\n"
        "model:\n  layers: [flatten, {type: fully_connected, n_out: 10, activation: softmax}]\n"
        "  loss: {type: l2}\n"
        "optimizer: adam\n"
    )
    data = load_config(path).data
    assert data["model"]["layers"][0] == {"type": "flatten"}
    assert data["model"]["loss"] == "l2"
    assert data["optimizer"]["type"] == "adam" and data["optimizer"]["lr"] == 0.001


def test_fully_connected_flattens_images(write):
    config = load_config(write(config_dict()))  # digits is 8x8x1, no flatten layer
    assert config.spec.input_shape == (8, 8, 1)


# --- extends -------------------------------------------------------------------------------


def test_extends_chain_merges_and_replaces_lists(write):
    write(config_dict({"train": {"epochs": 7}, "optimizer": {"beta1": 0.8}}), "base.yaml")
    write("extends: base.yaml\noptimizer: {lr: 0.01}\n", "mid.yaml")
    path = write(
        "extends: mid.yaml\n"
        "model:\n  layers:\n    - {type: fully_connected, n_out: 10, activation: softmax}\n",
        "top.yaml",
    )
    data = load_config(path).data
    assert data["train"]["epochs"] == 7
    assert data["optimizer"]["lr"] == 0.01 and data["optimizer"]["beta1"] == 0.8
    assert len(data["model"]["layers"]) == 1  # the list was replaced, not merged
    assert data["model"]["loss"]["type"] == "cross_entropy"  # sibling keys still merged


def test_extends_is_relative_to_the_file(write, tmp_path):
    write(config_dict(), "bases/base.yaml")
    path = write("extends: ../bases/base.yaml\ntrain: {epochs: 3}\n", "exp/run.yaml")
    assert load_config(path).data["train"]["epochs"] == 3


def test_extends_list(write):
    write(config_dict(), "a.yaml")
    write("train: {epochs: 4}\n", "b.yaml")
    path = write("extends: [a.yaml, b.yaml]\nseed: 3\n", "c.yaml")
    data = load_config(path).data
    assert (data["seed"], data["train"]["epochs"]) == (3, 4)


def test_changing_a_component_type_replaces_it(write):
    write(config_dict({"optimizer": {"beta1": 0.8}}), "base.yaml")
    path = write("extends: base.yaml\noptimizer: {type: sgd, lr: 0.1}\n", "c.yaml")
    assert "beta1" not in load_config(path).data["optimizer"]


def test_error_in_base_points_at_the_base_file(write):
    write(config_dict({"optimizer": {"lr": -5}}), "base.yaml")
    path = write("extends: base.yaml\nseed: 1\n", "c.yaml")
    (line,) = error_lines(path)
    assert "base.yaml:" in line and "optimizer.lr: must be a positive number; got -5" in line


def test_extends_cycle(write):
    write("extends: b.yaml\nseed: 1\n", "a.yaml")
    write("extends: a.yaml\nseed: 2\n", "b.yaml")
    (line,) = error_lines(write("extends: a.yaml\n", "c.yaml"))
    assert "extends: extends cycle: c.yaml -> a.yaml -> b.yaml -> a.yaml" in line


def test_extends_itself(write):
    (line,) = error_lines(write("extends: c.yaml\n", "c.yaml"))
    assert "extends cycle: c.yaml -> c.yaml" in line


def test_extends_missing_file(write):
    (line,) = error_lines(write("seed: 0\nextends: nope.yaml\n", "c.yaml"))
    assert line.endswith("c.yaml:2: extends: cannot extend 'nope.yaml': no such file"), line


def test_extends_not_a_path(write):
    (line,) = error_lines(write("extends: 3\n", "c.yaml"))
    assert "c.yaml:1: extends: must be a file path or a list of paths; got 3" in line


# --- key paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, parts",
    [
        ("optimizer.lr", ("optimizer", "lr")),
        ("model.layers[0].n_out", ("model", "layers", 0, "n_out")),
        ("model.layers.1.n_out", ("model", "layers", 1, "n_out")),
        ("model.layers[-1]", ("model", "layers", -1)),
    ],
)
def test_paths(text, parts):
    assert parse_path(text) == parts
    assert format_path(parts) == text.replace(".1.", "[1].")


@pytest.mark.parametrize("text", ["", ".a", "a..b", "a[x]", "a[0", "a b"])
def test_bad_paths(text):
    with pytest.raises(ValueError):
        parse_path(text)


def test_parent():
    assert parent("model.layers[2].n_out") == "model.layers[2]"
    assert parent("model.layers[2]") == "model.layers"
    assert parent("model") == ""
