"""A trained network's weights as a safetensors file, for other tools.

Every parameter and buffer under its checkpoint name and in nnctl's own shape and dtype
(``layers.0.W`` (n_in, n_out), ``layers.0.b`` (1, n_out), conv kernels (kh, kw, c_in,
n_out), ``layers.3.running_mean``), plus the preprocessing as ``preprocess.shift`` and
``preprocess.scale``; the header's metadata is ``nnctl.export.metadata``'s, with the
layouts spelled out under ``layouts``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.numpy import save

from nnctl.export.metadata import export_metadata
from nnctl.fileio import atomic_write_bytes

LAYOUTS = (
    "images NHWC; fully_connected W (n_in, n_out) applied as x @ W + b with b (1, n_out); "
    "conv2d W (kh, kw, c_in, n_out); residual shortcut W (1, 1, c_in, n_out) or (n_in, n_out); "
    "inputs are scaled as (x - preprocess.shift) / preprocess.scale"
)


def tensors(model) -> dict[str, np.ndarray]:
    """The arrays written: the network's state (copies) and the preprocessing."""
    arrays = dict(model.network.state_dict())
    arrays["preprocess.shift"] = model.preprocess.shift
    arrays["preprocess.scale"] = model.preprocess.scale
    return {name: np.array(array, order="C") for name, array in arrays.items()}


def write(model, path: Path) -> None:
    """Write a ``TrainedModel``'s tensors and metadata to ``path``, atomically."""
    metadata = {**export_metadata(model), "layouts": LAYOUTS}
    atomic_write_bytes(Path(path), save(tensors(model), metadata=metadata))
