"""``train.loggers``: TensorBoard event files and MLflow runs, read back with TensorBoard's
own event reader and MLflow's client; resume without duplicates; one-line errors.

The trainings run the real ``nnctl`` executable on digits (41 steps per epoch). MLflow uses a
local SQLite store under tmp_path (created once per module, then copied: creating its tables
takes seconds); tests that need an extra skip without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nnctl.errors import DataError, DivergedError, Interrupted, LoggerError
from nnctl.loggers import Logger, LoggerSet, RunInfo
from nnctl.train.entry import train_file

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "configs" / "digits-mlp.yaml"
NNCTL = shutil.which("nnctl") or str(Path(sys.executable).parent / "nnctl")
STEPS_PER_EPOCH = 41  # digits: 1293 training examples, batch 32
KEEP_ALL = ["--set", "train.epochs=4", "--set", "train.checkpoint.keep=all"]


def nnctl(*args, cwd, env=None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    command = [NNCTL, *map(str, args)]
    environment.update(env or {})
    return subprocess.run(
        command, check=False, capture_output=True, text=True, cwd=cwd, env=environment, timeout=600
    )


def loggers_option(*specs: str) -> list[str]:
    return ["--set", f"train.loggers=[{', '.join(specs)}]"]


def roll_back(run_dir: Path, epoch: int) -> None:
    """Leave the run as a kill -9 after its last epoch would if the latest checkpoint were
    epoch ``epoch``'s: everything logged after it is orphaned, and resume redoes it."""
    checkpoints = run_dir / "checkpoints"
    shutil.copy(checkpoints / f"epoch-{epoch:04d}.npz", checkpoints / "last.npz")
    (run_dir / "summary.json").unlink()


def metrics_rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# --- TensorBoard ----------------------------------------------------------------------


def accumulator(run_dir: Path):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator"
    )
    reader = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"))
    reader.Reload()
    return reader


