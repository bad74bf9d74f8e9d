"""The search's memory: an Optuna study stored in the sweep folder.

Used when a sweep learns (``search: {type: tpe}``) or stops trials early
(``early_stopping:``). The study lives in ``OUT/study.journal`` (Optuna's journal file
storage: an append-only log with a file lock, safe for the several processes that write
it); the sweep process asks it for trials and tells it their outcome, and each trial's
training process reports its metric after every epoch and asks whether to stop
(``nnctl.sweep.report``). Every Optuna trial carries the nnctl trial's index and
parameters as user attributes, so the trial folders and the study always match up, and
running the sweep again continues the same study: the sampler sees every stored trial.

Optuna is an optional extra: ``pip install 'nnctl[search]'``.
"""

from __future__ import annotations

import logging
import random
import threading
from pathlib import Path

from nnctl import layout
from nnctl.config.yamlio import parse_scalar
from nnctl.errors import NnctlError
from nnctl.sweep.space import Dimension, round_float
from nnctl.sweep.spec import SweepSpec, format_value

OPTUNA_INSTALL = "a tpe search or early_stopping needs Optuna: pip install 'nnctl[search]'"
STUDY_NAME = "nnctl"
PRIMITIVE = (type(None), bool, int, float, str)


def import_optuna():
    """The ``optuna`` module (its logging quiet), or NnctlError naming the extra."""
    try:
        import optuna
    except ImportError:
        raise NnctlError(OPTUNA_INSTALL) from None
    optuna.logging.set_verbosity(logging.WARNING)
    return optuna


def open_storage(path: str | Path):
    """The journal storage in the file ``path`` (created when missing)."""
    optuna = import_optuna()
    journal = optuna.storages.journal
    backend = getattr(journal, "JournalFileBackend", None) or optuna.storages.JournalFileStorage
    return optuna.storages.JournalStorage(backend(str(path)))


PRUNERS = {
    "asha": lambda optuna, s: optuna.pruners.SuccessiveHalvingPruner(
        min_resource=s["grace_period"], reduction_factor=s["reduction_factor"]
    ),
    "median": lambda optuna, s: optuna.pruners.MedianPruner(
        n_startup_trials=s["n_startup_trials"], n_warmup_steps=s["grace_period"]
    ),
}


def make_pruner(scheduler: dict | None):
    """The Optuna pruner of an ``early_stopping:`` block (its ``to_dict()``)."""
    optuna = import_optuna()
    if scheduler is None:
        return optuna.pruners.NopPruner()
    return PRUNERS[scheduler["type"]](optuna, scheduler)


# --- the space in Optuna's terms --------------------------------------------------------


def to_distribution(optuna, dimension: Dimension):
    kind, args = dimension
    d = optuna.distributions
    if kind == "choice":
        plain = all(isinstance(value, PRIMITIVE) for value in args)
        return d.CategoricalDistribution(args if plain else [format_value(a) for a in args])
    if kind == "int":
        return d.IntDistribution(*args)
    return d.FloatDistribution(*args, log=kind == "loguniform")


def from_optuna(space: dict[str, Dimension], params: dict) -> dict:
    """The trial's values as nnctl overrides them: floats rounded to 6 significant digits
    (the override text is then the exact value trained with), choices read back."""
    values = {}
    for key, (kind, _) in space.items():
        value = params[key]
        if kind in ("uniform", "loguniform"):
            value = round_float(value)
        elif kind == "choice" and isinstance(value, str):
            value = parse_scalar(value)
        values[key] = value
    return values


def sampler_seed(seed: int, stored: int) -> int:
    """The sampler's seed when ``stored`` trials exist: a rerun must not draw the same
    start-up points again."""
    return random.Random(f"{seed}-{stored}").getrandbits(31)


# --- the study --------------------------------------------------------------------------


class Study:
    """The sweep's Optuna study: ask for trials, tell outcomes (thread-safe)."""

    def __init__(self, out: Path, spec: SweepSpec, jobs: int):
        optuna = self.optuna = import_optuna()
        self.path = out / layout.STUDY_FILE
        self.spec = spec
        storage = open_storage(self.path)
        self.study = optuna.create_study(
            study_name=STUDY_NAME,
            storage=storage,
            load_if_exists=True,
            direction="maximize" if spec.mode == "max" else "minimize",
            pruner=make_pruner(spec.scheduler.to_dict() if spec.scheduler else None),
        )
        count = len(self.study.get_trials(deepcopy=False))
        self.study.sampler = optuna.samplers.TPESampler(
            seed=sampler_seed(spec.seed, count), constant_liar=jobs > 1
        )
        self.distributions = {k: to_distribution(optuna, d) for k, d in spec.space.items()}
        self.lock = threading.Lock()

    def known(self) -> dict[int, object]:
        """The latest Optuna trial of each nnctl trial index."""
        found = {}
        for trial in self.study.get_trials(deepcopy=False):
            index = trial.user_attrs.get("index")
            if index is None:  # asked, then the sweep died before naming it
                if trial.state == self.optuna.trial.TrialState.RUNNING:
                    self.study.tell(trial.number, state=self.optuna.trial.TrialState.FAIL)
                continue
            found[index] = trial
        return found

    def ask(self, index: int, params: dict | None = None) -> tuple[int, dict]:
        """A new Optuna trial for nnctl trial ``index``: (its number, its parameters).
        ``params`` None: the sampler chooses them (tpe)."""
        with self.lock:
            if params is None:
                trial = self.study.ask(self.distributions)
                params = from_optuna(self.spec.space, trial.params)
            else:
                trial = self.study.ask()
            trial.set_user_attr("params", params)
            trial.set_user_attr("index", index)
            return trial.number, params

    def tell(self, number: int, status: str, value: float | None) -> None:
        """Record a trial's outcome; an interrupted trial stays running (it resumes)."""
        state = self.optuna.trial.TrialState
        with self.lock:
            if self.study.get_trials(deepcopy=False)[number].state != state.RUNNING:
                return
            if status == "completed" and value is not None:
                self.study.tell(number, value)
            elif status == "pruned":
                self.study.tell(number, state=state.PRUNED)
            elif status in ("completed", "failed", "diverged"):
                self.study.tell(number, state=state.FAIL)

    def report_request(self, number: int, epochs: int) -> dict:
        """What a trial's process needs to report to this study (``nnctl.sweep.report``)."""
        return {"kind": "optuna", "storage": str(self.path), "study": STUDY_NAME,
                "number": number, "metric": self.spec.metric, "epochs": epochs,
                "scheduler": self.spec.scheduler.to_dict()}  # fmt: skip
