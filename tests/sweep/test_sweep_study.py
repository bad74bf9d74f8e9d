"""Sweeps with a study (Optuna, ``pip install 'nnctl[search]'``): ASHA and median pruning,
TPE, resuming the study; pruned trials are normal run directories."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sweep_helpers import NNCTL, nnctl, read_jsonl, same_weights, write_base

from nnctl.cli import main
from nnctl.errors import TrialPruned
from nnctl.sweep.report import make_hook
from nnctl.sweep.spec import spec_from_file
from nnctl.sweep.study import STUDY_NAME, Study, from_optuna, open_storage
from nnctl.sweep.trial import status_of

optuna = pytest.importorskip("optuna")

ASHA = """\
base: base.yaml
set: [train.epochs=4]
grid:
  optimizer.lr: [0.05, 1.0e-5, 2.0e-5]
early_stopping: {type: asha, metric: val_accuracy, grace_period: 1, reduction_factor: 3}
"""


def write_sweep(root: Path, text: str, name: str = "sweep.yaml") -> Path:
    write_base(root)
    path = root / name
    path.write_text(text)
    return path


def test_pruned_is_its_own_exit_code():
    assert status_of(TrialPruned.exit_code) == "pruned"
    assert TrialPruned.exit_code not in (0, 1, 2, 3, 130, 143)


def test_study_asks_and_tells(tmp_path):
    path = write_sweep(tmp_path, "base: base.yaml\nsearch: {type: tpe, trials: 3}\nspace:\n"
                       "  optimizer.lr: {loguniform: [1.0e-3, 1.0e-1]}\n  seed: [0, 1]\n")  # fmt: skip
    spec = spec_from_file(path)
    study = Study(tmp_path, spec, jobs=1)
    number, params = study.ask(0)
    assert number == 0 and 1e-3 <= params["optimizer.lr"] <= 1e-1 and params["seed"] in (0, 1)
    assert float(f"{params['optimizer.lr']:.6g}") == params["optimizer.lr"]  # override text
    study.tell(number, "completed", 0.9)
    assert study.ask(1, {"optimizer.lr": 0.01, "seed": 1}) == (1, {"optimizer.lr": 0.01,
                                                                    "seed": 1})  # fmt: skip
    study.tell(1, "interrupted", None)  # stays running: it resumes
    again = Study(tmp_path, spec, jobs=1).known()
    assert sorted(again) == [0, 1] and again[0].value == 0.9
    assert again[1].state == optuna.trial.TrialState.RUNNING
    assert from_optuna({"k": ("choice", [[3, 3], [5, 5]])}, {"k": "[5, 5]"}) == {"k": [5, 5]}


def test_the_hook_reports_every_epoch_and_raises_when_pruned(tmp_path):
    storage = open_storage(tmp_path / "study.journal")
    study = optuna.create_study(study_name=STUDY_NAME, storage=storage, direction="maximize")
    for value in (0.9, 0.8):  # two finished trials that did better at every epoch
        trial = study.ask()
        for epoch in (1, 2, 3):
            trial.report(value, epoch)
        study.tell(trial, value)
    number = study.ask().number
    scheduler = {"type": "median", "metric": "val_accuracy", "mode": "max",
                 "grace_period": 2, "n_startup_trials": 1}  # fmt: skip
    hook = make_hook({"kind": "optuna", "storage": str(tmp_path / "study.journal"),
                      "study": STUDY_NAME, "number": number, "metric": "val_accuracy",
                      "epochs": 3, "scheduler": scheduler})  # fmt: skip
    hook({"epoch": 1, "val_accuracy": 0.1})  # before the grace period: goes on
    with pytest.raises(TrialPruned, match="pruned by median after epoch 2"):
        hook({"epoch": 2, "val_accuracy": 0.1})
    assert study.trials[number].intermediate_values == {1: 0.1, 2: 0.1}


def test_without_optuna_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["sweep", str(write_sweep(tmp_path, ASHA)), "--out",
                                       str(out)])  # fmt: skip
    assert result.exit_code == 1
    assert result.output.strip() == (
        "error: a tpe search or early_stopping needs Optuna: pip install 'nnctl[search]'"
    )
    assert not out.exists()


@pytest.mark.slow
def test_asha_prunes_the_laggards_and_keeps_their_runs(tmp_path):
    """One worker, so the order is fixed: the good trial runs first and completes; the two
    tiny learning rates fall behind it at the first rung (epoch 1) and are pruned."""
    out = tmp_path / "out"
    result = nnctl("sweep", write_sweep(tmp_path, ASHA), "--out", out, "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert "sweep done: 1 completed, 2 pruned" in result.stderr
    assert "001-optimizer.lr=1e-05: pruned after epoch 1" in result.stderr
    rows = read_jsonl(out / "sweep.jsonl")
    assert [r["status"] for r in rows] == ["completed", "pruned", "pruned"]
    assert [r["epochs"] for r in rows] == [4, 1, 1]
    assert [r["stopped_epoch"] for r in rows] == [None, 1, 1]
    assert all(r["error"] is None for r in rows)
    assert "stopped_epoch" in (out / "sweep.csv").read_text().splitlines()[0]
    pruned = out / rows[1]["name"]
    assert json.loads((pruned / "meta.json").read_text())["status"] == "pruned"
    assert json.loads((pruned / "trial.json").read_text())["exit_code"] == 4
    assert (pruned / "checkpoints" / "last.npz").is_file()
    listed = CliRunner().invoke(main, ["runs", str(out), "--json"])
    assert [r["status"] for r in json.loads(listed.output)] == ["completed", "pruned", "pruned"]
    assert CliRunner().invoke(main, ["eval", str(pruned), "--json"]).exit_code == 0
    # reporting does not change training: the completed trial is the plain run
    alone = tmp_path / "alone"
    train = nnctl("train", tmp_path / "base.yaml", "--set", "train.epochs=4", "--set",
                  "optimizer.lr=0.05", "--out", alone, "--quiet")  # fmt: skip
    assert train.returncode == 0 and same_weights(out / rows[0]["name"], alone)
    # the study holds the same outcomes; a rerun has nothing to do
    trials = optuna.load_study(study_name=STUDY_NAME,
                               storage=open_storage(out / "study.journal")).trials  # fmt: skip
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED", "PRUNED"]
    again = nnctl("sweep", tmp_path / "sweep.yaml", "--out", out)
    assert again.returncode == 0 and "3 trials, 3 already done" in again.stderr


TPE = """\
base: base.yaml
set: [train.epochs=2]
search: {type: tpe, trials: 4, seed: 3, metric: val_accuracy}
space:
  optimizer.lr: {loguniform: [1.0e-3, 1.0e-1]}
  model.layers[0].n_out: {int: [8, 24]}
