"""Blocks, new layer options and losses through the commands: check (also as a real
subprocess), summary, time and gradcheck descending into blocks, balanced class weights
and multi-label targets trained end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from nnctl import data as datamod
from nnctl.cli import main
from nnctl.config import load_config
from nnctl.core.losses import balanced_class_weights
from nnctl.train.metrics import HITS, multilabel_report

NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")
CONFIGS = Path(__file__).resolve().parents[1] / "configs"

BLOCKS = """\
seed: 2
data: {dataset: digits, validation: 0.1, batch_size: 16}
model:
  layers:
    - {type: conv2d, n_out: 4, kernel_shape: 3, bias: false}
    - batch_norm
    - type: residual
      layers:
        - {type: conv2d, n_out: 8, kernel_shape: 3, stride: 2, activation: tanh}
        - {type: conv2d, n_out: 8, kernel_shape: 1}
    - type: concat
      branches:
        - [{type: pool2d, kernel_shape: 3, stride: 1, pad: 1}]
        - [{type: conv2d, n_out: 2, kernel_shape: 1, activation: tanh}]
    - global_avg_pool
    - {type: fully_connected, n_out: 10, activation: softmax}
  loss: cross_entropy
optimizer: {type: adam, lr: 0.01}
train: {epochs: 1}
"""


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def blocks(tmp_path) -> Path:
    path = tmp_path / "blocks.yaml"
    path.write_text(BLOCKS)
    return path


def test_summary_shows_the_children_indented_with_their_numbers(blocks):
    result = run("summary", blocks)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines[3:-3]}
    conv = 2 * 36 * 128 + 128  # 3x3x4 multiply-adds and a bias at each of 4x4x8 outputs
    shortcut = 2 * 4 * 128  # the 1x1 projection from 4 channels
    assert rows["2.0"].split()[1:] == ["conv2d", "4x4x8", "296", f"{conv:,}"]
    assert rows["2.shortcut"].split()[1:] == ["projection", "4x4x8", "32", f"{shortcut:,}"]
    block = conv + (2 * 8 + 1) * 128 + shortcut + 128  # + the sum
    assert rows["2"].split()[1:] == ["residual", "4x4x8", "400", f"{block:,}"]
    # children are indented under their block, one level per depth
    assert rows["2.0"].index("conv2d") == rows["2"].index("residual") + 2
    assert rows["3.branches.1.0"].index("conv2d") == rows["3"].index("concat") + 2
    assert f"total parameters: {36 + 8 + 400 + 18 + 110:,}" in lines


def test_time_and_gradcheck_descend_into_blocks(blocks):
    result = run("time", blocks, "-n", "2", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["layers"]
    names = [row["name"] for row in rows]
    assert names == [
        "0",
        "1",
        "2",
        "2.0",
        "2.1",
        "2.shortcut",
        "3",
        "3.branches.0.0",
        "3.branches.1.0",
        "4",
        "5",
    ]
    assert [row["depth"] for row in rows if row["name"].startswith("3")] == [0, 1, 1]
    assert rows[5]["layer"] == "projection" and rows[5]["output_shape"] == [4, 4, 8]
    result = run("gradcheck", blocks, "--json")
    assert result.exit_code == 0, result.output
    checks = json.loads(result.stdout)["parameters"]
    where = [(c["index"], c["child"], c["layer"], c["parameter"]) for c in checks]
    assert (2, "shortcut", "projection", "W") in where and (
        3,
        "branches.1.0",
        "conv2d",
        "b",
    ) in where
    assert (0, "", "conv2d", "W") in where and (0, "", "conv2d", "b") not in where  # no bias
    text = run("gradcheck", blocks).stdout
    assert any(line.split()[:3] == ["2.0", "conv2d", "W"] for line in text.splitlines())


def test_check_in_a_subprocess_names_the_child_line_and_exits_1(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BLOCKS.replace("n_out: 8, kernel_shape: 1}", "n_out: 8, kernal_shape: 1}"))
    result = subprocess.run(
        [NNCTL, "check", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    line = 1 + path.read_text().splitlines().index(
        "        - {type: conv2d, n_out: 8, kernal_shape: 1}"
    )
    assert result.stderr.splitlines() == [
        (
            f"error: {path}:{line}: model.layers[2].layers[1]: unknown key 'kernal_shape' for conv2d; "
            "did you mean 'kernel_shape'?"
        )
    ]


def test_balanced_weights_are_written_into_the_run_and_resume_agrees(tmp_path):
    config = tmp_path / "balanced.yaml"
    text = (CONFIGS / "digits-mlp.yaml").read_text()
    config.write_text(
        text.replace(
            "loss: cross_entropy", "loss: {type: cross_entropy, class_weights: balanced}"
        ).replace("epochs: 30", "epochs: 1")
    )
    out = tmp_path / "run"
    result = run("train", config, "--out", out, "-q", "--json")
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    splits = datamod.load(load_config(config).data["data"], seed=0)
    expected = balanced_class_weights(np.bincount(splits.train.y, minlength=10))
    assert saved["model"]["loss"]["class_weights"] == expected
    assert len(set(expected)) > 1  # digits' classes are not exactly balanced
    assert run("eval", out, "--json").exit_code == 0
    # the file still says balanced; the data gives the run's weights again: nothing differs
    again = run("train", config, "--resume", out, "-q")
    assert again.exit_code == 0, again.output


MULTILABEL = """\
seed: 0
data: {type: npz, path: ml.npz, task: multilabel, validation: 0.2, batch_size: 16}
model:
  layers:
    - {type: fully_connected, n_out: 16, activation: relu}
    - batch_norm
    - {type: fully_connected, n_out: 3, activation: sigmoid}
  loss: binary_cross_entropy
