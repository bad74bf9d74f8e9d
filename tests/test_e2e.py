"""End-to-end: the real ``nnctl`` executable in a subprocess.

Train, eval, predict, resume after SIGKILL, SIGTERM handling, divergence and bad input.
The tests that train for seconds are marked ``slow`` (``pytest -m "not slow"`` skips them).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "configs" / "digits-mlp.yaml"
ONE_EPOCH = ["--set", "train.epochs=1"]
NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")

CNN = """\
seed: 1
data:
  dataset: digits
  validation: 0.1
  batch_size: 8
  augment:    # so that the resume tests below cover the augmentation draws too
    - {type: random_crop, pad: 1}
    - {type: random_erasing, p: 0.5}
model:
  layers:
    - {type: conv2d, n_out: 32, kernel_shape: [3, 3], activation: relu}
    - {type: conv2d, n_out: 64, kernel_shape: [3, 3], activation: relu}
    - {type: pool2d, kernel_shape: [2, 2], stride: 2}
    - {type: dropout, rate: 0.2}
    - {type: fully_connected, n_out: 10, activation: softmax}
  loss: cross_entropy
optimizer: {type: sgd, lr: 0.05, momentum: 0.9}
schedule: {type: exponential, lr_decay: 0.5, stage_length: 2, staircase: true}
train: {epochs: 6}
"""


def nnctl(*args, check=None, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([NNCTL, *map(str, args)], check=False, capture_output=True,
                            text=True, timeout=600, **kwargs)  # fmt: skip
    if check is not None:
        assert result.returncode == check, result.stderr
    return result


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([NNCTL, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for_rows(run_dir: Path, n: int, process, timeout=120.0) -> None:
    log = run_dir / "metrics.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= n:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.002)
    raise AssertionError("training did not progress")


def model_arrays(run_dir: Path) -> dict:
    with np.load(run_dir / "checkpoints" / "last.npz", allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files if k.startswith("model/")}


@pytest.fixture(scope="module")
def cnn_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("configs") / "cnn.yaml"
    path.write_text(CNN)
    return path


@pytest.fixture(scope="module")
def reference_run(cnn_config, tmp_path_factory) -> Path:
    """The uninterrupted 6-epoch run every interrupted one must reproduce bit for bit."""
    run_dir = tmp_path_factory.mktemp("runs") / "straight"
    nnctl("train", cnn_config, "--out", run_dir, "-q", check=0)
    return run_dir


@pytest.fixture(scope="module")
def short_run(tmp_path_factory) -> Path:
    """A finished one-epoch digits MLP run (under a second), for tests that need any run."""
    run_dir = tmp_path_factory.mktemp("runs") / "short"
    nnctl("train", DIGITS, "--out", run_dir, "-q", *ONE_EPOCH, check=0)
    return run_dir


@pytest.mark.slow
def test_train_json_eval_and_predict(tmp_path):
    run_dir = tmp_path / "run"
    result = nnctl("train", DIGITS, "--out", run_dir, "--json", "--set", "train.epochs=3", check=0)
    summary = json.loads(result.stdout)  # stdout holds the JSON summary and nothing else
    assert summary["epochs"] == 3 and summary["test"]["accuracy"] > 0.85
    assert "epoch 3/3" in result.stderr
    for name in ("config.yaml", "meta.json", "metrics.jsonl", "metrics.csv", "summary.json",
                 "checkpoints/last.npz", "checkpoints/best.npz"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["numpy"] == np.__version__
    assert len((run_dir / "metrics.csv").read_text().splitlines()) == 4
    evaluated = json.loads(nnctl("eval", run_dir, "--json", check=0).stdout)
    assert evaluated["accuracy"] == summary["test"]["accuracy"]
    assert evaluated["loss"] == summary["test"]["loss"]
    assert np.array(evaluated["confusion_matrix"]).sum() == summary["test"]["samples"]
    images = np.load(ROOT / "datasets" / "digits.npz")["images"][:7]
    np.save(tmp_path / "x.npy", images)
    nnctl("predict", run_dir, "--input", tmp_path / "x.npy", "--output", tmp_path / "p.csv",
          check=0)  # fmt: skip
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0].startswith("class,class_name,p0,p1") and len(lines) == 8
    bad = nnctl("predict", run_dir, "--input", ROOT / "datasets" / "mnist" /
                "t10k-labels-idx1-ubyte.gz", check=1)  # fmt: skip
    assert "does not match" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_resume_after_sigkill_is_bit_identical(cnn_config, reference_run, tmp_path):
    run_dir = tmp_path / "killed"
    process = start("train", cnn_config, "--out", run_dir, "-q")
    wait_for_rows(run_dir, 3, process)
    process.send_signal(signal.SIGKILL)  # epoch 4 has just started (an epoch takes ~0.5 s)
    process.wait()
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3
    nnctl("resume", run_dir, "-q", check=0)
    expected, got = model_arrays(reference_run), model_arrays(run_dir)
    assert expected.keys() == got.keys()
    for key in expected:
        assert np.array_equal(expected[key], got[key]), key
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_sigterm_checkpoints_mid_epoch_and_resumes_exactly(cnn_config, reference_run, tmp_path):
    run_dir = tmp_path / "term"
    process = start("train", cnn_config, "--out", run_dir)
    wait_for_rows(run_dir, 1, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "nnctl resume" in stderr and "Traceback" not in stderr
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["status"] == "interrupted"
    with np.load(run_dir / "checkpoints" / "last.npz") as archive:
        progress = json.loads(archive["__meta__"].tobytes())["progress"]
    assert progress["epoch"] == 1 and progress["batch_in_epoch"] > 0  # a mid-epoch checkpoint
    nnctl("resume", run_dir, "-q", check=0)
    expected, got = model_arrays(reference_run), model_arrays(run_dir)
    for key in expected:
        assert np.array_equal(expected[key], got[key]), key


def test_sigint_exits_130(cnn_config, tmp_path):
    run_dir = tmp_path / "int"
    # 4-channel convolutions and epochs enough never to finish: a fast epoch, then the signal
    small = ["--set", "model.layers[0].n_out=4", "--set", "model.layers[1].n_out=4"]
    process = start(
        "train", cnn_config, "--out", run_dir, "-q", *small, "--set", "train.epochs=1000"
    )
    wait_for_rows(run_dir, 1, process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and "resume" in stderr
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "interrupted"
    with np.load(run_dir / "checkpoints" / "last.npz") as archive:
        progress = json.loads(archive["__meta__"].tobytes())["progress"]
    assert progress["batch_in_epoch"] > 0  # written on the signal, not at an epoch's end


def test_divergence_exits_3_and_keeps_checkpoint(cnn_config, tmp_path):
    run_dir = tmp_path / "nan"
    result = nnctl("train", cnn_config, "--out", run_dir, "-q", "--set", "optimizer.lr=1e12",
                   check=3)  # fmt: skip
    assert "diverged" in result.stderr and "clip_norm" in result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "diverged"


def test_changed_config_refuses_resume_until_forced(short_run, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(short_run, run_dir)
    before = (run_dir / "checkpoints" / "last.npz").read_bytes()
    changed = ["--set", "optimizer.lr=0.01"]
    result = nnctl("train", DIGITS, "--resume", run_dir, *ONE_EPOCH, *changed, check=1)
    assert "optimizer.lr" in result.stderr and "--force" in result.stderr
    assert "train.epochs" not in result.stderr  # only the changed key is named
    assert (run_dir / "checkpoints" / "last.npz").read_bytes() == before
    nnctl("train", DIGITS, "--resume", run_dir, "--set", "train.epochs=2", "--force", "-q", check=0)
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2


def test_existing_run_is_never_overwritten(short_run):
    before = (short_run / "metrics.jsonl").read_text()
    result = nnctl("train", DIGITS, "--out", short_run, check=1)
    assert "already holds a run" in result.stderr
    assert (short_run / "metrics.jsonl").read_text() == before


@pytest.mark.parametrize(
    "args,code,fragment",
    [
        (["train", "does-not-exist.yaml"], 1, "does-not-exist.yaml"),
        (["train", "configs/digits-mlp.yaml", "--set", "optimizer.lrr=1"], 1, "did you mean"),
        (["train", "configs/digits-mlp.yaml", "--bogus"], 2, "No such option"),
        (["eval", "configs"], 1, "checkpoint"),
        (["resume", "configs"], 1, "not an nnctl run directory"),
        (["eval", "datasets/iris.npz"], 1, "not an nnctl checkpoint"),
    ],
)
def test_bad_input_is_one_line_with_exit_code(args, code, fragment):
    result = nnctl(*args, cwd=ROOT)
    assert result.returncode == code, result.stderr
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_truncated_checkpoint_is_reported(short_run, tmp_path):
    broken = tmp_path / "broken.npz"
    broken.write_bytes((short_run / "checkpoints" / "last.npz").read_bytes()[:1000])
    result = nnctl("eval", broken, check=1)
    assert "not a readable nnctl checkpoint" in result.stderr


def test_version():
    assert nnctl("--version", check=0).stdout.startswith("nnctl, version")


@pytest.mark.slow
def test_digits_mlp_default_reaches_95_percent(tmp_path):
    result = nnctl("train", DIGITS, "--out", tmp_path / "r", "--json", "-q", check=0)
    # Measured test accuracy over seeds 0-5 (--set seed=S; 359 test images, 1 image = 0.0028):
    # 0.9610, 0.9666, 0.9610, 0.9582, 0.9610, 0.9582. The threshold sits below that spread.
    assert json.loads(result.stdout)["test"]["accuracy"] >= 0.95
