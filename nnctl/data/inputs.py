"""Reading feature files for ``nnctl predict`` and ``nnctl eval --data``.

Features come from ``.npy``, ``.npz`` (its only array, or ``x``), ``.csv`` (numeric; a
header row is skipped; read by ``csvfile``) or IDX files (``-ubyte``, ``.idx``, optionally
gzipped). Labelled files for ``eval --data`` (.npz or .csv) are read by the loader of their
type, with the run's array names or label column. Both are checked as training data is
(real, finite numbers), and :func:`prepare` refuses values that the run's preprocessing
turns into infinities (1e300 does not fit the model's float32).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnctl.data.csvfile import csv_width, read_csv_features
from nnctl.data.files import require_file
from nnctl.data.idx import read_idx
from nnctl.data.npz import npz_names, read_npz_array
from nnctl.data.preprocess import Preprocessor
from nnctl.data.sources import (
    LOADERS,
    REQUIRED,
    check_features,
    check_part,
    first_nonfinite_row,
)
from nnctl.data.targets import prepare_targets
from nnctl.errors import DataError
from nnctl.fileio import user_path


def file_kind(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    for suffix in ("npy", "npz", "csv"):
        if name.endswith("." + suffix):
            return suffix
    if name.endswith(".idx") or "-ubyte" in name or "idx" in name.rsplit(".", 1)[-1]:
        return "idx"
    raise DataError(f"{path}: unknown input format (use .npy, .npz, .csv or an IDX file)")


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: not a readable .npy file ({error})") from None


def _read_npz(path: Path) -> np.ndarray:
    names = npz_names(path)
    if len(names) != 1 and "x" not in names:
        raise DataError(f"{path}: holds arrays {', '.join(names)}; expected one array or 'x'")
    return read_npz_array(path, names[0] if len(names) == 1 else "x")


READERS = {"npy": _read_npy, "npz": _read_npz, "csv": read_csv_features, "idx": read_idx}


def read_features(path) -> np.ndarray:
    """Raw features (N, ...) from a file; DataError naming the file if it cannot be read."""
    path = user_path(path)
    require_file(path)
    X = READERS[file_kind(path)](path)
    if X.ndim < 1 or len(X) == 0:
        raise DataError(f"{path}: no examples")
    check_features(X, str(path))
    return X


def read_labelled(path, data_config: dict, spec) -> tuple[np.ndarray, np.ndarray]:
    """Features and targets from an npz or csv file, with the array names or label column
    of the run's own data config when it used the same file type."""
    path = user_path(path)
    kind = file_kind(path)
    if kind not in ("npz", "csv"):
        raise DataError(f"{path}: --data takes an .npz or .csv file with labels")
    loader = LOADERS.get(kind)()
    part = {k: v for k, v in loader.keys.items() if v is not REQUIRED}
    if data_config.get("type") == kind:
        part.update({k: data_config[k] for k in part if k in data_config})
    part["path"] = str(path)
    X, y = loader.read(part)
    check_part(X, y, str(path), str(path))
    targets = prepare_targets([y], [str(path)], spec.task, spec.n_classes)
    return X, targets.parts[0]


def read_prediction_input(path, data_config: dict, spec) -> tuple[np.ndarray, np.ndarray | None]:
    """Features of ``path``, and its labels when it is the kind of file the model was
    trained on: a CSV that still has the run's label column(s) is read as training data was
    (the labels dropped from the features). Returns (X, y or None)."""
    path = user_path(path)
    if file_kind(path) == "csv" and data_config.get("type") == "csv":
        label_column = data_config.get("label_column")
        n_labels = len(label_column) if isinstance(label_column, list) else 1
        n_features = int(np.prod(spec.input_shape))
        if csv_width(path) == n_features + n_labels:
            return read_labelled(path, data_config, spec)
    return read_features(path), None


def prepare(X: np.ndarray, preprocess: Preprocessor, source: str) -> np.ndarray:
    """``preprocess.transform(X)``: float32 features for the model; DataError naming
    ``source`` and the row when a value becomes infinite (too large for float32)."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = preprocess.transform(X)
    row = first_nonfinite_row(out)
    if row is not None:
        raise DataError(
            f"{source}: row {row} holds values too large for the model (float32) after the "
            "run's preprocessing"
        )
    return out