optimizer: {type: adam, lr: 0.02}
train: {epochs: 15, checkpoint: {monitor: val_accuracy}}
"""


def test_multilabel_targets_train_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(161, 5)).astype(np.float32)  # 128 for training: batches 16 x 8
    y = (X @ rng.normal(size=(5, 3)) > 0).astype(np.int64)
    np.savez(tmp_path / "ml.npz", x=X, y=y, test_x=X[:40], test_y=y[:40])
    config = tmp_path / "ml.yaml"
    config.write_text(MULTILABEL)
    out = tmp_path / "run"
    result = run("train", config, "--out", out, "-q", "--json")
    assert result.exit_code == 0, result.output
    best = json.loads(result.stdout)["best"]
    assert best["val_accuracy"] > 0.85 and best["train_accuracy"] > 0.85
    evaluation = json.loads(run("eval", out, "--split", "validation", "--json").stdout)
    assert evaluation["accuracy"] == pytest.approx(best["val_accuracy"])
    assert 0 <= evaluation["exact_match"] <= evaluation["accuracy"]
    predictions = run("predict", out, "--input", tmp_path / "ml.npz").stdout.splitlines()
    assert predictions[0] == "p0,p1,p2" and len(predictions) == 162


def test_multilabel_accuracy_is_per_label_by_hand():
    outputs = np.array([[0.9, 0.2, 0.6], [0.1, 0.8, 0.4]])
    targets = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert HITS["multilabel"](outputs, targets) == pytest.approx(2 / 3 + 1)
    assert multilabel_report(targets, outputs) == {"accuracy": 5 / 6, "exact_match": 0.5}
    assert HITS["classification"](outputs, np.array([0, 2])) == 1


def test_config_lists_a_blocks_layers_one_per_line_and_round_trips(blocks, tmp_path):
    result = run("config", blocks)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "  - type: residual" in lines and "    - type: conv2d" not in lines
    assert any(
        line.startswith("    - {type: conv2d, n_out: 8, kernel_shape: [3, 3]") for line in lines
    )
    again = tmp_path / "again.yaml"
    again.write_text(result.stdout)
    assert load_config(again).data == load_config(blocks).data == yaml.safe_load(result.stdout)
