"""Files nnctl writes get the mode of the umask, like any file ``open`` creates: a run on a
shared machine is readable by colleagues under the usual umask 022 (issue 10, item 7)."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnctl import fileio

ROOT = Path(__file__).resolve().parents[1]
NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")
UMASKS = [0o022, 0o027, 0o002, 0o077]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_umask(value: int) -> int:
        os.umask(value)
        return value

    yield set_umask
    os.umask(saved)


@pytest.mark.parametrize("value", UMASKS, ids=oct)
def test_atomic_writes_keep_the_umask_mode(tmp_path, umask, value):
    umask(value)
    fileio.atomic_write_json(tmp_path / "new.json", {"a": 1})
    existing = tmp_path / "old.bin"
    existing.write_bytes(b"old")
    existing.chmod(0o600)
    fileio.atomic_write_bytes(existing, b"new")
    assert mode(tmp_path / "new.json") == 0o666 & ~value
    assert mode(existing) == 0o666 & ~value and existing.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.json", "old.bin"]  # no temps


def test_create_temp_never_reuses_a_name(tmp_path, umask):
    umask(0o022)
    made = [fileio.create_temp(tmp_path, ".x.", ".tmp") for _ in range(50)]
    for fd, _ in made:
        os.close(fd)
    paths = {path for _, path in made}
    assert len(paths) == 50 and all(mode(p) == 0o644 for p in paths)


def nnctl_with_umask(value: int, *args) -> subprocess.CompletedProcess:
    """The real executable, started with umask ``value``."""
    command = [NNCTL, *map(str, args)]
    kwargs = {"capture_output": True, "text": True, "timeout": 300}
    return subprocess.run(command, check=False, preexec_fn=lambda: os.umask(value), **kwargs)


@pytest.mark.parametrize("value", [0o022, 0o077], ids=oct)
def test_a_run_and_its_predictions_follow_the_umask(tmp_path, value):
    run_dir = tmp_path / "run"
    config = ROOT / "configs" / "iris-mlp.yaml"
    result = nnctl_with_umask(
        value, "train", config, "--out", run_dir, "-q", "--set", "train.epochs=2"
    )
    assert result.returncode == 0, result.stderr
    written = [p for p in run_dir.rglob("*") if p.is_file()]
    names = {p.relative_to(run_dir).as_posix() for p in written}
    assert {"config.yaml", "meta.json", "summary.json", "checkpoints/last.npz"} <= names
    assert {p.name: oct(mode(p)) for p in written} == {p.name: oct(0o666 & ~value) for p in written}
    np.save(tmp_path / "x.npy", np.ones((2, 4)))
    out = tmp_path / "p.csv"
    predicted = nnctl_with_umask(
        value, "predict", run_dir, "--input", tmp_path / "x.npy", "--output", out
    )
    assert predicted.returncode == 0, predicted.stderr
    assert mode(out) == 0o666 & ~value
