"""Shared helpers for config tests: a base config, patches on it, error collection and the
file writers, in a plain module that test files import by name."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

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


def write_config(directory: Path, content, name: str = "c.yaml") -> Path:
    """Write ``content`` to ``directory/name``: a dict as YAML, a str as is."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def regression_csv(directory: Path) -> Path:
    """A small CSV with two features and a real-valued target in column ``y``."""
    path = directory / "reg.csv"
    rows = ["a,b,y"] + [f"{i},{i * 0.5},{i * 0.37 + 0.1:.3f}" for i in range(40)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path
