"""The fixed parts of the config format: top-level keys, ``model`` keys and ``train:``.

``train:`` is declared as data (``TRAIN``: key → Field with a rule and a default), so that
validation, default filling, ``--set`` key checks and the reference document all read the
same table. Components (layers, optimizers, ...) are described by their constructors
instead; see ``nnctl.config.components``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nnctl.config.components import LOGGER, check_spec
from nnctl.config.paths import join
from nnctl.core.checks import is_int, is_real, show
from nnctl.errors import ConfigError
from nnctl.monitor import resolve_mode
from nnctl.registry import compact, did_you_mean

TOP_KEYS = ("seed", "extends", "data", "model", "optimizer", "schedule", "train")
MODEL_KEYS = ("layers", "loss", "dtype", "init_from", "freeze")
MONITORS = ("val_loss", "val_accuracy", "train_loss", "train_accuracy")
MODES = ("min", "max", "auto")


@dataclass(frozen=True)
class Field:
    """A ``train:`` key: ``rule`` (the check, in words), ``check(value) -> bool``, default.

    ``default`` may be a callable of the validation context (``has_validation``).
    """

    rule: str
    check: Callable[[object], bool]
    default: object = None


def int_at_least(low: int, default) -> Field:
    return Field(f"must be an integer >= {low}", lambda v: is_int(v) and v >= low, default)


def number_at_least(low: float, default) -> Field:
    return Field(f"must be a number >= {low:g}", lambda v: is_real(v) and v >= low, default)


def one_of(choices: tuple[str, ...], default) -> Field:
    rule = f"must be one of {', '.join(choices)}"
    return Field(rule, lambda v: isinstance(v, str) and v in choices, default)


def default_monitor(has_validation: bool) -> str:
    return "val_loss" if has_validation else "train_loss"


MONITOR = one_of(MONITORS, default_monitor)
MODE = one_of(MODES, "auto")
CHECKPOINT = {
    "every": int_at_least(1, 1),
    "keep": one_of(("last", "best", "all"), "last"),
    "monitor": MONITOR,
    "mode": MODE,
}
EARLY_STOPPING = {
    "monitor": MONITOR,
    "mode": MODE,
    "patience": int_at_least(1, 5),
    "min_delta": number_at_least(0, 0.0),
}
# Keras' ReduceLROnPlateau defaults.
REDUCE_LR = {
    "monitor": MONITOR,
    "mode": MODE,
    "factor": Field("must be a number in (0, 1)", lambda v: is_real(v) and 0 < v < 1, 0.1),
    "patience": int_at_least(1, 10),
    "min_delta": number_at_least(0, 1e-4),
    "cooldown": int_at_least(0, 0),
    "min_lr": number_at_least(0, 0.0),
}
TRAIN = {
    "epochs": int_at_least(1, 10),
    "test_checkpoint": one_of(("best", "last"), "best"),
}
#: ``train.loggers``: where metrics go besides metrics.jsonl/.csv, which every run writes
#: (the ``csv`` logger, always first in the resolved list).
DEFAULT_LOGGERS = ("csv",)
#: Sub-sections of ``train:``: fields, and whether the section may be null (disabled).
TRAIN_SECTIONS = {
    "checkpoint": (CHECKPOINT, False),
    "early_stopping": (EARLY_STOPPING, True),
    "reduce_lr_on_plateau": (REDUCE_LR, True),
}


def unknown_keys(mapping: dict, allowed, path: str, what: str) -> list[ConfigError]:
    """An error for every key of ``mapping`` not in ``allowed``, with a suggestion."""
    errors = []
    for key in mapping:
        if key not in allowed:
            hint = did_you_mean(str(key), list(allowed)) or f" (allowed: {', '.join(allowed)})"
            message = f"unknown key '{key}' in {what}{hint}"
            errors.append(ConfigError(path, message, line_path=join(path, key)))
    return errors


def resolve_fields(
    value, fields: dict[str, Field], path: str, has_validation: bool, errors: list
) -> dict:
    """``value`` checked against ``fields`` with defaults filled; problems go to ``errors``."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        errors.append(ConfigError(path, f"must be a mapping; got {show(value)}"))
        return {}
    errors += unknown_keys(value, fields, path or "top level", path or "the config")
    out = {}
    for key, field in fields.items():
        if key in value:
            if not field.check(value[key]):
                errors.append(ConfigError(join(path, key), f"{field.rule}; got {show(value[key])}"))
            out[key] = value[key]
        else:
            default = field.default
            out[key] = default(has_validation) if callable(default) else default
    if "mode" in out and isinstance(out.get("monitor"), str):
        out["mode"] = resolve_mode(out["monitor"], out["mode"])
    return out


