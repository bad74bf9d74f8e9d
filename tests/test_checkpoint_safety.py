"""A checkpoint is data, never instructions (issue 10, items 9-12).

Damaged or hostile checkpoints give one ``error:`` line naming the file and exit 1, never a
traceback or a model that computes NaN; a checkpoint's embedded config extends nothing and
the data files it names are not opened when the checkpoint is given alone.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from checkpoint_helpers import (
    ROOT,
    assert_one_line_error,
    nnctl,
    read_raw,
    setting,
    tamper,
    train,
    user_data_run,
)
from click.testing import CliRunner

from nnctl.cli import main
from nnctl.data.sources import LOADERS
from nnctl.errors import CheckpointError
from nnctl.train import run
from nnctl.train.checkpoint import load_checkpoint

SECRET = "s3cr3t-never-shown"


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory) -> Path:
    return train(tmp_path_factory.mktemp("iris") / "run")


@pytest.fixture(scope="module")
def user_run(tmp_path_factory) -> Path:
    return user_data_run(tmp_path_factory.mktemp("user"))


def best(run_dir: Path) -> Path:
    return run_dir / "checkpoints" / "best.npz"


def drop(key: str):
    def change(meta: dict) -> dict:
        *parents, last = key.split(".")
        node = meta
        for name in parents:
            node = node[name]
        del node[last]
        return meta

    return change


MALFORMED_META = [
    (setting("config", [1]), "'config' must be a mapping; got [1]"),
    (setting("progress", 3), "'progress' must be a mapping; got 3"),
    (setting("progress.epoch", "x"), "'progress.epoch' must be a number"),
    (drop("tracker.bad_epochs"), "'tracker.bad_epochs' is missing"),
    (setting("tracker.best", "high"), "'tracker.best' must be a number or null"),
    (setting("early_stopping", [1]), "'early_stopping' must be a mapping or null"),
    (setting("base_lr", True), "'base_lr' must be a number; got True"),
    (setting("data_spec.input_shape", [0]), "data_spec.input_shape must be positive"),
    (setting("data_spec.task", "clustering"), "data_spec.task must be one of"),
    (setting("data_spec.n_classes", 1), "n_classes 1 does not fit task classification"),
    (setting("data_spec.class_names", [1, 2, 3]), "data_spec.class_names must be 3 names"),
    (setting("format", "1"), "unsupported checkpoint format '1'"),
    (lambda meta: [meta], "unsupported checkpoint format [{"),
]


@pytest.mark.parametrize("change,fragment", MALFORMED_META)
def test_metadata_of_the_wrong_shape_is_one_line(iris_run, tmp_path, change, fragment):
    broken = tamper(best(iris_run), tmp_path / "broken.npz", meta=change)
    for command in (["eval", broken], ["predict", broken, "--input", ROOT / "README.md"]):
        assert_one_line_error(nnctl(*command), str(broken), fragment)


@pytest.mark.parametrize(
    "raw,fragment",
    [
        (b"[" * 100_000 + b"]" * 100_000, "corrupted checkpoint metadata (nested too deeply)"),
        (b"\xff\xfe{}", "corrupted checkpoint metadata"),
        (b'{"format": 1, "config": {', "corrupted checkpoint metadata"),
    ],
)
def test_undecodable_metadata_is_one_line(iris_run, tmp_path, raw, fragment):
    broken = tamper(best(iris_run), tmp_path / "broken.npz", raw_meta=raw)
    assert_one_line_error(nnctl("eval", broken), str(broken), fragment)


def test_resume_reports_wrong_progress_naming_the_checkpoint(iris_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(iris_run, run_dir)
    last = run_dir / "checkpoints" / "last.npz"
    tamper(last, last, meta=setting("progress.epoch", "x"))
    assert_one_line_error(nnctl("resume", run_dir), str(last), "'progress.epoch'")
    tamper(last, last, meta=setting("progress", {"bogus": 1}))
    assert_one_line_error(nnctl("resume", run_dir), str(last), "bogus")


def scale_weights(factor):
    def change(arrays: dict) -> None:
        arrays["model/layers.0.W"] = arrays["model/layers.0.W"] * factor

    return change


def set_array(key: str, value):
    def change(arrays: dict) -> None:
        arrays[key] = value(arrays[key]) if callable(value) else value

    return change


def with_nan(array):
    array = array.copy()
    array.flat[0] = np.nan
    return array


BAD_ARRAYS = [
    (scale_weights(np.nan), "array 'model/layers.0.W' holds NaN or infinite values"),
    (set_array("model/layers.0.W", with_nan), "holds NaN or infinite values"),
    (
        set_array("optim/momentum.layers.0.W", lambda a: a + np.inf),
        "'optim/momentum.layers.0.W' holds NaN",
    ),
    (set_array("model/layers.0.W", lambda a: a + 1j), "'model/layers.0.W' holds complex numbers"),
    (set_array("model/layers.0.b", lambda a: a.astype(str)), "'model/layers.0.b' holds <U"),
    (set_array("model/layers.0.W", lambda a: a[:-1]), "layers.0.W: shape (3, 16) does not match"),
    (set_array("prep/scale", lambda a: a * 0), "preprocessing scale must be positive"),
    (set_array("prep/shift", np.zeros(7)), "preprocessing shift of shape (7,) for (4,)"),
    (set_array("prep/mode", np.array("whiten")), "unknown preprocessing mode 'whiten'"),
]


@pytest.mark.parametrize("change,fragment", BAD_ARRAYS)
def test_bad_arrays_are_one_line_naming_the_checkpoint(iris_run, tmp_path, change, fragment):
    broken = tamper(best(iris_run), tmp_path / "broken.npz", arrays=change)
    np.save(tmp_path / "x.npy", np.ones((2, 4)))
    for command in (["eval", broken], ["predict", broken, "--input", tmp_path / "x.npy"]):
        line = assert_one_line_error(nnctl(*command), fragment)
        assert line.startswith(f"error: {broken}: "), line


def test_finite_weights_that_overflow_are_reported_not_nan(iris_run, tmp_path):
    def enlarge(arrays: dict) -> None:
        arrays["model/layers.0.b"] = np.full_like(arrays["model/layers.0.b"], 1e30)
        arrays["model/layers.1.W"] = np.full_like(arrays["model/layers.1.W"], 1e38)
        # finite weights; the hidden layer saturates at 1 and 16 * 1e38 overflows float32

    huge = tamper(best(iris_run), tmp_path / "huge.npz", arrays=enlarge)
    np.save(tmp_path / "x.npy", np.ones((2, 4)))
    assert_one_line_error(nnctl("eval", huge), "the loss on test is not finite")
    result = nnctl("predict", huge, "--input", tmp_path / "x.npy")
    assert_one_line_error(result, "x.npy: the model's output for row 0 is not finite")
    assert result.stdout == ""


@pytest.mark.parametrize(
    "make,fragment",
    [
        (lambda p: shutil.copy(ROOT / "configs" / "iris-mlp.yaml", p / "c.yaml"),
         "is a config file, not a run directory or checkpoint; train it with 'nnctl train"),
        (lambda p: np.save(p / "c.npy", np.ones(3)), "is a .npy array, not an nnctl checkpoint"),
        (lambda p: (p / "c.txt").write_text("hello"), "not an nnctl checkpoint (not an .npz"),
        (lambda p: zipfile.ZipFile(p / "c.npz", "w").close(), "not an nnctl checkpoint (no meta"),
        (lambda p: os.mkfifo(p / "c.fifo"), "not a regular file"),
        (lambda p: (p / "c").mkdir(), "not an nnctl run directory"),
    ],
)  # fmt: skip
def test_files_that_are_no_checkpoint(tmp_path, make, fragment):
    make(tmp_path)
    (target,) = [p for p in tmp_path.iterdir()]
    assert_one_line_error(nnctl("eval", target), str(target), fragment)
    assert "pickled" not in nnctl("eval", target).stderr


def test_summary_may_only_name_a_checkpoint_of_its_run(iris_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(iris_run, run_dir)
    shutil.copy(best(iris_run), tmp_path / "elsewhere.npz")
    summary = json.loads((run_dir / "summary.json").read_text())
    for name in ("../elsewhere.npz", str(tmp_path / "elsewhere.npz"), 3):
        (run_dir / "summary.json").write_text(json.dumps({**summary, "checkpoint": name}))
        assert_one_line_error(nnctl("eval", run_dir), "'checkpoint' must name a file in")


def test_an_embedded_extends_is_refused_and_never_read(iris_run, tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text(f"{SECRET}: 1\n")
    broken = tamper(best(iris_run), tmp_path / "b.npz", meta=setting("config.extends", str(secret)))
    result = nnctl("eval", broken)
    assert_one_line_error(result, str(broken), "resolved already", "'extends'")
    assert SECRET not in result.stdout + result.stderr


def test_a_run_config_that_extends_is_refused_and_never_read(iris_run, tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text(f"{SECRET}: [\n")
    run_dir = tmp_path / "run"
    shutil.copytree(iris_run, run_dir)
    config = run_dir / "config.yaml"
    config.write_text(f"extends: {secret}\n" + config.read_text())
    for command in ("resume", "eval"):
        result = nnctl(command, run_dir)
        assert_one_line_error(result, str(config), "'extends'")
        assert SECRET not in result.stdout + result.stderr


@pytest.fixture
def no_user_data_read(monkeypatch):
    """Fail the test if any user data file is opened (every loader method refuses)."""

    def refuse(self, part, *args):
        raise AssertionError(f"opened {part}")

    for name in LOADERS.names():
        for method in ("peek", "read", "read_labels"):
            monkeypatch.setattr(LOADERS.get(name), method, refuse)


def test_a_checkpoint_alone_opens_no_data_file_it_names(user_run, tmp_path, no_user_data_read):
    secret = tmp_path / "secret.csv"
    secret.write_text(f"a,b,c,d,label\n1,2,3,4,{SECRET}\n")
    data = {"type": "csv", "path": "../" * 12 + str(secret)[1:], "label_column": None}
    alone = tamper(best(user_run), tmp_path / "alone.npz", meta=setting("config.data", data))
    np.save(tmp_path / "x.npy", np.ones((3, 4)))
    runner = CliRunner()
    evaluated = runner.invoke(main, ["eval", str(alone)])
    assert evaluated.exit_code == 1 and "pass --data FILE" in evaluated.output
    assert SECRET not in evaluated.output
    predicted = runner.invoke(main, ["predict", str(alone), "--input", str(tmp_path / "x.npy")])
    assert predicted.exit_code == 0, predicted.output
    assert predicted.output.startswith("class,p0,p1,p2\n")


def test_a_checkpoint_alone_is_evaluated_on_the_data_the_user_names(user_run, tmp_path):
    alone = tmp_path / "alone.npz"
    shutil.copy(best(user_run), alone)
    result = nnctl("eval", alone)
    assert_one_line_error(result, str(alone), "pass --data FILE or evaluate its run directory")
    data = user_run.parent / "train.npz"
    from_alone = json.loads(nnctl("eval", alone, "--data", data, "--json").stdout)
    from_run = json.loads(nnctl("eval", user_run, "--data", data, "--json").stdout)
    assert from_alone["loss"] == from_run["loss"] and from_alone["samples"] == 60


def test_a_run_uses_the_data_its_config_yaml_names(user_run, tmp_path):
    """The run's config.yaml is the user's own file: moving the data and fixing the path
    there is followed; the checkpoint's own copy of the path is not."""
    run_dir = tmp_path / "run"
    shutil.copytree(user_run, run_dir)
    before = json.loads(nnctl("eval", run_dir, "--split", "validation", "--json").stdout)
    moved = tmp_path / "moved.npz"
    shutil.copy(user_run.parent / "train.npz", moved)
    config = run_dir / "config.yaml"
    config.write_text(config.read_text().replace(str(user_run.parent / "train.npz"), str(moved)))
    assert str(moved) in config.read_text()
    for target in (run_dir, best(run_dir)):
        after = nnctl("eval", target, "--split", "validation", "--json")
        assert after.returncode == 0, after.stderr
        assert json.loads(after.stdout)["loss"] == before["loss"]


