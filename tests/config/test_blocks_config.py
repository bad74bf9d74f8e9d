"""Blocks in configs: children checked at their own key path and YAML line, repeat,
round trips through get_config, the loss rules that need the data, and --set inside
blocks. The table of one-line messages is in test_bad_configs.py."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import yaml
from config_helpers import error_lines, write_config

from nnctl.config import build, config_from_mapping, load_config
from nnctl.config.build import resolve_class_weights
from nnctl.config.summary import summarize
from nnctl.errors import ConfigError

NESTED = """\
seed: 0
data: {dataset: digits, batch_size: 16}
model:
  layers:
    - {type: conv2d, n_out: 8, kernel_shape: 3, bias: false}
    - batch_norm
    - type: residual
      layers:
        - {type: conv2d, n_out: 8, activation: relu}
        - type: concat
          branches:
            - [{type: conv2d, n_out: 4, kernel_shape: 1}]
            - [{type: pool2d, kernel_shape: 3, stride: 1, pad: 1, repeat: 2}, layer_norm]
            - []
        - {type: conv2d, n_out: 8, kernel_shape: 1}
      repeat: 2
    - {type: residual, layers: [{type: conv2d, n_out: 16, stride: 2}], shortcut: projection}
    - global_avg_pool
    - {type: fully_connected, n_out: 10, activation: softmax}
  loss: {type: cross_entropy, label_smoothing: 0.1}
optimizer: {type: adam}
"""


@pytest.fixture
def write(tmp_path):
    return functools.partial(write_config, tmp_path)


def line_of(text: str, fragment: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


def test_errors_deep_inside_blocks_name_their_key_path_and_line(write):
    text = NESTED.replace("kernel_shape: 1}]", "kernel_shape: 1, n_out: -3}]").replace(
        "n_out: 4, ", ""
    )
    text = text.replace("{type: conv2d, n_out: 8, kernel_shape: 1}", "{type: conv2d, stird: 1}")
    path = write(text)
    assert error_lines(path) == [
        (
            f"{path}:{line_of(text, 'n_out: -3')}: model.layers[2].layers[1].branches[0][0].n_out: "
            "must be a positive integer; got -3"
        ),
        (
            f"{path}:{line_of(text, 'stird')}: model.layers[2].layers[2]: unknown key 'stird' for "
            "conv2d; did you mean 'stride'?"
        ),
        (
            f"{path}:{line_of(text, 'stird')}: model.layers[2].layers[2]: missing required key "
            "'n_out' for conv2d"
        ),
    ]


def test_a_shape_error_of_a_child_names_the_child_and_its_line(write):
    text = NESTED.replace("{type: conv2d, n_out: 16, stride: 2}", "{type: pool2d, kernel_shape: 9}")
    path = write(text)
    (line,) = error_lines(path)
    assert line.startswith(
        f"{path}:{line_of(text, 'kernel_shape: 9')}: model.layers[3].layers[0]: "
    )
    assert "Pool2D: kernel 9x9 is larger than its padded input 8x8" in line


def test_branches_that_disagree_are_reported_at_the_block_with_both_shapes(write):
    text = NESTED.replace("stride: 1, pad: 1, repeat: 2", "stride: 2, repeat: 2")
    path = write(text)
    (line,) = error_lines(path)
    assert line.startswith(f"{path}:{line_of(text, 'type: concat')}: model.layers[2].layers[1]: ")
    assert "concat: branch 1 gives (1, 1, 8) but branch 0 gives (8, 8, 4)" in line
    assert "(in copy 1 of 2 of model.layers[2])" in line


def test_repeat_writes_the_copies_out_each_with_its_own_weights(write):
    config = load_config(write(NESTED))
    layers = config.data["model"]["layers"]
    assert [layer["type"] for layer in layers] == [
        "conv2d",
        "batch_norm",
        "residual",
        "residual",
        "residual",
        "global_avg_pool",
        "fully_connected",
    ]
    assert layers[2] == layers[3] and "repeat" not in layers[2]
    branch = layers[2]["layers"][1]["branches"][1]
    assert [layer["type"] for layer in branch] == ["pool2d", "pool2d", "layer_norm"]
    network = build(config).network
    first, second = network.layers[2].layers[0], network.layers[3].layers[0]
    assert first is not second
    assert not np.array_equal(first.parameters["W"], second.parameters["W"])
    keys = [key for key, _ in network.state_arrays()]
    assert "layers.3.1.branches.1.2.gamma" in keys and "layers.4.shortcut.W" in keys


def test_blocks_round_trip_through_get_config(write, tmp_path):
    config = load_config(write(NESTED))
    network = build(config).network
    assert network.get_config() == {
        "layers": config.data["model"]["layers"],
        "loss": config.data["model"]["loss"],
    }
    again = tmp_path / "resolved.yaml"
    again.write_text(yaml.safe_dump(config.data))
    assert load_config(again).data == config.data
    assert config_from_mapping(config.data).hash() == config.hash()


def test_the_summary_of_a_block_sums_its_children(write):
    config = load_config(write(NESTED))
    table = summarize(config.data["model"], config.spec.input_shape)
    rows = {row.name: row for row in table.rows}
    block = rows["2"]
    children = [row for row in table.rows if row.name.startswith("2.") and row.depth == 1]
    assert [row.name for row in children] == ["2.0", "2.1", "2.2"]
    assert block.parameters == sum(row.parameters for row in children)
    assert block.flops == sum(row.flops for row in children) + 8 * 8 * 8  # + the sum
    assert rows["2.1.branches.1.1"].type == "pool2d" and rows["2.1.branches.1.1"].depth == 2
    assert rows["4.shortcut"].parameters == 8 * 16
    network = build(config).network
    assert table.parameters == network.parameter_count()


def test_set_reaches_children_and_repeat(write):
    path = write(NESTED)
    config = load_config(path, ["model.layers[2].layers[0].n_out=5", "model.layers[3].repeat=3"])
    layers = config.data["model"]["layers"]
    assert layers[2]["layers"][0]["n_out"] == 5 and len(layers) == 9
    config = load_config(path, ["model.layers[2].layers[1].branches[0][0].bias=false"])
    assert config.data["model"]["layers"][2]["layers"][1]["branches"][0][0]["bias"] is False
    lines = error_lines(path, ["model.layers[2].layers[0].n_ot=5"])
    assert (
        len(lines) == 1 and "model.layers[2].layers[0].n_ot: no such key; did you mean" in lines[0]
    )


def test_balanced_class_weights_are_kept_until_the_labels_are_known(write):
    text = NESTED.replace("label_smoothing: 0.1", "class_weights: balanced")
    config = load_config(write(text))
    assert config.data["model"]["loss"]["class_weights"] == "balanced"
    assert build(config).network.loss.class_weights == (1.0,) * 10  # no labels: uniform
    labels = np.array([0] * 6 + [1] * 2 + list(range(2, 10)) * 2)
    resolved = resolve_class_weights(config, labels, 10)
    weights = resolved.data["model"]["loss"]["class_weights"]
    assert weights == [len(labels) / (10 * c) for c in (6, 2, *[2] * 8)]
    assert config.data["model"]["loss"]["class_weights"] == "balanced"  # a new config
    assert build(resolved).network.loss.class_weights == tuple(weights)
    assert config_from_mapping(resolved.data).data == resolved.data
    with pytest.raises(ConfigError, match=r"model.loss.class_weights: balanced class weights"):
        resolve_class_weights(config, np.arange(9), 10)
    assert (
        resolve_class_weights(load_config(write(NESTED)), labels, 10).data["model"]["loss"][
            "class_weights"
        ]
        is None
    )
