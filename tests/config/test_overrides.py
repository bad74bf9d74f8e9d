"""--set overrides: values as YAML, list indices, schema-known keys, suggestions."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_helpers import error_lines

from nnctl.config import load_config
from nnctl.config.overrides import split_override

CONFIGS = Path(__file__).parents[2] / "configs"
DIGITS = CONFIGS / "digits-mlp.yaml"
MNIST = CONFIGS / "mnist-cnn.yaml"


def test_scalar_overrides():
    data = load_config(
        DIGITS, ["optimizer.lr=0.01", "train.epochs=2", "seed=7", "data.shuffle=false"]
    ).data
    assert data["optimizer"]["lr"] == 0.01 and data["train"]["epochs"] == 2
    assert data["seed"] == 7 and data["data"]["shuffle"] is False


def test_list_index_overrides():
    data = load_config(
        MNIST, ["model.layers[0].n_out=16", "model.layers[-1].activation=softmax",
                "model.layers[2].kernel_shape=[5, 5]"],
    ).data  # fmt: skip
    layers = data["model"]["layers"]
    assert layers[0]["n_out"] == 16 and layers[2]["kernel_shape"] == [5, 5]


def test_setting_an_argument_the_file_leaves_out():
    data = load_config(MNIST, ["optimizer.nesterov=true", "model.layers[1].pad=1"]).data
    assert data["optimizer"]["nesterov"] is True
    assert data["model"]["layers"][1]["pad"] == 1


def test_setting_optional_sections():
    data = load_config(
        DIGITS,
        ["schedule.type=cosine", "schedule.t_max=30", "train.early_stopping.patience=3"],
    ).data
    assert data["schedule"]["type"] == "cosine" and data["schedule"]["t_max"] == 30
    assert data["train"]["early_stopping"] == {
        "monitor": "val_loss", "mode": "min", "patience": 3, "min_delta": 0.0,
    }  # fmt: skip


def test_bare_name_gains_arguments():
    data = load_config(DIGITS, ["model.layers[0].activation.type=leaky_relu",
                                "model.layers[0].activation.alpha=0.2"]).data  # fmt: skip
    assert data["model"]["layers"][0]["activation"] == {"type": "leaky_relu", "alpha": 0.2}


def test_replacing_a_whole_section():
    data = load_config(DIGITS, ["optimizer={type: sgd, lr: 0.2}"]).data
    assert data["optimizer"]["type"] == "sgd" and data["optimizer"]["lr"] == 0.2


@pytest.mark.parametrize(
    "override, fragment",
    [
        (
            "optimizer.lrr=0.1",
            "optimizer.lrr: no such key; did you mean 'lr'? (--set optimizer.lrr=0.1)",
        ),
        ("trian.epochs=2", "trian: no such key; did you mean 'train'?"),
        ("train.epoch=2", "train.epoch: no such key; did you mean 'epochs'?"),
        ("model.layers[0].n_ot=3", "model.layers[0].n_ot: no such key; did you mean 'n_out'?"),
        (
            "model.layers[5].n_out=3",
            "model.layers[5]: index 5 out of range (model.layers has 2 items)",
        ),
        ("model.layers.x=3", "model.layers: is a list, not a mapping; cannot set 'x'"),
        ("optimizer.lr.x=3", "optimizer.lr: is 0.001, not a mapping; cannot set 'x'"),
        ("train.early_stopping.patiense=3", "did you mean 'patience'?"),
        ("schedule.lr_decay=0.5", "--set schedule.lr_decay=0.5: schedule: missing key 'type'"),
    ],
)
def test_unknown_override_keys(override, fragment):
    lines = error_lines(DIGITS, [override])
    assert len(lines) == 1 and fragment in lines[0], lines
    assert lines[0].startswith(str(DIGITS))


def test_override_values_are_validated_like_the_file():
    (line,) = error_lines(DIGITS, ["optimizer.lr=-1"])
    assert line == (
        f"{DIGITS}: --set optimizer.lr=-1: optimizer.lr: must be a positive number; got -1"
    )


def test_override_errors_are_all_reported():
    assert len(error_lines(DIGITS, ["optimizer.lrr=1", "trian.epochs=2"])) == 2


@pytest.mark.parametrize(
    "text, parsed",
    [
        ("optimizer.lr=1e-3", (("optimizer", "lr"), 0.001)),
        ("a=true", (("a",), True)),
        ("a=null", (("a",), None)),
        ("a=", (("a",), None)),
        ("a=relu", (("a",), "relu")),
        ("a=[3, 3]", (("a",), [3, 3])),
        ("a='3'", (("a",), "3")),
        ("a=x=y", (("a",), "x=y")),
    ],
)
def test_split_override(text, parsed):
    assert split_override(text) == parsed


@pytest.mark.parametrize("text", ["novalue", "=3", "a..b=1", "a=[1", "a=!!python/name:os.system"])
def test_malformed_override(text):
    with pytest.raises(ValueError):
        split_override(text)
