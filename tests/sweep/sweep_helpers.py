"""Shared helpers for sweep tests: a small digits config and the real ``nnctl`` executable.

(No conftest.py here: it would shadow tests/data/conftest.py, which modules import by name.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")

# SGD, so that optimizer.lr=1e12 diverges in the first epoch (Adam's steps stay bounded).
BASE = """\
seed: 0
data: {dataset: digits, validation: 0.1, batch_size: 32}
model:
  layers:
    - {type: fully_connected, n_out: 16, activation: relu, weight_init: he_uniform}
    - {type: fully_connected, n_out: 10, activation: softmax}
  loss: cross_entropy
optimizer: {type: sgd, lr: 0.05, momentum: 0.9}
train: {epochs: 2}
"""


def write_base(folder: Path, text: str = BASE) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "base.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def nnctl(*args, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([NNCTL, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, check=False, **kwargs)  # fmt: skip


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def rows_by_name(out: Path) -> dict[str, dict]:
    return {row["name"]: row for row in read_jsonl(out / "sweep.jsonl")}


def weights(run_dir: Path) -> dict[str, np.ndarray]:
    """The model arrays of a run's last checkpoint."""
    with np.load(run_dir / "checkpoints" / "last.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files if key.startswith("model/")}


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = weights(a), weights(b)
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())
