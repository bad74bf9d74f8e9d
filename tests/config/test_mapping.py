"""config_from_mapping: a parsed config (a run's, a checkpoint's) validated without a file."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from config_helpers import config_dict

from nnctl.config import config_from_mapping, load_config
from nnctl.errors import ConfigError, ConfigErrors

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_resolved_configs_validate_to_themselves(path):
    loaded = load_config(path)
    config = config_from_mapping(loaded.data, name="best", source="run/best.npz")
    assert config.data == loaded.data and config.hash() == loaded.hash()
    assert config.name == "best" and config.path is None
    assert config.spec == loaded.spec


def test_errors_name_the_source_without_lines():
    data = config_dict({"optimizer": {"lr": -1}, "model": {"dtype": "float16"}})
    with pytest.raises(ConfigErrors) as info:
        config_from_mapping(data, source="run/best.npz")
    assert [str(e) for e in info.value.errors] == [
        "run/best.npz: model.dtype: must be one of float32, float64; got 'float16'",
        "run/best.npz: optimizer.lr: must be a positive number; got -1",
    ]
    assert all(e.line is None for e in info.value.errors)


def test_the_mapping_is_not_modified():
    data = config_dict({"model": {"loss": {"type": "l2"}}})
    before = copy.deepcopy(data)
    assert config_from_mapping(data).data["model"]["loss"] == "l2"
    assert data == before


def test_not_a_mapping():
    with pytest.raises(ConfigError, match="ckpt: config must be a mapping of config keys"):
        config_from_mapping([1, 2], source="ckpt")
