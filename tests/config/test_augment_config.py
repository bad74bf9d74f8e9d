"""``data.augment`` in configs: bad entries give one located error each, good ones resolve
with every default, ``--set`` reaches their arguments, non-image data is refused."""

from __future__ import annotations

import functools

import pytest
from config_helpers import CNN_LAYERS, config_dict, error_lines, write_config

from nnctl.config import build, load_config
from nnctl.data import load

CNN = {"model": {"layers": CNN_LAYERS}}


@pytest.fixture
def write(tmp_path):
    return functools.partial(write_config, tmp_path)


def augmented(*specs, **data):
    return config_dict({**CNN, "data": {"augment": list(specs), **data}})


# (id, data.augment entries, one reported line must contain this)
BAD = [
    ("unknown type", [{"type": "random_crp"}], "[0].type: unknown augmentation 'random_crp'; "),
    ("did you mean", ["flipp"], "unknown augmentation 'flipp'; did you mean 'flip'? (choose "),
    ("unknown key", [{"type": "gaussian_noise", "sdt": 0.1}], "did you mean 'std'?"),
    ("another's key", [{"type": "flip", "pad": 2}], "('pad' is an argument of random_crop)"),
    ("fill is internal", [{"type": "random_crop", "fill": 1}], "(allowed: pad, padding_mode)"),
    ("missing type", [{"pad": 2}], "data.augment[0]: missing key 'type'"),
    ("not a component", [3], "data.augment[0]: must be a name or a mapping with 'type'; got 3"),
    ("probability", ["flip", {"type": "flip", "p": 1.5}], "[1].p: must be a number in [0, 1]"),
    ("no direction", [{"type": "flip", "horizontal": False}], "[0].horizontal: must be true when"),
    ("pad", [{"type": "random_crop", "pad": 0}], "[0].pad: must be a positive integer; got 0"),
    ("padding mode", [{"type": "random_crop", "padding_mode": "wrap"}], "'reflect'; got 'wrap'"),
    ("scale", [{"type": "random_erasing", "scale": [0.4, 0.1]}], "<= 1; got [0.4, 0.1]"),
    ("ratio", [{"type": "random_erasing", "ratio": 2}], "[0].ratio: must be a pair [low, high]"),
    ("value", [{"type": "random_erasing", "value": "x"}], "must be a number or 'random'; got 'x'"),
    ("std", [{"type": "gaussian_noise", "std": -1}], "[0].std: must be a positive number; got -1"),
    ("degrees", [{"type": "random_rotation", "degrees": 270}], "must be at most 180; got 270"),
]


@pytest.mark.parametrize("specs, fragment", [row[1:] for row in BAD], ids=[row[0] for row in BAD])
def test_bad_augmentation(write, specs, fragment):
    path = write(augmented(*specs))
    lines = error_lines(path)
    assert len(lines) == 1 and fragment in lines[0], lines
    assert lines[0].startswith(f"{path}:") and ": data.augment[" in lines[0]


def test_errors_carry_the_yaml_line_of_their_entry(write):
    path = write(
        "seed: 0\n"
        "data:\n"
        "  dataset: digits\n"
        "  augment:\n"
        "    - {type: random_crop, pad: 1}\n"
        "    - {type: flip, p: 2}\n"
        "    - type: gaussian_noise\n"
        "      std: 0\n"
        "model:\n"
        "  layers: [{type: fully_connected, n_out: 10, activation: softmax}]\n"
        "  loss: cross_entropy\n"
        "optimizer: {type: adam, lr: 0.001}\n"
    )
    assert error_lines(path) == [
        f"{path}:6: data.augment[1].p: must be a number in [0, 1]; got 2",
        f"{path}:8: data.augment[2].std: must be a positive number; got 0",
    ]


NOT_IMAGES = [
    ("dataset: iris", 3, 4, "iris has examples of shape (4,)"),
    (
        "dataset: digits\n  flatten: true",
        10,
        5,
        "digits has examples of shape (64,) (data.flatten is true)",
    ),
]


@pytest.mark.parametrize("data, n_classes, line, shown", NOT_IMAGES, ids=["tabular", "flat"])
def test_non_image_data_is_one_error_naming_the_key(write, data, n_classes, line, shown):
    path = write(
        f"seed: 0\ndata:\n  {data}\n  augment: [flip]\nmodel:\n"
        f"  layers: [{{type: fully_connected, n_out: {n_classes}, activation: softmax}}]\n"
        "  loss: cross_entropy\noptimizer: adam\n"
    )
    assert error_lines(path) == [
        f"{path}:{line}: data.augment: augmentation needs image data (rows, cols, channels); "
        + shown
    ]


def test_augment_must_be_a_list(write):
    path = write(augmented() | {"data": {"dataset": "digits", "augment": "flip"}})
    (line,) = error_lines(path)
    assert "data.augment: must be a list of augmentations (e.g. [{type: flip}]); got 'flip'" in line


def test_resolved_config_lists_every_default(write):
    path = write(augmented({"type": "random_crop", "pad": 2}, "flip"))
    config = load_config(path)
    assert config.data["data"]["augment"] == [
        {"type": "random_crop", "pad": 2, "padding_mode": "constant"},
        {"type": "flip", "horizontal": True, "vertical": False, "p": 0.5},
    ]
    again = load_config(write(config.data, name="resolved.yaml"))
    assert again.data == config.data


@pytest.mark.parametrize("value", [[], None])
def test_an_empty_list_is_no_augmentation(write, value):
    plain = load_config(write(config_dict(CNN), name="plain.yaml"))
    empty = load_config(write(augmented() | {"data": {"dataset": "digits", "augment": value}}))
    assert "augment" not in empty.data["data"]
    assert empty.hash() == plain.hash()


def test_set_reaches_an_entry_and_its_arguments(write):
    path = write(augmented("flip"))
    config = load_config(path, ["data.augment[0].p=0.25", "data.augment[-1].vertical=true"])
    flip = {"type": "flip", "horizontal": True, "vertical": True, "p": 0.25}
    assert config.data["data"]["augment"] == [flip]
    lines = error_lines(path, ["data.augment[0].pp=0.3"])
    assert len(lines) == 1 and "data.augment[0].pp: no such key; did you mean 'p'?" in lines[0]
    config = load_config(path, ["data.augment=[{type: random_crop, pad: 3}]"])
    assert config.data["data"]["augment"][0]["pad"] == 3


def test_load_builds_the_list_with_black_as_fill(write):
    config = load_config(write(augmented({"type": "random_crop", "pad": 1}, "flip")))
    splits = load(config.data["data"], seed=config.seed)
    crop, _ = splits.augment.augmentations
    assert splits.augment.get_config() == config.data["data"]["augment"]
    black = (0 - splits.preprocess.shift) / splits.preprocess.scale
    assert crop.fill == pytest.approx(float(black)) and crop.fill < 0
    assert build(config).network is not None
    plain = load(config_dict(CNN)["data"], seed=0)
    assert plain.augment is None
