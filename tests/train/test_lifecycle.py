"""A run directory's life in-process: signals before training, failures recorded in
meta.json, reuse of a folder that never trained, the run lock, the resume checks, the
partial-line repair of the epoch log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nnctl import layout
from nnctl.config import load_config
from nnctl.errors import CheckpointError, Interrupted, NnctlError
from nnctl.runlist import list_runs
from nnctl.train import run, rundir, session
from nnctl.train.checkpoint import load_checkpoint, save_checkpoint
from nnctl.train.lock import RunLock, is_locked
from nnctl.train.logs import MetricsLog
from nnctl.train.resume import plan_resume
from nnctl.train.trainer import Trainer

CONFIG = """\
seed: 0
data: {dataset: iris, batch_size: 16}
model:
  layers:
    - {type: fully_connected, n_out: 8, activation: relu}
    - {type: fully_connected, n_out: 3, activation: softmax}
  loss: cross_entropy
optimizer: {type: adam, lr: 0.01}
train: {epochs: 2}
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "iris.yaml"
    path.write_text(CONFIG)
    return load_config(path)


def meta(run_dir: Path) -> dict:
    return json.loads((run_dir / layout.META_FILE).read_text())


# --- signals and failures -----------------------------------------------------------------


def test_sigint_while_the_data_loads_stops_at_once_and_creates_nothing(
    config, tmp_path, monkeypatch
):
    def slow_load(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler raises before this ends
        raise AssertionError("not interrupted")

    monkeypatch.setattr(session.datamod, "load", slow_load)
    with pytest.raises(Interrupted) as info:
        run.train(config, out=tmp_path / "r", quiet=True)
    assert info.value.exit_code == 130 and "before training started" in str(info.value)
    assert not (tmp_path / "r").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_a_second_signal_stops_at_once():
    stop = session.StopSignals()
    with pytest.raises(Interrupted):
        stop(signal.SIGTERM, None)  # no trainer yet
    stop.trainer = Trainer.__new__(Trainer)
    stop.trainer.stop_signal, stop.trainer.run_dir = None, Path("runs/a b")
    stop(signal.SIGTERM, None)
    assert stop.trainer.stop_signal == signal.SIGTERM  # the first one asks
    with pytest.raises(Interrupted) as info:
        stop(signal.SIGINT, None)
    assert info.value.exit_code == 130 and "nnctl resume 'runs/a b'" in str(info.value)


def test_a_failure_after_the_directory_exists_is_recorded_and_the_folder_reused(
    config, tmp_path, monkeypatch, capsys
):
    def broken_fit(self):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Trainer, "fit", broken_fit)
    with pytest.raises(RuntimeError):
        run.train(config, out=tmp_path / "r", quiet=True)
    recorded = meta(tmp_path / "r")
    assert recorded["status"] == "failed" and recorded["error"] == "RuntimeError: disk on fire"
    assert recorded["end_time"] is not None
    (listed,) = list_runs(tmp_path)
    assert listed.status == "failed" and listed.error == "RuntimeError: disk on fire"
    monkeypatch.undo()
    run_dir, summary = run.train(config, out=tmp_path / "r")
    assert "reusing the folder of a run that never trained (status failed)" in (
        capsys.readouterr().err
    )
    assert summary["epochs"] == 2 and meta(run_dir)["status"] == "completed"
    assert meta(run_dir)["error"] is None


def test_a_run_with_training_is_never_replaced(config, tmp_path):
    run_dir, _ = run.train(config, out=tmp_path / "r", quiet=True)
    rundir_meta = meta(run_dir)
    rundir_meta["status"] = "failed"  # failed, but it has checkpoints: resumable work
    (run_dir / layout.META_FILE).write_text(json.dumps(rundir_meta))
    with pytest.raises(NnctlError, match="already holds a run; resume it"):
        run.train(config, out=run_dir, quiet=True)
    assert (run_dir / layout.SUMMARY_FILE).is_file()


# --- the lock -----------------------------------------------------------------------------


def test_the_lock_admits_one_holder_and_names_it(tmp_path):
    with RunLock(tmp_path):
        assert is_locked(tmp_path)
        with pytest.raises(NnctlError, match=rf"another nnctl process \(pid {os.getpid()}\)"):
            RunLock(tmp_path).acquire()
    assert not is_locked(tmp_path)
    with RunLock(tmp_path):  # free again
        pass


