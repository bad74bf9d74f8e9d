"""Component specs: ``{type: name, ...kwargs}`` (or a bare name) checked against a registry.

A spec is checked before anything is built: the name must be registered, every key must be
an argument of the constructor, required arguments must be present, and nested components
(a layer's ``activation`` and ``weight_init``) are checked in turn. Then the component is
constructed, so its own range checks run, and its ``get_config()`` becomes the resolved
spec: every argument present, defaults filled in.

Blocks hold lists of layers (``layers`` of a residual, ``branches`` of a concat): every item
is checked like a top-level layer, at its own key path (``model.layers[2].layers[1].n_out``),
then the block is constructed from the checked children. An item ``{..., repeat: N}``
stands for N copies, each with its own weights; the resolved list writes the copies out.
``Origins`` remembers where each checked layer was written, so that later shape errors
name the layer's key path even inside blocks.
"""

from __future__ import annotations

import copy
import inspect
from contextlib import contextmanager
from dataclasses import dataclass, field

from nnctl.config.paths import join
from nnctl.core import ACTIVATIONS, INITIALIZERS, LAYERS, LOSSES
from nnctl.core.chain import repeat_count, without_repeat
from nnctl.core.checks import ArgumentError, show
from nnctl.core.optimizers import OPTIMIZERS
from nnctl.core.schedules import SCHEDULES
from nnctl.data.augment import AUGMENTATIONS
from nnctl.errors import ConfigError, ShapeError
from nnctl.loggers import LOGGERS
from nnctl.registry import REQUIRED, Registry, did_you_mean


@dataclass(frozen=True)
class Family:
    """One registry as seen from configs: which constructor arguments users may set."""

    registry: Registry
    hidden: tuple[str, ...] = ()
    nested: dict[str, Family] = field(default_factory=dict)
    #: Arguments holding this family's components: 1 a list of them (``layers``), 2 a list
    #: of such lists (``branches``).
    lists: dict[str, int] = field(default_factory=dict)
    #: Keys an item of such a list may have besides the arguments.
    item_keys: tuple[str, ...] = ()

    @property
    def kind(self) -> str:
        return self.registry.family

    def arguments(self, name: str) -> dict[str, object]:
        """``{argument: default}`` of component ``name`` (``REQUIRED`` when it has none)."""
        params = inspect.signature(self.registry.get(name)).parameters.values()
        return {
            p.name: p.default
            for p in params
            if p.name not in self.hidden and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }


ACTIVATION = Family(ACTIVATIONS)
# The gain follows the layer's activation; a loss's name and eps are internal.
INITIALIZER = Family(INITIALIZERS, hidden=("gain",))
LAYER = Family(
    LAYERS,
    nested={"activation": ACTIVATION, "weight_init": INITIALIZER},
    lists={"layers": 1, "branches": 2},
    item_keys=("repeat",),
)
LOSS = Family(LOSSES, hidden=("name", "eps"))
OPTIMIZER = Family(OPTIMIZERS)
SCHEDULE = Family(SCHEDULES)
# The fill of padding follows the data's preprocessing (the value of a raw 0 pixel).
AUGMENTATION = Family(AUGMENTATIONS, hidden=("fill",))
LOGGER = Family(LOGGERS)
FAMILIES = (LAYER, ACTIVATION, INITIALIZER, LOSS, OPTIMIZER, SCHEDULE, AUGMENTATION, LOGGER)


def as_spec(spec, path: str) -> dict:
    """A bare name as ``{type: name}``; a mapping copied; ConfigError for anything else."""
    if isinstance(spec, str):
        return {"type": spec}
    if isinstance(spec, dict):
        if "type" not in spec:
            raise ConfigError(path, "missing key 'type'")
        return dict(spec)
    raise ConfigError(path, f"must be a name or a mapping with 'type'; got {show(spec)}")


@dataclass(frozen=True)
class Origin:
    """Where a layer object was written: its key path, and ``copies``: ``(path, k, n)`` of
    each repeated item it belongs to (itself or an enclosing block), outermost first."""

    path: str
    copies: tuple[tuple[str, int, int], ...] = ()

    def note(self) -> str:
        """`` (copy 2 of 3)``, `` (in copy 2 of 3 of model.layers[1])`` or ``""``."""
        parts = [
            f"copy {k} of {n}" if path == self.path else f"in copy {k} of {n} of {path}"
            for path, k, n in self.copies
        ]
        return f" ({'; '.join(parts)})" if parts else ""


@dataclass
class Origins:
    """``id(layer) → Origin`` of every layer checked; the layers must stay alive."""

    found: dict[int, Origin] = field(default_factory=dict)
    copies: tuple[tuple[str, int, int], ...] = ()

    def add(self, obj, path: str) -> None:
        self.found[id(obj)] = Origin(path, self.copies)

    def of(self, obj, default: str) -> Origin:
        return self.found.get(id(obj), Origin(default))

    @contextmanager
    def copy(self, path: str, k: int, n: int):
        """Layers checked inside belong to copy ``k`` of ``n`` of the item at ``path``."""
        outer = self.copies
        if n > 1:
            self.copies = (*outer, (path, k, n))
        try:
            yield
        finally:
            self.copies = outer


