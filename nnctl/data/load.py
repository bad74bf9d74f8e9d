"""From a ``data:`` config to a DataSpec (cheap) or to preprocessed splits.

The validation split is stratified for classification, drawn with
``numpy.random.default_rng([seed, 1])`` from the training part only; the test split of
digits/iris is fixed (see ``nnctl.data.builtin``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from nnctl.data.augment import Augmenter, black_value
from nnctl.data.builtin import builtin_counts, get_builtin
from nnctl.data.config import resolve_data_config
from nnctl.data.preprocess import Preprocessor, output_shape
from nnctl.data.sources import LOADERS, check_part, check_sizes, labels_name, sample_shape
from nnctl.data.spec import DataSpec, Split, Splits
from nnctl.data.splits import split_count, stratified_split
from nnctl.data.targets import prepare_targets, require_classes
from nnctl.errors import ConfigError

BUILTIN_TEST_SEED = 0


def _resolved(cfg: dict) -> dict:
    return cfg if "batch_size" in cfg and "normalize" in cfg else resolve_data_config(cfg)


def _n_validation(cfg: dict, n_train: int) -> int:
    n_val = split_count(n_train, cfg["validation"])
    if n_val >= n_train:
        raise ConfigError(
            "data.validation",
            f"{cfg['validation']} validation examples leave none of the {n_train} for training",
        )
    return n_val


def describe(cfg: dict) -> DataSpec:
    """Shapes, classes and split sizes, reading at most file headers and labels."""
    cfg = _resolved(cfg)
    if "dataset" in cfg:
        ds = get_builtin(cfg["dataset"])
        n_train, n_test = builtin_counts(ds)
        n_val = _n_validation(cfg, n_train)
        shape = output_shape(ds.input_shape, cfg["flatten"])
        return DataSpec(
            cfg["dataset"], shape, ds.n_classes, "classification", n_train - n_val, n_val, n_test,
            ds.class_names,
        )  # fmt: skip
    loader = LOADERS.get(cfg["type"])()
    parts = _parts(cfg)
    sizes = [loader.peek(p) for p in parts]  # (examples, shape of one) from headers
    labels = [loader.read_labels(p) for p in parts]
    for part, (n, shape), y in zip(parts, sizes, labels):
        check_sizes(n, shape, len(y), loader.name(part), labels_name(loader, part))
        _check_test_shape(shape, sizes[0][1])
    targets = _targets(loader, parts, labels, cfg)
    (n_train, shape), n_test = sizes[0], (sizes[1][0] if len(parts) > 1 else None)
    n_val = _n_validation(cfg, n_train)
    return DataSpec(
        Path(loader.name(parts[0])).name, output_shape(shape, cfg["flatten"]),
        targets.n_classes, targets.task, n_train - n_val, n_val, n_test, targets.class_names,
        targets.classes_from_labels,
    )  # fmt: skip


def _targets(loader, parts: list[dict], labels: list, cfg: dict):
    """The parts' targets; DataError when training data for classification has one class."""
    names = [labels_name(loader, p) for p in parts]
    targets = prepare_targets(labels, names, cfg.get("task"), cfg.get("n_classes"))
    require_classes(targets, names[0])
    return targets


def _check_test_shape(shape: tuple, train_shape: tuple) -> None:
    if tuple(shape) != tuple(train_shape):
        raise ConfigError(
            "data.test", f"test examples have shape {shape} but training ones {train_shape}"
        )


def _parts(cfg: dict) -> list[dict]:
    return [cfg] if cfg.get("test") is None else [cfg, cfg["test"]]


def _read_builtin(cfg: dict):
    ds = get_builtin(cfg["dataset"])
    X, y, X_test, y_test = ds.read(cfg.get("data_dir"))
    y = np.asarray(y).astype(np.int64)
    if X_test is None and ds.test_fraction:
        rng = np.random.default_rng(BUILTIN_TEST_SEED)
        keep, take = stratified_split(y, split_count(len(y), ds.test_fraction), rng)
        X, y, X_test, y_test = X[keep], y[keep], X[take], y[take]
    spec = DataSpec(cfg["dataset"], ds.input_shape, ds.n_classes, "classification",
                    class_names=ds.class_names)  # fmt: skip
    return X, y, X_test, np.asarray(y_test).astype(np.int64), spec


def _read_user(cfg: dict):
    loader = LOADERS.get(cfg["type"])()
    raw = []
    for part in _parts(cfg):
        X, y = loader.read(part)
        check_part(X, y, loader.name(part), labels_name(loader, part))
        raw.append((X, y))
    targets = _targets(loader, _parts(cfg), [r[1] for r in raw], cfg)
    X, X_test = raw[0][0], (raw[1][0] if len(raw) > 1 else None)
    if X_test is not None:
        _check_test_shape(X_test.shape[1:], X.shape[1:])
    y_test = targets.parts[1] if len(raw) > 1 else None
    name = Path(loader.name(cfg)).name
    spec = DataSpec(name, sample_shape(X.shape, name), targets.n_classes, targets.task,
                    class_names=targets.class_names,
                    classes_from_labels=targets.classes_from_labels)  # fmt: skip
    return X, targets.parts[0], X_test, y_test, spec


def load(cfg: dict, seed: int) -> Splits:
    """Read, split and preprocess the data of a ``data:`` config.

    Parameters
    ----------
    cfg : dict
        The ``data:`` section (resolved with ``resolve_data_config`` or raw).
    seed : int
        Seeds the validation split; the same seed gives the same splits.

    Returns
    -------
    Splits
        ``X`` float32 of shape (N, *spec.input_shape); ``y`` int64 (N,) for classification
        or float32 (N, k) for regression. The preprocessor is fitted on ``train`` only;
        ``augment`` is the ``data.augment`` list built (None without one).
    """
    cfg = _resolved(cfg)
    X, y, X_test, y_test, spec = (_read_builtin if "dataset" in cfg else _read_user)(cfg)
    n_val = _n_validation(cfg, len(X))
    stratify = spec.task == "classification"
    keep, take = stratified_split(y, n_val, np.random.default_rng([seed, 1]), stratify)
    X_train, X_val = (X[keep], X[take]) if n_val else (X, None)
    y_train, y_val = (y[keep], y[take]) if n_val else (y, None)
    del X
    prep = Preprocessor.fit(X_train, cfg["normalize"], cfg["flatten"])

    def split(Xs, ys):
        return None if Xs is None else Split(prep.transform(Xs), ys)

    n_test = None if X_test is None else len(X_test)
    spec = replace(spec, input_shape=prep.output_shape, n_train=len(y_train),
                   n_validation=n_val, n_test=n_test)  # fmt: skip
    train = split(X_train, y_train)
    del X_train
    augment = (
        Augmenter.from_config(cfg["augment"], black_value(prep)) if cfg.get("augment") else None
    )
    return Splits(train, split(X_val, y_val), split(X_test, y_test), spec, prep, augment)