@pytest.fixture(scope="module")
def tensorboard_run(tmp_path_factory) -> Path:
    pytest.importorskip("tensorboardX")
    folder = tmp_path_factory.mktemp("tb")
    spec = "{type: tensorboard, log_every: 10}"
    result = nnctl("train", DIGITS, *KEEP_ALL, *loggers_option(spec), "--out", "run", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "run"


@pytest.mark.slow
def test_tensorboard_events_hold_epochs_steps_and_config(tensorboard_run):
    reader = accumulator(tensorboard_run)
    rows = metrics_rows(tensorboard_run)
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"):
        events = reader.Scalars(f"epoch/{key}")
        assert [e.step for e in events] == [row["step"] for row in rows]
        assert [e.value for e in events] == pytest.approx([r[key] for r in rows], rel=1e-6)
    total = 4 * STEPS_PER_EPOCH
    for key in ("train_loss", "lr"):
        assert [e.step for e in reader.Scalars(f"step/{key}")] == list(range(10, total + 1, 10))
    assert [e.value for e in reader.Scalars("step/lr")] == pytest.approx([0.001] * 16, rel=1e-6)
    (text,) = reader.Tensors("config/text_summary")
    written = text.tensor_proto.string_val[0].decode()
    config = yaml.safe_load((tensorboard_run / "config.yaml").read_text())
    assert text.step == 0 and yaml.safe_load(written) == config


@pytest.mark.slow
def test_tensorboard_resume_logs_each_step_once(tensorboard_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tensorboard_run, run_dir)
    before = {tag: [(e.step, e.value) for e in accumulator(run_dir).Scalars(tag)]
              for tag in ("epoch/val_loss", "step/train_loss")}  # fmt: skip
    roll_back(run_dir, 2)
    result = nnctl("resume", run_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list((run_dir / "tensorboard").glob("*tfevents*"))) == 2  # one per session
    reader = accumulator(run_dir)
    for tag, series in before.items():
        # each step once, with the values of the run that never stopped (exact resume)
        after = [(e.step, e.value) for e in reader.Scalars(tag)]
        assert after == series
    # the first session's epochs 3 and 4 are still in its file: the reader dropped them
    raw = [event.step for event in raw_events(run_dir) if tagged(event, "epoch/val_loss")]
    steps = [row["step"] for row in metrics_rows(run_dir)]
    assert sorted(raw) == sorted(steps + steps[2:])


def raw_events(run_dir: Path):
    loader = pytest.importorskip("tensorboard.backend.event_processing.event_file_loader")
    for path in sorted((run_dir / "tensorboard").glob("*tfevents*")):
        yield from loader.LegacyEventFileLoader(str(path)).Load()


def tagged(event, tag: str) -> bool:
    return event.HasField("summary") and any(v.tag == tag for v in event.summary.value)


def test_missing_extra_is_one_line_before_the_run_directory(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails as if absent
    out = tmp_path / "run"
    overrides = ["train.epochs=1", "train.loggers=[tensorboard]"]
    with pytest.raises(LoggerError) as caught:
        train_file(str(DIGITS), overrides, out=str(out), quiet=True)
    assert str(caught.value) == (
        "the tensorboard logger needs tensorboardX: pip install 'nnctl[tensorboard]'"
    )
    assert not out.exists()


# --- MLflow -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """A SQLite store with MLflow's tables (made once: the migrations take seconds)."""
    tracking = pytest.importorskip("mlflow.tracking")
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    tracking.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def store(empty_store, tmp_path) -> str:
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def mlflow_run(store: str, run_dir: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    run_id = json.loads((run_dir / "meta.json").read_text())["mlflow_run_id"]
    return client, client.get_run(run_id)


@pytest.mark.slow
def test_mlflow_run_has_params_metrics_status_and_artifacts(store, tmp_path):
    spec = f"{{type: mlflow, tracking_uri: '{store}'}}"
    args = ["--set", "train.epochs=3", *loggers_option(spec), "--out", "run", "--json"]
    result = nnctl("train", DIGITS, *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "completed"  # stdout is still only JSON
    client, run = mlflow_run(store, tmp_path / "run")
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert client.get_experiment(run.info.experiment_id).name == "digits-mlp"
    assert run.data.tags["nnctl.status"] == "completed"
    params = run.data.params
    assert params["optimizer.lr"] == "0.001" and params["optimizer.type"] == "adam"
    assert params["model.layers.0.n_out"] == "64" and params["data.dataset"] == "digits"
    assert params["schedule"] == "null" and params["train.loggers.0"] == "csv"
    rows = metrics_rows(tmp_path / "run")
    for key in ("train_loss", "val_loss", "val_accuracy", "lr", "epoch"):
        history = client.get_metric_history(run.info.run_id, key)
        assert [(m.step, m.value) for m in history] == [(r["step"], r[key]) for r in rows]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert run.data.metrics["test_accuracy"] == summary["test"]["accuracy"]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert artifacts == {"config.yaml", "summary.json", "checkpoints"}
    (checkpoint,) = client.list_artifacts(run.info.run_id, "checkpoints")
    assert checkpoint.path == "checkpoints/best.npz"
    assert checkpoint.file_size == (tmp_path / "run" / "checkpoints" / "best.npz").stat().st_size


@pytest.mark.slow
def test_mlflow_resume_continues_the_same_run(store, tmp_path):
    args = [*KEEP_ALL, *loggers_option(f"{{type: mlflow, tracking_uri: '{store}'}}")]
    assert nnctl("train", DIGITS, *args, "--out", "run", cwd=tmp_path).returncode == 0
    run_dir = tmp_path / "run"
    client, first = mlflow_run(store, run_dir)
    before = [(m.step, m.value) for m in client.get_metric_history(first.info.run_id, "val_loss")]
    roll_back(run_dir, 2)
    result = nnctl("resume", run_dir, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    client, run = mlflow_run(store, run_dir)
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    assert len(client.search_runs([run.info.experiment_id])) == 1
    after = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_loss")]
    assert after == before and len(after) == 4  # each epoch once
    assert len(client.get_metric_history(run.info.run_id, "test_loss")) == 1


@pytest.mark.slow
def test_mlflow_diverged_run_is_failed(store, tmp_path):
    sgd = ROOT / "configs" / "digits-mlp-sgd.yaml"
    spec = f"{{type: mlflow, tracking_uri: '{store}', experiment: blowups}}"
    args = ["--set", "optimizer.lr=1e12", *loggers_option(spec), "--out", "run"]
    result = nnctl("train", sgd, *args, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    client, run = mlflow_run(store, tmp_path / "run")
    assert run.info.status == "FAILED" and run.data.tags["nnctl.status"] == "diverged"
    assert client.get_experiment(run.info.experiment_id).name == "blowups"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("where", ["config", "environment"])
def test_unreachable_tracking_server_is_one_line_before_training(where, tmp_path):
    pytest.importorskip("mlflow")
    uri = f"http://127.0.0.1:{closed_port()}"
    spec, env = ("mlflow", {"MLFLOW_TRACKING_URI": uri})
    if where == "config":
        spec, env = f"{{type: mlflow, tracking_uri: '{uri}'}}", {}
    result = nnctl("train", DIGITS, *loggers_option(spec), "--out", "run", cwd=tmp_path, env=env)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: mlflow: the tracking server {uri} ")
    assert "cannot be reached" in lines[0] and not (tmp_path / "run").exists()


# --- the fan-out --------------------------------------------------------------------------


class Recorder(Logger):
    type_name = "recorder"

    def __init__(self, log_every=None, fail_at_epoch=None):
        self.log_every, self.fail_at_epoch, self.events = log_every, fail_at_epoch, []

    def log_step(self, step, values):
        self.events.append(("step", step))

    def log_epoch(self, row):
        if row["epoch"] == self.fail_at_epoch:
            raise LoggerError("recorder: gone")
        self.events.append(("epoch", row["epoch"]))


def test_logger_set_steps_every_log_every_and_switches_off_a_failing_logger():
    steady, failing, warnings = Recorder(log_every=3), Recorder(fail_at_epoch=2), []
    loggers = LoggerSet([steady, failing], warn=warnings.append)
    for step in range(1, 8):
        loggers.on_step(step, {"train_loss": 1.0})
    for epoch in (1, 2, 3):
        loggers.on_epoch_end({"epoch": epoch})
    assert steady.events == [("step", 3), ("step", 6), ("epoch", 1), ("epoch", 2), ("epoch", 3)]
    assert failing.events == [("epoch", 1)]  # no steps (log_every None), off after epoch 2
    assert warnings == ["recorder: gone; recorder logging stopped, training goes on"]


class Finishes(Logger):
    type_name = "finishes"

    def __init__(self):
        self.calls = []

    def start(self, run):
        self.calls.append(("start", run.step))

    def finish(self, status, summary):
        self.calls.append((status, summary))


@pytest.mark.parametrize(
    "error, status",
    [
        (None, "completed"),
        (Interrupted("stopped", signal.SIGINT), "interrupted"),
        (DivergedError("nan"), "diverged"),
        (DataError("bad file"), "failed"),
    ],
)
def test_a_session_finishes_every_logger_with_its_outcome(tmp_path, error, status):
    logger = Finishes()
    loggers = LoggerSet([logger])
    run = RunInfo(tmp_path, "digits-mlp", {}, step=82, resumed=True)
    expected = pytest.raises(type(error)) if error else contextlib.nullcontext()
    with expected, loggers.session(run):
        loggers.summary = {"epochs": 4}
        if error is not None:
            raise error
    assert logger.calls == [("start", 82), (status, {"epochs": 4} if error is None else None)]
