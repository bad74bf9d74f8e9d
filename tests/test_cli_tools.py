"""nnctl time / gradcheck / runs / plot through click's CliRunner and as a subprocess."""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nnctl.cli import main
from nnctl.core import Conv2D, NeuralNetwork
from nnctl.core.gradcheck import check_network
from nnctl.core.layers import Dropout, FullyConnected
from nnctl.core.synthetic import synthetic_batch
from nnctl.train import timing

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
IRIS = str(CONFIGS / "iris-mlp.yaml")

# Digits as 8x8x1 images: a fused conv→max-pool pair, flatten and dropout in one small net.
SMALL_CNN = """\
seed: 3
data: {dataset: digits, validation: 0.1, batch_size: 8}
model:
  layers:
    - {type: conv2d, n_out: 4, kernel_shape: [3, 3], pad: same, activation: relu}
    - {type: pool2d, kernel_shape: [2, 2], stride: 2, mode: max}
    - {type: flatten}
    - {type: dropout, rate: 0.3}
    - {type: fully_connected, n_out: 10, activation: softmax}
  loss: cross_entropy
optimizer: {type: sgd, lr: 0.1}
train: {epochs: 1}
"""


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def cnn_config(tmp_path) -> str:
    path = tmp_path / "small-cnn.yaml"
    path.write_text(SMALL_CNN, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("command", ["time", "gradcheck", "runs", "plot"])
def test_help_has_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Example" in result.output


# --- time -------------------------------------------------------------------------------


def test_time_prints_one_row_per_layer_with_numbers(cnn_config):
    result = run("time", cnn_config, "--iterations", "3", "--batch-size", "4")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    layer_rows = [line.split() for line in lines if line[:1].isdigit()]
    assert [row[1] for row in layer_rows] == [
        "conv2d", "pool2d", "flatten", "dropout", "fully_connected",
    ]  # fmt: skip
    times = np.array([[float(row[-2]), float(row[-1])] for row in layer_rows])  # (layer, 2)
    assert (times >= 0).all() and (times[0] > 0).all()  # the convolution does real work
    total = next(line.split()[-2:] for line in lines if "sum of layers" in line)
    # the "sum of layers" row adds up the rows above it (each printed to 3 decimals)
    np.testing.assert_allclose(times.sum(axis=0), np.array(total, float), rtol=0, atol=0.0035)
    assert any(line.startswith("   network step") for line in lines)
    assert "samples/s" in lines[-1] and float(lines[-1].split()[1]) > 0


def test_time_json_and_overrides():
    result = run("time", IRIS, "-n", "2", "--set", "model.layers[0].n_out=5", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert [t["output_shape"] for t in report["layers"]] == [[5], [3]]
    assert report["batch_size"] == 16 and report["iterations"] == 2
    assert report["step_ms"] > 0 and report["samples_per_s"] > 0


def test_time_rejects_zero_iterations_as_usage_error():
    assert run("time", IRIS, "--iterations", "0").exit_code == 2


def test_time_bad_config_is_one_line_error(tmp_path):
    result = run("time", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 1 and result.output.startswith("error: ")


def test_layer_by_layer_times_each_layer_once_and_restores_the_network(monkeypatch):
    layers = [FullyConnected(5, "relu"), Dropout(0.2), FullyConnected(3, "softmax")]
    net = NeuralNetwork(layers, "cross_entropy", seed=0, input_shape=(4,))
    X, Y = synthetic_batch(net, (4,), "classification", 6, np.random.default_rng(0))
    state = net.rng.bit_generator.state
    expected = net.forward(X)
    net.rng.bit_generator.state = state  # the same dropout mask below
    ticks = itertools.count()  # every reading of the clock is 1 s after the last
    monkeypatch.setattr(timing.time, "perf_counter", lambda: float(next(ticks)))
    with timing.layer_by_layer(net) as watches:
        assert net.fuse is False
        out = net.forward(X)
        net.backward(Y, out)
    np.testing.assert_array_equal(out, expected)
    # one interval each: backward calling backward_linear is not counted twice, and the
    # softmax + cross-entropy head (the network calls backward_linear) is timed
    assert [(w.forward_ms, w.backward_ms) for w in watches] == [(1000.0, 1000.0)] * 3
    assert net.fuse is True
    assert not any(
        {"forward", "backward", "backward_linear"} & set(vars(layer)) for layer in layers
    )


# --- gradcheck --------------------------------------------------------------------------


@pytest.mark.parametrize("config", ["iris", "cnn"])
def test_gradcheck_passes(config, cnn_config):
    path = IRIS if config == "iris" else cnn_config
    result = run("gradcheck", path, "--samples", "10")
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if line[:1].isdigit()]
    assert rows and all(row[-1] == "ok" and float(row[-2]) < 1e-5 for row in rows)
    expected = {"iris": ("0", "W", "1", "b"), "cnn": ("0", "W", "4", "b")}[config]
    assert (rows[0][0], rows[0][2], rows[-1][0], rows[-1][2]) == expected


def test_gradcheck_fails_when_a_backward_is_broken(monkeypatch):
    original = FullyConnected.backward_linear

    def broken(self, dLdZ):
        dLdX = original(self, dLdZ)
        self.gradients["W"] = self.gradients["W"] * 1.01  # 1% off
        return dLdX

    monkeypatch.setattr(FullyConnected, "backward_linear", broken)
    result = run("gradcheck", IRIS)
    assert result.exit_code == 1
    assert "FAIL" in result.output
    assert "error: gradient check failed (tol 1e-05) for layers.0.W, layers.1.W" in result.output


def test_gradcheck_passes_a_bias_that_batch_norm_removes():
    """A conv bias right before a batch norm has a zero gradient: the central differences
    give rounding noise, which passes as zero, marked so."""
    result = run("gradcheck", str(CONFIGS / "fashion-mnist-resnet.yaml"), "-b", "2", "-k", "3")
    assert result.exit_code == 0, result.output
    noise_rows = [line.split() for line in result.output.splitlines() if "within noise" in line]
    before_norm = {"0", "4.0", "4.3", "5.0", "5.3", "6.0"}  # the convs followed by a BN
    assert noise_rows and {row[0] for row in noise_rows} <= before_norm
    assert all(row[2] == "b" for row in noise_rows)


def test_gradcheck_noise_floor_does_not_hide_a_wrong_gradient(monkeypatch):
    """The same biases with a gradient off by 1e-6 (far below the weights' scale, far above
    the finite differences' noise) fail."""
    original = Conv2D.backward_linear

    def biased(self, dLdZ):
        dLdX = original(self, dLdZ)
        if "b" in self.gradients:
            self.gradients["b"] = self.gradients["b"] + 1e-6
        return dLdX

    monkeypatch.setattr(Conv2D, "backward_linear", biased)
    result = run("gradcheck", str(CONFIGS / "fashion-mnist-resnet.yaml"), "-b", "2", "-k", "3")
    assert result.exit_code == 1
    assert "gradient check failed (tol 1e-05) for layers.0.b, layers.4.0.b" in result.output


def test_gradcheck_json_reports_each_parameter(cnn_config):
    result = run("gradcheck", cnn_config, "--json", "-k", "5", "--seed", "1")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["ok"] is True
    checked = {(p["index"], p["parameter"]): p["checked"] for p in report["parameters"]}
    assert checked == {(0, "W"): 5, (0, "b"): 4, (4, "W"): 5, (4, "b"): 5}


def test_gradcheck_dropout_mask_is_fixed_between_evaluations():
    layers = [FullyConnected(6, "tanh"), Dropout(0.5), FullyConnected(2, "linear")]
    net = NeuralNetwork(layers, "l2", seed=1, dtype="float64", input_shape=(3,))
    X, Y = synthetic_batch(net, (3,), "regression", 5, np.random.default_rng(0))
    results = check_network(net, X, Y, samples=8)
    assert len(results) == 4 and max(r.max_relative_error for r in results) < 1e-6


def test_synthetic_batch_targets():
    rng = np.random.default_rng(0)
    net = NeuralNetwork([FullyConnected(3, "softmax")], "cross_entropy", input_shape=(4,))
    X, Y = synthetic_batch(net, (4,), "classification", 7, rng)
    assert X.shape == (7, 4) and X.dtype == np.float32
    assert Y.shape == (7, 3) and set(np.unique(Y)) <= {0.0, 1.0} and (Y.sum(axis=1) == 1).all()


def test_gradcheck_refuses_float32():
    net = NeuralNetwork([FullyConnected(2)], "l2", input_shape=(3,))
    X, Y = synthetic_batch(net, (3,), "regression", 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="float64"):
        check_network(net, X, Y)


# --- runs -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """Three short real runs: two at the top level, one in a sweep folder."""
    root = tmp_path_factory.mktemp("runs")
    for out, lr in (("a", "0.1"), ("b", "0.01"), ("sweep/c", "0.3")):
        result = run("train", IRIS, "--out", str(root / out), "-q",
                     "--set", "train.epochs=2", "--set", f"optimizer.lr={lr}")  # fmt: skip
        assert result.exit_code == 0, result.output
    return root


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def test_runs_lists_runs_with_accuracies_from_summary(runs_dir):
    result = run("runs", str(runs_dir))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["name", "config", "optimizer", "lr"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"a", "b", "sweep/c"}
    for name, row in rows.items():
        s = summary(runs_dir / name)
        assert row[1:6] == ["iris-mlp", "sgd", {"a": "0.1", "b": "0.01", "sweep/c": "0.3"}[name],
                            "16", "2/2"]  # fmt: skip
        assert row[6] == f"{s['best']['val_accuracy']:.4f}"
        assert row[7] == f"{s['test']['accuracy']:.4f}"
        assert row[-1] == "completed"


def test_runs_json_and_sort_by_test_accuracy(runs_dir):
    result = run("runs", str(runs_dir), "--json", "--sort", "test_accuracy")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    accuracies = [row["test_accuracy"] for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    for row in rows:
        s = summary(Path(row["path"]))
        assert row["test_accuracy"] == s["test"]["accuracy"]
        assert row["val_accuracy"] == s["best"]["val_accuracy"]
        assert row["train_seconds"] == s["train_seconds"] and row["problems"] == []
    by_lr = json.loads(run("runs", str(runs_dir), "--json", "--sort", "lr").output)
    assert [row["lr"] for row in by_lr] == [0.01, 0.1, 0.3]


def test_runs_on_a_single_run_dir(runs_dir):
    rows = json.loads(run("runs", str(runs_dir / "sweep" / "c"), "--json").output)
    assert [row["name"] for row in rows] == ["c"]


def test_runs_marks_broken_runs_without_failing(runs_dir, tmp_path):
    shutil.copytree(runs_dir / "a", tmp_path / "good")
    shutil.copytree(runs_dir / "a", tmp_path / "bad")
    (tmp_path / "bad" / "summary.json").write_text("{not json")
    (tmp_path / "bad" / "meta.json").unlink()
    result = run("runs", str(tmp_path), "--sort", "val_accuracy")
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert "(no meta.json, bad summary.json)" in rows["bad"]
    assert rows["good"].endswith("completed")
    bad = next(r for r in json.loads(run("runs", str(tmp_path), "--json").output)
               if r["name"] == "bad")  # fmt: skip
    assert bad["test_accuracy"] is None and bad["epochs"] == 2  # from metrics.jsonl


def test_runs_empty_dir_is_a_message_not_an_error(tmp_path):
    result = run("runs", str(tmp_path))
    assert result.exit_code == 0 and f"no runs in {tmp_path}" in result.output
    assert json.loads(run("runs", str(tmp_path), "--json").output) == []


def test_runs_missing_dir_and_bad_sort_key(tmp_path):
    assert run("runs", str(tmp_path / "nope")).exit_code == 1
    assert run("runs", str(tmp_path), "--sort", "accuracy").exit_code == 2


def test_runs_as_subprocess(runs_dir):
    code = "from nnctl.cli import main; main()"
    proc = subprocess.run([sys.executable, "-c", code, "runs", str(runs_dir), "--json"],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert {row["name"] for row in json.loads(proc.stdout)} == {"a", "b", "sweep/c"}


# --- plot -------------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plot_writes_png(runs_dir, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "curves.png"
    result = run("plot", str(runs_dir / "a"), str(runs_dir / "sweep" / "c"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG_SIGNATURE) and out.stat().st_size > 5000
    single = run("plot", str(runs_dir / "b"), "--metric", "accuracy")
    assert single.exit_code == 0, single.output
    assert (runs_dir / "b" / "curves.png").read_bytes().startswith(PNG_SIGNATURE)


def test_plot_without_matplotlib_says_how_to_install(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import raises ImportError
    out = tmp_path / "x.png"
    result = run("plot", str(runs_dir / "a"), "-o", str(out))
    assert result.exit_code == 1
    assert result.output == "error: nnctl plot needs matplotlib: pip install 'nnctl[plot]'\n"
    assert not out.exists()


def test_plot_usage_and_missing_run(runs_dir, tmp_path):
    assert run("plot", str(runs_dir / "a"), str(runs_dir / "b")).exit_code == 2  # needs -o
    result = run("plot", str(tmp_path), "-o", str(tmp_path / "x.png"))
    assert result.exit_code == 1 and "no runs in" in result.output


def test_plot_of_a_sweep_folder_draws_its_runs(runs_dir, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sweep.png"
    result = run("plot", str(runs_dir / "sweep"), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_bytes().startswith(PNG_SIGNATURE)