def check_spec(
    family: Family, spec, path: str, errors: list[ConfigError], origins: Origins | None = None
) -> tuple:
    """Check ``spec``; return ``(component, resolved spec)`` or ``(None, None)`` on errors.

    Every problem found is appended to ``errors``; the layers checked (children included)
    are recorded in ``origins``.
    """
    try:
        spec = as_spec(spec, path)
        name = spec.pop("type")
        family.registry.get(name, join(path, "type"))
    except ConfigError as error:
        errors.append(error)
        return None, None
    before = len(errors)
    arguments = family.arguments(name)
    missing = _check_keys(family, name, spec, arguments, path, errors)
    nested_ok = True
    for key, sub in family.nested.items():
        if key in spec:
            _, spec[key] = check_spec(sub, spec[key], join(path, key), errors)
            nested_ok = nested_ok and spec[key] is not None
    children, child_specs = {}, {}
    for key, depth in family.lists.items():
        if key in spec and key in arguments:
            where = join(path, key)
            children[key], child_specs[key] = check_list(
                family, spec[key], where, depth, errors, origins
            )
            nested_ok = nested_ok and children[key] is not None
    if missing or not nested_ok:
        return None, None
    # Construct even after unknown keys, so that bad values are reported in the same pass.
    known = {k: v for k, v in spec.items() if k in arguments}
    obj, resolved = construct(family, name, {**known, **children}, path, errors)
    if obj is None or len(errors) > before:
        return None, None
    if origins is not None:
        origins.add(obj, path)
    return obj, {**resolved, **child_specs}  # the children's specs in argument order


def check_list(family: Family, items, path: str, depth: int, errors: list, origins=None):
    """Check a list of components (``depth`` 1) or a list of such lists (2).

    Returns ``(objects, resolved specs)``, each repeated item written out as its copies
    (fresh objects, each with its own weights once built), or ``(None, None)`` on errors.
    """
    kind = family.kind if depth == 1 else f"{family.kind} list"
    if not isinstance(items, list):
        errors.append(ConfigError(path, f"must be a list of {kind}s; got {items!r}"))
        return None, None
    if depth > 1:
        checked = [
            check_list(family, value, join(path, j), depth - 1, errors, origins)
            for j, value in enumerate(items)
        ]
        if any(objects is None for objects, _ in checked):
            return None, None
        return [objects for objects, _ in checked], [specs for _, specs in checked]
    objects, specs, ok = [], [], True
    for index, item in enumerate(items):
        copies = _check_item(family, item, join(path, index), errors, origins)
        ok = ok and copies is not None
        if copies is not None:
            objects += [obj for obj, _ in copies]
            specs += [resolved for _, resolved in copies]
    return (objects, specs) if ok else (None, None)


def _check_item(family: Family, item, path: str, errors: list, origins) -> list | None:
    """``[(component, resolved spec)]``, one per copy of a list item (``repeat``)."""
    try:
        n = repeat_count(item, path)
    except ConfigError as error:
        errors.append(error)
        return None
    spec, origins = without_repeat(item), origins if origins is not None else Origins()
    copies = []
    for k in range(1, n + 1):
        with origins.copy(path, k, n):
            # copies after the first are checked again only to get their own objects
            obj, resolved = check_spec(family, spec, path, errors if k == 1 else [], origins)
        if obj is None:
            return None
        copies.append((obj, resolved))
    return copies


def _check_keys(family, name, spec, arguments, path, errors) -> bool:
    """Report unknown and missing keys; True when a required argument is missing."""
    missing = False
    for key in spec:
        if key not in arguments:
            errors.append(_unknown_key(family, name, key, list(arguments), path))
    for key, default in arguments.items():
        if default is REQUIRED and key not in spec:
            errors.append(ConfigError(path, f"missing required key '{key}' for {name}"))
            missing = True
    return missing


def _unknown_key(family: Family, name: str, key: str, allowed: list[str], path: str):
    hint = did_you_mean(key, allowed)
    if not hint:
        owners = [n for n in family.registry.names() if key in family.arguments(n)]
        if owners:
            hint = f" ('{key}' is an argument of {', '.join(owners)})"
        else:
            hint = f" (allowed: {', '.join(allowed) or 'none'})"
    message = f"unknown key '{key}' for {name}{hint}"
    return ConfigError(path, message, line_path=join(path, key))


def make(family: Family, spec: dict):
    """The component of a resolved ``spec`` (``{type: name, ...arguments}``)."""
    kwargs = copy.deepcopy(spec)
    return family.registry.get(kwargs.pop("type"))(**kwargs)


def construct(family: Family, name: str, kwargs: dict, path: str, errors: list) -> tuple:
    """Instantiate; constructor errors become ConfigErrors, at the argument's path when the
    constructor names one (``ArgumentError.argument``) and the user wrote it."""
    try:
        obj = family.registry.get(name)(**kwargs)
    except ArgumentError as error:
        errors.append(argument_error(error, kwargs, path))
        return None, None
    except (ValueError, TypeError, ShapeError) as error:
        errors.append(ConfigError(path, str(error)))
        return None, None
    config = obj.get_config()
    order = ["type", *family.arguments(name)]
    ordered = {k: config[k] for k in order if k in config}
    ordered.update((k, v) for k, v in config.items() if k not in ordered)
    return obj, plain(ordered)


def argument_error(error: ArgumentError, kwargs: dict, path: str) -> ConfigError:
    """``ArgumentError("n_out", "must be ...")`` → ConfigError at ``path.n_out``.

    An argument the user did not write (a default that clashes with a given value) is
    reported at the component, with the argument named in the message."""
    if error.argument in kwargs:
        return ConfigError(join(path, error.argument), error.message)
    return ConfigError(path, str(error))


def plain(value):
    """Tuples as lists, recursively, so resolved configs are JSON data."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value
