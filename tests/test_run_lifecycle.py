"""A run directory's life through the real ``nnctl`` executable: created only once the
data loads, never left ``running`` by a failure, locked while it trains, repaired and
checked when it resumes, extended with ``--set train.epochs``, found from any directory."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")

MLP = """\
seed: 0
data: {DATA}
model:
  layers:
    - {type: fully_connected, n_out: 8, activation: relu}
    - {type: fully_connected, n_out: 2, activation: softmax}
  loss: cross_entropy
optimizer: {type: adam, lr: 0.01}
train: {epochs: 3}
"""
DIGITS = MLP.replace("{DATA}", "{dataset: digits, batch_size: 64}").replace("n_out: 2", "n_out: 10")


def nnctl(*args, check=None, timeout=300, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [NNCTL, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )
    if check is not None:
        assert result.returncode == check, result.stderr
    return result


STARTED: list[subprocess.Popen] = []


def start(*args, **kwargs) -> subprocess.Popen:
    process = subprocess.Popen(
        [NNCTL, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
    STARTED.append(process)
    return process


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
        process.communicate()


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def meta(run_dir: Path) -> dict:
    return json.loads((run_dir / "meta.json").read_text())


def wait_for_rows(run_dir: Path, n: int, process: subprocess.Popen, timeout=120.0) -> None:
    log, deadline = run_dir / "metrics.jsonl", time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and len(log.read_text().splitlines()) >= n:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    raise AssertionError("training did not progress")


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


def user_data(folder: Path, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(np.int64)


@pytest.fixture
def work(tmp_path) -> Path:
    """``work/d/c.yaml`` reading ``good.npz`` (relative to the config) and ``data.csv``."""
    folder = tmp_path / "work"
    (folder / "d").mkdir(parents=True)
    X, y = user_data(folder)
    np.savez(folder / "d" / "good.npz", x=X, y=y)
    lines = ["a,b,c,d,label", *(",".join([*map(str, x), str(t)]) for x, t in zip(X, y))]
    (folder / "d" / "data.csv").write_text("\n".join(lines) + "\n")
    (folder / "d" / "c.yaml").write_text(MLP.replace("{DATA}", "{type: npz, path: good.npz}"))
    csv_data = "{type: csv, path: data.csv, label_column: label, batch_size: 4}"
    (folder / "d" / "csv.yaml").write_text(MLP.replace("{DATA}", csv_data))
    return folder


# --- 1. relative data paths ---------------------------------------------------------------


def test_a_run_on_relative_data_paths_is_usable_from_any_directory(work, tmp_path):
    nnctl("train", "d/c.yaml", "--out", "runs/r", "-q", check=0, cwd=work)
    run_dir = work / "runs" / "r"
    stored = (run_dir / "config.yaml").read_text()
    assert f"path: {work / 'd' / 'good.npz'}" in stored  # absolute in the stored config
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for cwd, target in ((work, "runs/r"), (elsewhere, run_dir)):
        result = nnctl("eval", target, "--split", "validation", "--json", check=0, cwd=cwd)
        assert json.loads(result.stdout)["samples"] == 12
    nnctl("resume", run_dir, "--set", "train.epochs=4", "-q", check=0, cwd=elsewhere)
    assert [row["epoch"] for row in rows(run_dir)] == [1, 2, 3, 4]


def test_the_resume_command_printed_after_sigterm_works(work):
    run_dir = work / "runs" / "my run"  # a space: the printed command must quote it
    process = start(
        "train", "d/csv.yaml", "--out", "runs/my run", "--set", "train.epochs=60", cwd=work
    )
    wait_for_rows(run_dir, 1, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    printed = stderr.split("Resume with: ", 1)[1].splitlines()[0]
    command = shlex.split(printed)
    assert command[:2] == ["nnctl", "resume"]
    result = nnctl(*command[1:], cwd=work)
    assert result.returncode == 0, result.stderr
    assert meta(run_dir)["status"] == "completed"


# --- 2. no run directory left "running" ---------------------------------------------------


def _bad_npz(folder: Path, kind: str) -> None:
    X, y = user_data(folder)
    if kind == "nan":
        X[3, 1] = np.nan
    elif kind == "mismatch":
        y = y[:-5]
    np.savez(folder / "d" / "good.npz", x=X, y=y)


@pytest.mark.parametrize("kind", ["nan", "mismatch", "ragged-csv", "huge-layer"])
def test_bad_data_or_model_fails_before_the_run_directory_exists(work, kind):
    config = "d/c.yaml"
    if kind in ("nan", "mismatch"):
        _bad_npz(work, kind)
    elif kind == "ragged-csv":
        with open(work / "d" / "data.csv", "a") as handle:
            handle.write("1,2\n")
        config = "d/csv.yaml"
    else:
        (work / "d" / "c.yaml").write_text(
            # 16 PB of weights: more than any address space, whatever the overcommit policy
            (work / "d" / "c.yaml").read_text().replace("n_out: 8", "n_out: 1000000000000000")
        )
    result = nnctl("train", config, "--out", "runs/bad", cwd=work)
    assert result.returncode == 1, result.stderr
    assert not (work / "runs" / "bad").exists()


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_sigint_while_the_data_loads_exits_130_and_leaves_nothing(work):
    """A CSV big enough that reading it takes a while; SIGINT once the process has it open."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300_000, 4)).round(3)
    table = np.column_stack([X, (X[:, 0] > 0).astype(int)])
    np.savetxt(
        work / "d" / "data.csv", table, delimiter=",", fmt="%g", header="a,b,c,d,label", comments=""
    )
    process = start("train", "d/csv.yaml", "--out", "runs/int", cwd=work)
    data = str(work / "d" / "data.csv")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            links = [
                os.readlink(f"/proc/{process.pid}/fd/{fd}")
                for fd in os.listdir(f"/proc/{process.pid}/fd")
            ]
        except OSError:
            links = []
        if data in links:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert one_error_line(stderr).startswith("error: interrupted")
    assert not (work / "runs" / "int").exists()


