"""Run-directory files: names, atomic writes and the one reader (``nnctl.layout``,
``nnctl.fileio``)."""

from __future__ import annotations

import json
import os

import pytest

from nnctl import layout
from nnctl.errors import CheckpointError, NnctlError
from nnctl.fileio import atomic_write_json, atomic_write_text, make_dirs, user_path


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    atomic_write_json(path, {"a": 1})
    assert path.read_text() == '{\n  "a": 1\n}\n'

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(NnctlError, match=f"cannot write {path}: disk full"):
        atomic_write_text(path, "new")
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no temporary left


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("meta.json", '{"status": "completed"}', {"status": "completed"}),
        ("config.yaml", "seed: 1\n", {"seed": 1}),
        ("metrics.jsonl", '{"epoch": 1}\n\n{"epoch": 2}\n', [{"epoch": 1}, {"epoch": 2}]),
    ],
)
def test_read_file_parses_by_suffix(tmp_path, name, text, expected):
    (tmp_path / name).write_text(text)
    assert layout.read_file(tmp_path / name) == expected


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("meta.json", "{not json"),
        ("meta.json", "[1, 2]"),
        ("config.yaml", "a: [1"),
        ("config.yaml", "- 1\n"),
        ("metrics.jsonl", '{"epoch": 1}\n[1]\n'),
    ],
)
def test_read_file_rejects_malformed_files(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError):
        layout.read_file(tmp_path / name)


def test_read_required_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="summary.json: not found"):
        layout.read_required(tmp_path / layout.SUMMARY_FILE)
    (tmp_path / layout.CONFIG_FILE).write_text("a: [1")
    with pytest.raises(CheckpointError, match=r"config.yaml: not valid YAML \("):
        layout.read_required(tmp_path / layout.CONFIG_FILE)
    assert layout.load_json(tmp_path / layout.META_FILE) == {}


def test_read_metrics_says_what_is_wrong(tmp_path):
    with pytest.raises(NnctlError, match="no metrics.jsonl"):
        layout.read_metrics(tmp_path)
    (tmp_path / layout.METRICS_JSONL).write_text("")
    with pytest.raises(NnctlError, match="no epochs logged yet"):
        layout.read_metrics(tmp_path)


def test_run_files_read_what_is_there_and_note_the_rest(tmp_path):
    (tmp_path / layout.CONFIG_FILE).write_text("[not, a, mapping]\n")
    rows = [
        {"epoch": 1, "val_loss": 0.9, "val_accuracy": 0.5},
        {"epoch": 2, "val_loss": 0.7, "val_accuracy": 0.4},
    ]
    (tmp_path / layout.METRICS_JSONL).write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = layout.RunFiles.read(tmp_path)
    assert files.problems == ["bad config.yaml", "no meta.json"]  # no summary: not finished
    assert files.config == {} and files.metrics == rows and files.epochs == 2
    assert files.best("val_accuracy") == 0.5 and files.best("val_loss", min) == 0.7
    (tmp_path / layout.SUMMARY_FILE).write_text('{"epochs": 2, "best": {"val_accuracy": 0.45}}')
    files = layout.RunFiles.read(tmp_path)
    assert files.best("val_accuracy") == 0.45  # the best checkpoint's, not the log's maximum
    assert files.best("val_loss", min) == 0.7  # not in the summary: from the log


def test_find_runs_looks_into_sweep_folders(tmp_path):
    for folder in ("a", "sweep/000-x", "sweep/001-y", "empty"):
        (tmp_path / folder).mkdir(parents=True)
    for run in ("a", "sweep/000-x", "sweep/001-y"):
        (tmp_path / run / layout.META_FILE).write_text("{}")
    found = [p.relative_to(tmp_path).as_posix() for p in layout.find_runs(tmp_path)]
    assert found == ["a", "sweep/000-x", "sweep/001-y"]
    assert layout.find_runs(tmp_path / "a") == [tmp_path / "a"]
    assert layout.last_checkpoint(tmp_path / "a") == tmp_path / "a" / "checkpoints" / "last.npz"
    assert layout.epoch_checkpoint(7) == "epoch-0007.npz"


def test_a_failed_write_names_its_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NnctlError, match="cannot write .*afile/summary.json: Not a directory"):
        atomic_write_json(tmp_path / "afile" / "summary.json", {})


def test_make_dirs_says_which_parent_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(NnctlError) as error:
        make_dirs(tmp_path / "afile" / "a" / "b", "run directory")
    assert str(error.value) == (
        f"cannot create run directory {tmp_path}/afile/a/b: {tmp_path}/afile is a file, not a folder"
    )
    assert make_dirs(tmp_path / "new" / "deep").is_dir()


def test_user_path_expands_home_and_names_an_unknown_user(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_path("~/runs") == tmp_path / "runs"
    with pytest.raises(NnctlError, match="cannot expand '~nnctl-no-such-user': no such user"):
        user_path("~nnctl-no-such-user/runs")
