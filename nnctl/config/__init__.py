"""Declarative configs: YAML → validated, fully resolved config → network and optimizer.

Public API::

    config = load_config("configs/digits-mlp.yaml", ["optimizer.lr=0.01"])
    config.data      # the resolved dict (JSON data, every default filled in)
    config.hash()    # sha256 of its canonical JSON
    experiment = build(config)   # .network, .optimizer, .schedule, .spec, .config

Every problem raises ConfigError (one) or ConfigErrors (all found), each naming the file,
line and key path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from nnctl.config.build import Experiment, build
from nnctl.config.load import read_config
from nnctl.config.overrides import apply_overrides
from nnctl.config.validate import validate
from nnctl.errors import ConfigErrors


@dataclass
class Config:
    """A validated config.

    Attributes
    ----------
    data : dict
        The resolved config: ``seed``, ``data``, ``model``, ``optimizer``, ``schedule``,
        ``train``, every default filled in; JSON-serializable.
    path : Path
        The file it was loaded from.
    name : str
        The file's stem (``digits-mlp``).
    spec : DataSpec
        What the data looks like (input shape, classes), known without loading it.
    overrides : tuple of str
        The ``--set`` overrides applied.
    """

    data: dict
    path: Path
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
    resolved, spec, errors = validate(raw, Path(path).parent)
    if errors:
        raise ConfigErrors(errors)
    path = Path(path)
    return Config(resolved, path, path.stem, spec, tuple(overrides))


__all__ = ["Config", "Experiment", "build", "load_config"]
