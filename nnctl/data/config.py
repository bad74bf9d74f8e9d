"""The ``data:`` config section: its keys, defaults, validation and path resolution.

Either ``dataset: NAME`` (a built-in) or ``type: npz | csv | idx`` with that loader's keys
(``path``/``x``/``y``, ``path``/``label_column``, ``images``/``labels``) and an optional
``test:`` mapping of the same keys. Common keys and defaults are in ``DATA_DEFAULTS``.
``augment`` (a list of augmentation components) is only checked to be a list here; the
config layer checks each entry (``nnctl.config.validate``) and ``load`` builds them.
"""

from __future__ import annotations

import copy
from pathlib import Path

from nnctl.core.checks import ArgumentError, flag, integer, is_int, positive_int, show
from nnctl.data.builtin import DATASETS
from nnctl.data.preprocess import MODES
from nnctl.data.sources import LOADERS
from nnctl.errors import ConfigError, ConfigErrors, NnctlError
from nnctl.fileio import user_path
from nnctl.registry import REQUIRED, did_you_mean

#: Defaults of the keys every data section has.
DATA_DEFAULTS = {
    "validation": 0.1,
    "batch_size": 32,
    "normalize": "standard",
    "flatten": False,
    "shuffle": True,
}
BUILTIN_KEYS = ("dataset", "data_dir")
USER_KEYS = ("type", "task", "n_classes", "test")
#: Keys of both kinds of data section that have no default (absent means none).
OPTIONAL_KEYS = ("augment",)
TASKS = ("classification", "regression", "multilabel")
#: What each key means: the config reference is generated from this (a key without an
#: entry fails its test).
KEY_DOCS = {
    "dataset": "a built-in data set (below); give either `dataset` or `type`",
    "data_dir": "with `dataset`: a folder searched first for downloaded data sets "
    "(then `$NNCTL_DATA`, the user cache)",
    "type": "your own files: a loader (below) with its keys",
    "task": "`classification`, `regression` or `multilabel`; default: inferred from the labels "
    "(integers, whole numbers, one-hot rows or text mean classification, other numbers "
    "regression; never multilabel)",
    "n_classes": "number of classes (>= 2); default: the largest label + 1",
    "test": "a separate test set: a mapping of the loader's keys (`x`, `y` and "
    "`label_column` default to the training part's)",
    "validation": "a fraction of the training part, a count of examples, or 0 for none",
    "batch_size": "examples per training step",
    "normalize": f"{', '.join(f'`{m}`' for m in MODES)}; statistics from the training part only",
    "flatten": "reshape every example to one axis",
    "shuffle": "draw the training examples in a new order every epoch",
    "augment": "a list of [augmentations](#augmentations) applied to each training batch",
}


def _check(errors: list, path: str, check, key: str, value, *args) -> None:
    """Run a core argument check on ``value``; its ArgumentError becomes a ConfigError."""
    try:
        check(key, value, *args)
    except ArgumentError as error:
        errors.append(ConfigError(f"{path}.{error.argument}", error.message))


def _check_common(cfg: dict, path: str) -> list[ConfigError]:
    errors = []
    v = cfg.get("validation", 0)
    ok = (is_int(v) and v >= 0) or (isinstance(v, float) and 0 <= v < 1)
    if not ok:
        errors.append(
            ConfigError(
                f"{path}.validation",
                f"must be a fraction in (0, 1), a count >= 1 (an integer) or 0; got {show(v)}",
            )
        )
    _check(errors, path, positive_int, "batch_size", cfg.get("batch_size", 1))
    n = cfg.get("normalize", "none")
    if n is not None and n not in MODES:
        hint = did_you_mean(n, list(MODES)) if isinstance(n, str) else ""
        errors.append(
            ConfigError(
                f"{path}.normalize", f"must be one of {', '.join(MODES)}; got {show(n)}{hint}"
            )
        )
    for key in ("flatten", "shuffle"):
        if key in cfg:
            _check(errors, path, flag, key, cfg[key])
    augment = cfg.get("augment")
    if augment is not None and not isinstance(augment, list):
        errors.append(
            ConfigError(
                f"{path}.augment",
                f"must be a list of augmentations (e.g. [{{type: flip}}]); got {show(augment)}",
            )
        )
    return errors


def _check_source_keys(part: dict, loader, path: str, name: str) -> list[ConfigError]:
    errors = []
    for key, default in loader.keys.items():
        if default is REQUIRED and key not in part:
            errors.append(ConfigError(path, f"missing key '{key}' for type {name}"))
        elif key in part and key != "label_column" and not _nonempty_str(part[key]):
            errors.append(
                ConfigError(f"{path}.{key}", f"must be a non-empty string; got {show(part[key])}")
            )
    col = part.get("label_column")
    if col is not None and not _label_column_ok(col):
        errors.append(
            ConfigError(
                f"{path}.label_column",
                f"must be a column name, index or list of names; got {show(col)}",
            )
        )
    return errors


