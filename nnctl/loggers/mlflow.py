"""``mlflow``: one MLflow run per nnctl run, through MLflow's client.

The tracking URI is the logger's ``tracking_uri``, else ``$MLFLOW_TRACKING_URI``, else
``sqlite:///mlflow.db`` in the current folder (artifacts in ``./mlruns``, where ``mlflow
ui`` looks). The MLflow run id is kept in the run directory's meta.json, so ``nnctl
resume`` continues the same MLflow run; epochs that the stopped session had logged already
are not logged twice (an exact resume computes the very same values). An http(s) server is
asked for ``/health`` before the run directory exists: one line if it cannot be reached.
A sweep's trials are child runs of one parent run (``nnctl.sweep.tracking``), whose id
they get in ``$NNCTL_MLFLOW_PARENT_RUN``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from nnctl import layout
from nnctl.core.checks import ArgumentError, show
from nnctl.errors import LoggerError
from nnctl.fileio import atomic_write_json
from nnctl.loggers import LOGGERS, Logger, RunInfo, require

EXTRA = "mlflow"
ENV_URI = "MLFLOW_TRACKING_URI"
DEFAULT_URI = "sqlite:///mlflow.db"
PARENT_VARIABLE = "NNCTL_MLFLOW_PARENT_RUN"
META_KEY = "mlflow_run_id"  # in the run directory's meta.json
PROBE_SECONDS = 5.0
#: nnctl's session status → MLflow's run status.
RUN_STATUS = {
    "completed": "FINISHED",
    "interrupted": "KILLED",
    "pruned": "KILLED",
    "diverged": "FAILED",
    "failed": "FAILED",
}
#: Epoch columns of metrics.jsonl logged as MLflow metrics (at the row's step).
EPOCH_METRICS = (
    "epoch",
    "lr",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "seconds",
    "samples_per_s",
)
BATCH = 100  # MLflow takes at most 100 params per request


@LOGGERS.register("mlflow")
class MlflowLogger(Logger):
    """One MLflow run per nnctl run (needs pip install 'nnctl[mlflow]'): the flattened
    resolved config as parameters, each epoch's metrics at its training step, the test
    metrics, the status, and config.yaml, summary.json and the best checkpoint as artifacts.
    `tracking_uri: null` means $MLFLOW_TRACKING_URI, else `sqlite:///mlflow.db` in the
    current folder; `experiment: null` means the config's name. In a sweep, each trial is a
    child run of one parent run.
    """

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None):
        for name, value in (("tracking_uri", tracking_uri), ("experiment", experiment)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ArgumentError(name, f"must be a non-empty string or null; got {show(value)}")
        self.tracking_uri, self.experiment = tracking_uri, experiment
        self.client = self.run_id = self.run_dir = None
        self.logged_steps: set[int] = set()  # epochs (and tests) an earlier session logged
        self.tested_steps: set[int] = set()

    def get_config(self) -> dict:
        return {
            "type": self.type_name,
            "tracking_uri": self.tracking_uri,
            "experiment": self.experiment,
        }

    @property
    def uri(self) -> str:
        return self.tracking_uri or os.environ.get(ENV_URI) or DEFAULT_URI

    def prepare(self) -> None:
        require("mlflow", EXTRA, "mlflow")
        check_reachable(self.uri)

    def start(self, run: RunInfo) -> None:
        self.run_dir = run.run_dir
        self.client = guarded(make_client, self.uri)
        run_id = layout.load_json(run.run_dir / layout.META_FILE).get(META_KEY)
        if run_id:
            guarded(self._continue, run_id)
        else:
            guarded(self._create, run)

    def _create(self, run: RunInfo) -> None:
        parent = os.environ.get(PARENT_VARIABLE)
        tags = {"nnctl.run_dir": str(Path(run.run_dir).resolve()), "nnctl.config": run.name}
        if parent:
            experiment_id = self.client.get_run(parent).info.experiment_id
            tags["mlflow.parentRunId"] = parent
        else:
            experiment_id = experiment_id_for(self.client, self.experiment or run.name)
        created = self.client.create_run(experiment_id, run_name=run.run_dir.name, tags=tags)
        self.run_id = created.info.run_id
        log_params(self.client, self.run_id, run.config)
        meta_path = run.run_dir / layout.META_FILE
        atomic_write_json(meta_path, {**layout.load_json(meta_path), META_KEY: self.run_id})

    def _continue(self, run_id: str) -> None:
        self.client.get_run(run_id)  # MlflowException when the store does not have it
        self.run_id = run_id
        self.client.update_run(run_id, status="RUNNING")
        self.logged_steps = self._steps_logged("epoch")
        self.tested_steps = self._steps_logged("test_loss")

    def _steps_logged(self, key: str) -> set[int]:
        return {metric.step for metric in self.client.get_metric_history(self.run_id, key)}

    def log_epoch(self, row: dict) -> None:
        if row["step"] in self.logged_steps:
            return
        metrics = {key: row.get(key) for key in EPOCH_METRICS}
        guarded(self._log_metrics, metrics, row["step"])

    def finish(self, status: str, summary: dict | None) -> None:
        if self.run_id is None:
            return
        guarded(self._finish, status, summary)

    def _finish(self, status: str, summary: dict | None) -> None:
        run_dir = self.run_dir
        self.client.log_artifact(self.run_id, str(run_dir / layout.CONFIG_FILE))
        if summary is not None:
            if summary["steps"] not in self.tested_steps:
                test = summary.get("test") or {}
                self._log_metrics({f"test_{k}": v for k, v in test.items()}, summary["steps"])
            self.client.log_artifact(self.run_id, str(run_dir / layout.SUMMARY_FILE))
            best = run_dir / layout.CHECKPOINT_DIR / layout.BEST_CHECKPOINT
            checkpoint = best if best.is_file() else run_dir / summary["checkpoint"]
            self.client.log_artifact(self.run_id, str(checkpoint), layout.CHECKPOINT_DIR)
        self.client.set_tag(self.run_id, "nnctl.status", status)
        self.client.set_terminated(self.run_id, RUN_STATUS[status])

    def _log_metrics(self, values: dict, step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [
            Metric(key, float(value), stamp, step)
            for key, value in values.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        ]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)


def guarded(function, *args):
    """Run an MLflow call; its failures (MlflowException, network, files) as LoggerError."""
    try:
        return function(*args)
    except LoggerError:
        raise
    except Exception as error:  # MLflow raises many kinds; all mean "logging failed"
        message = " ".join(str(error).split())[:300]
        raise LoggerError(f"mlflow: {message or type(error).__name__}") from error


def make_client(uri: str):
    """An MlflowClient for ``uri`` with MLflow's and alembic's info chatter silenced."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def check_reachable(uri: str, timeout: float = PROBE_SECONDS) -> None:
    """LoggerError when the http(s) tracking server at ``uri`` does not answer at all."""
    if urlsplit(uri).scheme not in ("http", "https"):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout):
            return
    except urllib.error.HTTPError:  # it answered, if not with 200: reachable
        return
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        raise LoggerError(
            f"mlflow: the tracking server {uri} cannot be reached ({reason}); start it or "
            f"set the logger's tracking_uri (or {ENV_URI})"
        ) from None


def experiment_id_for(client, name: str) -> str:
    """The id of the active experiment ``name``, created if missing."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        try:
            return client.create_experiment(name)
        except Exception:  # another process created it in between
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage != "active":
        raise LoggerError(f"mlflow: experiment '{name}' is deleted; restore it or choose another")
    return experiment.experiment_id


def flat_params(value, prefix: str = "") -> dict[str, str]:
    """``{"model": {"layers": [{"n_out": 64}]}}`` → ``{"model.layers.0.n_out": "64"}``.

    MLflow names allow letters, digits, ``_-. /`` only (no brackets), hence ``.0.``."""
    if isinstance(value, dict) and value:
        items = value.items()
    elif isinstance(value, list) and value:
        items = enumerate(value)
    else:
        return {prefix: value if isinstance(value, str) else json.dumps(value)}
    out = {}
    for key, item in items:
        out.update(flat_params(item, f"{prefix}.{key}" if prefix else str(key)))
    return out


def log_params(client, run_id: str, config: dict) -> None:
    from mlflow.entities import Param

    params = [Param(key, value) for key, value in flat_params(config).items()]
    for start in range(0, len(params), BATCH):
        client.log_batch(run_id, params=params[start : start + BATCH])
