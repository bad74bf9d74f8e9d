"""Read a config file and the chain of files it ``extends``, merged into one raw mapping.

``extends: base.yaml`` (a path relative to the extending file, or a list of them, merged in
order) is applied first; the file's own keys are deep-merged on top: mappings merge key by
key, anything else (lists included) is replaced, and so is a component mapping whose
``type`` changes (``{type: adam, beta1: 0.8}`` under ``{type: sgd}`` keeps no ``beta1``). Every key path keeps the file and line it
was written at, so later errors can point at it.

A chain is at most ``MAX_EXTENDS_DEPTH`` files deep, at most ``MAX_FILES`` files are read
for one config (a file extended twice counts twice), and all of them together hold at most
``yamlio.MAX_NODES`` values.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from nnctl.config.paths import join
from nnctl.config.yamlio import Budget, load_yaml, read_text
from nnctl.core.checks import cut, show
from nnctl.errors import ConfigError

Location = tuple[str, int | None]
MAX_EXTENDS_DEPTH = 32
MAX_FILES = 256


@dataclass
class RawConfig:
    """A merged, not yet validated config and where each of its key paths was written."""

    data: dict
    file: str
    locations: dict[str, Location] = field(default_factory=dict)

    def locate(self, path: str) -> Location:
        """File and line of ``path``, or of its closest written ancestor."""
        from nnctl.config.paths import parent

        probe = path
        while probe:
            if probe in self.locations:
                return self.locations[probe]
            probe = parent(probe)
        return self.file, None


@dataclass
class _Reading:
    """What reading one config has used so far: values (aliases expanded) and files."""

    budget: Budget = field(default_factory=Budget)
    files: int = 0


def read_config(path: str | Path) -> RawConfig:
    """Read ``path`` and everything it extends; ConfigError on unreadable files, cycles,
    chains that are too long and configs that are too large."""
    return _read(Path(path), str(path), (), _Reading())


def _read(path: Path, shown: str, chain: tuple[Path, ...], reading: _Reading) -> RawConfig:
    resolved = path.resolve()
    if resolved in chain:
        names = " -> ".join([*(p.name for p in chain), path.name])
        raise ConfigError("extends", f"extends cycle: {cut(names)}", file=shown)
    if len(chain) >= MAX_EXTENDS_DEPTH:
        problem = f"extends chain longer than {MAX_EXTENDS_DEPTH} files (from {chain[0].name})"
        raise ConfigError("extends", problem, file=shown)
    reading.files += 1
    if reading.files > MAX_FILES:
        problem = f"more than {MAX_FILES} files to read through extends"
        raise ConfigError("extends", problem, file=shown)
    data, lines = load_yaml(read_text(path, shown), shown, reading.budget)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"{show(data)}"
        raise ConfigError(
            "",
            f"top level must be a mapping of config keys (seed, data, model, ...); got {kind}",
            file=shown,
            line=1,
        )
    own = RawConfig(data, shown, {p: (shown, line) for p, line in lines.items()})
    bases = data.pop("extends", None)
    if bases is None:
        return own
    merged = None
    for index, base in enumerate(_base_list(bases, own)):
        key = "extends" if isinstance(bases, str) else f"extends[{index}]"
        base_path = path.parent / base
        try:
            raw = _read(base_path, str(base_path), (*chain, resolved), reading)
        except ConfigError as error:
            if error.path == "extends" or error.file != str(base_path) or error.line:
                raise
            file, line = own.locations.get(key, (shown, None))
            raise ConfigError(key, f"cannot extend '{base}': {error.message}", file, line) from None
        merged = raw if merged is None else merge_raw(merged, raw)
    own.locations = {p: loc for p, loc in own.locations.items() if not p.startswith("extends")}
    return merge_raw(merged, own)


def _base_list(bases, own: RawConfig) -> list[str]:
    items = [bases] if isinstance(bases, str) else bases
    if not isinstance(items, list) or not items or not all(isinstance(b, str) for b in items):
        file, line = own.locations.get("extends", (own.file, None))
        raise ConfigError(
            "extends", f"must be a file path or a list of paths; got {show(bases)}", file, line
        )
    return items


def deep_merge(base, overlay):
    """``overlay`` on top of ``base``: mappings merge recursively, everything else replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        if "type" in base and "type" in overlay and base["type"] != overlay["type"]:
            return copy.deepcopy(overlay)
        out = dict(base)
        for key, value in overlay.items():
            out[key] = deep_merge(base[key], value) if key in base else copy.deepcopy(value)
        return out
    return copy.deepcopy(overlay)


def merge_raw(base: RawConfig, overlay: RawConfig) -> RawConfig:
    """Merge two raw configs; each path keeps the location of the file its value came from."""
    data = deep_merge(base.data, overlay.data)
    locations: dict[str, Location] = {}
    _collect(data, "", base.locations, overlay.locations, locations)
    return RawConfig(data, overlay.file, locations)


def _collect(value, path: str, base: dict, overlay: dict, out: dict) -> None:
    if path:
        where = overlay.get(path) or base.get(path)
        if where:
            out[path] = where
    if isinstance(value, dict):
        for key, item in value.items():
            _collect(item, join(path, key), base, overlay, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _collect(item, join(path, index), base, overlay, out)
