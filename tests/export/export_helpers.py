"""Shared helpers of the export tests: the real ``nnctl`` executable, onnxruntime on an
exported model, networks with random weights and running statistics."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")
TOL = 1e-5  # max abs difference between onnxruntime and nnctl, float32


def nnctl(*args, check=None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``nnctl ARGS``; with ``check`` assert the exit code (stderr shown if not)."""
    result = subprocess.run([NNCTL, *map(str, args)], check=False, capture_output=True,
                            text=True, timeout=600, **kwargs)  # fmt: skip
    if check is not None:
        assert result.returncode == check, result.stderr
    return result


def run_onnx(model, X: np.ndarray) -> np.ndarray:
    """onnxruntime's output for ``X`` (float32) on ``model``: a path or a ModelProto."""
    import onnxruntime

    source = str(model) if isinstance(model, (str, Path)) else model.SerializeToString()
    session = onnxruntime.InferenceSession(source, providers=["CPUExecutionProvider"])
    (name,) = [i.name for i in session.get_inputs()]
    return session.run(None, {name: np.asarray(X, dtype=np.float32)})[0]


def randomize(network, seed: int = 0) -> None:
    """Random weights and biases (nothing at zero), and batch-norm running statistics far
    from their initial zeros and ones, so every array matters."""
    rng = np.random.default_rng(seed)
    for _, name, array in network.iter_parameters():
        array[...] = rng.normal(scale=0.5, size=array.shape)
    for key, array in network.state_arrays():
        if key.endswith("running_mean"):
            array[...] = rng.normal(scale=0.7, size=array.shape)
        elif key.endswith("running_var"):
            array[...] = rng.uniform(0.3, 2.5, size=array.shape)