# --- 3. one process per run directory -----------------------------------------------------


def test_a_run_directory_is_locked_while_it_trains(tmp_path):
    config = tmp_path / "digits.yaml"
    config.write_text(DIGITS)
    run_dir = tmp_path / "r"
    nnctl("train", config, "--out", run_dir, "-q", check=0)
    first = start(
        "train", config, "--resume", run_dir, "--set", "train.epochs=100000", "--force", "-q"
    )
    wait_for_rows(run_dir, 5, first)
    second = nnctl("resume", run_dir, "-q", timeout=60)
    again = nnctl(
        "train", config, "--resume", run_dir, "--set", "train.epochs=100000", "-q", timeout=60
    )
    first.send_signal(signal.SIGKILL)  # a killed process leaves no lock behind
    first.wait()
    for result in (second, again):
        assert result.returncode == 1
        assert "another nnctl process" in one_error_line(result.stderr)
    assert f"pid {first.pid}" in second.stderr
    epochs = [row["epoch"] for row in rows(run_dir)]
    assert epochs == list(range(1, len(epochs) + 1))  # one writer: no interleaved rows
    nnctl(
        "train",
        config,
        "--resume",
        run_dir,
        "--set",
        f"train.epochs={len(epochs) + 2}",
        "--force",
        "-q",
        check=0,
    )
    assert [row["epoch"] for row in rows(run_dir)] == list(range(1, len(epochs) + 3))


def test_a_run_killed_while_running_is_listed_as_interrupted(tmp_path):
    (tmp_path / "digits.yaml").write_text(DIGITS)
    run_dir = tmp_path / "runs" / "k"
    process = start(
        "train", tmp_path / "digits.yaml", "--out", run_dir, "--set", "train.epochs=100000", "-q"
    )
    wait_for_rows(run_dir, 2, process)
    listed = json.loads(nnctl("runs", tmp_path / "runs", "--json", check=0).stdout)
    assert listed[0]["status"] == "running"
    process.send_signal(signal.SIGKILL)
    process.wait()
    listed = json.loads(nnctl("runs", tmp_path / "runs", "--json", check=0).stdout)
    assert listed[0]["status"] == "interrupted" and listed[0]["problems"]


# --- 4. a partial last line in metrics.jsonl ----------------------------------------------


def test_a_partial_metrics_line_is_dropped_on_resume_and_reported(tmp_path):
    (tmp_path / "digits.yaml").write_text(DIGITS)
    run_dir = tmp_path / "r"
    nnctl("train", tmp_path / "digits.yaml", "--out", run_dir, "-q", check=0)
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 4, "step": 9')  # the crash came in the middle of an append
    listed = json.loads(nnctl("runs", run_dir, "--json", check=0).stdout)
    assert listed[0]["problems"] == [] and listed[0]["epochs"] == 3
    result = nnctl("resume", run_dir, "--set", "train.epochs=4", "-q")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert "warning:" in result.stderr and "partial last line" in result.stderr
    assert [row["epoch"] for row in rows(run_dir)] == [1, 2, 3, 4]
    csv_lines = (run_dir / "metrics.csv").read_text().splitlines()
    assert len(csv_lines) == 5 and [line.split(",")[0] for line in csv_lines[1:]] == list("1234")


# --- 5. resume checks ---------------------------------------------------------------------


@pytest.fixture
def finished_run(tmp_path) -> Path:
    (tmp_path / "digits.yaml").write_text(DIGITS)
    run_dir = tmp_path / "r"
    nnctl("train", tmp_path / "digits.yaml", "--out", run_dir, "-q", check=0)
    return run_dir


def test_resume_without_checkpoints_is_an_error_unless_forced(finished_run):
    shutil.rmtree(finished_run / "checkpoints")
    before = (finished_run / "metrics.jsonl").read_text()
    result = nnctl("resume", finished_run)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert "checkpoints/last.npz is missing" in line and "3 epochs" in line and "--force" in line
    assert (finished_run / "metrics.jsonl").read_text() == before
    forced = nnctl("resume", finished_run, "--force", check=0)
    assert "training again from epoch 1" in forced.stderr
    assert [row["epoch"] for row in rows(finished_run)] == [1, 2, 3]


