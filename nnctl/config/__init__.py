"""Declarative configs: YAML → validated, fully resolved config → network and optimizer.

Public API::

    config = load_config("configs/digits-mlp.yaml", ["optimizer.lr=0.01"])
    config = config_from_mapping(checkpoint_meta["config"], "best", "run/best.npz")
    config.data      # the resolved dict (JSON data, every default filled in)
    config.hash()    # sha256 of its canonical JSON
    experiment = build(config)   # .network, .optimizer, .schedule, .spec, .config

Every problem raises ConfigError (one) or ConfigErrors (all found), each naming the file,
line and key path.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nnctl.config.build import Experiment, build
from nnctl.config.load import RawConfig, read_config
from nnctl.config.overrides import apply_overrides
from nnctl.config.validate import validate
from nnctl.core.checks import show
from nnctl.errors import ConfigError, ConfigErrors


@dataclass
class Config:
    """A validated config.

    Attributes
    ----------
    data : dict
        The resolved config: ``seed``, ``data``, ``model``, ``optimizer``, ``schedule``,
        ``train``, every default filled in; JSON-serializable.
    path : Path or None
        The file it was loaded from (None for a mapping that was never a file).
    name : str
        The file's stem (``digits-mlp``).
    spec : DataSpec
        What the data looks like (input shape, classes), known without loading it.
    overrides : tuple of str
        The ``--set`` overrides applied.
    """

    data: dict
    path: Path | None
    name: str
    spec: object = field(default=None, repr=False)
    overrides: tuple[str, ...] = ()

    @property
    def seed(self) -> int:
        return self.data["seed"]

    def canonical_json(self) -> str:
        return json.dumps(self.data, sort_keys=True, separators=(",", ":"), allow_nan=False)

    def hash(self) -> str:
        """Stable sha256 hex digest of the resolved config's canonical JSON."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read, extend, override, validate and resolve the config at ``path``.

    Raises ConfigError for unreadable files, ConfigErrors listing every problem otherwise.
    """
    raw = read_config(path)
    apply_overrides(raw, overrides)
    resolved, spec = _validated(raw, Path(path).parent)
    path = Path(path)
    return Config(resolved, path, path.stem, spec, tuple(overrides))


def config_from_mapping(
    data: dict, name: str = "config", source: str = "config", spec=None
) -> Config:
    """Validate and resolve an already parsed config mapping (a run's or a checkpoint's).

    Errors name ``source`` as their file, without line numbers (there is no YAML text);
    relative data paths resolve against the current directory. With ``spec`` (the DataSpec
    a checkpoint recorded) no data file is opened. Raises ConfigError (not a mapping) or
    ConfigErrors.
    """
    if not isinstance(data, dict):
        raise ConfigError("", f"config must be a mapping of config keys; got {show(data)}", source)
    raw = RawConfig(copy.deepcopy(data), source)
    resolved, spec = _validated(raw, Path.cwd(), spec)
    return Config(resolved, None, name, spec)


def _validated(raw: RawConfig, base_dir: Path, spec=None) -> tuple[dict, object]:
    resolved, spec, errors = validate(raw, base_dir, spec)
    if errors:
        raise ConfigErrors(errors)
    return resolved, spec


__all__ = ["Config", "Experiment", "build", "config_from_mapping", "load_config"]
