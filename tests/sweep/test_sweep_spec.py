"""Sweep specs: grid parsing, trial names, random search, sweep files, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from sweep_helpers import write_base

from nnctl.config.yamlio import parse_scalar
from nnctl.errors import ConfigError, ConfigErrors
from nnctl.sweep.spec import (
    SweepSpec,
    format_value,
    is_sweep_file,
    parse_grid_option,
    sample_space,
    spec_from_config,
    spec_from_file,
    trial_name,
)
from nnctl.sweep.validate import validate_sweep, validate_trials


@pytest.mark.parametrize(
    ("text", "key", "values"),
    [
        ("optimizer.lr=0.1,0.01", "optimizer.lr", [0.1, 0.01]),
        ("optimizer.lr=1e-3, 1e-4", "optimizer.lr", [0.001, 0.0001]),
        ("model.layers.0.n_out=32,64", "model.layers[0].n_out", [32, 64]),
        ("model.layers[0].kernel_shape=[3, 3],[5, 5]", "model.layers[0].kernel_shape",
         [[3, 3], [5, 5]]),
        ("optimizer.type=sgd,adam", "optimizer.type", ["sgd", "adam"]),
        ("seed=7", "seed", [7]),
    ],
)  # fmt: skip
def test_parse_grid_option(text, key, values):
    assert parse_grid_option(text) == (key, values)


@pytest.mark.parametrize("text", ["optimizer.lr", "=1,2", "optimizer.lr=", "lr=[1,", "a..b=1"])
def test_parse_grid_option_rejects(text):
    with pytest.raises(ValueError):
        parse_grid_option(text)


@pytest.mark.parametrize(
    "value",
    [0.01, 1e-5, 1e12, 1.0, 1 / 3, 3, True, None, "adam", "true", "1e3", "a,b", "x: y",
     [3, 3], {"type": "sgd", "lr": 0.5}, float("inf")],
)  # fmt: skip
def test_format_value_reads_back(value):
    assert parse_scalar(format_value(value)) == value


def test_trial_names_are_safe_folder_names():
    name = trial_name(7, {"optimizer.lr": 1e-3, "model.layers[0].n_out": 64, "x": "a/b c"})
    assert name == "007-optimizer.lr=0.001,model.layers.0.n_out=64,x=a_b_c"
    assert "/" not in trial_name(1, {"k": "../../etc"})
    assert len(trial_name(1, {"k": "v" * 500})) < 200


def test_grid_expands_to_the_cartesian_product_in_order(tmp_path):
    spec = spec_from_config(write_base(tmp_path), ["train.epochs=1"],
                            ["optimizer.lr=0.1,0.01", "model.layers[0].n_out=16,32"])  # fmt: skip
    trials = spec.expand()
    assert [t.index for t in trials] == [0, 1, 2, 3]
    assert [t.overrides for t in trials] == [
        ["optimizer.lr=0.1", "model.layers[0].n_out=16"],
        ["optimizer.lr=0.1", "model.layers[0].n_out=32"],
        ["optimizer.lr=0.01", "model.layers[0].n_out=16"],
        ["optimizer.lr=0.01", "model.layers[0].n_out=32"],
    ]
    assert trials[3].name == "003-optimizer.lr=0.01,model.layers.0.n_out=32"
    assert spec.default_out() == spec_from_config(
        write_base(tmp_path), ["train.epochs=1"],
        ["optimizer.lr=0.1,0.01", "model.layers[0].n_out=16,32"]).default_out()  # fmt: skip


def test_random_search_is_deterministic_by_seed():
    space = {"optimizer.lr": ("loguniform", [1e-4, 1e-1]), "x": ("uniform", [-1.0, 1.0]),
             "model.layers[0].n_out": ("choice", [16, 32, 64])}  # fmt: skip
    first = sample_space(space, 20, seed=3)
    assert first == sample_space(space, 20, seed=3)
    assert first != sample_space(space, 20, seed=4)
    assert all(1e-4 <= s["optimizer.lr"] <= 1e-1 and -1 <= s["x"] <= 1 for s in first)
    assert {s["model.layers[0].n_out"] for s in first} == {16, 32, 64}
    assert all(format_value(s["optimizer.lr"]) == f"{s['optimizer.lr']:g}" for s in first)


SWEEP_FILE = """\
base: configs/base.yaml
set: [train.epochs=1]
grid:
  seed: [0, 1]
random:
  trials: 3
  seed: 11
  space:
    optimizer.lr: {loguniform: [1.0e-3, 1.0e-1]}
