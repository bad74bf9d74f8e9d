"""Sweep files with search:, space: and early_stopping:, and ``nnctl check SWEEP.yaml``:
every bad input is one line naming the file, line and key, before any trial starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sweep_helpers import write_base

from nnctl.cli import main
from nnctl.errors import ConfigError, ConfigErrors
from nnctl.sweep.spec import spec_from_file
from nnctl.sweep.validate import validate_sweep

EXAMPLES = sorted((Path(__file__).parents[2] / "configs" / "sweeps").glob("*.yaml"))

TPE = """\
base: base.yaml
set: [train.epochs=3]
search: {type: tpe, trials: 6, seed: 1}
space:
  optimizer.lr: {loguniform: [1.0e-3, 1.0e-1]}
  model.layers[0].n_out: [8, 16]
  optimizer.momentum: {uniform: [0.5, 0.9]}
  data.batch_size: {int: [16, 64]}
early_stopping: {type: asha, metric: val_accuracy, grace_period: 1, reduction_factor: 3}
"""


def write(tmp_path: Path, text: str) -> Path:
    write_base(tmp_path)
    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    return path


def check(*paths) -> tuple[int, list[str], str]:
    result = CliRunner().invoke(main, ["check", *map(str, paths)])
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    return result.exit_code, errors, result.output


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_check_accepts_the_example_sweep_files(path):
    code, errors, output = check(path)
    assert code == 0 and not errors, output
    assert f"ok: {path}" in output


def test_tpe_sweep_file(tmp_path):
    spec = spec_from_file(write(tmp_path, TPE))
    assert spec.kind == "tpe" and spec.adaptive and spec.uses_study
    assert (spec.trials, spec.seed, spec.metric, spec.mode) == (6, 1, "val_accuracy", "max")
    assert spec.space == {"optimizer.lr": ("loguniform", [1e-3, 1e-1]),
                          "model.layers[0].n_out": ("choice", [8, 16]),
                          "optimizer.momentum": ("uniform", [0.5, 0.9]),
                          "data.batch_size": ("int", [16, 64])}  # fmt: skip
    assert spec.scheduler.to_dict() == {"type": "asha", "metric": "val_accuracy", "mode": "max",
                                        "grace_period": 1, "reduction_factor": 3}  # fmt: skip
    assert validate_sweep(spec) == [] and spec.expand() == []
    # more trials later continue the same study: the count is not part of the identity
    more = spec_from_file(write(tmp_path, TPE.replace("trials: 6", "trials: 9")))
    assert more.fingerprint() == spec.fingerprint()
    assert check(tmp_path / "sweep.yaml")[0] == 0


def test_search_grid_and_random_are_the_old_blocks(tmp_path):
    old = spec_from_file(write(tmp_path, "base: base.yaml\ngrid: {seed: [0, 1]}\n"
                               "random: {trials: 2, seed: 3, space: {optimizer.lr: "
                               "{uniform: [0.01, 0.1]}}}\n"))  # fmt: skip
    new = spec_from_file(write(tmp_path, "base: base.yaml\nsearch: {type: random, trials: 2, "
                               "seed: 3}\ngrid: {seed: [0, 1]}\nspace: {optimizer.lr: "
                               "{uniform: [0.01, 0.1]}}\n"))  # fmt: skip
    assert [t.name for t in new.expand()] == [t.name for t in old.expand()]
    assert new.fingerprint() == old.fingerprint()  # the same folder, the same trials
    grid = spec_from_file(write(tmp_path, "base: base.yaml\nsearch: {type: grid}\n"
                                "space: {seed: [0, 1]}\n"))  # fmt: skip
    assert grid.grid == {"seed": [0, 1]} and len(grid.expand()) == 2


BAD = [
    ("search: {type: bayes, trials: 3}\nspace: {seed: [1, 2]}\n",
     "sweep.yaml:2: search.type: unknown search type 'bayes' (choose from grid, random, tpe)"),
    (("search: {type: tpe, trials: 3}\nspace: {seed: [1, 2]}\n"
     "early_stopping: {type: hyperbnd}\n"),
     ("sweep.yaml:4: early_stopping.type: unknown early stopping type 'hyperbnd' (choose from "
     "asha, median)")),
    (("search: {type: tpe, trials: 3}\nspace: {seed: [1, 2]}\n"
     "early_stopping: {type: asha, metric: val_acc}\n"),
     ("sweep.yaml:4: early_stopping.metric: training does not log 'val_acc'; did you mean "
     "'val_accuracy'?")),
    (("search: {type: tpe, trials: 3}\nspace: {seed: [1, 2]}\n"
     "early_stopping: {type: asha, grace_period: 5}\n"),
     "sweep.yaml:4: early_stopping.grace_period: 5 is more than the 2 epochs a trial trains"),
    ("search: {type: tpe, trials: 3}\nspace:\n  optimizer.lr: {uniform: [0.1, 0.01]}\n",
     ("sweep.yaml:4: space.optimizer.lr.uniform: expected [low, high], two numbers with low < "
     "high; got [0.1, 0.01]")),
    ("search: {type: tpe, trials: 3}\nspace:\n  optimizer.lr: {loguniform: [0, 0.1]}\n",
     ("sweep.yaml:4: space.optimizer.lr.loguniform: expected [low, high], two positive numbers "
     "(a log-uniform range cannot include 0); got [0, 0.1]")),
    ("search: {type: tpe, trials: 0}\nspace: {seed: [1, 2]}\n",
     "sweep.yaml:2: search.trials: must be a positive integer; got 0"),
    (("search: {type: tpe, trials: 3, metric: val_accuracy}\nspace: {seed: [1, 2]}\n"
     "early_stopping: {type: asha, metric: val_loss}\n"),
     ("sweep.yaml:4: early_stopping.metric: the search optimizes val_accuracy (max) and "
     "early_stopping watches val_loss (min); use one metric")),
    (("search: {type: tpe, trials: 3}\nspace: {seed: [1, 2]}\n"
     "early_stopping: {type: asha, reduction_factor: 1}\n"),
     "sweep.yaml:4: early_stopping.reduction_factor: must be an integer >= 2; got 1"),
    ("search: {type: grid}\nspace: {optimizer.lr: {uniform: [0.1, 0.2]}}\n",
     "sweep.yaml:3: space.optimizer.lr: a grid takes a non-empty list of values"),
    ("search: {type: tpe, trials: 3}\nspace:\n  model.layers[0].n_out: {int: [-2, 8]}\n",
     "sweep.yaml:4: space.model.layers[0].n_out: value -2: must be a positive integer; got -2"),
    ("search: {type: tpe, trials: 3}\nspace:\n  seed: [1, 2]\n  optimizer.lrr: [0.1, 0.2]\n",
     "sweep.yaml:5: space.optimizer.lrr: value 0.1: no such key"),
    ("space: {seed: [1, 2]}\n", "sweep.yaml:2: space: a space needs search:"),
    ("serch: {type: tpe}\ngrid: {seed: [1]}\n", ("sweep.yaml:2: serch: unknown key; did you "
     "mean 'search'?")),
]  # fmt: skip


@pytest.mark.parametrize(("text", "message"), BAD, ids=[m.split(": ")[1] for _, m in BAD])
def test_bad_input_is_one_line_naming_the_key_before_any_trial(tmp_path, text, message):
    path = write(tmp_path, "base: base.yaml\n" + text)
    code, errors, output = check(path)
    assert code == 1
    assert len(errors) == 1, output
    assert message in errors[0] and errors[0].startswith(f"error: {tmp_path}/sweep.yaml:")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(out)])
    assert result.exit_code == 1 and message in result.output
    assert not out.exists()  # nothing ran


def test_metric_needs_validation_data(tmp_path):
    base = write_base(tmp_path)
    base.write_text(base.read_text().replace("validation: 0.1", "validation: 0"))
    path = tmp_path / "sweep.yaml"
    path.write_text("base: base.yaml\nsearch: {type: tpe, trials: 2}\nspace: {seed: [1, 2]}\n"
                    "early_stopping: {type: median, metric: val_accuracy}\n")  # fmt: skip
    code, errors, _ = check(path)
    assert code == 1 and errors == [
        (f"error: {path}:4: early_stopping.metric: training does not log 'val_accuracy': the "
        "base config has no validation data (set data.validation, e.g. 0.1); it logs "
        "train_loss, train_accuracy")]  # fmt: skip


def test_a_bad_base_config_is_reported_once_at_its_own_line(tmp_path):
    base = write_base(tmp_path)
    base.write_text(base.read_text().replace("lr: 0.05", "lr: -0.05"))
    path = tmp_path / "sweep.yaml"
    path.write_text("base: base.yaml\ngrid: {seed: [0, 1, 2, 3]}\n")
    code, errors, _ = check(path)
    assert code == 1 and errors == [
        f"error: {base}:8: optimizer.lr: must be a positive number; got -0.05"]  # fmt: skip


def test_a_value_that_breaks_only_in_combination_names_its_trials(tmp_path):
    """Each value is fine alone; the combined overrides are checked trial by trial."""
    path = write(tmp_path, "base: base.yaml\ngrid:\n  model.layers: [[{type: flatten}]]\n"
                 "  model.layers[0].n_out: [8]\n")  # fmt: skip
    with pytest.raises((ConfigError, ConfigErrors)) as error:
        validate_sweep(spec_from_file(path))
    assert "model.layers[0]" in str(error.value)
