"""Checkpoints: one ``.npz`` of plain arrays plus JSON metadata, written atomically
(``nnctl.fileio``).

Layout inside the archive: ``model/<key>`` (network weights), ``optim/<key>``,
``sched/<key>``, ``prep/<key>`` (preprocessing statistics), ``rng/<name>/<field>``
(generator states) and ``__meta__`` (UTF-8 JSON as uint8). Archives are read with
``allow_pickle=False`` only, so loading a checkpoint can never run code.

A checkpoint is data, never instructions: loading checks that every array holds finite real
numbers (text only in ``prep/mode``) and that the metadata has the shape ``META_FIELDS``
describes, so a damaged or hostile file is one ``CheckpointError`` naming it, never a
traceback or a model that computes NaN. The metadata's ``data_spec`` (what the model was
trained on: input shape, task, classes) lets a model be used without opening its data.
"""

from __future__ import annotations

import io
import json
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnctl.core.checks import cut, show
from nnctl.data.config import TASKS
from nnctl.data.spec import DataSpec
from nnctl.errors import CheckpointError, NnctlError
from nnctl.fileio import atomic_write_bytes

FORMAT_VERSION = 1
META_KEY = "__meta__"
MASK64 = (1 << 64) - 1
TEXT_ARRAYS = ("prep/mode",)  # the only arrays that hold text
ZIP_MAGICS, NPY_MAGIC = (b"PK\x03\x04", b"PK\x05\x06"), b"\x93NUMPY"  # as np.load tells
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Field:
    """A metadata value: its JSON types (``type(None)`` for null), whether it must be
    present, and for a mapping the fields it must have or the types of all its values."""

    types: tuple[type, ...]
    required: bool = False
    fields: dict[str, Field] | None = None
    values: tuple[type, ...] | None = None


NULL, INT, NUMBER = (type(None),), (int,), (int, float)
TRACKER_FIELDS = {
    "best": Field(NUMBER + NULL, True),
    "best_epoch": Field(INT + NULL, True),
    "bad_epochs": Field(INT, True),
}
DATA_SPEC_FIELDS = {
    "name": Field((str,), True),
    "input_shape": Field((list,), True),
    "n_classes": Field(INT + NULL, True),
    "task": Field((str,), True),
    "class_names": Field((list,) + NULL),
}
#: The metadata's fields; other keys are kept (they may come from a newer nnctl).
META_FIELDS = {
    "format": Field(INT, True),
    "config": Field((dict,)),
    "config_hash": Field((str,)),
    "base_lr": Field(NUMBER),
    "progress": Field((dict,), values=(int, float, bool)),
    "tracker": Field((dict,), fields=TRACKER_FIELDS),
    "early_stopping": Field((dict,) + NULL, fields=TRACKER_FIELDS),
    "reduce_lr_on_plateau": Field(
        (dict,) + NULL, fields={**TRACKER_FIELDS, "scale": Field(NUMBER, True)}
    ),
    "data_spec": Field((dict,), fields=DATA_SPEC_FIELDS),
}


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
    """(arrays, meta) from a checkpoint; CheckpointError naming the file if it is unusable:
    not an npz archive, unreadable, arrays that are not finite real numbers, or metadata
    of the wrong shape."""
    path = Path(path)
    arrays = _read_archive(path)
    if META_KEY not in arrays:
        raise CheckpointError(f"{path}: not an nnctl checkpoint (no metadata)")
    meta = _decode_meta(path, arrays.pop(META_KEY))
    for key, array in arrays.items():
        _check_array(path, key, array)
    return arrays, meta


