"""The data: config section: defaults, path resolution and every error message."""

from __future__ import annotations

from pathlib import Path

import pytest

from nnctl.data import DATA_DEFAULTS, resolve_data_config, validate_data_config
from nnctl.errors import ConfigErrors


def test_defaults_are_filled():
    cfg = resolve_data_config({"dataset": "digits"})
    assert cfg == {"dataset": "digits", **DATA_DEFAULTS}
    assert DATA_DEFAULTS == {
        "validation": 0.1, "batch_size": 32, "normalize": "standard",
        "flatten": False, "shuffle": True,
    }  # fmt: skip


def test_relative_paths_resolve_against_base_dir_and_home_expands(tmp_path):
    cfg = resolve_data_config(
        {"type": "npz", "path": "d/train.npz", "test": {"path": "~/t.npz"}}, base_dir=tmp_path
    )
    assert cfg["path"] == str(tmp_path / "d/train.npz")
    assert cfg["test"] == {"path": str(Path.home() / "t.npz"), "x": "x", "y": "y"}


BAD = [
    ({"dataset": "digits", "batch_size": 0}, "data.batch_size: must be a positive integer; got 0"),
    ({"dataset": "digits", "batch_size": True}, "data.batch_size: must be a positive integer"),
    ({"dataset": "digits", "validation": 1.5}, "data.validation: must be a fraction in (0, 1)"),
    ({"dataset": "digits", "validation": -2}, "data.validation: must be a fraction"),
    ({"dataset": "digits", "normalize": "minmx"}, "did you mean 'minmax'?"),
    ({"dataset": "digits", "flatten": "yes"}, "data.flatten: must be true or false"),
    ({"dataset": "digits", "batchsize": 8}, "data: unknown key 'batchsize'"),
    ({"dataset": "digits", "batchsize": 8}, "did you mean 'batch_size'?"),
    ({"dataset": "digts"}, "data.dataset: unknown dataset 'digts'; did you mean 'digits'?"),
    ({"dataset": "digits", "path": "x.npz"}, "data: unknown key 'path' for a built-in dataset"),
    ({"type": "npz"}, "data: missing key 'path' for type npz"),
    ({"type": "parquet", "path": "a"}, "data.type: unknown data type 'parquet'"),
    ({"type": "csv", "path": "a.csv", "x": "f"}, "data: unknown key 'x' for type csv"),
    ({"type": "idx", "images": "a"}, "data: missing key 'labels' for type idx"),
    ({"type": "npz", "path": "a", "task": "clasification"}, "data.task: must be one of"),
    ({"type": "npz", "path": "a", "n_classes": 1}, "data.n_classes: must be an integer >= 2"),
    ({"type": "npz", "path": "a", "test": {"pth": "b"}}, "data.test: unknown key 'pth'"),
    ({"type": "npz", "path": "a", "test": {"x": "a"}}, "data.test: missing key 'path'"),
    ({"type": "csv", "path": "a", "label_column": 1.5}, "data.label_column: must be"),
    ({"dataset": "iris", "type": "npz"}, "data: needs exactly one of 'dataset'"),
    ({}, "data: needs exactly one of 'dataset'"),
    (["digits"], "data: must be a mapping"),
]


@pytest.mark.parametrize(("cfg", "message"), BAD)
def test_bad_config_message(cfg, message):
    errors = validate_data_config(cfg)
    assert any(message in str(e) for e in errors), [str(e) for e in errors]
    with pytest.raises(ConfigErrors):
        resolve_data_config(cfg)


def test_all_errors_reported_at_once():
    errors = validate_data_config({"dataset": "digits", "batch_size": 0, "validation": 2.5})
    assert [e.path for e in errors] == ["data.validation", "data.batch_size"]


@pytest.mark.parametrize("value", [0, 0.0, 0.2, 1, 500])
def test_valid_validation_values(value):
    assert validate_data_config({"dataset": "digits", "validation": value}) == []


def test_validation_count_too_large_is_a_config_error():
    from nnctl.data import describe
    from nnctl.errors import ConfigError

    with pytest.raises(ConfigError, match="data.validation: 5000 validation examples"):
        describe({"dataset": "digits", "validation": 5000})
