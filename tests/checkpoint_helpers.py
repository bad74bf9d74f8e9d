"""Helpers for tests that run the real ``nnctl`` on trained and tampered checkpoints."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")
IRIS = ROOT / "configs" / "iris-mlp.yaml"

USER_DATA_CONFIG = """\
data: {type: npz, path: train.npz, validation: 0.2}
model:
  layers: [{type: fully_connected, n_out: 3, activation: softmax}]
  loss: cross_entropy
optimizer: {type: adam}
train: {epochs: 2}
"""


def nnctl(*args, cwd=None) -> subprocess.CompletedProcess:
    """The real executable; never raises on a non-zero exit."""
    command = [NNCTL, *map(str, args)]
    return subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=300, cwd=cwd
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Exit 1 and one ``error:`` line on stderr holding every fragment; returns the line."""
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def train(run_dir: Path, config: Path = IRIS, *sets: str) -> Path:
    args = ["train", config, "--out", run_dir, "-q", "--set", "train.epochs=2"]
    result = nnctl(*args, *(part for s in sets for part in ("--set", s)))
    assert result.returncode == 0, result.stderr
    return run_dir


def user_data_run(folder: Path) -> Path:
    """A run trained on an npz file of its own (4 features, 3 classes)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.savez(folder / "train.npz", x=rng.normal(size=(60, 4)), y=np.arange(60) % 3)
    (folder / "config.yaml").write_text(USER_DATA_CONFIG)
    return train(folder / "run", folder / "config.yaml")


def read_raw(path: Path) -> tuple[dict[str, np.ndarray], object]:
    """The arrays and the decoded metadata of a checkpoint, without any check."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return arrays, json.loads(arrays.pop("__meta__").tobytes())


def tamper(
    source: Path,
    target: Path,
    meta: Callable[[dict], object] | None = None,
    arrays: Callable[[dict], None] | None = None,
    raw_meta: bytes | None = None,
) -> Path:
    """Copy checkpoint ``source`` to ``target``, changing its metadata (``meta`` returns
    the new metadata; ``raw_meta`` replaces its bytes) or its arrays (changed in place)."""
    contents, decoded = read_raw(source)
    if meta is not None:
        decoded = meta(decoded)
    if arrays is not None:
        arrays(contents)
    encoded = raw_meta if raw_meta is not None else json.dumps(decoded).encode()
    contents["__meta__"] = np.frombuffer(encoded, dtype=np.uint8)
    with open(target, "wb") as handle:
        np.savez(handle, **contents)
    return target


def setting(path: str, value) -> Callable[[dict], dict]:
    """A ``meta`` change for :func:`tamper`: set the dotted ``path`` to ``value``."""

    def change(meta: dict) -> dict:
        *parents, last = path.split(".")
        node = meta
        for key in parents:
            node = node[key]
        node[last] = value
        return meta

    return change
