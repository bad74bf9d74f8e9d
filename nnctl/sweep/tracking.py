"""A sweep as one MLflow parent run, each trial's run a child of it.

When the trials log to MLflow (``mlflow`` in the first trial's ``train.loggers``), the
sweep makes a parent run in their experiment before the first trial starts and hands its
id to every trial in ``$NNCTL_MLFLOW_PARENT_RUN`` (the trial's MLflow run then carries the
``mlflow.parentRunId`` tag). The id is kept in the sweep folder's ``sweep.json``, so running
the sweep again continues the same parent. When the sweep ends the parent is FINISHED if
every trial completed, KILLED if a signal stopped the sweep, else FAILED; ``sweep.csv`` is
its artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nnctl import layout
from nnctl.config import load_config
from nnctl.fileio import atomic_write_json
from nnctl.loggers import LoggerSet
from nnctl.loggers.mlflow import (
    PARENT_VARIABLE,
    MlflowLogger,
    experiment_id_for,
    guarded,
    make_client,
)

META_KEY = "mlflow_run_id"  # in sweep.json


@dataclass
class ParentRun:
    client: object
    run_id: str

    @property
    def env(self) -> dict[str, str]:
        """What each trial's process gets in its environment."""
        return {PARENT_VARIABLE: self.run_id}

    def finish(self, out: Path, rows: list[dict], stopped: int | None) -> None:
        done = all(row["status"] == "completed" for row in rows)
        status = "KILLED" if stopped else "FINISHED" if done else "FAILED"
        guarded(self.client.log_artifact, self.run_id, str(out / layout.SWEEP_CSV))
        guarded(self.client.set_terminated, self.run_id, status)


def start_parent(spec, trials, out: Path) -> ParentRun | None:
    """The sweep's parent run (created, or continued from sweep.json); None when the trials
    do not log to MLflow. LoggerError (one line) when MLflow cannot be used."""
    config = load_config(spec.base, [*spec.overrides, *trials[0].overrides])
    loggers = LoggerSet.from_specs(config.data["train"]["loggers"]).loggers
    logger = next((lg for lg in loggers if isinstance(lg, MlflowLogger)), None)
    if logger is None:
        return None
    logger.prepare()
    client = guarded(make_client, logger.uri)
    path = out / layout.SWEEP_SPEC_FILE
    saved = layout.load_json(path)
    run_id = saved.get(META_KEY)
    if run_id:
        guarded(client.update_run, run_id, "RUNNING")
        return ParentRun(client, run_id)
    experiment_id = guarded(experiment_id_for, client, logger.experiment or config.name)
    tags = {"nnctl.sweep_dir": str(out), "nnctl.config": config.name}
    run = guarded(client.create_run, experiment_id, None, tags, out.name)
    atomic_write_json(path, {**saved, META_KEY: run.info.run_id})
    return ParentRun(client, run.info.run_id)
