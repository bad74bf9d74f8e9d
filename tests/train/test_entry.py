"""``nnctl.train.entry``: one training without the command line, as a sweep trial runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from nnctl.errors import ConfigError, NnctlError, error_lines
from nnctl.train.entry import train_exit_code, train_file

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
IRIS = str(CONFIGS / "iris-mlp.yaml")


def test_a_trained_trial_exits_0_and_records_its_command(tmp_path, capsys):
    argv = ["nnctl", "train", IRIS, "--set", "train.epochs=1", "--out", str(tmp_path / "r")]
    code = train_exit_code(IRIS, ["train.epochs=1"], out=str(tmp_path / "r"), argv=argv)
    assert code == 0 and capsys.readouterr().err == ""  # quiet
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert meta["command"] == argv and meta["status"] == "completed"
    code = train_exit_code(resume_dir=str(tmp_path / "r"), argv=["nnctl", "resume"])
    assert code == 0


def test_errors_become_the_exit_code_and_the_cli_lines(tmp_path, capsys):
    code = train_exit_code(IRIS, ["optimizer.lr=-1"], out=str(tmp_path / "bad"))
    assert code == 1
    assert capsys.readouterr().err == (
        f"error: {IRIS}: --set optimizer.lr=-1: optimizer.lr: must be a positive number; got -1\n"
    )
    digits = str(CONFIGS / "digits-mlp-sgd.yaml")
    code = train_exit_code(digits, ["optimizer.lr=1e12", "train.epochs=1"], out=str(tmp_path / "d"))
    assert code == 3 and "error: training diverged" in capsys.readouterr().err


def test_error_lines():
    error = ConfigError("a.b", "first\nsecond")
    assert error_lines(error) == ["error: a.b: first", "error: second"]


def test_a_run_whose_config_predates_new_arguments_resumes_without_force(tmp_path, capsys):
    """A run started before ``bias`` (and the loss's arguments) existed has no such keys in
    its config.yaml; resolving it again fills the same defaults, so nothing differs."""
    run_dir = tmp_path / "r"
    assert train_exit_code(IRIS, ["train.epochs=1"], out=str(run_dir)) == 0
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    for layer in saved["model"]["layers"]:
        del layer["bias"]
    saved["model"]["loss"] = "cross_entropy"
    (run_dir / "config.yaml").write_text(yaml.safe_dump(saved))
    assert train_exit_code(resume_dir=str(run_dir)) == 0, capsys.readouterr().err
    with pytest.raises(NnctlError, match=r"trained with: optimizer.lr: 0.1 -> 0.5; use --force"):
        train_file(IRIS, ["train.epochs=1", "optimizer.lr=0.5"], resume_dir=str(run_dir))
