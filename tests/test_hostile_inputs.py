"""Hostile and careless input through the real ``nnctl`` executable: every case ends with
exit code 1 (130 for Ctrl-C), exactly one line on stderr and no traceback, within seconds
and without a run directory for what can be refused before training.

Each row of TABLE is ``(id, command line, expected fragment)``; the command runs in a
folder holding the files ``hostile`` writes (``{dir}`` is that folder).
"""

from __future__ import annotations

import gzip
import os
import resource
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")
TIMEOUT = 120

IRIS = """\
seed: 0
data: {dataset: iris, validation: 0.2, batch_size: 16}
model:
  layers:
    - {type: fully_connected, n_out: 16, activation: tanh}
    - {type: fully_connected, n_out: 3, activation: softmax}
  loss: cross_entropy
optimizer: {type: sgd, lr: 0.1}
train: {epochs: 2}
"""

# 9 aliases of 9 aliases ... 9 levels deep: 387 million values from about 300 bytes.
BOMB = (
    "[&a [x,x,x,x,x,x,x,x,x]"
    + "".join(f", &{b} [{','.join(['*' + a] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi"))
    + "]"
)


def user_config(data: str, n_out: int = 3) -> str:
    return IRIS.replace("{dataset: iris, validation: 0.2, batch_size: 16}", data).replace(
        "n_out: 3,", f"n_out: {n_out},"
    )


