"""``train.loggers`` in configs: a list of logger components, ``csv`` always first, every
default filled; bad entries give one located error each; ``--set`` reaches their keys."""

from __future__ import annotations

import pytest
from config_helpers import config_dict, error_lines, write_config

from nnctl.config import load_config
from nnctl.loggers import LoggerSet


def with_loggers(loggers) -> dict:
    return config_dict({"train": {"loggers": loggers}})


@pytest.mark.parametrize(
    "written, resolved",
    [
        (None, ["csv"]),
        ([], ["csv"]),
        (["tensorboard"], ["csv", {"type": "tensorboard", "log_every": 50}]),
        (
            [{"type": "mlflow", "experiment": "x"}, "csv"],
            ["csv", {"type": "mlflow", "tracking_uri": None, "experiment": "x"}],
        ),
        (
            [{"type": "tensorboard", "log_every": 5}],
            ["csv", {"type": "tensorboard", "log_every": 5}],
        ),
    ],
)
def test_resolved_loggers(tmp_path, written, resolved):
    patch = {"train": {"epochs": 2}} if written is None else {"train": {"loggers": written}}
    config = load_config(write_config(tmp_path, config_dict(patch)))
    assert config.data["train"]["loggers"] == resolved
    built = LoggerSet.from_specs(resolved).loggers
    assert [logger.get_config() for logger in built] == [
        {"type": spec} if isinstance(spec, str) else spec for spec in resolved
    ]


# (id, train.loggers, the one reported line must end with this)
BAD = [
    (
        "did you mean",
        ["tensorbord"],
        (
            "train.loggers[0].type: unknown logger 'tensorbord'; did you mean 'tensorboard'? "
            "(choose from csv, mlflow, tensorboard)"
        ),
    ),
    ("unknown key", [{"type": "mlflow", "experimnt": "x"}], "did you mean 'experiment'?"),
    (
        "another's key",
        [{"type": "mlflow", "log_every": 5}],
        "('log_every' is an argument of tensorboard)",
    ),
    ("log_every", [{"type": "tensorboard", "log_every": 0}], "[0].log_every: must be a positive"),
    ("uri", [{"type": "mlflow", "tracking_uri": 5}], "[0].tracking_uri: must be a non-empty"),
    ("twice", ["mlflow", "csv", "mlflow"], "[2]: mlflow is listed twice (also train.loggers[0])"),
    ("not a list", "tensorboard", "train.loggers: must be a list of loggers"),
]


@pytest.mark.parametrize("loggers, expected", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_loggers_are_located(tmp_path, loggers, expected):
    path = write_config(tmp_path, with_loggers(loggers))
    (line,) = error_lines(path)
    assert line.startswith(f"{path}:") and expected in line


def test_set_reaches_logger_keys(tmp_path):
    path = write_config(tmp_path, with_loggers(["tensorboard"]))
    config = load_config(path, ["train.loggers[0].log_every=7"])
    assert config.data["train"]["loggers"][1] == {"type": "tensorboard", "log_every": 7}
    (line,) = error_lines(path, ["train.loggers[0].log_evry=7"])
    assert "no such key; did you mean 'log_every'?" in line
