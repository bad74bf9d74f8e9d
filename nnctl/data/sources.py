"""User data loaders (``data.type: npz | csv | idx``), registered in ``LOADERS``.

Each loader reads one part (the training files, or the ``test:`` files) and returns raw
features of shape (N, *sample_shape) and raw labels; ``peek`` reads only headers.
Features of shape (N,) become (N, 1); (N, rows, cols) images become (N, rows, cols, 1).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from nnctl.data.csvfile import read_csv, read_csv_labels
from nnctl.data.idx import read_idx, read_idx_header
from nnctl.data.npz import npz_header, read_npz_array
from nnctl.errors import DataError
from nnctl.registry import REQUIRED, Registry

LOADERS = Registry("data type")


def sample_shape(shape: tuple[int, ...], source: str) -> tuple[int, ...]:
    """Per-example shape after adding a channel axis to (rows, cols) images."""
    rest = tuple(shape[1:])
    if len(shape) == 0:
        raise DataError(f"{source}: features must have at least one axis; got a scalar")
    if 0 in rest:
        raise DataError(f"{source}: examples have no features (features of shape {shape})")
    if len(rest) == 0:
        return (1,)
    if len(rest) == 2:
        return (*rest, 1)
    if len(rest) > 3:
        raise DataError(f"{source}: features of shape {shape} have too many axes")
    return rest


class UserLoader:
    """Base: ``keys`` maps each config key to its default (``REQUIRED`` if none)."""

    keys: ClassVar[dict[str, Any]] = {}
    path_keys: ClassVar[tuple[str, ...]] = ()

    def peek(self, part: dict) -> tuple[int, tuple[int, ...]]:
        """Number of examples and per-example shape, from headers only."""
        raise NotImplementedError

    def read_labels(self, part: dict) -> np.ndarray:
        """Raw labels of the part (small: read before the features)."""
        raise NotImplementedError

    def read(self, part: dict) -> tuple[np.ndarray, np.ndarray]:
        """Raw features (N, *sample_shape) and raw labels."""
        raise NotImplementedError

    def name(self, part: dict) -> str:
        return str(part[self.path_keys[0]])


@LOADERS.register("npz")
class NpzLoader(UserLoader):
    keys: ClassVar[dict[str, Any]] = {"path": REQUIRED, "x": "x", "y": "y"}
    path_keys = ("path",)

    def peek(self, part):
        shape, dtype = npz_header(part["path"], part["x"])
        check_dtype(dtype, part["path"])
        return (shape[0] if shape else 0), sample_shape(shape, part["path"])

    def read_labels(self, part):
        return read_npz_array(part["path"], part["y"])

    def read(self, part):
        X = read_npz_array(part["path"], part["x"])
        X = X.reshape((len(X), *sample_shape(X.shape, part["path"])))
        return X, self.read_labels(part)


@LOADERS.register("csv")
class CsvLoader(UserLoader):
    keys: ClassVar[dict[str, Any]] = {"path": REQUIRED, "label_column": None}
    path_keys = ("path",)

    def peek(self, part):
        labels, n_features = read_csv_labels(part["path"], part["label_column"])
        return len(labels), (n_features,)

    def read_labels(self, part):
        return read_csv_labels(part["path"], part["label_column"])[0]

    def read(self, part):
        X, labels, _ = read_csv(part["path"], part["label_column"])
        return X, labels


@LOADERS.register("idx")
class IdxLoader(UserLoader):
    keys: ClassVar[dict[str, Any]] = {"images": REQUIRED, "labels": REQUIRED}
    path_keys = ("images", "labels")

    def peek(self, part):
        _, shape = read_idx_header(part["images"])
        return shape[0], sample_shape(shape, part["images"])

    def read_labels(self, part):
        return read_idx(part["labels"])

    def read(self, part):
        X = read_idx(part["images"])
        return X.reshape((len(X), *sample_shape(X.shape, part["images"]))), self.read_labels(part)


def check_dtype(dtype: np.dtype, source: str) -> None:
    """Features of real numbers: not complex, not text."""
    if dtype.kind not in "biuf":
        raise DataError(f"{source}: features must be numbers; got dtype {dtype}")


def check_features(X: np.ndarray, source: str) -> None:
    """Real numbers (not complex, not text), all finite; DataError naming ``source``."""
    check_dtype(X.dtype, source)
    row = first_nonfinite_row(X) if X.dtype.kind == "f" else None
    if row is not None:
        raise DataError(f"{source}: features contain NaN or infinite values (first in row {row})")


def first_nonfinite_row(values: np.ndarray) -> int | None:
    """Index of the first row of ``values`` (N, ...) holding NaN or infinity, or None."""
    finite = np.isfinite(values)
    if finite.all():  # also when there are no rows, or rows of no values
        return None
    return int(np.flatnonzero(~finite.reshape(len(values), -1).all(axis=1))[0])


def check_sizes(
    n_examples: int, shape: tuple[int, ...], n_labels: int, source: str, labels_source: str
) -> None:
    """At least one example, with at least one feature, and one label per example."""
    if n_examples == 0:
        raise DataError(f"{source}: no examples")
    if math.prod(shape) == 0:
        raise DataError(f"{source}: examples have no features (each of shape {shape})")
    if n_labels != n_examples:
        raise DataError(
            f"{labels_source}: {n_labels} labels for {n_examples} examples; they must be equal"
        )


def check_part(X: np.ndarray, y: np.ndarray, source: str, labels_source: str) -> None:
    """Features as :func:`check_features` wants them, and :func:`check_sizes`."""
    check_features(X, source)
    check_sizes(len(X), X.shape[1:], len(y), source, labels_source)


def labels_name(loader: UserLoader, part: dict) -> str:
    """The file the labels come from, for messages."""
    return str(part["labels"]) if "labels" in loader.keys else loader.name(part)