def test_predict_needs_no_training_data(user_run, tmp_path):
    folder = tmp_path / "project"
    shutil.copytree(user_run.parent, folder)
    (folder / "train.npz").unlink()
    np.save(tmp_path / "x.npy", np.ones((3, 4)))
    result = nnctl("predict", folder / "run", "--input", tmp_path / "x.npy")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 4


def test_older_checkpoints_without_a_data_record(user_run, tmp_path):
    def forget(meta: dict) -> dict:
        meta.pop("data_spec")
        return meta

    run_dir = tmp_path / "run"
    shutil.copytree(user_run, run_dir)
    tamper(best(run_dir), best(run_dir), meta=forget)
    result = nnctl("eval", run_dir, "--split", "validation")
    assert result.returncode == 0, result.stderr  # described from the run's own data
    alone = shutil.copy(best(run_dir), tmp_path / "alone.npz")
    assert_one_line_error(nnctl("eval", alone), "older checkpoint", "use its run directory")


def test_the_weight_shape_error_names_the_checkpoint(iris_run, tmp_path):
    """A config changed under a run (here: a wider hidden layer) no longer fits its weights:
    eval and resume both name the checkpoint file."""
    run_dir = tmp_path / "run"
    shutil.copytree(iris_run, run_dir)
    last = run_dir / "checkpoints" / "last.npz"

    def widen(meta: dict) -> dict:
        meta["config"]["model"]["layers"][0]["n_out"] = 17
        return meta

    tamper(last, last, meta=widen)
    assert_one_line_error(nnctl("eval", last), f"{last}: layers.0.W: shape (4, 16)")
    result = nnctl("train", ROOT / "configs" / "iris-mlp.yaml", "--resume", run_dir, "--force",
                   "--set", "model.layers[0].n_out=17")  # fmt: skip
    assert_one_line_error(result, f"{last}: layers.0.W: shape (4, 16)")


