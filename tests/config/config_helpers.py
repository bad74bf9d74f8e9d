"""Shared data for config tests: a base config, patches on it, and error collection."""

from __future__ import annotations

import copy

from nnctl.config import load_config
from nnctl.config.load import deep_merge
from nnctl.errors import ConfigError, ConfigErrors

DELETE = "<delete this key>"

BASE = {
    "seed": 0,
    "data": {"dataset": "digits", "validation": 0.1, "batch_size": 32},
    "model": {
        "layers": [
            {"type": "fully_connected", "n_out": 64, "activation": "relu"},
            {"type": "fully_connected", "n_out": 10, "activation": "softmax"},
        ],
        "loss": "cross_entropy",
    },
    "optimizer": {"type": "adam", "lr": 0.001},
    "train": {"epochs": 2},
}

CNN_LAYERS = [
    {"type": "conv2d", "n_out": 8, "kernel_shape": 3, "activation": "relu"},
    {"type": "pool2d", "kernel_shape": 2, "stride": 2},
    {"type": "fully_connected", "n_out": 10, "activation": "softmax"},
]


def config_dict(patch: dict | None = None) -> dict:
    """BASE deep-merged with ``patch`` (lists replaced); ``None`` values delete keys."""
    data = deep_merge(copy.deepcopy(BASE), patch or {})
    return _drop_deleted(data)


def _drop_deleted(value):
    if isinstance(value, dict):
        return {k: _drop_deleted(v) for k, v in value.items() if v != DELETE}
    return value


def error_lines(path, overrides=()) -> list[str]:
    """The error lines ``load_config`` reports for ``path`` ([] if it is valid)."""
    try:
        load_config(path, overrides)
    except ConfigErrors as error:
        return [str(e) for e in error.errors]
    except ConfigError as error:
        return [str(error)]
    return []
