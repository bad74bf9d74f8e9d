"""Data sets, loaders, splits and batching.

Public API: ``DATA_DEFAULTS``, ``resolve_data_config``, ``validate_data_config``,
``describe`` (a DataSpec without loading), ``load`` (preprocessed Splits),
``iterate_batches``, ``one_hot``, ``Preprocessor``, ``Augmenter`` (``data.augment``) and
the registries ``DATASETS`` (built-ins), ``LOADERS`` (user data: npz, csv, idx) and
``AUGMENTATIONS``.
"""

from nnctl.data.augment import AUGMENTATIONS, Augmenter
from nnctl.data.builtin import DATASETS
from nnctl.data.config import DATA_DEFAULTS, resolve_data_config, validate_data_config
from nnctl.data.load import describe, load
from nnctl.data.preprocess import Preprocessor
from nnctl.data.sources import LOADERS
from nnctl.data.spec import DataSpec, Split, Splits
from nnctl.data.splits import batch_count, iterate_batches, one_hot, stratified_split

__all__ = [
    "AUGMENTATIONS",
    "DATASETS",
    "DATA_DEFAULTS",
    "LOADERS",
    "Augmenter",
    "DataSpec",
    "Preprocessor",
    "Split",
    "Splits",
    "batch_count",
    "describe",
    "iterate_batches",
    "load",
    "one_hot",
    "resolve_data_config",
    "stratified_split",
    "validate_data_config",
]