def test_resume_after_editing_the_config_lists_the_changes(finished_run):
    config = finished_run / "config.yaml"
    config.write_text(config.read_text().replace("lr: 0.01", "lr: 0.05"))
    before = (finished_run / "checkpoints" / "last.npz").read_bytes()
    for args in ([], ["--set", "train.epochs=5"], ["--set", "optimizer.lr=0.05"]):
        result = nnctl("resume", finished_run, *args)
        assert result.returncode == 1
        line = one_error_line(result.stderr)
        assert "optimizer.lr: 0.01 -> 0.05" in line and "--force" in line
    assert (finished_run / "checkpoints" / "last.npz").read_bytes() == before
    nnctl("resume", finished_run, "--set", "train.epochs=4", "--force", "-q", check=0)
    with np.load(finished_run / "checkpoints" / "last.npz") as archive:
        saved = json.loads(archive["__meta__"].tobytes())["config"]
    assert saved["optimizer"]["lr"] == 0.05 and saved["train"]["epochs"] == 4
    resumes = meta(finished_run)["resumes"]
    assert resumes[-1]["changed"] == ["optimizer.lr", "train.epochs"]


def test_a_finished_run_says_so_and_is_extended_with_set(finished_run):
    before = (finished_run / "metrics.jsonl").read_text()
    original_hash = meta(finished_run)["config_hash"]
    result = nnctl("resume", finished_run, check=0)
    assert "already complete (3 of 3 epochs" in result.stderr
    assert "resuming" not in result.stderr
    assert (finished_run / "metrics.jsonl").read_text() == before
    assert "resumes" not in meta(finished_run)  # nothing happened
    shown = nnctl("resume", finished_run, "--json", "-q", check=0)
    assert json.loads(shown.stdout)["epochs"] == 3 and shown.stderr == ""
    extended = nnctl("resume", finished_run, "--set", "train.epochs=5", "--json", check=0)
    assert json.loads(extended.stdout)["epochs"] == 5
    assert "resuming" in extended.stderr and "epoch 4 of 5" in extended.stderr
    assert [row["epoch"] for row in rows(finished_run)] == [1, 2, 3, 4, 5]
    info = meta(finished_run)
    assert info["status"] == "completed" and len(info["resumes"]) == 1
    entry = info["resumes"][0]
    assert entry["command"][1:] == [
        "resume",
        str(finished_run),
        "--set",
        "train.epochs=5",
        "--json",
    ]
    assert entry["epoch"] == 3 and entry["changed"] == ["train.epochs"]
    assert entry["config_hash"] == info["config_hash"] != original_hash
    fewer = nnctl("resume", finished_run, "--set", "train.epochs=2")
    assert fewer.returncode == 1 and "fewer than the 5 epochs" in one_error_line(fewer.stderr)


# --- 13. messages and flags ---------------------------------------------------------------


def test_early_stopping_says_so(tmp_path):
    (tmp_path / "digits.yaml").write_text(DIGITS)
    result = nnctl(
        "train",
        tmp_path / "digits.yaml",
        "--out",
        tmp_path / "r",
        "--set",
        "train.epochs=10",
        "--set",
        "train.early_stopping={monitor: val_loss, patience: 2, min_delta: 100}",
        check=0,
    )
    assert "early stopping: val_loss did not improve" in result.stderr
    assert "stopped after epoch 3 of 10" in result.stderr
    done = [line for line in result.stderr.splitlines() if line.startswith("done:")]
    assert done and done[0].startswith("done: 3 epochs (stopped early: val_loss did not improve")
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["stopped_early"] and summary["stop_reason"].endswith("for 2 epochs")
    resumed = nnctl("resume", tmp_path / "r", "--set", "train.epochs=20", check=0)
    assert "already complete (early stopping ended it at epoch 3)" in resumed.stderr


def test_sweep_quiet_prints_nothing_and_its_table_names_both_times(tmp_path):
    (tmp_path / "digits.yaml").write_text(DIGITS)
    out = tmp_path / "sweep"
    result = nnctl(
        "sweep",
        tmp_path / "digits.yaml",
        "--grid",
        "optimizer.lr=0.01,0.02",
        "--jobs",
        "1",
        "--out",
        out,
        "-q",
        check=0,
    )
    assert result.stderr == "" and result.stdout == ""
    header = (out / "sweep.csv").read_text().splitlines()[0].split(",")
    assert "train_seconds" in header and "wall_seconds" in header
    rows_ = [json.loads(line) for line in (out / "sweep.jsonl").read_text().splitlines()]
    for row in rows_:
        summary = json.loads((Path(row["dir"]) / "summary.json").read_text())
        assert row["train_seconds"] == summary["train_seconds"] < row["wall_seconds"]
