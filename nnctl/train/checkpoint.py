"""Checkpoints: one ``.npz`` of plain arrays plus JSON metadata, written atomically
(``nnctl.fileio``).

Layout inside the archive: ``model/<key>`` (network weights), ``optim/<key>``,
``sched/<key>``, ``prep/<key>`` (preprocessing statistics), ``rng/<name>/<field>``
(generator states) and ``__meta__`` (UTF-8 JSON as uint8). Archives are read with
``allow_pickle=False`` only, so loading a checkpoint can never run code.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from nnctl.errors import CheckpointError
from nnctl.fileio import atomic_write_bytes

FORMAT_VERSION = 1
META_KEY = "__meta__"
MASK64 = (1 << 64) - 1


def rng_to_arrays(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A PCG64 generator's state as uint64 arrays (128-bit integers split in two words)."""
    state = rng.bit_generator.state
    if state["bit_generator"] != "PCG64":
        raise CheckpointError(f"cannot save a {state['bit_generator']} generator")
    s, inc = state["state"]["state"], state["state"]["inc"]
    return {
        "words": np.array([s >> 64, s & MASK64, inc >> 64, inc & MASK64], dtype=np.uint64),
        "extra": np.array([state["has_uint32"], state["uinteger"]], dtype=np.uint64),
    }


def rng_from_arrays(arrays: dict[str, np.ndarray], rng: np.random.Generator) -> None:
    """Restore ``rng`` in place from ``rng_to_arrays`` output."""
    w = [int(x) for x in arrays["words"]]
    extra = [int(x) for x in arrays["extra"]]
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": (w[0] << 64) | w[1], "inc": (w[2] << 64) | w[3]},
        "has_uint32": extra[0],
        "uinteger": extra[1],
    }


def save_checkpoint(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Atomically write ``arrays`` (flat, keys with ``/``) and JSON ``meta`` to ``path``."""
    meta = {"format": FORMAT_VERSION, **meta}
    payload = {key: np.asarray(value) for key, value in arrays.items()}
    payload[META_KEY] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **payload)
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, meta) from a checkpoint; CheckpointError naming the file if it is unusable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise CheckpointError(f"{path}: not a readable nnctl checkpoint ({error})") from error
    if META_KEY not in arrays:
        raise CheckpointError(f"{path}: not an nnctl checkpoint (no metadata)")
    try:
        meta = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(f"{path}: corrupted checkpoint metadata ({error})") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported checkpoint format {meta.get('format')!r}")
    return arrays, meta


def split_prefix(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays under ``prefix/``, with the prefix removed."""
    start = prefix + "/"
    return {k[len(start) :]: v for k, v in arrays.items() if k.startswith(start)}


def with_prefix(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{prefix}/{k}": v for k, v in arrays.items()}