"""


@pytest.mark.slow
def test_tpe_search_continues_its_study_when_asked_for_more(tmp_path):
    path = write_sweep(tmp_path, TPE)
    out = tmp_path / "out"
    result = nnctl("sweep", path, "--out", out, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    rows = read_jsonl(out / "sweep.jsonl")
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    assert all(r["status"] == "completed" for r in rows)
    assert all(1e-3 <= r["params"]["optimizer.lr"] <= 1e-1 for r in rows)
    assert all(8 <= r["params"]["model.layers[0].n_out"] <= 24 for r in rows)
    path.write_text(TPE.replace("trials: 4", "trials: 6"))
    result = nnctl("sweep", path, "--out", out, "--jobs", "2")
    assert result.returncode == 0, result.stderr
    assert "6 trials, 4 already done, running 2" in result.stderr
    again = read_jsonl(out / "sweep.jsonl")
    assert again[:4] == rows and len(again) == 6
    study = optuna.load_study(study_name=STUDY_NAME, storage=open_storage(out / "study.journal"))
    assert [t.user_attrs["index"] for t in study.trials] == list(range(6))
    assert [t.value for t in study.trials[:4]] == [max(
        json.loads(line)["val_accuracy"] for line in (out / r["name"] / "metrics.jsonl")
        .read_text().splitlines()) for r in rows]  # fmt: skip


@pytest.mark.slow
def test_an_interrupted_study_sweep_resumes_its_trial_exactly(tmp_path):
    """SIGTERM mid-trial; the rerun resumes the same Optuna trial from its checkpoint."""
    slow = ASHA.replace("train.epochs=4", "train.epochs=40, data.batch_size=8").replace(
        "[0.05, 1.0e-5, 2.0e-5]", "[0.05, 0.02]")  # fmt: skip
    path = write_sweep(tmp_path, slow)
    out = tmp_path / "out"
    args = [NNCTL, "sweep", str(path), "--out", str(out), "--jobs", "1"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = out / "000-optimizer.lr=0.05"
    try:
        from test_sweep_local import _lines, wait_for

        wait_for(lambda: len(_lines(first / "metrics.jsonl")) >= 3, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    assert [r["status"] for r in read_jsonl(out / "sweep.jsonl")] == ["interrupted", "pending"]
    result = nnctl("sweep", path, "--out", out, "--jobs", "1")
    assert result.returncode == 0, result.stderr
    record = json.loads((first / "trial.json").read_text())
    assert record["resumed"] is True and record["attempts"] == 2
    study = optuna.load_study(study_name=STUDY_NAME, storage=open_storage(out / "study.journal"))
    assert [t.user_attrs["index"] for t in study.trials] == [0, 1]  # the same Optuna trial
    assert sorted(study.trials[0].intermediate_values) == list(range(1, 41))
    alone = tmp_path / "alone"
    train = nnctl("train", tmp_path / "base.yaml", "--set", "train.epochs=40", "--set",
                  "data.batch_size=8", "--set", "optimizer.lr=0.05", "--out", alone, "--quiet")  # fmt: skip
    assert train.returncode == 0 and same_weights(first, alone)
