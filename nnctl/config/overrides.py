"""``--set KEY=VALUE`` overrides, applied to the merged raw config before validation.

``KEY`` is a key path (``optimizer.lr``, ``model.layers[0].n_out``, ``model.layers[-1]``);
``VALUE`` is read as YAML (``0.01``, ``true``, ``null``, ``[5, 5]``). A key that is not in
the config may still be set when the schema knows it: a constructor argument of the
component it belongs to (``optimizer.momentum``), a ``train:`` key, or a whole optional
section (``schedule.type=cosine``). Any other key is an error with a suggestion.
"""

from __future__ import annotations

import yaml

from nnctl.config.components import (
    AUGMENTATION,
    LAYER,
    LOGGER,
    LOSS,
    OPTIMIZER,
    SCHEDULE,
    Family,
)
from nnctl.config.load import RawConfig
from nnctl.config.paths import format_path, parse_path
from nnctl.config.schema import section_keys
from nnctl.config.yamlio import parse_scalar
from nnctl.core.checks import show
from nnctl.errors import ConfigError, ConfigErrors
from nnctl.registry import did_you_mean


def split_override(text: str) -> tuple[tuple, object]:
    """``"optimizer.lr=0.01"`` → ``(("optimizer", "lr"), 0.01)``; ValueError if malformed."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"expected KEY=VALUE (e.g. optimizer.lr=0.01); got {show(text)}")
    try:
        parsed = parse_scalar(value)
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"cannot read the value of {show(text)} as YAML: {problem}") from None
    return parse_path(key.strip()), parsed


def apply_overrides(raw: RawConfig, overrides) -> None:
    """Apply every override in order; ConfigErrors listing each one that cannot apply."""
    errors = []
    for text in overrides:
        try:
            parts, value = split_override(text)
            parts, created = _set(raw.data, list(parts), value)
        except ConfigError as error:  # before ValueError: ConfigError is one
            message = f"{error.message} (--set {text})"
            errors.append(ConfigError(error.path, message, file=raw.file))
            continue
        except ValueError as error:
            errors.append(ConfigError("", f"--set: {error}", file=raw.file))
            continue
        for path in [*created, format_path(parts)]:
            _relocate(raw, path, text)
    if errors:
        raise ConfigErrors(errors)


def _relocate(raw: RawConfig, path: str, text: str) -> None:
    """Values set on the command line are reported as coming from ``--set``."""
    for key in [k for k in raw.locations if k == path or k.startswith((path + ".", path + "["))]:
        del raw.locations[key]
    raw.locations[path] = (f"{raw.file}: --set {text}", None)


def _set(data: dict, parts: list, value) -> tuple[list, list[str]]:
    """Set the value; return the normalised parts and the paths of mappings created."""
    node, created = data, []
    for depth, part in enumerate(parts):
        here, last = tuple(parts[:depth]), depth == len(parts) - 1
        if isinstance(part, int):
            part = parts[depth] = _index(node, part, here)
        else:
            _check_key(node, part, here)
        if last:
            node[part] = value
            return parts, created
        if _missing(node, part):
            created.append(format_path((*here, part)))
        node = _child(node, part, (*here, part))
    return parts, created


def _missing(node, key) -> bool:
    return node[key] is None if isinstance(node, list) else node.get(key) is None


def _index(node, index: int, here: tuple) -> int:
    if not isinstance(node, list):
        raise ConfigError(format_path(here), f"not a list; cannot use [{index}]")
    position = index + len(node) if index < 0 else index
    if not 0 <= position < len(node):
        raise ConfigError(
            format_path((*here, index)),
            f"index {index} out of range ({format_path(here)} has {len(node)} items)",
        )
    return position


def _check_key(node, key: str, here: tuple) -> None:
    if not isinstance(node, dict):
        raise ConfigError(format_path(here), f"is {_kind(node)}, not a mapping; cannot set '{key}'")
    if key in node:
        return
    known = known_keys(node, here)
    if known is not None and key not in known:
        hint = did_you_mean(key, list(known)) or f" (known keys: {', '.join(known)})"
        raise ConfigError(format_path((*here, key)), f"no such key{hint}")


def _kind(value) -> str:
    return "a list" if isinstance(value, list) else show(value)


def _child(node, key, path: tuple):
    child = node[key] if not isinstance(node, dict) else node.get(key)
    if child is None:
        child = node[key] = {}
    elif isinstance(child, str) and component_family(path) is not None:
        child = node[key] = {"type": child}  # a bare name gains arguments
    return child


def component_family(path: tuple) -> Family | None:
    """The family of the component spec at ``path``, if it is one."""
    if path == ("optimizer",):
        return OPTIMIZER
    if path == ("schedule",):
        return SCHEDULE
    if path == ("model", "loss"):
        return LOSS
    if len(path) == 3 and path[:2] == ("data", "augment") and isinstance(path[2], int):
        return AUGMENTATION
    if len(path) == 3 and path[:2] == ("train", "loggers") and isinstance(path[2], int):
        return LOGGER
    if len(path) >= 3 and path[:2] == ("model", "layers") and isinstance(path[2], int):
        rest = _below_blocks(path[3:])
        if not rest:
            return LAYER
        if len(rest) == 1 and rest[0] in LAYER.nested:
            return LAYER.nested[rest[0]]
    return None


def _below_blocks(rest: tuple) -> tuple | None:
    """What follows the innermost layer of ``rest`` (``layers, 1`` or ``branches, 0, 2``
    steps lead into a block's children); None if a step does not."""
    while rest and rest[0] in LAYER.lists:
        depth = LAYER.lists[rest[0]]
        steps = rest[1 : 1 + depth]
        if len(steps) < depth or not all(isinstance(step, int) for step in steps):
            return None
        rest = rest[1 + depth :]
    return rest


def known_keys(node: dict, path: tuple) -> tuple[str, ...] | None:
    """Keys the schema allows in ``node`` at ``path``; None when it cannot tell (``data``)."""
    fixed = section_keys(path)
    if fixed is not None:
        return fixed
    family = component_family(path)
    if family is None:
        return None
    name = node.get("type")
    if name is None:
        names = family.registry.names()
        arguments = sorted({a for n in names for a in family.arguments(n)})
        return ("type", *arguments, *family.item_keys)
    if name not in family.registry:
        return None
    return ("type", *family.arguments(name), *family.item_keys)