def write_idx(path: Path, array: np.ndarray, dims=None) -> None:
    dims = dims or array.shape
    header = bytes([0, 0, 0x08, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    (d / "iris.yaml").write_text(IRIS)
    (d / "bomb.yaml").write_text(IRIS + f"x: {BOMB}\n")
    (d / "deep.yaml").write_text(IRIS + "x: " + "[" * 600 + "]" * 600 + "\n")
    (d / "deepmap.yaml").write_text(IRIS + "x: " + "{a: " * 600 + "1" + "}" * 600 + "\n")
    (d / "key.yaml").write_text(IRIS + "? [a, b]\n: 1\n")
    (d / "digits.yaml").write_text(IRIS.replace("seed: 0", "seed: " + "9" * 5000))
    (d / "date.yaml").write_text(IRIS.replace("seed: 0", "seed: 2020-02-31"))
    (d / "big.yaml").write_text(IRIS.replace("n_out: 16", "n_out: 1000000000000"))
    chain = d / "chain"
    chain.mkdir()
    for i in range(1000):
        (chain / f"c{i}.yaml").write_text(f"extends: c{i + 1}.yaml\n" if i < 999 else IRIS)
    (d / "sweep-set.yaml").write_text(
        f'base: iris.yaml\nset: ["train.epochs={BOMB}"]\ngrid: {{optimizer.lr: [0.1, 0.2]}}\n'
    )
    (d / "sweep-grid.yaml").write_text(
        "base: iris.yaml\ngrid:\n  optimizer.lr: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
        + "".join(f"  {key}: *a\n" for key in ("seed", "train.epochs", "data.batch_size"))
        + "  model.layers[0].n_out: *a\n"
    )
    _data_files(d)
    (d / "afile").write_text("a regular file\n")
    run = d / "bombrun"  # a run directory whose config.yaml is an alias bomb
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(f"seed: {BOMB}\n")
    (run / "meta.json").write_text("[" * 100_000 + "]" * 100_000)
    return d


def _data_files(d: Path) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(30, 4)), np.arange(30) % 3
    arrays = {
        "nan": (np.where(np.arange(120).reshape(30, 4) == 5, np.nan, X), y),
        "complex": (X + 1j, y),
        "text": (X.astype(str), y),
        "length": (X, y[:20]),
        "empty": (np.zeros((0, 4)), np.zeros(0, dtype=int)),
        "one": (X, np.zeros(30, dtype=int)),
        "label99": (X, np.where(np.arange(30) == 5, 99, y)),
        "label2_63": (X, np.full(30, 2**63, dtype=np.uint64)),
    }
    for name, (features, labels) in arrays.items():
        np.savez(d / f"{name}.npz", x=features, y=labels)
        n_out = 1 if name == "one" else 3
        (d / f"{name}.yaml").write_text(user_config(f"{{type: npz, path: {name}.npz}}", n_out))
    csvs = {
        "ragged": "a,b,label\n1,2,0\n1,2\n3,4,1\n",
        "cells": "a,b,label\n1,2,0\n1,x,1\n3,4,1\n",
        "labelonly": "label\n0\n1\n0\n1\n",
    }
    for name, text in csvs.items():
        (d / f"{name}.csv").write_text(text)
        (d / f"{name}.yaml").write_text(user_config(f"{{type: csv, path: {name}.csv}}", 2))
    images = (rng.random((30, 4, 4)) * 255).astype(np.uint8)
    write_idx(d / "labels.idx", (np.arange(30) % 3).astype(np.uint8))
    write_idx(d / "huge.idx", images, dims=(30, 2**31, 2**31))
    write_idx(d / "short.idx", images[:, :, :3], dims=(30, 4, 4))
    (d / "hugegz.idx").write_bytes(gzip.compress((d / "huge.idx").read_bytes()))
    for name in ("huge", "hugegz", "short"):
        data = f"{{type: idx, images: {name}.idx, labels: labels.idx}}"
        (d / f"idx-{name}.yaml").write_text(user_config(data))


TABLE = [
    # --- YAML: every parse is guarded (item 8, 9)
    ("alias bomb in a file", "check bomb.yaml", "document too large"),
    ("alias bomb in a sweep's set:", "sweep sweep-set.yaml --out s", "document too large"),
    (
        "run config.yaml is a bomb",
        "resume bombrun",
        "config.yaml: not valid YAML (document too large",
    ),
    ("nested 600 lists", "check deep.yaml", "nested more than 100 levels deep"),
    ("nested 600 mappings", "check deepmap.yaml", "nested more than 100 levels deep"),
    ("extends 1000 files", "check chain/c0.yaml", "extends chain longer than"),
    ("complex key", "check key.yaml", "got a list [a, b] (quote it)"),
    ("5000-digit integer", "check digits.yaml", "cannot read a value: Exceeds the limit"),
    ("February 31", "check date.yaml", "cannot read a value: day is out of range for month"),
    ("grid product", "sweep sweep-grid.yaml --out g", "100,000 trials; a sweep runs at most"),
    # --- memory (item 9)
    ("n_out 1e12 check", "check big.yaml", "model.layers[0]: training needs at least"),
    ("n_out 1e12 train", "train -q big.yaml --out r", "TiB of memory"),
    ("n_out 1e12 time", "time big.yaml", "model.layers[0]: training needs at least"),
    ("n_out 1e12 gradcheck", "gradcheck big.yaml", "model.layers[0]: training needs at least"),
    (
        "time batch 1e9",
        "time iris.yaml --set data.batch_size=1000000000",
        "data.batch_size: training with a batch of 1,000,000,000 needs",
    ),
    ("time -b 1e9", "time iris.yaml -b 1000000000", "--batch-size: training with a batch"),
    ("IDX header huge", "train -q idx-huge.yaml --out r", "header says shape (30, 2147483648"),
    ("IDX.gz header huge", "train -q idx-hugegz.yaml --out r", "the data set (30 examples"),
    # --- data (items 2, 9, 12): clean errors, and check finds them
    ("IDX truncated", "check idx-short.yaml", "IDX header says shape (30, 4, 4)"),
    ("npz empty", "check empty.yaml", "empty.npz: no examples"),
    ("npz complex", "check complex.yaml", "features must be numbers; got dtype complex128"),
    ("npz text", "check text.yaml", "features must be numbers; got dtype <U"),
    ("npz NaN", "check --data nan.yaml", "features contain NaN or infinite values"),
    ("npz NaN train", "train -q nan.yaml --out r", "features contain NaN or infinite values"),
    ("x/y lengths", "check length.yaml", "20 labels for 30 examples"),
    ("CSV ragged", "check ragged.yaml", "line 3 has 2 cells; the header has 3"),
    ("CSV cells", "check --data cells.yaml", "line 3, column 2 ('b'): not a number: 'x'"),
    ("CSV labels only", "check labelonly.yaml", "no feature columns"),
    ("one class", "check one.yaml", "classification needs at least 2 classes"),
    ("label 99", "check label99.yaml", "label 99 in 'label99.npz' is out of range for 3 classes"),
    ("label 2**63", "check label2_63.yaml", "label 9223372036854775808 is out of range"),
    # --- paths (item 9)
    ("--out under a file", "train -q iris.yaml --out afile/r", "afile is a file, not a folder"),
    ("--out ~nouser", "train -q iris.yaml --out ~nnctl-no-such-user/r", "no such user"),
    ("eval ~nouser", "eval ~nnctl-no-such-user/r", "no such user"),
    ("resume ~nouser", "resume ~nnctl-no-such-user/r", "no such user"),
    ("runs ~nouser", "runs ~nnctl-no-such-user/r", "no such user"),
    ("sweep --out under a file", "sweep iris.yaml --grid seed=1,2 --out afile/s", "is a file"),
    (
        "data path ~nouser",
        "check iris.yaml --set data={type: npz, path: ~nnctl-no-such-user/x.npz}",
        "data.path: ~nnctl-no-such-user/x.npz: cannot expand",
    ),
]


def run(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    command = [NNCTL, *args]
    return subprocess.run(
        command, check=False, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, **kwargs
    )


def assert_one_line(result: subprocess.CompletedProcess, code: int, fragment: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == code, result.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    assert fragment in lines[0] and len(lines[0]) < 1000, lines[0][:3000]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, fragment", [r[1:] for r in TABLE], ids=[r[0] for r in TABLE])
def test_hostile_input_is_one_line_and_exit_1(hostile, args, fragment):
    out = hostile / "r"
    shutil.rmtree(out, ignore_errors=True)
    words = args.split(" ", 3) if "--set data=" in args else args.split()
    result = run(words, hostile)
    assert_one_line(result, 1, fragment)
    assert not out.exists(), "refused before the run directory exists"


def test_alias_bomb_in_set_is_a_short_usage_error(hostile):
    started = time.monotonic()
    result = run(["check", "iris.yaml", "--set", f"train.epochs={BOMB}"], hostile)
    assert result.returncode == 2 and "document too large" in result.stderr
    assert len(result.stderr) < 2000 and "Traceback" not in result.stderr
    assert time.monotonic() - started < 30


def test_a_checkpoint_that_cannot_be_written_is_one_line(hostile):
    """A write that fails (a read-only checkpoints/, a full disk) names the file. As root
    chmod does not stop writes, so a file-size limit makes the checkpoint fail instead."""

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    shutil.rmtree(hostile / "r", ignore_errors=True)
    result = run(["train", "-q", "iris.yaml", "--out", "r"], hostile, preexec_fn=small_files)
    assert_one_line(result, 1, "cannot write r/checkpoints/")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("where", ["out", "cwd"])
def test_read_only_folder_is_one_line(tmp_path, where):
    (tmp_path / "iris.yaml").write_text(IRIS)
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if where == "out":
            result = run(["train", "-q", "iris.yaml", "--out", "ro/r"], tmp_path)
        else:
            result = run(["train", "-q", str(tmp_path / "iris.yaml")], folder)
        assert_one_line(result, 1, "Permission denied")
    finally:
        folder.chmod(0o700)


def wait_for_numpy(process: subprocess.Popen, timeout: float = 60.0) -> None:
    """Until the process has NumPy loaded: it is importing the command line (``nnctl``
    and ``nnctl.__main__`` import nothing heavy), past Python's own start-up, where a
    Ctrl-C is Python's to report."""
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "_multiarray_umath" in maps.read_text():
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.002)
    raise AssertionError("nnctl did not start")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc")
@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
def test_ctrl_c_during_start_up_exits_130_with_one_line(tmp_path, delay):
    """SIGINT while nnctl imports, reads the config or loads MNIST."""
    (tmp_path / "mnist.yaml").write_text(
        IRIS.replace("iris", "mnist").replace("n_out: 3,", "n_out: 10,")
    )
    command = [NNCTL, "train", "-q", "mnist.yaml", "--out", "r"]
    process = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    wait_for_numpy(process)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 130, stderr
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr, stderr
