"""Component specs: constructor errors find their key path from ArgumentError.argument (never
from the message text), and losses take arguments and round-trip like other components."""

from __future__ import annotations

import functools

import pytest
from config_helpers import config_dict, error_lines, write_config

from nnctl.config import build, config_from_mapping, load_config
from nnctl.config.components import Family, check_spec
from nnctl.config.reference import generate
from nnctl.config.schema import unknown_keys
from nnctl.core import L2, LOSSES
from nnctl.core.checks import ArgumentError, positive
from nnctl.errors import ConfigError
from nnctl.registry import Registry

GADGETS = Registry("gadget")


@GADGETS.register("box")
class Box:
    def __init__(self, low: float = 0.0, high: float = 1.0, prose: bool = False):
        if prose:
            raise ValueError("low and high are named first in this plain message")
        if high <= low:
            # the message names another argument first: the path must still be `high`
            raise ArgumentError("high", f"must be larger than low={low}; got {high}")
        self.low, self.high = low, high

    def get_config(self):
        return {"type": self.type_name, "low": self.low, "high": self.high}


BOX = Family(GADGETS)


def check(spec) -> tuple[object, list[ConfigError]]:
    errors: list[ConfigError] = []
    _, resolved = check_spec(BOX, spec, "thing", errors)
    return resolved, errors


def test_argument_error_gives_the_key_path_from_its_attribute():
    resolved, errors = check({"type": "box", "low": 2, "high": 1})
    assert resolved is None
    assert [(e.path, e.message) for e in errors] == [
        ("thing.high", "must be larger than low=2; got 1")
    ]


def test_plain_errors_are_not_parsed_for_an_argument_name():
    _, errors = check({"type": "box", "low": 0, "high": 1, "prose": True})
    assert [(e.path, e.message) for e in errors] == [
        ("thing", "low and high are named first in this plain message")
    ]


def test_an_argument_the_user_did_not_write_is_named_in_the_message():
    _, errors = check({"type": "box", "low": 5})
    assert [str(e) for e in errors] == ["thing: high must be larger than low=5; got 1.0"]


def test_a_good_spec_resolves_with_defaults():
    assert check("box") == ({"type": "box", "low": 0.0, "high": 1.0}, [])


def test_line_path_is_a_constructor_field():
    assert ConfigError("model.loss", "bad").line_path == "model.loss"
    error = ConfigError("model", "unknown key 'x'", line_path="model.x")
    assert (error.path, error.line_path, str(error)) == (
        "model",
        "model.x",
        "model: unknown key 'x'",
    )
    (unknown,) = unknown_keys({"x": 1}, ["layers"], "model", "model")
    assert unknown.line_path == "model.x"
    _, errors = check({"type": "box", "hgih": 2})
    assert errors[0].path == "thing" and errors[0].line_path == "thing.hgih"


# --- losses with arguments ---------------------------------------------------------------


class ScaledL2(L2):
    """L2 times ``scale`` (registered by the fixture for these tests only)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = positive("scale", scale)

    def get_config(self):
        return {"type": self.type_name, "scale": self.scale}


@pytest.fixture
def scaled_l2(monkeypatch):
    monkeypatch.setitem(LOSSES._entries, "scaled_l2", ScaledL2)
    monkeypatch.setattr(ScaledL2, "type_name", "scaled_l2", raising=False)


@pytest.fixture
def write(tmp_path):
    return functools.partial(write_config, tmp_path)


def with_loss(loss) -> dict:
    data = config_dict()
    data["model"]["loss"] = loss
    return data


def test_loss_arguments_resolve_and_round_trip(write, scaled_l2):
    config = load_config(write(with_loss({"type": "scaled_l2", "scale": 2})))
    assert config.data["model"]["loss"] == {"type": "scaled_l2", "scale": 2.0}
    network = build(config).network
    assert isinstance(network.loss, ScaledL2) and network.loss.scale == 2.0
    assert network.get_config() == {
        "layers": config.data["model"]["layers"],
        "loss": config.data["model"]["loss"],
    }
    assert config_from_mapping(config.data).data == config.data


def test_loss_default_arguments_are_filled(write, scaled_l2):
    config = load_config(write(with_loss("scaled_l2")))
    assert config.data["model"]["loss"] == {"type": "scaled_l2", "scale": 1.0}
    config = load_config(write(with_loss("scaled_l2")), ["model.loss.scale=4"])
    assert config.data["model"]["loss"] == {"type": "scaled_l2", "scale": 4}


def test_loss_without_arguments_stays_a_name(write):
    config = load_config(write(with_loss({"type": "l2"})))
    assert config.data["model"]["loss"] == "l2"
    assert build(config).network.get_config()["loss"] == "l2"


def test_loss_arguments_are_kept_in_the_resolved_config(write):
    config = load_config(write(with_loss({"type": "cross_entropy", "label_smoothing": 0.1})))
    expected = {"type": "cross_entropy", "label_smoothing": 0.1, "class_weights": None}
    assert config.data["model"]["loss"] == expected
    assert build(config).network.get_config()["loss"] == expected
    assert build(config).network.loss.label_smoothing == 0.1


def test_bad_loss_arguments_name_key_and_line(write, scaled_l2):
    text = write(with_loss({"type": "scaled_l2", "scale": -1})).read_text()
    line = text.splitlines().index("    scale: -1") + 1
    path = write(text)
    assert error_lines(path) == [
        f"{path}:{line}: model.loss.scale: must be a positive number; got -1"
    ]
    lines = error_lines(write(with_loss({"type": "scaled_l2", "scal": 2})))
    assert any(
        "model.loss: unknown key 'scal' for scaled_l2; did you mean 'scale'?" in x for x in lines
    )
    lines = error_lines(write(with_loss({"type": "l2", "scale": 2})))
    assert any(
        "unknown key 'scale' for l2 ('scale' is an argument of scaled_l2)" in x for x in lines
    )


def test_reference_lists_loss_arguments(scaled_l2):
    losses = generate().split("## Losses")[1].split("## Optimizers")[0]
    assert "### `scaled_l2`" in losses and "| `scale` | `1.0` |" in losses