def test_a_trained_checkpoint_records_its_data(iris_run):
    _, meta = load_checkpoint(best(iris_run))
    assert meta["data_spec"] == {
        "name": "iris", "input_shape": [4], "n_classes": 3, "task": "classification",
        "class_names": ["setosa", "versicolor", "virginica"],
    }  # fmt: skip
    assert read_raw(best(iris_run))[1]["progress"]["epoch"] >= 1


def test_load_checkpoint_raises_checkpoint_error(iris_run, tmp_path):
    broken = tamper(best(iris_run), tmp_path / "b.npz", arrays=scale_weights(np.inf))
    with pytest.raises(CheckpointError, match="holds NaN or infinite values"):
        load_checkpoint(broken)


def test_a_checkpoint_alone_does_not_follow_its_data_dir(iris_run, tmp_path):
    """A built-in data set is found in the standard places, not where a checkpoint says."""
    elsewhere = str(tmp_path / "elsewhere")
    alone = tamper(
        best(iris_run), tmp_path / "a.npz", meta=setting("config.data.data_dir", elsewhere)
    )
    model = run.open_model(alone)
    assert model.config.data["data"]["data_dir"] == elsewhere  # recorded, never followed
    assert "data_dir" not in model.data_to_load()
    assert nnctl("eval", alone).returncode == 0
