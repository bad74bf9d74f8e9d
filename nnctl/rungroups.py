"""``nnctl runs --group-by KEY``: runs grouped by config values, mean ± std in each group.

A group is every run whose resolved config has the same values at the given key paths
(``optimizer.lr``, ``model.layers[0].n_out``); the other keys (seeds, typically) vary
within it. Each metric is summarized over the runs that have it: mean, sample standard
deviation (None for a single run) and count.
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from nnctl import layout
from nnctl.config.paths import format_path, parse_path
from nnctl.errors import NnctlError
from nnctl.registry import did_you_mean
from nnctl.runlist import RunRow
from nnctl.train.resume import flatten_config

GROUP_METRICS = ("val_accuracy", "test_accuracy", "epochs", "train_seconds")
MISSING = object()


@dataclass
class RunGroup:
    """The runs that share ``values``; ``metrics[name] = {mean, std, n}``."""

    values: dict
    runs: list[str] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"group": self.values, "n": len(self.runs), "statuses": self.statuses,
                **self.metrics, "runs": self.runs}  # fmt: skip


def parse_keys(text: str) -> list[str]:
    """``"optimizer.lr,model.layers.0.n_out"`` → normalized key paths; NnctlError if bad."""
    keys = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            keys.append(format_path(parse_path(part)))
        except ValueError as error:
            raise NnctlError(f"--group-by: {error}") from None
    if not keys:
        raise NnctlError("--group-by: expected KEY[,KEY...] (e.g. optimizer.lr)")
    return keys


def config_value(config, key: str):
    """The value at ``key`` in a config mapping; MISSING when it has none."""
    for part in parse_path(key):
        ok = isinstance(config, dict) and part in config
        ok = ok or (isinstance(config, list) and isinstance(part, int) and -len(config) <= part
                    < len(config))  # fmt: skip
        if not ok:
            return MISSING
        config = config[part]
    return config


def read_config(run_dir: Path) -> dict:
    """A run's resolved config.yaml, or {} when it is missing or malformed."""
    try:
        config = layout.read_file(Path(run_dir) / layout.CONFIG_FILE)
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def summarize(values: list[float]) -> dict:
    """{mean, std, n} of the finite values (None where undefined)."""
    values = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else None
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def _sort_key(group: RunGroup):
    return [(0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool)
            else (1, 0, json.dumps(v)) for v in group.values.values()]  # fmt: skip


def group_runs(rows: list[RunRow], keys: list[str]) -> list[RunGroup]:
    """Groups of ``rows`` by their config values at ``keys``, sorted by those values."""
    configs = [read_config(row.path) for row in rows]
    for key in keys:
        if configs and all(config_value(c, key) is MISSING for c in configs):
            known = sorted(flatten_config(configs[0]))
            raise NnctlError(f"--group-by: no run's config has {key!r}{did_you_mean(key, known)}")
    groups: dict[str, RunGroup] = {}
    for row, config in zip(rows, configs):
        values = {key: _shown(config_value(config, key)) for key in keys}
        group = groups.setdefault(json.dumps(values, sort_keys=True), RunGroup(values))
        group.runs.append(row.name)
        status = row.status or "?"
        group.statuses[status] = group.statuses.get(status, 0) + 1
    by_name = {row.name: row for row in rows}
    for group in groups.values():
        members = [by_name[name] for name in group.runs]
        group.metrics = {m: summarize([getattr(r, m) for r in members]) for m in GROUP_METRICS}
    return sorted(groups.values(), key=_sort_key)


def _shown(value):
    return None if value is MISSING else value
