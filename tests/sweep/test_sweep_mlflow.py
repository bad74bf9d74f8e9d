"""A sweep whose trials log to MLflow: one parent run, one child run per trial, read back
with MLflow's client from a local SQLite store."""

from __future__ import annotations

import json
import os

import pytest
from sweep_helpers import BASE, nnctl, write_base

pytestmark = pytest.mark.slow


def test_a_sweep_is_a_parent_run_with_a_child_per_trial(tmp_path):
    tracking = pytest.importorskip("mlflow.tracking")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    text = BASE.replace("train: {epochs: 2}", "train: {epochs: 1, loggers: [mlflow]}")
    base = write_base(tmp_path / "configs", text)
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    args = ["--grid", "optimizer.lr=0.05,0.01", "--jobs", "2", "--out", tmp_path / "sweep"]
    result = nnctl("sweep", base, *args, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    client = tracking.MlflowClient(store)
    parent_id = json.loads((tmp_path / "sweep" / "sweep.json").read_text())["mlflow_run_id"]
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == "sweep"
    assert [a.path for a in client.list_artifacts(parent_id)] == ["sweep.csv"]
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'"
    )
    trial_dirs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert sorted(run.info.run_name for run in children) == [p.name for p in trial_dirs]
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.params["optimizer.lr"] in ("0.05", "0.01")
    for trial_dir in trial_dirs:  # each trial's meta.json names its child run
        meta = json.loads((trial_dir / "meta.json").read_text())
        assert meta["mlflow_run_id"] in {run.info.run_id for run in children}