def test_a_killed_holder_leaves_no_lock(tmp_path):
    code = (
        "import time; from nnctl.train.lock import RunLock; "
        f"RunLock({str(tmp_path)!r}).acquire(); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert is_locked(tmp_path)
        with pytest.raises(NnctlError, match=f"pid {holder.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.communicate()
    assert not is_locked(tmp_path)
    RunLock(tmp_path).acquire().release()


def test_a_folder_without_a_lock_file_is_not_locked_and_probing_creates_nothing(tmp_path):
    assert not is_locked(tmp_path) and not (tmp_path / layout.LOCK_FILE).exists()


# --- resume checks ------------------------------------------------------------------------


@pytest.fixture
def finished(config, tmp_path) -> Path:
    run_dir, _ = run.train(config, out=tmp_path / "r", quiet=True)
    return run_dir


def _with(config, *overrides):
    return load_config(config.path, overrides)


def test_resume_plan_allows_more_epochs_and_nothing_else_unforced(config, finished):
    plan = plan_resume(finished, _with(config, "train.epochs=5"), force=False)
    assert plan.trained == 2 and plan.changed == ["train.epochs"]
    assert plan.notes == ["train.epochs: 2 -> 5"] and not plan.is_complete(5)
    assert plan_resume(finished, config, force=False).is_complete(2)
    changed = _with(config, "optimizer.lr=0.5", "model.layers[0].n_out=9")
    with pytest.raises(NnctlError) as info:
        plan_resume(finished, changed, force=False)
    assert str(info.value) == (
        f"{finished}: the config differs from the one the run was trained with: "
        "model.layers[0].n_out: 8 -> 9; optimizer.lr: 0.01 -> 0.5; "
        "use --force to resume with the new values"
    )
    assert plan_resume(finished, changed, force=True).changed == [
        "model.layers[0].n_out",
        "optimizer.lr",
    ]
    with pytest.raises(NnctlError, match="train.epochs=1 is fewer than the 2 epochs"):
        plan_resume(finished, _with(config, "train.epochs=1"), force=True)


def test_resume_checks_the_checkpoint_config_not_only_config_yaml(config, finished):
    """``train CONFIG --resume`` after config.yaml was edited to match CONFIG: the
    checkpoint still knows what the run was trained with."""
    changed = _with(config, "optimizer.lr=0.5")
    (finished / layout.CONFIG_FILE).write_text(
        (finished / layout.CONFIG_FILE).read_text().replace("lr: 0.01", "lr: 0.5")
    )
    with pytest.raises(NnctlError, match="optimizer.lr: 0.01 -> 0.5"):
        plan_resume(finished, changed, force=False)


def test_a_checkpoint_that_predates_new_arguments_is_no_difference(config, finished):
    """A checkpoint written before ``bias`` existed has no such key in its config; it is
    resolved again (the defaults filled) before it is compared."""
    last = layout.last_checkpoint(finished)
    arrays, recorded = load_checkpoint(last)
    for layer in recorded["config"]["model"]["layers"]:
        del layer["bias"]
    save_checkpoint(last, arrays, {k: v for k, v in recorded.items() if k != "format"})
    assert plan_resume(finished, config, force=False).changed == []


def test_resume_without_a_checkpoint(config, finished):
    for name in os.listdir(finished / layout.CHECKPOINT_DIR):
        os.remove(finished / layout.CHECKPOINT_DIR / name)
    with pytest.raises(CheckpointError, match="missing but 2 epochs are logged"):
        plan_resume(finished, config, force=False)
    plan = plan_resume(finished, config, force=True)
    assert plan.arrays is None and plan.trained == 0 and "epoch 1" in plan.notes[0]
    (finished / layout.METRICS_JSONL).write_text("")  # nothing trained: nothing to lose
    assert plan_resume(finished, config, force=False).notes == []


def test_each_resume_is_recorded_in_meta(config, finished):
    argv = ["nnctl", "resume", str(finished), "--set", "train.epochs=3"]
    run.train(_with(config, "train.epochs=3"), resume_dir=finished, quiet=True, argv=argv)
    recorded = meta(finished)
    (entry,) = recorded["resumes"]
    assert entry["command"] == argv and entry["epoch"] == 2 and entry["step"] > 0
    assert entry["config_hash"] == recorded["config_hash"] == _with(config, "train.epochs=3").hash()
    assert recorded["status"] == "completed"


# --- the epoch log ------------------------------------------------------------------------


def test_jsonl_readers_ignore_a_partial_last_line_only(tmp_path):
    assert layout.parse_jsonl('{"a": 1}\n{"a": 2') == [{"a": 1}]
    assert layout.parse_jsonl('{"a": 1}\n{"a": 2}') == [{"a": 1}, {"a": 2}]  # complete
    assert layout.split_partial_line('{"a": 1}\n{"a"') == ('{"a": 1}\n', '{"a"')
    with pytest.raises(ValueError, match="line 2: "):
        layout.parse_jsonl('{"a": 1}\n{"a"\n{"a": 3}\n')  # a broken line inside is an error
    with pytest.raises(ValueError, match="line 1: not a JSON object"):
        layout.parse_jsonl("[1]\n")


def test_keep_until_drops_the_partial_line_and_rewrites_the_csv(tmp_path):
    log = MetricsLog(tmp_path)
    for epoch in (1, 2, 3):
        log.append({"epoch": epoch, "step": epoch * 10, "lr": 0.1})
    with open(log.jsonl, "a") as handle:
        handle.write('{"epoch": 4, "st')
    with open(log.csv, "a") as handle:
        handle.write("4,40,0.")
    note = log.keep_until(2)
    assert "dropped a partial last line" in note and "metrics.csv" in note
    assert [row["epoch"] for row in log.rows()] == [1, 2]
    assert log.csv.read_text().splitlines()[1:] == ["1,10,0.1,,,,,,", "2,20,0.1,,,,,,"]
    assert log.keep_until(2) is None


def test_a_run_trained_to_the_end_but_stopped_before_its_summary_is_finished(
    config, finished, capsys
):
    (finished / layout.SUMMARY_FILE).unlink()
    recorded = meta(finished)
    recorded["status"] = "running"  # killed while it evaluated the test split
    (finished / layout.META_FILE).write_text(json.dumps(recorded))
    rows = (finished / layout.METRICS_JSONL).read_text()
    run.train(config, resume_dir=finished)
    err = capsys.readouterr().err
    assert "every epoch is trained; finishing it" in err and "resuming" not in err
    assert (finished / layout.METRICS_JSONL).read_text() == rows
    assert meta(finished)["status"] == "completed" and (finished / layout.SUMMARY_FILE).is_file()


def test_default_run_directories_started_in_the_same_second_differ(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir.time, "strftime", lambda fmt: "20261130-221500")
    made = [rundir.default_run_dir("digits", tmp_path) for _ in range(3)]
    assert [p.name for p in made] == [
        "digits-20261130-221500",
        "digits-20261130-221500-2",
        "digits-20261130-221500-3",
    ]
    assert all(p.is_dir() for p in made)


def test_one_status_per_ending_for_meta_json_and_the_loggers():
    """meta.json and the loggers' sessions take their status from ``run_status``; the
    MLflow logger knows each one (a pruned sweep trial is not a failure)."""
    from nnctl.errors import DivergedError, TrialPruned, run_status
    from nnctl.loggers.mlflow import RUN_STATUS

    endings = {
        "interrupted": Interrupted("stopped", signal.SIGTERM),
        "diverged": DivergedError("loss is nan"),
        "pruned": TrialPruned("behind the others"),
        "failed": RuntimeError("a bug"),
    }
    assert {name: run_status(error) for name, error in endings.items()} == {
        name: name for name in endings
    }
    assert run_status(KeyboardInterrupt()) == "interrupted"
    assert set(endings) <= set(RUN_STATUS)


def test_a_pruned_run_records_no_error(tmp_path):
    from nnctl.errors import TrialPruned

    (tmp_path / layout.META_FILE).write_text(json.dumps({"status": "running"}))
    with pytest.raises(TrialPruned), rundir.recording_outcome(tmp_path):
        raise TrialPruned("behind the others")
    assert (meta(tmp_path)["status"], meta(tmp_path)["error"]) == ("pruned", None)