def resolve_train(value, has_validation: bool, task: str | None, errors: list) -> dict:
    """The ``train:`` section with every default filled in; problems go to ``errors``."""
    if value is not None and not isinstance(value, dict):
        errors.append(ConfigError("train", f"must be a mapping; got {show(value)}"))
        return resolve_train({}, has_validation, task, [])
    value = dict(value or {})
    sections = {key: value.pop(key) for key in TRAIN_SECTIONS if key in value}
    loggers = value.pop("loggers", None)
    errors += unknown_keys(value, train_keys(), "train", "train")
    known = {k: v for k, v in value.items() if k in TRAIN}
    out = resolve_fields(known, TRAIN, "train", has_validation, errors)
    for key, (fields, nullable) in TRAIN_SECTIONS.items():
        section = sections.get(key)
        path = f"train.{key}"
        if section is None and nullable:
            out[key] = None
            continue
        out[key] = resolve_fields(section, fields, path, has_validation, errors)
        _check_monitor(out[key], path, has_validation, task, errors)
    out["loggers"] = resolve_loggers(loggers, errors)
    return out


def train_keys() -> tuple[str, ...]:
    return (*TRAIN, *TRAIN_SECTIONS, "loggers")


def resolve_loggers(value, errors: list) -> list:
    """``train.loggers`` checked as components, defaults filled, ``csv`` first."""
    if value is None:
        value = list(DEFAULT_LOGGERS)
    if not isinstance(value, list):
        rule = "must be a list of loggers, e.g. [csv, tensorboard]"
        errors.append(ConfigError("train.loggers", f"{rule}; got {show(value)}"))
        return list(DEFAULT_LOGGERS)
    resolved, seen = [], {}
    for index, item in enumerate(value):
        path = f"train.loggers[{index}]"
        _, spec = check_spec(LOGGER, item, path, errors)
        if spec is None:
            continue
        if spec["type"] in seen:
            also = f"train.loggers[{seen[spec['type']]}]"
            errors.append(ConfigError(path, f"{spec['type']} is listed twice (also {also})"))
            continue
        seen[spec["type"]] = index
        resolved.append(compact(spec))
    return [*DEFAULT_LOGGERS, *(spec for spec in resolved if spec not in DEFAULT_LOGGERS)]


def _check_monitor(section: dict, path: str, has_validation: bool, task, errors) -> None:
    monitor = section.get("monitor")
    if not isinstance(monitor, str) or monitor not in MONITORS:
        return
    if monitor.startswith("val_") and not has_validation:
        errors.append(
            ConfigError(
                f"{path}.monitor",
                f"'{monitor}' needs validation data; set data.validation (e.g. 0.1) "
                f"or monitor 'train_{monitor[4:]}'",
            )
        )
    if monitor.endswith("accuracy") and task == "regression":
        errors.append(
            ConfigError(
                f"{path}.monitor",
                f"'{monitor}' needs a classification task; the data is regression",
            )
        )


def section_keys(path: tuple) -> tuple[str, ...] | None:
    """Keys the schema knows at a fixed (non-component) path; None when not fixed here."""
    if path == ():
        return tuple(k for k in TOP_KEYS if k != "extends")
    if path == ("model",):
        return MODEL_KEYS
    if path == ("train",):
        return train_keys()
    if len(path) == 2 and path[0] == "train" and path[1] in TRAIN_SECTIONS:
        return tuple(TRAIN_SECTIONS[path[1]][0])
    return None
