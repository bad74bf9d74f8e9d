"""Targets: class labels (int64, shape (N,)), regression targets (float32, (N, k)) or
multi-label targets (float32 0/1, (N, labels)).

Rules for user data when ``task`` is not given: integer labels, whole-number floats in a
1-D array, or one-hot rows mean classification; CSV label text that is not a number names
the classes (sorted); any other numbers mean regression. Multi-label targets are never
guessed: ``task: multilabel`` reads every column (an npz ``y`` of shape (N, labels), or
several CSV ``label_column``s) as one yes/no label each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnctl.core.checks import show
from nnctl.data.csvfile import is_number
from nnctl.errors import DataError

_MAX_LABEL = np.iinfo(np.int64).max


@dataclass
class Targets:
    """Converted targets of every part (train, then test) and what they describe."""

    parts: list[np.ndarray]
    task: str
    n_classes: int | None
    class_names: tuple[str, ...] | None = None
    classes_from_labels: bool = False  # n_classes is the largest label + 1, not declared


def _from_text(y: np.ndarray, source: str, task: str | None):
    """CSV label cells (N, k) str → numbers, or None when they are class names."""
    try:
        return y.astype(np.int64) if task != "regression" else y.astype(np.float64)
    except ValueError:
        pass
    try:
        return y.astype(np.float64)
    except ValueError:
        if task == "regression" or y.shape[1] != 1:
            bad = next(v for v in y.ravel() if not is_number(v))
            raise DataError(f"{source}: label {show(bad)} is not a number") from None
        return None


def _whole_numbers(y: np.ndarray) -> bool:
    """Every value finite and integral: float labels that name classes."""
    return bool(np.all(np.isfinite(y)) and np.all(y == np.round(y)))


def _is_one_hot(y: np.ndarray) -> bool:
    return (
        y.ndim == 2
        and y.shape[1] > 1
        and bool(np.all((y == 0) | (y == 1)) and np.all(y.sum(axis=1) == 1))
    )


def _infer_task(y: np.ndarray) -> str:
    if _is_one_hot(y):
        return "classification"
    flat = y.reshape(len(y), -1)
    if flat.shape[1] != 1:
        return "regression"
    if y.dtype.kind in "biu":
        return "classification"
    return "classification" if _whole_numbers(y) else "regression"


def _as_labels(y: np.ndarray, source: str) -> np.ndarray:
    if _is_one_hot(y):
        return np.argmax(y, axis=1).astype(np.int64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{source}: labels of shape {y.shape} are neither (N,) nor one-hot")
    if y.dtype.kind == "f" and not _whole_numbers(y):
        raise DataError(f"{source}: class labels must be whole numbers")
    if y.dtype.kind not in "biuf":
        raise DataError(f"{source}: labels must be numbers; got dtype {y.dtype}")
    if len(y) and y.min() < 0:
        raise DataError(
            f"{source}: label {show(int(y.min()))} is out of range; "
            "class labels are 0, 1, ..., n_classes-1"
        )
    if len(y) and y.max() > _MAX_LABEL:  # checked before the cast, which would wrap it
        raise DataError(f"{source}: label {show(int(y.max()))} is out of range for a class label")
    return y.astype(np.int64)


def _as_regression(y: np.ndarray, source: str) -> np.ndarray:
    if y.dtype.kind not in "biuf":
        raise DataError(f"{source}: regression targets must be numbers; got dtype {y.dtype}")
    y = y.reshape(len(y), -1).astype(np.float32)
    if not np.all(np.isfinite(y)):
        raise DataError(f"{source}: targets contain NaN or infinite values")
    return y


def _as_multilabel(y: np.ndarray, source: str) -> np.ndarray:
    if y.dtype.kind not in "biuf":
        raise DataError(f"{source}: multi-label targets must be numbers 0 or 1; got {y.dtype}")
    y = y.reshape(len(y), -1)
    bad = ~((y == 0) | (y == 1))
    if np.any(bad):
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"{source}: multi-label targets must be 0 or 1; got {y[row, col]} in row {row}, "
            f"label {col}"
        )
    return y.astype(np.float32)


def prepare_targets(
    ys: list[np.ndarray], sources: list[str], task: str | None, n_classes: int | None
) -> Targets:
    """Convert raw label arrays of each part; check ranges against ``n_classes``."""
    class_names = None
    if ys[0].dtype.kind in "US":
        ys = [_text_cells(y, source) for y, source in zip(ys, sources)]
        numeric = [_from_text(y, s, task) for y, s in zip(ys, sources)]
        if any(n is None for n in numeric):
            class_names = tuple(sorted(set(np.concatenate([y.ravel() for y in ys]))))
            lookup = {name: i for i, name in enumerate(class_names)}
            numeric = [np.array([lookup[v] for v in y.ravel()], dtype=np.int64) for y in ys]
            task = "classification"
        ys = numeric
    task = task or _infer_task(ys[0])
    if task == "regression":
        return Targets([_as_regression(y, s) for y, s in zip(ys, sources)], task, None)
    if task == "multilabel":
        parts = [_as_multilabel(y, s) for y, s in zip(ys, sources)]
        return Targets(parts, task, _label_count(parts, sources))
    widths = {y.shape[1] for y in ys if _is_one_hot(y)}
    parts = [_as_labels(y, s) for y, s in zip(ys, sources)]
    found = max(int(p.max()) + 1 for p in parts if len(p))
    inferred = n_classes is None
    n_classes = _check_n_classes(parts, sources, n_classes, widths, found)
    if class_names is not None and len(class_names) != n_classes:
        class_names = None
    return Targets(parts, task, n_classes, class_names, inferred)


def _text_cells(y: np.ndarray, source: str) -> np.ndarray:
    """Text labels as (N, k) str cells, as a CSV file gives them (npz: (N,) or bytes)."""
    if y.dtype.kind not in "US":
        return y
    try:
        y = y.astype(str)
    except UnicodeDecodeError:
        raise DataError(f"{source}: labels are bytes that are not ASCII text") from None
    return y.reshape(len(y), 1) if y.ndim == 1 else y


def _check_n_classes(parts, sources, n_classes, widths, found) -> int:
    if n_classes is None:
        return max([found, *widths])
    for p, s in zip(parts, sources):
        if len(p) and p.max() >= n_classes:
            raise DataError(
                f"{s}: label {p.max()} is out of range for {n_classes} classes "
                f"(labels are 0..{n_classes - 1})"
            )
    return n_classes


def require_classes(targets: Targets, source: str) -> None:
    """Training data for classification holds at least 2 classes: a model of one class
    learns nothing (its loss is 0 from the start)."""
    if targets.task != "classification" or not len(targets.parts[0]):
        return
    present = np.unique(targets.parts[0])
    if len(present) < 2:
        raise DataError(
            f"{source}: classification needs at least 2 classes; every label is {present[0]} "
            "(for a numeric target, set data.task: regression)"
        )


def _label_count(parts: list[np.ndarray], sources: list[str]) -> int:
    """The number of labels, the same in every part."""
    widths = [p.shape[1] for p in parts]
    if len(set(widths)) > 1:
        raise DataError(f"{sources[1]}: {widths[1]} labels per example; training has {widths[0]}")
    return widths[0]