"""


def test_sweep_file_crosses_grid_and_random(tmp_path):
    write_base(tmp_path / "configs")
    path = tmp_path / "sweeps" / "s.yaml"
    path.parent.mkdir()
    path.write_text(SWEEP_FILE.replace("configs/", "../configs/"))
    assert is_sweep_file(path) and not is_sweep_file(tmp_path / "configs" / "base.yaml")
    spec = spec_from_file(path, ["data.batch_size=16"], ["train.epochs=1,2"])
    assert spec.base == (tmp_path / "configs" / "base.yaml").resolve()
    assert spec.overrides == ("train.epochs=1", "data.batch_size=16")
    trials = spec.expand()
    assert len(trials) == 2 * 2 * 3
    assert [t.params["seed"] for t in trials[:6]] == [0, 0, 0, 0, 0, 0]
    lrs = [t.params["optimizer.lr"] for t in trials]
    assert lrs[:3] == lrs[3:6] == lrs[6:9]  # the same samples for every grid point
    assert [t.name for t in trials] == [t.name for t in spec_from_file(
        path, ["data.batch_size=16"], ["train.epochs=1,2"]).expand()]  # fmt: skip
    validate_trials(spec, trials)


GRID_OF_ALIASES = (  # 10**5 trials from one line
    "base: b.yaml\ngrid: {seed: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], train.epochs: *a, "
    "optimizer.lr: *a, data.batch_size: *a, data.validation: *a}\n"
)
BAD_FILES = [
    ("base: b.yaml\ngird: {seed: [1]}\n", "2: gird: unknown key; did you mean 'grid'?"),
    ("grid: {seed: [1]}\n", "base: expected the path of a config file; got None"),
    ("base: b.yaml\ngrid: {seed: 3}\n", "2: grid.seed: expected a non-empty list"),
    ("base: b.yaml\nset: optimizer.lr=1\n", "set: expected a list of KEY=VALUE strings"),
    ("base: b.yaml\nrandom: {trials: 0, space: {seed: {choice: [1]}}}\n",
     "random.trials: must be a positive integer; got 0"),
    ("base: b.yaml\nrandom: {trials: 2, space: {optimizer.lr: {loguniform: [0, 1]}}}\n",
     "random.space.optimizer.lr.loguniform: expected [low, high], two positive numbers"),
    ("base: b.yaml\nrandom: {trials: 2, space: {optimizer.lr: {logunifrom: [1, 2]}}}\n",
     "unknown distribution 'logunifrom'; did you mean 'loguniform'?"),
    ("base: b.yaml\nrandom: {trials: 2, space: {seed: {choice: []}}}\n",
     "random.space.seed.choice: expected a non-empty list"),
    (GRID_OF_ALIASES, "grid: 100,000 trials; a sweep runs at most 10,000"),
    ("base: b.yaml\nrandom: {trials: 1000000000000, space: {seed: {choice: [1]}}}\n",
     "random.trials: 1,000,000,000,000 trials; a sweep runs at most 10,000"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_bad_sweep_files(tmp_path, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises((ConfigError, ConfigErrors)) as error:
        spec_from_file(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_validation_reports_every_bad_trial_and_shared_errors_once(tmp_path):
    spec = spec_from_config(write_base(tmp_path), ["train.epochs=0"],
                            ["optimizer.lr=0.1,-1,abc"])  # fmt: skip
    with pytest.raises(ConfigErrors) as error:
        validate_trials(spec, spec.expand())
    lines = str(error.value).splitlines()
    assert sum("train.epochs" in line for line in lines) == 1
    assert not any(line.startswith("trial") and "train.epochs" in line for line in lines)
    assert any(line.startswith("trial 001-optimizer.lr=-1:") for line in lines)
    assert any(line.startswith("trial 002-optimizer.lr=abc:") for line in lines)


def test_nothing_to_sweep(tmp_path):
    spec = SweepSpec(base=Path(write_base(tmp_path)))
    with pytest.raises(ConfigError, match="nothing to sweep"):
        validate_trials(spec, spec.expand())


EXAMPLES = sorted((Path(__file__).parents[2] / "configs" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_sweep_files_are_valid(path):
    assert is_sweep_file(path)
    validate_sweep(spec_from_file(path))  # a tpe search has no trials before it runs


def test_a_command_line_sweep_is_bounded_too(tmp_path):
    grid = [f"seed={','.join(map(str, range(200)))}", "train.epochs=" + ",".join(["1"] * 60)]
    spec = spec_from_config(write_base(tmp_path), grid=grid)
    assert spec.size() == 12_000
    with pytest.raises(ConfigError, match="12,000 trials"):
        spec.expand()
