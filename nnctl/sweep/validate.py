"""Check a whole sweep before any trial runs (``nnctl sweep`` and ``nnctl check``).

In order, stopping at the first stage that finds problems so that one mistake gives one
error, not one per trial: the base config with the shared overrides; every value of
every swept key (a grid's values, a space's bounds or choices), each error at the line
where that key was written; the search's metric and the scheduler against what training
logs and how many epochs it trains; and last every trial of a grid or random search, for
problems that only a combination of values has.
"""

from __future__ import annotations

from nnctl.config import load_config
from nnctl.errors import ConfigError, ConfigErrors
from nnctl.sweep.search import check_grace, check_metric
from nnctl.sweep.space import representatives
from nnctl.sweep.spec import SweepSpec, Trial, format_value


def validate_sweep(spec: SweepSpec) -> list[Trial]:
    """The trials of a grid or random search ([] for tpe); ConfigErrors if anything is
    wrong (a bad base config raises its own errors)."""
    if not (spec.grid or spec.space):
        return _nothing(spec)
    base = load_config(spec.base, spec.overrides)
    errors = [error for key in spec.keys for error in check_key(spec, key)]
    if not errors:
        errors = check_search(spec, base)
    if errors:
        raise ConfigErrors(errors)
    trials = spec.expand()
    if not spec.adaptive:
        validate_trials(spec, trials)
    return trials


def _nothing(spec: SweepSpec) -> list[Trial]:
    validate_trials(spec, [])  # raises "nothing to sweep"
    return []


def values_of(spec: SweepSpec, key: str) -> list:
    """The values that stand for ``key``: its grid values, else its space's bounds or
    choices."""
    return spec.grid[key] if key in spec.grid else representatives(spec.space[key])


def check_key(spec: SweepSpec, key: str) -> list[ConfigError]:
    """Load the base config with each value of ``key``; the problems of the first value
    that has any, at the line where ``key`` was written, naming the other failing values."""
    failing: list[tuple[str, list[ConfigError]]] = []
    for value in values_of(spec, key):
        text = format_value(value)
        try:
            load_config(spec.base, [*spec.overrides, f"{key}={text}"])
        except ConfigErrors as problems:
            failing.append((text, problems.errors))
        except ConfigError as problem:
            failing.append((text, [problem]))
    if not failing:
        return []
    (text, problems), others = failing[0], [other for other, _ in failing[1:]]
    also = f" (and with {', '.join(others)})" if others else ""
    where = spec.where(key)
    return [spec.error(where, f"value {text}: {_describe(p, key)}{also}") for p in problems]


def _describe(problem: ConfigError, key: str) -> str:
    """The problem without the base file: the message, with its key path if another key."""
    if problem.path == key:
        return problem.message
    return f"{problem.path}: {problem.message}" if problem.path else problem.message


def check_search(spec: SweepSpec, base) -> list[ConfigError]:
    """The metric must be one training logs; the scheduler's grace period must fit."""
    if not spec.uses_study:
        return []
    errors = []
    where = "early_stopping.metric" if spec.scheduler else "search.metric"
    problem = check_metric(spec.metric, base, where)
    if problem is not None:
        errors.append(spec.error(where, problem.message))
    if spec.scheduler is not None:
        problem = check_grace(spec.scheduler, min(_epochs(spec, base)))
        if problem is not None:
            errors.append(spec.error(problem.path, problem.message))
    return errors


def _epochs(spec: SweepSpec, base) -> list[int]:
    """The epochs trials train: the swept values of train.epochs, else the base config's."""
    if "train.epochs" in spec.keys:
        return [v for v in values_of(spec, "train.epochs") if isinstance(v, int)] or [1]
    return [base.data["train"]["epochs"]]


def validate_trials(spec: SweepSpec, trials: list[Trial]) -> None:
    """Load every trial's config; ConfigErrors with every problem, each naming its trials.

    A problem that every trial shares (a bad base config or ``--set``) is reported once."""
    if not trials or not (spec.grid or spec.trials):
        raise ConfigError("", "nothing to sweep: give --grid KEY=V1,V2,... or a sweep file "
                          "with grid: or random:")  # fmt: skip
    seen: dict[str, list[str]] = {}
    for trial in trials:
        try:
            load_config(spec.base, [*spec.overrides, *trial.overrides])
        except ConfigErrors as problems:
            for problem in problems.errors:
                seen.setdefault(str(problem), []).append(trial.name)
        except ConfigError as problem:
            seen.setdefault(str(problem), []).append(trial.name)
    if not seen:
        return
    errors = []
    for message, names in seen.items():
        if len(names) == len(trials) and len(trials) > 1:
            errors.append(ConfigError("", message))
            continue
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        errors.append(ConfigError("", f"trial {shown}: {message}"))
    raise ConfigErrors(errors)
