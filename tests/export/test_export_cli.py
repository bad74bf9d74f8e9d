"""``nnctl export`` through the real executable (and CliRunner where a registry is patched):
default paths, a trained network with blocks and batch norm against ``nnctl predict``,
safetensors round trip, and one-line errors with exit code 1."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

import onnx
from export_helpers import TOL, nnctl, run_onnx
from safetensors import safe_open

from nnctl.cli import main
from nnctl.data import resolve_data_config
from nnctl.data.load import _read_builtin
from nnctl.export.layers import EXPORTERS

ROOT = Path(__file__).resolve().parents[2]

# Every kind of block and normalization, trained for real on digits (8x8x1).
BLOCKS = """\
seed: 0
data: {dataset: digits, validation: 0.1, batch_size: 32}
model:
  layers:
    - {type: conv2d, n_out: 8, kernel_shape: 3}
    - {type: batch_norm}
    - {type: activation, activation: relu}
    - type: residual
      layers:
        - {type: conv2d, n_out: 8, kernel_shape: 3, activation: relu}
        - {type: conv2d, n_out: 8, kernel_shape: 3}
    - type: concat
      branches:
        - [{type: pool2d, kernel_shape: 2, stride: 2}]
        - [{type: conv2d, n_out: 4, kernel_shape: 3, stride: 2, activation: elu}]
        - [{type: pool2d, kernel_shape: 2, stride: 2, mode: average}, {type: layer_norm}]
    - type: residual
      shortcut: projection
      activation: leaky_relu
      layers: [{type: conv2d, n_out: 16, kernel_shape: 3, stride: 2, pad: 1}]
    - {type: dropout, rate: 0.2}
    - {type: global_max_pool}
    - {type: batch_norm}
    - {type: fully_connected, n_out: 10, activation: softmax}
  loss: cross_entropy
optimizer: {type: adam, lr: 0.01}
train: {epochs: 1}
"""


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("runs") / "digits"
    nnctl("train", ROOT / "configs" / "digits-mlp.yaml", "--set", "train.epochs=2",
          "--out", run_dir, "-q", check=0)  # fmt: skip
    return run_dir


@pytest.fixture(scope="module")
def blocks_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("blocks")
    (folder / "blocks.yaml").write_text(BLOCKS)
    nnctl("train", folder / "blocks.yaml", "--out", folder / "run", "-q", check=0)
    return folder / "run"


@pytest.fixture(scope="module")
def digits_test(tmp_path_factory) -> Path:
    """The raw digits test images as a .npy file."""
    _, _, X_test, _, _ = _read_builtin(resolve_data_config({"dataset": "digits"}))
    path = tmp_path_factory.mktemp("inputs") / "digits-test.npy"
    np.save(path, X_test)
    return path


def metadata_of(path: Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(path).metadata_props}


def test_run_dir_exports_its_summary_checkpoint_to_model_onnx(digits_run):
    result = nnctl("export", digits_run, check=0)
    out = digits_run / "model.onnx"
    summary = json.loads((digits_run / "summary.json").read_text())
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"wrote {out} (onnx, from {digits_run / summary['checkpoint']})"
    )
    metadata = metadata_of(out)
    assert json.loads(metadata["class_names"]) == [str(i) for i in range(10)]
    assert metadata["input_layout"] == "NHWC" and metadata["task"] == "classification"
    meta = json.loads((digits_run / "meta.json").read_text())
    assert metadata["config_hash"] == meta["config_hash"]
    assert metadata["nnctl_version"] == nnctl("--version").stdout.split()[-1]
    assert metadata["normalization"] == "standard"


def test_checkpoint_exports_beside_itself(digits_run):
    checkpoint = digits_run / "checkpoints" / "last.npz"
    nnctl("export", checkpoint, check=0)
    assert metadata_of(checkpoint.with_suffix(".onnx"))["checkpoint"] == "last.npz"


def test_blocks_network_exports_and_predicts_what_nnctl_predicts(blocks_run, digits_test, tmp_path):
    out = blocks_run / "exported" / "blocks.onnx"
    out.parent.mkdir()
    nnctl("export", blocks_run, "--format", "onnx", "-o", out, check=0)
    nnctl("predict", blocks_run, "--input", digits_test, "--output", tmp_path / "p.npz", check=0)
    with np.load(tmp_path / "p.npz") as predicted:
        expected = predicted["probabilities"]
    got = run_onnx(out, np.load(digits_test).astype(np.float32))
    assert got.shape == expected.shape == (len(expected), 10)
    assert np.max(np.abs(got - expected)) <= TOL
    graph = onnx.load(out).graph
    ops = {node.op_type for node in graph.node}
    assert {"BatchNormalization", "LayerNormalization", "Concat", "Add", "GlobalMaxPool"} <= ops
    with np.load(blocks_run / "checkpoints" / "last.npz") as archive:
        state = {k[len("model/") :] for k in archive.files if k.startswith("model/")}
    weights = {init.name for init in graph.initializer}
    assert weights == state | {"preprocess.shift", "preprocess.scale"}  # checkpoint names


def test_safetensors_round_trip(blocks_run):
    result = nnctl("export", blocks_run, "--format", "safetensors", check=0)
    out = blocks_run / "model.safetensors"
    assert str(out) in result.stderr
    tensors = safetensors_numpy.load_file(out)
    checkpoint = blocks_run / json.loads((blocks_run / "summary.json").read_text())["checkpoint"]
    with np.load(checkpoint) as archive:
        weights = {k[len("model/") :]: archive[k] for k in archive.files if k.startswith("model/")}
        prep = {k: archive[f"prep/{k}"] for k in ("shift", "scale")}
    assert set(tensors) == set(weights) | {"preprocess.shift", "preprocess.scale"}
    assert {"layers.1.running_mean", "layers.3.1.W", "layers.5.shortcut.W"} <= set(tensors)
    for key, array in weights.items():
        assert tensors[key].dtype == array.dtype and tensors[key].shape == array.shape, key
        np.testing.assert_array_equal(tensors[key], array, err_msg=key)
    for key, array in prep.items():
        np.testing.assert_array_equal(tensors[f"preprocess.{key}"], array)
    with safe_open(out, "np") as handle:
        metadata = handle.metadata()
    assert json.loads(metadata["class_names"]) == [str(i) for i in range(10)]
    assert "conv2d W (kh, kw, c_in, n_out)" in metadata["layouts"]


def test_iris_metadata_has_the_species(tmp_path):
    run_dir = tmp_path / "iris"
    nnctl("train", ROOT / "configs" / "iris-mlp.yaml", "--set", "train.epochs=1",
          "--out", run_dir, "-q", check=0)  # fmt: skip
    nnctl("export", run_dir, "-o", tmp_path / "iris.onnx", check=0)
    metadata = metadata_of(tmp_path / "iris.onnx")
    assert json.loads(metadata["class_names"]) == ["setosa", "versicolor", "virginica"]
    assert (metadata["input_layout"], metadata["input_shape"]) == ("NC", "[4]")


REGRESSION = """\
seed: 0
data: {type: npz, path: data.npz, validation: 0.2, batch_size: 16, normalize: minmax}
model:
  layers:
    - {type: fully_connected, n_out: 16, activation: tanh}
    - {type: layer_norm}
    - {type: fully_connected, n_out: 2}
  loss: l2
