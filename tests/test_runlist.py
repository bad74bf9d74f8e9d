"""``nnctl runs``: loss columns and sort keys, and the training time named for what it is."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from nnctl import layout
from nnctl.cli import main
from nnctl.runlist import SORT_KEYS


def fake_run(folder: Path, val_loss, train_loss, test_loss, seconds=(1.0, 2.5)) -> None:
    folder.mkdir(parents=True)
    (folder / layout.META_FILE).write_text(json.dumps({"status": "completed"}))
    (folder / layout.CONFIG_FILE).write_text("train: {epochs: 2}\n")
    rows = [  # the second epoch is the better one
        {"epoch": 1, "seconds": seconds[0], "val_loss": val_loss + 1, "train_loss": train_loss + 1},
        {"epoch": 2, "seconds": seconds[1], "val_loss": val_loss, "train_loss": train_loss},
    ]
    (folder / layout.METRICS_JSONL).write_text("".join(json.dumps(r) + "\n" for r in rows))
    if test_loss is not None:
        summary = {"epochs": 2, "test": {"loss": test_loss}, "train_seconds": sum(seconds)}
        (folder / layout.SUMMARY_FILE).write_text(json.dumps(summary))


def runs(*args) -> list[dict]:
    result = CliRunner().invoke(main, ["runs", *map(str, args), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_runs_sort_by_losses_ascending_unknown_last(tmp_path):
    fake_run(tmp_path / "a", val_loss=0.3, train_loss=0.1, test_loss=0.5)
    fake_run(tmp_path / "b", val_loss=0.2, train_loss=0.3, test_loss=None)
    fake_run(tmp_path / "c", val_loss=0.4, train_loss=0.2, test_loss=0.25)
    assert {"val_loss", "train_loss", "test_loss", "train_seconds"} <= set(SORT_KEYS)
    assert [r["name"] for r in runs(tmp_path, "--sort", "val_loss")] == ["b", "a", "c"]
    assert [r["name"] for r in runs(tmp_path, "--sort", "train_loss")] == ["a", "c", "b"]
    assert [r["name"] for r in runs(tmp_path, "--sort", "test_loss")] == ["c", "a", "b"]
    first = runs(tmp_path)[0]
    assert first["val_loss"] == 0.3 and first["train_loss"] == 0.1 and first["test_loss"] == 0.5


def test_runs_training_time_is_called_so(tmp_path):
    fake_run(tmp_path / "a", 0.3, 0.1, 0.5)
    fake_run(tmp_path / "b", 0.3, 0.1, None, seconds=(60.0, 15.5))  # no summary: the log's sum
    rows = {r["name"]: r for r in runs(tmp_path, "--sort", "train_seconds")}
    assert "wall_seconds" not in rows["a"]
    assert rows["a"]["train_seconds"] == 3.5 and rows["b"]["train_seconds"] == 75.5
    table = CliRunner().invoke(main, ["runs", str(tmp_path)]).output.splitlines()
    assert "train time" in table[0] and "wall" not in table[0]
    assert "best val loss" in table[0] and "test loss" in table[0]
    assert table[2].split()[-2:] == ["1m15.5s", "completed"]
