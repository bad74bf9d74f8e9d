"""Validate a merged raw config section by section and fill in every default.

Every problem is collected (not only the first) and located: each error gets the file and
line of its key path, or of the closest ancestor written in a file.
"""

from __future__ import annotations

from pathlib import Path

from nnctl.config.components import AUGMENTATION, OPTIMIZER, SCHEDULE, check_spec
from nnctl.config.load import RawConfig
from nnctl.config.memory import memory_error, train_batch
from nnctl.config.model import resolve_model
from nnctl.config.schema import TOP_KEYS, resolve_train, unknown_keys
from nnctl.core.checks import show
from nnctl.data import DATA_DEFAULTS, describe, resolve_data_config, validate_data_config
from nnctl.errors import ConfigError, ConfigErrors, DataError


def validate(raw: RawConfig, base_dir: Path, spec=None) -> tuple[dict, object, list[ConfigError]]:
    """``(resolved config, DataSpec or None, located errors)`` of a merged raw config.

    With ``spec`` (a checkpoint's record of its data) the model is checked against it and
    no data file is opened; otherwise the data is described from its files' headers.
    """
    data = raw.data
    errors = unknown_keys(data, [k for k in TOP_KEYS if k != "extends"], "", "the config")
    resolved = {"seed": _check_seed(data, errors)}
    resolved["data"], spec = _check_data(data.get("data"), base_dir, errors, spec)
    _check_augment(data.get("data"), resolved["data"], spec, errors)
    has_validation = _has_validation(resolved["data"], data.get("data"), spec)
    batch_size = resolved["data"].get("batch_size")
    resolved["model"], _ = resolve_model(data.get("model"), spec, errors, base_dir, batch_size)
    resolved["optimizer"] = _check_optimizer(data, errors)
    resolved["schedule"] = _check_schedule(data.get("schedule"), errors)
    task = spec.task if spec is not None else None
    resolved["train"] = resolve_train(data.get("train"), has_validation, task, errors)
    if not errors and spec is not None:  # what cannot fit in memory, before anything allocates
        batch = train_batch(resolved["data"], spec)
        too_large = memory_error(resolved["model"], spec, batch, "data.batch_size")
        errors += [too_large] if too_large else []
    return resolved, spec, [_locate(error, raw) for error in errors]


def _locate(error: ConfigError, raw: RawConfig) -> ConfigError:
    if error.file:
        return error
    file, line = raw.locate(error.line_path)
    return ConfigError(error.path, error.message, file, line, error.line_path)


def _check_seed(data: dict, errors: list) -> int:
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        errors.append(ConfigError("seed", f"must be a non-negative integer; got {show(seed)}"))
    return seed


def _check_data(value, base_dir: Path, errors: list, known=None) -> tuple[dict, object]:
    if value is None:
        errors.append(ConfigError("", "missing required section 'data' (e.g. dataset: digits)"))
        return {}, None
    found = validate_data_config(value, "data")
    if found:
        errors.extend(found)
        spec = known if known is not None else _describe_without(value, found, base_dir)
        return value if isinstance(value, dict) else {}, spec
    try:
        resolved = resolve_data_config(value, "data", base_dir)
        return resolved, known if known is not None else describe(resolved)
    except ConfigErrors as error:
        errors.extend(error.errors)
    except ConfigError as error:
        errors.append(error)
    except DataError as error:
        errors.append(ConfigError("data", str(error)))
    return value, None


def _check_augment(value, resolved: dict, spec, errors: list) -> None:
    """Check every entry of ``data.augment`` as a component and put the resolved list (all
    defaults filled in) into ``resolved``; augmenting needs images (rows, cols, channels)."""
    specs = value.get("augment") if isinstance(value, dict) else None
    if not specs or not isinstance(specs, list):  # none, or not a list (reported already)
        return
    if spec is not None and len(spec.input_shape) != 3:
        flat = " (data.flatten is true)" if value.get("flatten") is True else ""
        errors.append(
            ConfigError(
                "data.augment",
                "augmentation needs image data (rows, cols, channels); "
                f"{spec.name} has examples of shape {tuple(spec.input_shape)}{flat}",
            )
        )
        return
    checked = [
        check_spec(AUGMENTATION, item, f"data.augment[{index}]", errors)[1]
        for index, item in enumerate(specs)
    ]
    if "augment" in resolved and None not in checked:
        resolved["augment"] = checked


def _describe_without(value, found: list[ConfigError], base_dir: Path):
    """The data's spec with the offending keys left out (e.g. a bad batch_size), so that
    the model is still checked against its shape; None if the data cannot be described."""
    if not isinstance(value, dict):
        return None
    bad = {e.path.split(".")[1].split("[")[0] for e in found if e.path.startswith("data.")}
    if not bad or bad & {"dataset", "type", "path", "task", "n_classes", "flatten"}:
        return None
    repaired = {k: v for k, v in value.items() if k not in bad}
    try:
        return describe(resolve_data_config(repaired, "data", base_dir))
    except (ConfigError, ConfigErrors, DataError):
        return None


def _has_validation(resolved: dict, value, spec) -> bool:
    if spec is not None and spec.n_validation is not None:
        return spec.n_validation > 0
    source = resolved or (value if isinstance(value, dict) else {})
    return bool(source.get("validation", DATA_DEFAULTS["validation"]))


def _check_optimizer(data: dict, errors: list):
    if "optimizer" not in data:
        errors.append(ConfigError("", "missing required section 'optimizer' (e.g. {type: adam})"))
        return None
    return check_spec(OPTIMIZER, data["optimizer"], "optimizer", errors)[1]


def _check_schedule(value, errors: list):
    if value is None:
        return None
    return check_spec(SCHEDULE, value, "schedule", errors)[1]
