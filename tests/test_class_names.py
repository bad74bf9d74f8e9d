"""Class names in eval and predict; predict on the very file format a model was trained on."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")
IRIS = np.load(ROOT / "datasets" / "iris.npz")
NAMES = [str(n) for n in IRIS["class_names"]]


def nnctl(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [NNCTL, *map(str, args)], check=False, cwd=cwd, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An iris run on the built-in data set and one on a CSV whose labels are species names."""
    folder = tmp_path_factory.mktemp("names")
    with open(folder / "iris.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([*map(str, IRIS["feature_names"]), "species"])
        for row, label in zip(IRIS["features"], IRIS["labels"]):
            writer.writerow([*map(str, row), NAMES[label]])
    (folder / "csv.yaml").write_text(
        "seed: 0\n"
        "data: {type: csv, path: iris.csv, label_column: species, validation: 0.2,"
        " batch_size: 16}\n"
        "model:\n  layers:\n"
        "    - {type: fully_connected, n_out: 16, activation: tanh}\n"
        "    - {type: fully_connected, n_out: 3, activation: softmax}\n"
        "  loss: cross_entropy\n"
        "optimizer: {type: sgd, lr: 0.1, momentum: 0.9}\n"
        "train: {epochs: 20}\n"
    )
    for args in (
        ("train", ROOT / "configs" / "iris-mlp.yaml", "--out", "builtin", "-q"),
        ("train", "csv.yaml", "--out", "csvrun", "-q"),
    ):
        done = nnctl(*args, cwd=folder)
        assert done.returncode == 0, done.stderr
    np.save(folder / "x.npy", IRIS["features"][:5])
    np.save(folder / "narrow.npy", IRIS["features"][:5, :3])
    return folder


def test_eval_prints_and_returns_class_names(runs):
    text = nnctl("eval", "builtin", cwd=runs)
    assert text.returncode == 0, text.stderr
    rows = [line.split() for line in text.stdout.splitlines()]
    assert [row[:2] for row in rows if row and row[0] in "012"][:3] == [
        ["0", "setosa"],
        ["1", "versicolor"],
        ["2", "virginica"],
    ]
    result = json.loads(nnctl("eval", "builtin", "--json", cwd=runs).stdout)
    assert result["class_names"] == NAMES


def test_predict_writes_class_names_next_to_the_index(runs):
    done = nnctl("predict", "builtin", "--input", "x.npy", cwd=runs)
    assert done.returncode == 0, done.stderr
    table = list(csv.DictReader(io.StringIO(done.stdout)))
    assert list(table[0])[:2] == ["class", "class_name"]
    assert all(NAMES[int(row["class"])] == row["class_name"] for row in table)
    assert (
        nnctl("predict", "builtin", "--input", "x.npy", "--output", "p.npz", cwd=runs).returncode
        == 0
    )
    saved = np.load(runs / "p.npz")
    assert [NAMES[i] for i in saved["class"]] == saved["class_name"].tolist()


def test_predict_takes_the_training_csv_with_its_label_column(runs):
    done = nnctl("predict", "csvrun", "--input", "iris.csv", "--json", cwd=runs)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rows"] == 150 and result["class_names"] == NAMES
    predicted = np.array([NAMES.index(name) for name in result["class_name"]])
    assert result["accuracy"] == pytest.approx(np.mean(predicted == IRIS["labels"]))
    assert result["accuracy"] > 0.9
    assert "accuracy" in done.stderr


def test_a_wrong_width_names_both_numbers(runs):
    done = nnctl("predict", "builtin", "--input", "narrow.npy", cwd=runs)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: input has 3 features per example; the model takes 4"
    ]