def _nonempty_str(value) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _label_column_ok(col) -> bool:
    if isinstance(col, list):
        return bool(col) and all(_nonempty_str(c) for c in col)
    return _nonempty_str(col) or is_int(col)


def _unknown(cfg: dict, allowed: list[str], path: str, what: str) -> list[ConfigError]:
    return [
        ConfigError(path, f"unknown key '{key}' for {what}{did_you_mean(key, allowed)}")
        for key in cfg
        if key not in allowed
    ]


def _check_user(cfg: dict, path: str) -> list[ConfigError]:
    try:
        loader = LOADERS.get(cfg["type"], f"{path}.type")
    except ConfigError as e:
        return [e]
    name = cfg["type"]
    allowed = [*DATA_DEFAULTS, *OPTIONAL_KEYS, *USER_KEYS, *loader.keys]
    errors = _unknown(cfg, allowed, path, f"type {name}")
    errors += _check_source_keys(cfg, loader, path, name)
    if "task" in cfg and cfg["task"] not in TASKS:
        errors.append(
            ConfigError(
                f"{path}.task", f"must be one of {', '.join(TASKS)}; got {show(cfg['task'])}"
            )
        )
    k = cfg.get("n_classes")
    if k is not None:
        _check(errors, path, integer, "n_classes", k, 2)
    if k is not None and cfg.get("task") == "regression":
        errors.append(ConfigError(f"{path}.n_classes", "must not be set with task: regression"))
    test = cfg.get("test")
    if test is not None:
        if not isinstance(test, dict):
            return errors + [ConfigError(f"{path}.test", f"must be a mapping; got {show(test)}")]
        errors += _unknown(test, list(loader.keys), f"{path}.test", f"type {name}")
        inherited = {**{k: v for k, v in cfg.items() if k in ("x", "y", "label_column")}, **test}
        errors += _check_source_keys(inherited, loader, f"{path}.test", name)
    return errors


def validate_data_config(cfg, path: str = "data") -> list[ConfigError]:
    """All problems of a ``data:`` section, each naming its key path; [] if valid."""
    if not isinstance(cfg, dict):
        return [ConfigError(path, f"must be a mapping; got {show(cfg)}")]
    if ("dataset" in cfg) == ("type" in cfg):
        return [
            ConfigError(
                path,
                "needs exactly one of 'dataset' (built-in: "
                f"{', '.join(DATASETS.names())}) or 'type' ({', '.join(LOADERS.names())})",
            )
        ]
    errors = _check_common(cfg, path)
    if "type" in cfg:
        return errors + _check_user(cfg, path)
    allowed = [*DATA_DEFAULTS, *OPTIONAL_KEYS, *BUILTIN_KEYS]
    errors += _unknown(cfg, allowed, path, "a built-in dataset")
    try:
        DATASETS.get(cfg["dataset"], f"{path}.dataset")
    except ConfigError as e:
        errors.append(e)
    if "data_dir" in cfg and not _nonempty_str(cfg["data_dir"]):
        errors.append(
            ConfigError(f"{path}.data_dir", f"must be a path; got {show(cfg['data_dir'])}")
        )
    return errors


def _resolve_path(value: str, base_dir: Path, where: str) -> str:
    """An absolute path, whatever the current directory: the resolved config is stored in
    every run, and eval, predict and resume read it from anywhere."""
    try:
        p = user_path(value)
    except NnctlError as error:
        raise ConfigError(where, str(error)) from None
    return str(p if p.is_absolute() else Path(base_dir).absolute() / p)


def resolve_data_config(cfg: dict, path: str = "data", base_dir: Path | None = None) -> dict:
    """A validated copy of ``cfg`` with defaults filled and paths made absolute.

    Relative paths resolve against ``base_dir`` (the config file's folder; default the
    current directory), and a relative ``base_dir`` against the current directory; ``~``
    expands. Raises ConfigErrors listing every problem.
    """
    errors = validate_data_config(cfg, path)
    if errors:
        raise ConfigErrors(errors)
    base_dir = Path(base_dir) if base_dir is not None else Path.cwd()
    out = {**DATA_DEFAULTS, **copy.deepcopy(cfg)}
    if out["normalize"] is None:
        out["normalize"] = "none"
    if not out.get("augment"):  # null or [] is no augmentation, as when the key is absent
        out.pop("augment", None)
    if "dataset" in out:
        if out.get("data_dir"):
            out["data_dir"] = _resolve_path(out["data_dir"], base_dir, f"{path}.data_dir")
        return out
    loader = LOADERS.get(out["type"])
    _fill_part(out, loader, base_dir, path)
    if out.get("test") is not None:
        shared = {k: out[k] for k in ("x", "y", "label_column") if k in loader.keys}
        out["test"] = {**shared, **out["test"]}
        _fill_part(out["test"], loader, base_dir, f"{path}.test")
    return out


def _fill_part(part: dict, loader, base_dir: Path, where: str) -> None:
    for key, default in loader.keys.items():
        if key not in part and default is not REQUIRED:
            part[key] = default
    for key in loader.path_keys:
        part[key] = _resolve_path(part[key], base_dir, f"{where}.{key}")
