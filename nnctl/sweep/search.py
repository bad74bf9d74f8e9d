"""How a sweep searches, and which trials it stops early: a sweep file's ``search:`` and
``early_stopping:`` blocks (the names users of Optuna and Ray Tune know)::

    search: {type: tpe, trials: 30, seed: 0}          # grid | random | tpe
    early_stopping: {type: asha, metric: val_accuracy, mode: max, grace_period: 1,
                     reduction_factor: 3}             # asha | median

``grid`` runs every combination of the space's lists, ``random`` draws ``trials`` samples
(both known before the first trial), ``tpe`` asks a tree-structured Parzen estimator for
each next trial, learning from the finished ones. A scheduler stops trials whose metric
falls behind the others' at the same epoch: ``asha`` (asynchronous successive halving:
rungs at ``grace_period * reduction_factor**k`` epochs, the top ``1/reduction_factor`` go
on) or ``median`` (stop below the median of the earlier trials, after ``grace_period``
epochs and ``n_startup_trials`` finished trials).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nnctl.config.schema import MONITORS
from nnctl.core.checks import show
from nnctl.errors import ConfigError
from nnctl.monitor import MODES, resolve_mode
from nnctl.registry import did_you_mean

SEARCH_TYPES = ("grid", "random", "tpe")
SEARCH_KEYS = ("type", "trials", "seed", "metric", "mode")
# scheduler → its own keys and their defaults (besides type, metric and mode)
SCHEDULERS = {
    "asha": {"grace_period": 1, "reduction_factor": 3},
    "median": {"grace_period": 1, "n_startup_trials": 5},
}
MINIMUM = {"grace_period": 1, "reduction_factor": 2, "n_startup_trials": 0}
DEFAULT_METRIC = "val_loss"


@dataclass(frozen=True)
class Search:
    """The ``search:`` block: type, number of trials, seed, and the metric it optimizes."""

    type: str = "grid"
    trials: int = 0
    seed: int = 0
    metric: str | None = None  # None: the scheduler's, else val_loss
    mode: str = "auto"


@dataclass(frozen=True)
class Scheduler:
    """The ``early_stopping:`` block."""

    type: str
    metric: str
    mode: str
    grace_period: int = 1
    reduction_factor: int = 3
    n_startup_trials: int = 5

    def to_dict(self) -> dict:
        """Its settings as written in a sweep file (only the keys of its type)."""
        own = SCHEDULERS[self.type]
        return {key: value for key, value in asdict(self).items()
                if key in ("type", "metric", "mode") or key in own}  # fmt: skip


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _unknown_keys(block: dict, known, where: str, error) -> None:
    for key in block:
        if key not in known:
            error(f"{where}.{key}", f"unknown key{did_you_mean(key, list(known))} "
                  f"(choose from {', '.join(known)})")  # fmt: skip


def _choice(block: dict, key: str, choices, where: str, error, default=None):
    value = block.get(key, default)
    if value not in choices:
        hint = did_you_mean(str(value), list(choices)) if isinstance(value, str) else ""
        error(f"{where}.{key}", f"unknown {where.replace('_', ' ')} {key} {show(value)}{hint} "
              f"(choose from {', '.join(choices)})")  # fmt: skip
        return None
    return value


def _metric(block: dict, where: str, error) -> tuple[str | None, str]:
    """(metric or None, mode) of a block; the metric must be one training logs."""
    metric, mode = block.get("metric"), block.get("mode", "auto")
    if metric is not None and metric not in MONITORS:
        hint = did_you_mean(str(metric), list(MONITORS))
        error(f"{where}.metric", f"training does not log {show(metric)}{hint} "
              f"(it logs {', '.join(MONITORS)})")  # fmt: skip
        metric = None
    if mode not in (*MODES, "auto"):
        error(f"{where}.mode", f"must be one of min, max, auto; got {show(mode)}")
        mode = "auto"
    return metric, mode


def read_search(block, error) -> Search | None:
    """The ``search:`` block, or None when it is absent; problems go to ``error``."""
    if block is None:
        return None
    if not isinstance(block, dict):
        error("search", f"expected a mapping such as {{type: tpe, trials: 20}}; got {show(block)}")
        return None
    _unknown_keys(block, SEARCH_KEYS, "search", error)
    kind = _choice(block, "type", SEARCH_TYPES, "search", error, "grid")
    if kind is None:
        return None
    trials, seed = block.get("trials"), block.get("seed", 0)
    if kind in ("random", "tpe") and (not _integer(trials) or trials < 1):
        error("search.trials", f"must be a positive integer; got {show(trials)}")
    elif kind == "grid" and trials is not None:
        error("search.trials", "a grid runs every combination; trials is for random and tpe")
    if not _integer(seed):
        error("search.seed", f"must be an integer; got {show(seed)}")
    metric, mode = _metric(block, "search", error)
    trials = trials if _integer(trials) else 0
    return Search(kind, trials, seed if _integer(seed) else 0, metric, mode)


def read_scheduler(block, error, metric: str | None = None) -> Scheduler | None:
    """The ``early_stopping:`` block, or None when it is absent."""
    if block is None:
        return None
    if not isinstance(block, dict):
        error("early_stopping", f"expected a mapping such as {{type: asha, metric: "
              f"val_accuracy}}; got {show(block)}")  # fmt: skip
        return None
    kind = _choice(block, "type", tuple(SCHEDULERS), "early_stopping", error)
    if kind is None:
        return None
    own = SCHEDULERS[kind]
    _unknown_keys(block, ("type", "metric", "mode", *own), "early_stopping", error)
    chosen, mode = _metric(block, "early_stopping", error)
    chosen = chosen or metric or DEFAULT_METRIC
    values = {}
    for key, default in own.items():
        value = block.get(key, default)
        if not _integer(value) or value < MINIMUM[key]:
            error(
                f"early_stopping.{key}", f"must be an integer >= {MINIMUM[key]}; got {show(value)}"
            )
            value = default
        values[key] = value
    return Scheduler(kind, chosen, resolve_mode(chosen, mode), **values)


def objective(search: Search | None, scheduler: Scheduler | None, error) -> tuple[str, str]:
    """(metric, mode) the search optimizes: the search's, else the scheduler's, else
    val_loss; the two blocks must agree."""
    metric = (search and search.metric) or (scheduler and scheduler.metric) or DEFAULT_METRIC
    mode = resolve_mode(metric, search.mode if search and search.metric else
                        (scheduler.mode if scheduler else "auto"))  # fmt: skip
    if scheduler and (scheduler.metric, scheduler.mode) != (metric, mode):
        error("early_stopping.metric", f"the search optimizes {metric} ({mode}) and "
              f"early_stopping watches {scheduler.metric} ({scheduler.mode}); use one metric")  # fmt: skip
    return metric, mode


# --- checks against the trials' configs -------------------------------------------------


def logged_metrics(config) -> tuple[str, ...]:
    """The epoch metrics training logs for a loaded ``config``: validation ones only with
    validation data, accuracies only for classification."""
    spec = config.spec
    if spec is not None and spec.n_validation is not None:
        validation = spec.n_validation > 0
    else:
        validation = bool(config.data["data"].get("validation"))
    classification = spec is None or spec.task == "classification"
    return tuple(metric for metric in MONITORS
                 if (validation or not metric.startswith("val_"))
                 and (classification or not metric.endswith("accuracy")))  # fmt: skip


def check_metric(metric: str, config, where: str) -> ConfigError | None:
    """Why training of ``config`` does not log ``metric``, or None."""
    logged = logged_metrics(config)
    if metric in logged:
        return None
    if metric.startswith("val_") and f"train_{metric[4:]}" in logged:
        why = "the base config has no validation data (set data.validation, e.g. 0.1)"
    else:
        why = "the data is regression"
    return ConfigError(where, f"training does not log {show(metric)}: {why}; it logs "
                       f"{', '.join(logged)}")  # fmt: skip


def check_grace(scheduler: Scheduler, epochs: int) -> ConfigError | None:
    """grace_period must leave room to stop: at most the epochs a trial trains."""
    if scheduler.grace_period <= epochs:
        return None
    return ConfigError("early_stopping.grace_period", f"{scheduler.grace_period} is more than "
                       f"the {epochs} epochs a trial trains (train.epochs)")  # fmt: skip
