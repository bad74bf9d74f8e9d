"""A trial's side of a search: report the metric after every epoch, stop when pruned.

The sweep puts a ``report`` request in the trial's child request (``nnctl.sweep.child``);
``make_hook`` turns it into the ``on_epoch_end(row)`` hook that the trainer calls after
each epoch is logged and checkpointed. The hook reports the epoch's metric to the study
and raises TrialPruned when the scheduler says the trial has fallen behind, which ends the
training with status ``pruned`` (exit code 4). The last planned epoch is never pruned: the
trial has completed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable

from nnctl.errors import TrialPruned


def optuna_hook(request: dict) -> Callable[[dict], None]:
    """Report to the Optuna study in ``request["storage"]`` (see ``nnctl.sweep.study``)."""
    from nnctl.sweep.study import import_optuna, make_pruner, open_storage

    optuna = import_optuna()
    storage = open_storage(request["storage"])
    study = optuna.load_study(study_name=request["study"], storage=storage,
                              sampler=optuna.samplers.RandomSampler(),
                              pruner=make_pruner(request["scheduler"]))  # fmt: skip
    study_id = storage.get_study_id_from_name(request["study"])
    trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, request["number"])
    trial = optuna.trial.Trial(study, trial_id)
    metric, epochs, kind = request["metric"], request["epochs"], request["scheduler"]["type"]

    def on_epoch_end(row: dict) -> None:
        value, epoch = row.get(metric), int(row["epoch"])
        if value is None or not math.isfinite(value):
            return
        trial.report(float(value), epoch)
        if epoch < epochs and trial.should_prune():
            raise TrialPruned(f"pruned by {kind} after epoch {epoch} ({metric} {value:.4g})")

    return on_epoch_end


def pipe_hook(request: dict) -> Callable[[dict], None]:
    """Report to the process that started the trial (a Ray Tune trainable) through two
    pipes: each epoch's row goes out as a JSON line, then the hook waits for one byte,
    ``c`` to go on; anything else (or a closed pipe) stops the trial as pruned. The last
    planned epoch does not wait: the trial has completed."""
    rows = os.fdopen(request["rows_fd"], "w", buffering=1)
    replies = os.fdopen(request["reply_fd"], "rb", buffering=0)
    epochs = request["epochs"]

    def on_epoch_end(row: dict) -> None:
        epoch = int(row["epoch"])
        try:
            rows.write(json.dumps(row) + "\n")
            rows.flush()
        except BrokenPipeError:
            raise TrialPruned(f"the scheduler went away after epoch {epoch}") from None
        if epoch < epochs and replies.read(1) != CONTINUE:
            raise TrialPruned(f"stopped by the scheduler after epoch {epoch}")

    return on_epoch_end


CONTINUE = b"c"
REPORTERS = {"optuna": optuna_hook, "pipe": pipe_hook}


def make_hook(request: dict | None) -> Callable[[dict], None] | None:
    """The epoch-end hook for a trial's ``report`` request (None: no reporting)."""
    if not request:
        return None
    return REPORTERS[request["kind"]](request)