def _read_archive(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        what = "no such checkpoint file" if not path.exists() else "not a regular file"
        raise CheckpointError(f"{path}: {what}")
    with open(path, "rb") as handle:
        magic = handle.read(len(NPY_MAGIC))
    if not magic.startswith(ZIP_MAGICS):
        raise CheckpointError(f"{path}: {_not_an_archive(path, magic)}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError,
            RuntimeError, MemoryError) as error:  # fmt: skip
        reason = str(error) or type(error).__name__
        raise CheckpointError(f"{path}: not a readable nnctl checkpoint ({reason})") from error


def _not_an_archive(path: Path, magic: bytes) -> str:
    """Why a file that is not a zip archive is no checkpoint, with what to do instead."""
    if path.suffix.lower() in CONFIG_SUFFIXES:
        return (
            "is a config file, not a run directory or checkpoint; "
            f"train it with 'nnctl train {path}'"
        )
    if magic.startswith(NPY_MAGIC):
        return "is a .npy array, not an nnctl checkpoint (a .npz archive)"
    return "not an nnctl checkpoint (not an .npz archive)"


def _decode_meta(path: Path, raw: np.ndarray) -> dict:
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else error
        raise CheckpointError(f"{path}: corrupted checkpoint metadata ({reason})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_VERSION:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise CheckpointError(f"{path}: unsupported checkpoint format {show(found)}")
    problem = _shape_problem(meta, META_FIELDS, "")
    if problem:
        raise CheckpointError(f"{path}: malformed checkpoint metadata: {problem}")
    return meta


def _shape_problem(value: dict, fields: dict[str, Field], where: str) -> str | None:
    """What is wrong with mapping ``value`` against ``fields``, or None."""
    for key, field in fields.items():
        name = f"{where}{key}"
        if key not in value:
            if field.required:
                return f"'{name}' is missing"
            continue
        item = value[key]
        if not _has_type(item, field.types):
            return f"'{name}' must be {_type_names(field.types)}; got {show(item)}"
        if isinstance(item, dict):
            problem = _mapping_problem(item, field, name)
            if problem:
                return problem
    return None


def _mapping_problem(value: dict, field: Field, name: str) -> str | None:
    if field.fields:
        return _shape_problem(value, field.fields, f"{name}.")
    for key, item in value.items() if field.values else ():
        if not _has_type(item, field.values):
            return f"'{name}.{cut(key, 40)}' must be {_type_names(field.values)}; got {show(item)}"
    return None


def _has_type(value, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # JSON true/false are not numbers here
        return bool in types
    return isinstance(value, types)


def _type_names(types: tuple[type, ...]) -> str:
    names = {dict: "a mapping", list: "a list", str: "text", int: "an integer",
             float: "a number", bool: "true or false", type(None): "null"}  # fmt: skip
    shown = [names[t] for t in types if not (t is int and float in types)]
    return " or ".join(shown)


def _check_array(path: Path, key: str, array: np.ndarray) -> None:
    """Finite real numbers (text only where the format keeps text)."""
    kind = array.dtype.kind
    if kind in "US" and key in TEXT_ARRAYS:
        return
    if kind == "c":
        raise CheckpointError(f"{path}: array {show(key)} holds complex numbers")
    if kind not in "biuf":
        raise CheckpointError(f"{path}: array {show(key)} holds {array.dtype}, not numbers")
    if kind == "f" and not np.isfinite(array).all():
        raise CheckpointError(f"{path}: array {show(key)} holds NaN or infinite values")


@contextmanager
def loading(path: Path):
    """Report any failure to restore state from the checkpoint at ``path`` (a weight of the
    wrong shape, a missing entry, a value of the wrong type) as a CheckpointError naming
    the file."""
    try:
        yield
    except (NnctlError, KeyError, IndexError, TypeError, ValueError) as error:
        reason = f"missing entry {error}" if isinstance(error, KeyError) else str(error)
        if isinstance(error, NnctlError) and reason.startswith(str(path)):
            raise
        raise CheckpointError(f"{path}: {reason}") from error


def spec_to_meta(spec: DataSpec) -> dict:
    """What a model needs to know about its data, as checkpoint metadata."""
    names = list(spec.class_names) if spec.class_names is not None else None
    return {"name": spec.name, "input_shape": list(spec.input_shape),
            "n_classes": spec.n_classes, "task": spec.task, "class_names": names}  # fmt: skip


def spec_from_meta(path: Path, meta: dict) -> DataSpec | None:
    """The DataSpec recorded in a checkpoint (None for checkpoints older than the record);
    CheckpointError if it is inconsistent."""
    record = meta.get("data_spec")
    if record is None:
        return None
    shape, n, names = record["input_shape"], record["n_classes"], record.get("class_names")
    problem = None
    if not shape or not all(_has_type(d, INT) and d > 0 for d in shape):
        problem = f"input_shape must be positive integers; got {show(shape)}"
    elif record["task"] not in TASKS:
        problem = f"task must be one of {', '.join(TASKS)}; got {show(record['task'])}"
    elif (n is None) != (record["task"] == "regression") or (n is not None and n < 2):
        problem = f"n_classes {n} does not fit task {record['task']}"
    elif names is not None and (len(names) != n or not all(isinstance(c, str) for c in names)):
        problem = f"class_names must be {n} names; got {show(names)}"
    if problem:
        raise CheckpointError(f"{path}: malformed checkpoint metadata: data_spec.{problem}")
    return DataSpec(record["name"], tuple(shape), n, record["task"],
                    class_names=None if names is None else tuple(names))  # fmt: skip


def split_prefix(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """The arrays under ``prefix/``, with the prefix removed."""
    start = prefix + "/"
    return {k[len(start) :]: v for k, v in arrays.items() if k.startswith(start)}


def with_prefix(prefix: str, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{prefix}/{k}": v for k, v in arrays.items()}
