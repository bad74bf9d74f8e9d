"""``nnctl sweep`` on the local backend, through the real executable and CliRunner:
folders, tables, statuses, a diverging trial, resuming, up-front validation, sweep files.
The tests that run sweeps are marked ``slow``; every test of the shared 2x2 ``grid_sweep``
is, so that ``pytest -m "not slow"`` never pays for that fixture."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sweep_helpers import NNCTL, nnctl, read_jsonl, rows_by_name, same_weights, write_base

from nnctl.cli import main

GRID = ["--grid", "optimizer.lr=0.05,1e12", "--grid", "model.layers[0].n_out=16,32"]
NAMES = ["000-optimizer.lr=0.05,model.layers.0.n_out=16",
         "001-optimizer.lr=0.05,model.layers.0.n_out=32",
         "002-optimizer.lr=1e+12,model.layers.0.n_out=16",
         "003-optimizer.lr=1e+12,model.layers.0.n_out=32"]  # fmt: skip


@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    """A 2x2 digits sweep in which the two lr=1e12 trials diverge (seconds: slow tests only)."""
    root = tmp_path_factory.mktemp("grid")
    base = write_base(root)
    out = root / "sweep"
    result = nnctl("sweep", base, *GRID, "--jobs", "2", "--out", out)
    return base, out, result


@pytest.mark.slow
def test_grid_sweep_runs_every_trial_and_reports_the_failures(grid_sweep):
    _, out, result = grid_sweep
    assert result.returncode == 1, result.stderr
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == NAMES
    assert "2 of 4 trials did not complete (2 completed, 2 diverged)" in result.stderr
    finished = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert len(finished) == 4 and all(line.startswith(("[1/4]", "[2/4]", "[3/4]", "[4/4]"))
                                      for line in sorted(finished))  # fmt: skip
    assert any("diverged (training diverged" in line for line in finished)


@pytest.mark.slow
def test_grid_sweep_table(grid_sweep):
    _, out, _ = grid_sweep
    rows = read_jsonl(out / "sweep.jsonl")
    assert [row["name"] for row in rows] == NAMES
    assert [row["status"] for row in rows] == ["completed", "completed", "diverged", "diverged"]
    assert rows[1]["params"] == {"optimizer.lr": 0.05, "model.layers[0].n_out": 32}
    assert rows[1]["overrides"] == ["optimizer.lr=0.05", "model.layers[0].n_out=32"]
    for row in rows[:2]:
        assert row["epochs"] == 2 and row["error"] is None and row["attempts"] == 1
        assert 0.5 < row["best_val_accuracy"] <= 1 and 0.5 < row["test_accuracy"] <= 1
        assert row["best_val_loss"] > 0 and row["test_loss"] > 0 and row["wall_seconds"] > 0
    for row in rows[2:]:
        assert "diverged" in row["error"] and "optimizer.lr" in row["error"]
        assert row["test_accuracy"] is None
    with open(out / "sweep.csv", newline="") as file:
        table = list(csv.DictReader(file))
    assert [r["status"] for r in table] == [r["status"] for r in rows]
    assert table[3]["optimizer.lr"] == "1e+12" and table[3]["model.layers[0].n_out"] == "32"
    assert float(table[0]["test_accuracy"]) == rows[0]["test_accuracy"]
    assert table[2]["error"] == rows[2]["error"] and table[0]["error"] == ""


@pytest.mark.slow
def test_trials_are_normal_run_directories(grid_sweep):
    base, out, _ = grid_sweep
    trial = out / NAMES[1]
    record = json.loads((trial / "trial.json").read_text())
    assert record["overrides"] == ["optimizer.lr=0.05", "model.layers[0].n_out=32"]
    assert record["status"] == "completed" and record["exit_code"] == 0
    meta = json.loads((trial / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["config_file"] == str(base.resolve())
    assert "model.layers[0].n_out=32" in meta["command"]
    assert json.loads((out / NAMES[2] / "meta.json").read_text())["status"] == "diverged"
    # the same as a plain `nnctl train` with those overrides
    alone = out.parent / "alone"
    train = nnctl("train", base, "--set", "optimizer.lr=0.05", "--set",
                  "model.layers[0].n_out=32", "--out", alone, "--quiet")  # fmt: skip
    assert train.returncode == 0, train.stderr
    assert same_weights(trial, alone)


@pytest.mark.slow
def test_runs_lists_the_trials(grid_sweep):
    _, out, _ = grid_sweep
    result = CliRunner().invoke(main, ["runs", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(row["name"] for row in json.loads(result.output)) == NAMES


@pytest.mark.slow
def test_rerun_skips_finished_trials_and_retries_failed_ones_only_when_asked(grid_sweep):
    base, out, _ = grid_sweep
    again = out.parent / "again"
    shutil.copytree(out, again)
    stamps = {name: (again / name / "summary.json").stat().st_mtime_ns for name in NAMES[:2]}
    result = nnctl("sweep", base, *GRID, "--out", again)
    assert result.returncode == 1
    assert "4 trials, 4 already done" in result.stderr
    assert not [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert stamps == {n: (again / n / "summary.json").stat().st_mtime_ns for n in NAMES[:2]}
    assert (again / "sweep.csv").read_text() == (out / "sweep.csv").read_text()

    result = nnctl("sweep", base, *GRID, "--out", again, "--retry-failed")
    assert result.returncode == 1
    assert "4 trials, 2 already done, running 2" in result.stderr
    rows = rows_by_name(again)
    assert [rows[n]["status"] for n in NAMES] == ["completed", "completed", "diverged", "diverged"]
    assert stamps == {n: (again / n / "summary.json").stat().st_mtime_ns for n in NAMES[:2]}


@pytest.mark.slow
def test_a_different_sweep_cannot_reuse_the_folder(grid_sweep):
    base, out, _ = grid_sweep
    result = CliRunner().invoke(main, ["sweep", str(base), "--grid", "seed=1,2",
                                       "--out", str(out)])  # fmt: skip
    assert result.exit_code == 1
    assert "holds a different sweep (its trials differ); choose another --out" in result.output


def test_every_trial_is_validated_before_any_runs(tmp_path):
    base = write_base(tmp_path)
    out = tmp_path / "sweep"
    result = CliRunner().invoke(main, ["sweep", str(base), "--grid", "optimizer.lr=0.1,-1,abc",
                                       "--grid", "seed=0,1", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    # one line per swept key, naming where it was given and every value that fails
    assert errors == [("error: --grid optimizer.lr: value -1: must be a positive number; got -1 "
                      "(and with abc)")]  # fmt: skip
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "optimizer.lr"], "expected KEY=V1,V2"),
        (["--grid", "seed=1", "--grid", "seed=2"], "seed is swept twice"),
        (["--jobs", "0"], "must be a positive integer"),
        (["--backend", "local", "--address", "auto"], "--address needs --backend ray"),
    ],
)
def test_usage_errors(tmp_path, args, message):
    result = CliRunner().invoke(main, ["sweep", str(write_base(tmp_path)), *args])
    assert result.exit_code == 2, result.output  # a usage error, click's convention
    assert message in result.output


def test_nothing_to_sweep(tmp_path):
    result = CliRunner().invoke(main, ["sweep", str(write_base(tmp_path))])
    assert result.exit_code == 1
    assert "nothing to sweep" in result.output


def test_ray_backend_without_ray_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    out = tmp_path / "sweep"
    result = CliRunner().invoke(main, ["sweep", str(write_base(tmp_path)), "--grid", "seed=1,2",
                                       "--backend", "ray", "--out", str(out)])  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip() == "error: the ray backend needs Ray: pip install 'nnctl[ray]'"
    assert not out.exists()


@pytest.mark.slow
def test_sweep_file_with_random_search(tmp_path):
    write_base(tmp_path / "configs")
    sweep = tmp_path / "sweeps" / "random.yaml"
    sweep.parent.mkdir()
    sweep.write_text("base: ../configs/base.yaml\nset: [train.epochs=1]\n"
                     "random:\n  trials: 3\n  seed: 5\n  space:\n"
                     "    optimizer.lr: {loguniform: [1.0e-3, 1.0e-1]}\n"
                     "    model.layers[0].n_out: {choice: [8, 16]}\n")  # fmt: skip
    out = tmp_path / "out"
    result = nnctl("sweep", sweep, "--out", out, "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["status"] for row in rows] == ["completed"] * 3
    assert [row["params"] for row in rows] == [row["params"] for row in read_jsonl(
        out / "sweep.jsonl")]  # fmt: skip
    assert len({row["params"]["optimizer.lr"] for row in rows}) == 3
    # the same seed gives the same trials: a rerun finds them all done
    result = nnctl("sweep", sweep, "--out", out, cwd=tmp_path)
    assert result.returncode == 0 and "3 trials, 3 already done" in result.stderr


@pytest.mark.slow
def test_stopped_sweep_resumes_exactly(tmp_path):
    """SIGTERM stops the sweep (running trials checkpoint, the rest stay pending); running
    it again resumes the interrupted trial from its checkpoint, bit for bit."""
    base = write_base(tmp_path)
    slow = ["--set", "data.batch_size=8", "--set", "train.epochs=200"]
    out = tmp_path / "sweep"
    args = ["sweep", str(base), *slow, "--grid", "seed=0,1", "--jobs", "1", "--out", str(out)]
    process = subprocess.Popen([NNCTL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
    try:
        first = out / "000-seed=0"
        wait_for(lambda: len(_lines(first / "metrics.jsonl")) >= 3, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    assert "sweep stopped; run the same command again to continue" in stderr
    rows = read_jsonl(out / "sweep.jsonl")
    assert [row["status"] for row in rows] == ["interrupted", "pending"]
    assert 3 <= rows[0]["epochs"] < 200

    result = nnctl(*args)
    assert result.returncode == 0, result.stderr
    assert "2 trials, running 2" in result.stderr
    rows = read_jsonl(out / "sweep.jsonl")
    assert [row["status"] for row in rows] == ["completed", "completed"]
    assert [row["attempts"] for row in rows] == [2, 1]
    assert json.loads((first / "trial.json").read_text())["resumed"] is True
    alone = tmp_path / "alone"
    train = nnctl("train", base, *slow, "--set", "seed=0", "--out", alone, "--quiet")
    assert train.returncode == 0, train.stderr
    assert same_weights(first, alone)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def wait_for(condition, process, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.01)
    raise AssertionError("timed out")


NPZ = """\
seed: 0
data: {type: npz, path: good.npz, x: x, y: y, validation: 0.2, batch_size: 8}
model:
  layers:
    - {type: fully_connected, n_out: 3, activation: softmax}
  loss: cross_entropy
