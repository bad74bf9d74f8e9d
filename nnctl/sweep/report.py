"""A trial's side of a search: report the metric after every epoch, stop when pruned.

The sweep puts a ``report`` request in the trial's child request (``nnctl.sweep.child``);
``make_hook`` turns it into the ``on_epoch_end(row)`` hook that the trainer calls after
each epoch is logged and checkpointed. The hook reports the epoch's metric to the study
and raises TrialPruned when the scheduler says the trial has fallen behind, which ends the
training with status ``pruned`` (exit code 4). The last planned epoch is never pruned: the
trial has completed.
"""

from __future__ import annotations

import math
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


REPORTERS = {"optuna": optuna_hook}


def make_hook(request: dict | None) -> Callable[[dict], None] | None:
    """The epoch-end hook for a trial's ``report`` request (None: no reporting)."""
    if not request:
        return None
    return REPORTERS[request["kind"]](request)
