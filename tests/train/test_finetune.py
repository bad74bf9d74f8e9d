"""Fine-tuning: model.init_from copies matching weights, model.freeze keeps layers fixed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from nnctl.config import load_config
from nnctl.config.build import build_network
from nnctl.core import FullyConnected, NeuralNetwork
from nnctl.errors import CheckpointError, ConfigErrors
from nnctl.train.checkpoint import load_checkpoint, save_checkpoint, split_prefix, with_prefix
from nnctl.train.finetune import init_from

ROOT = Path(__file__).resolve().parents[2]
NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")
DIGITS = ROOT / "configs" / "digits-mlp.yaml"


def _net(widths, seed=0):
    layers = [FullyConnected(w, "relu") for w in widths[:-1]]
    layers.append(FullyConnected(widths[-1], "softmax"))
    return NeuralNetwork(layers, "cross_entropy", seed=seed, input_shape=(4,))


def _save(net, path):
    save_checkpoint(path, with_prefix("model", net.state_dict()), {})
    return path


def test_matching_arrays_are_copied_and_the_rest_listed(tmp_path):
    source = _net([8, 5, 3], seed=1)
    target = _net([8, 6, 3], seed=2)  # layer 1 and layer 2's W differ in shape
    fresh_W1 = target.layers[1].parameters["W"].copy()
    report = init_from(target, _save(source, tmp_path / "src.npz"))
    assert report.copied == ["layers.0.W", "layers.0.b", "layers.2.b"]
    assert report.fresh == [
        ("layers.1.W", (8, 5)),
        ("layers.1.b", (1, 5)),
        ("layers.2.W", (5, 3)),
    ]
    np.testing.assert_array_equal(
        target.layers[0].parameters["W"], source.layers[0].parameters["W"]
    )
    np.testing.assert_array_equal(target.layers[1].parameters["W"], fresh_W1)
    assert "kept fresh: layers.1.W, layers.1.b, layers.2.W" in report.describe()


def test_a_frozen_layer_that_does_not_match_names_both_shapes(tmp_path):
    source, target = _net([8, 5, 3]), _net([8, 6, 3])
    target.frozen = {1}
    with pytest.raises(CheckpointError, match=r"layers.1.W is frozen .* \(8, 6\) in this model, "):
        init_from(target, _save(source, tmp_path / "src.npz"))


def test_nothing_matching_is_an_error(tmp_path):
    source = NeuralNetwork([FullyConnected(3, "softmax")], "cross_entropy", input_shape=(7,))
    with pytest.raises(CheckpointError, match="no weights match"):
        init_from(_net([8, 3]), _save(source, tmp_path / "src.npz"))


def test_trainable_param_grads_leave_out_frozen_layers():
    net = _net([8, 5, 3])
    net.frozen = {0, 2}
    assert [key for key, _, _ in net.trainable_param_grads()] == ["layers.1.W", "layers.1.b"]
    assert len(net.param_grads()) == 6


def test_freezing_a_type_reaches_inside_blocks():
    resnet = ROOT / "configs" / "fashion-mnist-resnet.yaml"
    config = load_config(resnet, ["model.freeze=[batch_norm, 0]", "model.dtype=float64"])
    net = build_network(config, SimpleNamespace(input_shape=(28, 28, 1), n_classes=10))
    assert net.frozen == {"0", "1", "4.1", "4.4", "5.1", "5.4", "6.1", "6.4"}
    trainable = [key for key, _, _ in net.trainable_param_grads()]
    assert not any(key.endswith(("gamma", "beta")) for key in trainable)
    assert "layers.4.0.W" in trainable and "layers.5.shortcut.W" in trainable
    assert "layers.0.W" not in trainable
    assert len(trainable) == len(net.param_grads()) - 2 * 7 - 2


def test_a_type_found_only_inside_a_block_may_be_frozen():
    resnet = ROOT / "configs" / "fashion-mnist-resnet.yaml"
    only_nested = ["model.layers[1]={type: layer_norm}", "model.freeze=[batch_norm]"]
    config = load_config(resnet, only_nested)  # batch norm is left inside the blocks only
    assert config.data["model"]["freeze"] == ["batch_norm"]
    with pytest.raises(ConfigErrors, match="no layer of type 'global_max_pool'"):
        load_config(resnet, ["model.freeze=[global_max_pool]"])


def _write(tmp_path, name, model, epochs=2):
    config = {"extends": str(DIGITS), "model": model, "train": {"epochs": epochs}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def test_config_resolves_init_from_against_the_config_folder(tmp_path):
    config = load_config(_write(tmp_path, "ft.yaml", {"init_from": "runs/src", "freeze": [0]}))
    assert config.data["model"]["init_from"] == str(tmp_path / "runs" / "src")
    assert config.data["model"]["freeze"] == [0]


@pytest.mark.parametrize(
    ("freeze", "message"),
    [
        ([2], "model.freeze[0]: layer index 2 is out of range for 2 layers"),
        ([-3], "model.freeze[0]: layer index -3 is out of range for 2 layers"),
        (["fully_conected"], "did you mean 'fully_connected'?"),
        (["conv2d"], "model.freeze[0]: no layer of type 'conv2d' in the model"),
        ([1.5], "model.freeze[0]: must be a layer index or a layer type name; got 1.5"),
    ],
)
def test_bad_freeze_entries(tmp_path, freeze, message):
    with pytest.raises(ConfigErrors, match=message.replace("[", r"\[").replace("?", r"\?")):
        load_config(_write(tmp_path, "bad.yaml", {"freeze": freeze}))


def test_bad_init_from(tmp_path):
    with pytest.raises(ConfigErrors, match="model.init_from: must be the path of a run"):
        load_config(_write(tmp_path, "bad.yaml", {"init_from": 3}))


def _nnctl(*args, cwd):
    return subprocess.run([NNCTL, *args], check=False, cwd=cwd, capture_output=True, text=True)


def test_fine_tune_through_the_cli_keeps_frozen_layers_fixed(tmp_path):
    args = ("train", str(DIGITS), "--set", "train.epochs=2", "--out", "src", "--quiet")
    done = _nnctl(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    config = _write(tmp_path, "ft.yaml", {"init_from": "src", "freeze": [0]})
    done = _nnctl("train", str(config), "--out", "ft", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "initialized from" in done.stderr and "4 arrays copied" in done.stderr
    src = split_prefix(load_checkpoint(tmp_path / "src" / "checkpoints" / "best.npz")[0], "model")
    arrays, _ = load_checkpoint(tmp_path / "ft" / "checkpoints" / "last.npz")
    ft = split_prefix(arrays, "model")
    np.testing.assert_array_equal(ft["layers.0.W"], src["layers.0.W"])  # frozen
    np.testing.assert_array_equal(ft["layers.0.b"], src["layers.0.b"])
    assert not np.array_equal(ft["layers.1.W"], src["layers.1.W"])  # trained on
    optimizer_keys = {key for key in arrays if key.startswith("optim/")}
    assert optimizer_keys and not any("layers.0." in key for key in optimizer_keys)
