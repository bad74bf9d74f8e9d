"""The check, summary and config commands, through click's CliRunner and a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from nnctl.cli import main
from nnctl.errors import ConfigError

CONFIGS = Path(__file__).parents[1] / "configs"
DIGITS = str(CONFIGS / "digits-mlp.yaml")
MNIST = str(CONFIGS / "mnist-cnn.yaml")


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_check_ok():
    result = run("check", DIGITS, MNIST)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"ok: {DIGITS}", f"ok: {MNIST}"]


def test_check_reports_every_error_and_continues(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "data: {dataset: digits, batch_size: 0}\n"
        "model:\n  layers: [{type: fully_connected, n_out: 12, activation: softmax}]\n"
        "  loss: cross_entropy\n"
        "optimizer: {type: adam, lr: -1}\n"
    )
    result = run("check", str(bad), DIGITS)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"ok: {DIGITS}"]
    errors = result.stderr.splitlines()
    assert errors == [
        f"error: {bad}:1: data.batch_size: must be a positive integer; got 0",
        (
            f"error: {bad}:3: model.layers[0].n_out: the last layer's width must equal the "
            "number of classes of 'digits' (10); got 12"
        ),
        f"error: {bad}:5: optimizer.lr: must be a positive number; got -1",
    ]
    assert "Traceback" not in result.output


def test_check_points_the_removed_plateau_schedule_to_the_callback(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text(Path(DIGITS).read_text() + "schedule: {type: plateau, patience: 3}\n")
    result = run("check", str(old))
    assert result.exit_code == 1
    line = len(Path(DIGITS).read_text().splitlines()) + 1
    assert result.stderr.splitlines() == [
        (
            f"error: {old}:{line}: schedule.type: schedule 'plateau' was removed; "
            "use train.reduce_lr_on_plateau instead (it scales the rate of any schedule)"
        )
    ]


def test_check_with_overrides():
    result = run("check", DIGITS, "--set", "optimizer.lr=0.01", "--set", "model.layers[0].n_out=8")
    assert result.exit_code == 0
    result = run("check", DIGITS, "--set", "optimizer.lrr=0.01")
    assert result.exit_code == 1
    assert "optimizer.lrr: no such key; did you mean 'lr'?" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["check"],  # no file
        ["check", DIGITS, "--set", "no_equals_sign"],
        ["check", DIGITS, "--set", "a..b=1"],
        ["summary", DIGITS, MNIST],
        ["config", DIGITS, "--yaml"],
    ],
)
def test_usage_errors_exit_2(args):
    result = run(*args)
    assert result.exit_code == 2, result.output


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("", "file is empty"),
        ("a: [1\n", "invalid YAML"),
        ("- 1\n", "top level must be a mapping"),
        ("seed: !!python/object/apply:os.system ['true']\n", "is not allowed"),
    ],
)
@pytest.mark.parametrize("command", ["check", "summary", "config"])
def test_bad_files_exit_1(tmp_path, command, content, message):
    path = tmp_path / "c.yaml"
    if content is not None:
        path.write_text(content)
    result = run(command, str(path))
    assert result.exit_code == 1
    assert message in result.stderr and result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


def test_directory_exits_1(tmp_path):
    result = run("check", str(tmp_path))
    assert result.exit_code == 1 and "is a directory" in result.stderr


def test_summary_table():
    result = run("summary", MNIST)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "0  conv2d           28x28x32             320" in out
    assert "4  flatten          3136                   0" in out
    assert "5  fully_connected  128              401,536" in out
    assert "total parameters: 421,642" in out
    assert "FLOPs per example (forward): 8.56M" in out
    assert "activation memory per example: 196.5 KiB" in out


def test_summary_counts_by_hand(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(
        "data: {dataset: digits}\n"
        "model:\n  layers:\n"
        "    - {type: conv2d, n_out: 4, kernel_shape: 3, activation: relu}\n"
        "    - {type: pool2d, kernel_shape: 2, stride: 2}\n"
        "    - {type: dropout, rate: 0.5}\n"
        "    - {type: fully_connected, n_out: 10, activation: softmax}\n"
        "  loss: cross_entropy\n"
        "optimizer: {type: adam}\n"
    )
    result = run("summary", str(path))
    assert result.exit_code == 0, result.output
    conv = (2 * 3 * 3 * 1 + 1) * 8 * 8 * 4  # 9 multiply-adds + bias/activation per output
    pool = 2 * 2 * 4 * 4 * 4  # one operation per window element
    dense = (2 * 4 * 4 * 4 + 1) * 10
    assert conv + pool + dense == 6410
    assert result.stdout.splitlines() == [
        "small: data 'digits', dtype float32",
        "#  layer            output shape  parameters  FLOPs",
        "   input            8x8x1",
        f"0  conv2d           8x8x4                 40  {conv:,}",
        f"1  pool2d           4x4x4                  0    {pool}",
        "2  dropout          4x4x4                  0      0",
        f"3  fully_connected  10                   650  {dense:,}",
        "total parameters: 690",
        "FLOPs per example (forward): 6.41k (6,410)",
        "activation memory per example: 1.5 KiB",  # (256 + 64 + 64 + 10) * 4 bytes
    ]


def test_summary_with_override():
    result = run("summary", MNIST, "--set", "model.layers[0].n_out=16")
    assert result.exit_code == 0
    assert "28x28x16" in result.stdout


def test_config_yaml_is_the_resolved_config():
    result = run("config", MNIST)
    assert result.exit_code == 0
    data = yaml.safe_load(result.stdout)
    assert data["optimizer"]["nesterov"] is False and data["model"]["dtype"] == "float32"
    assert data["model"]["layers"][0]["kernel_shape"] == [3, 3]


def test_config_json_with_overrides():
    result = run("config", DIGITS, "--json", "--set", "train.epochs=2")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["train"]["epochs"] == 2 and data["schedule"] is None


def test_config_output_loads_back(tmp_path):
    path = tmp_path / "resolved.yaml"
    path.write_text(run("config", MNIST).stdout)
    assert run("check", str(path)).exit_code == 0


@pytest.mark.parametrize("command", ["check", "summary", "config"])
def test_help_shows_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout and "configs/" in result.stdout and "--set" in result.stdout


def test_debug_shows_the_traceback(tmp_path):
    result = run("--debug", "summary", str(tmp_path / "missing.yaml"))
    # the error itself reaches the caller (without --debug it would be SystemExit(1))
    assert result.exit_code == 1 and isinstance(result.exception, ConfigError)
    assert "missing.yaml: no such file" in str(result.exception)


def test_real_subprocess(tmp_path):
    ok = subprocess.run(
        [sys.executable, "-c", "from nnctl.cli import main; main()", "check", DIGITS],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert ok.returncode == 0 and ok.stdout.strip() == f"ok: {DIGITS}"
    bad = subprocess.run(
        [sys.executable, "-c", "from nnctl.cli import main; main()", "check", DIGITS,
         "--set", "optimizer.lr=-1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        f"error: {DIGITS}: --set optimizer.lr=-1: optimizer.lr: must be a positive number; got -1"
    )


def test_check_data_loads_the_data(tmp_path):
    import numpy as np

    X = np.ones((20, 3))
    X[4, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=X, y=np.arange(20) % 2)
    config = yaml.safe_load(Path(DIGITS).read_text())
    config["data"] = {"type": "npz", "path": "nan.npz"}
    config["model"]["layers"][-1]["n_out"] = 2
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config))
    assert run("check", str(path)).exit_code == 0  # headers and labels are fine
    result = run("check", "--data", str(path))
    assert result.exit_code == 1
    nan = tmp_path / "nan.npz"
    expected = (
        f"error: {path}: data: {nan}: features contain NaN or infinite values (first in row 4)"
    )
    assert result.stderr.splitlines() == [expected]
    assert run("check", "--data", DIGITS).stdout == f"ok: {DIGITS}\n"


@pytest.mark.parametrize(
    "error, line, code",
    [
        (MemoryError("Unable to allocate 29.1 TiB"), "error: out of memory: Unable to", 1),
        (RecursionError(), "error: input nested too deeply", 1),
        (PermissionError(13, "Permission denied", "runs/x"), "error: runs/x: Permission denied", 1),
        (OSError(28, "No space left on device", "a", None, "b"), "error: a -> b: No space", 1),
        (KeyboardInterrupt(), "error: interrupted", 130),
    ],
)
def test_the_machine_s_errors_are_one_line(monkeypatch, error, line, code):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("nnctl.commands.config.load_config", fail)
    result = run("summary", DIGITS)
    assert result.exit_code == code
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith(line)
    debug = run("--debug", "summary", DIGITS)
    if code == 1:
        assert isinstance(debug.exception, type(error))
    else:
        assert debug.exit_code == 130 and "Traceback" in debug.stderr


def test_error_lines_are_bounded():
    from nnctl.errors import MAX_LINE, MAX_LINES, NnctlError, error_lines

    lines = error_lines(NnctlError("x" * 10 * MAX_LINE + "\n" + "y\n" * 1000))
    assert len(lines) == MAX_LINES and lines[-1] == "error: ... and 902 more"
    assert len(lines[0]) == len("error: ") + MAX_LINE + 3
