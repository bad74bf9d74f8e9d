"""Plain records describing a data set and its splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nnctl.data.augment import Augmenter
    from nnctl.data.preprocess import Preprocessor


@dataclass(frozen=True)
class DataSpec:
    """What a model needs to know about its data before the data is loaded.

    Attributes
    ----------
    name : str
        Built-in name (``digits``) or the user file's name.
    input_shape : tuple of int
        Shape of one example without the batch axis: ``(rows, cols, 1)`` for images (NHWC),
        ``(n_features,)`` for tabular data, flat ``(rows * cols,)`` with ``flatten: true``.
    n_classes : int or None
        Number of classes (of labels for multi-label); None for regression.
    task : str
        ``"classification"``, ``"regression"`` or ``"multilabel"``.
    n_train, n_validation, n_test : int or None
        Examples in each split (after the validation split); None where unknown.
    class_names : tuple of str or None
    classes_from_labels : bool
        ``n_classes`` was not declared but counted from the labels (the largest + 1).
    """

    name: str
    input_shape: tuple[int, ...]
    n_classes: int | None
    task: str
    n_train: int | None = None
    n_validation: int | None = None
    n_test: int | None = None
    class_names: tuple[str, ...] | None = None
    classes_from_labels: bool = False


@dataclass
class Split:
    """One split: ``X`` float32 of shape (N, *input_shape); ``y`` (N,) int64 or (N, k) float32."""

    X: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.X)


@dataclass
class Splits:
    """Train, validation and test splits, their spec and the fitted preprocessor.

    ``augment`` (``data.augment``; None without one) is for training batches only.
    """

    train: Split
    validation: Split | None
    test: Split | None
    spec: DataSpec
    preprocess: Preprocessor = field(repr=False)
    augment: Augmenter | None = field(default=None, repr=False)