optimizer: {type: adam, lr: 0.01}
train: {epochs: 3}
"""


def test_regression_outputs_come_out(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(loc=[0.0, 5.0, -40.0], scale=[1.0, 2.0, 10.0], size=(120, 3))
    y = np.stack([X @ [1.0, -2.0, 0.1], X[:, 0] * X[:, 1]], axis=1)
    np.savez(tmp_path / "data.npz", x=X, y=y)
    np.save(tmp_path / "new.npy", X[:40] + 0.5)
    (tmp_path / "regression.yaml").write_text(REGRESSION)
    nnctl("train", tmp_path / "regression.yaml", "--out", tmp_path / "run", "-q", check=0)
    nnctl("export", tmp_path / "run", check=0)
    nnctl("predict", tmp_path / "run", "--input", tmp_path / "new.npy",
          "--output", tmp_path / "p.npz", check=0)  # fmt: skip
    with np.load(tmp_path / "p.npz") as predicted:
        expected = predicted["prediction"]
    model = tmp_path / "run" / "model.onnx"
    got = run_onnx(model, np.load(tmp_path / "new.npy"))
    assert got.shape == expected.shape == (40, 2)
    assert np.max(np.abs(got - expected)) <= TOL
    assert [o.name for o in onnx.load(model).graph.output] == ["outputs"]
    metadata = metadata_of(model)
    assert metadata["task"] == "regression" and "class_names" not in metadata
    assert (metadata["input_layout"], metadata["normalization"]) == ("NC", "minmax")


def _one_line_error(result, *fragments) -> None:
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_run_dir_without_checkpoint(digits_run, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(digits_run, bare, ignore=shutil.ignore_patterns("checkpoints", "model.*"))
    _one_line_error(nnctl("export", bare), "no such checkpoint file")
    _one_line_error(nnctl("export", tmp_path / "nowhere"), "no such run directory or checkpoint")
    assert not (bare / "model.onnx").exists()


def test_unknown_format(digits_run):
    result = nnctl("export", digits_run, "--format", "onxx")
    _one_line_error(result, "unknown export format 'onxx'", "did you mean 'onnx'?", "safetensors")


def test_output_in_a_missing_folder(digits_run, tmp_path):
    out = tmp_path / "missing" / "model.onnx"
    _one_line_error(nnctl("export", digits_run, "-o", out), str(out.parent), "does not exist")
    assert not out.parent.exists()


def test_a_layer_that_cannot_be_exported_is_one_line_naming_it(digits_run, monkeypatch, tmp_path):
    monkeypatch.delitem(EXPORTERS._entries, "fully_connected")
    out = tmp_path / "never.onnx"
    result = CliRunner().invoke(main, ["export", str(digits_run), "-o", str(out)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: layers.0 (fully_connected): cannot be exported to ONNX")
    assert not out.exists()


@pytest.mark.parametrize("fmt, package", [("onnx", "onnx"), ("safetensors", "safetensors")])
def test_a_missing_extra_says_how_to_install_it(digits_run, monkeypatch, tmp_path, fmt, package):
    for name in list(sys.modules):
        if name == package or name.startswith((f"{package}.", "nnctl.export.")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, package, None)  # import raises ImportError
    out = tmp_path / f"model.{fmt}"
    result = CliRunner().invoke(main, ["export", str(digits_run), "--format", fmt, "-o", str(out)])
    assert result.exit_code == 1
    assert result.output == (
        f"error: --format {fmt} needs the '{package}' package: pip install 'nnctl[onnx]'\n"
    )
    assert not out.exists()