optimizer: {type: sgd, lr: 0.1}
train: {epochs: 2}
"""


@pytest.mark.slow
def test_a_failing_trial_is_reported_and_retried_only_when_asked(tmp_path):
    """A data file that passes validation but fails when loaded (a NaN feature: validation
    reads headers and labels only)."""
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "good.npz", x=rng.normal(size=(30, 4)), y=np.arange(30) % 3)
    x = rng.normal(size=(30, 4))
    x[3, 2] = np.nan
    np.savez(tmp_path / "bad.npz", x=x, y=np.arange(30) % 3)
    base = write_base(tmp_path, NPZ)
    args = ["sweep", base, "--grid", "data.path=good.npz,bad.npz", "--out", tmp_path / "s"]
    result = nnctl(*args)
    assert result.returncode == 1
    rows = read_jsonl(tmp_path / "s" / "sweep.jsonl")
    assert [row["status"] for row in rows] == ["completed", "failed"]
    assert rows[1]["error"] == (
        f"{tmp_path / 'bad.npz'}: features contain NaN or infinite values (first in row 3)"
    )
    assert "1 of 2 trials did not complete (1 completed, 1 failed): 001-data.path=bad.npz" in (
        result.stderr
    )
    assert nnctl(*args).stderr.count("already done") == 1  # not retried
    np.savez(tmp_path / "bad.npz", x=rng.normal(size=(30, 4)), y=np.arange(30) % 3)
    result = nnctl(*args, "--retry-failed")
    assert result.returncode == 0, result.stderr
    assert "2 trials, 1 already done, running 1" in result.stderr
    assert [row["status"] for row in read_jsonl(tmp_path / "s" / "sweep.jsonl")] == [
        "completed", "completed"]  # fmt: skip
