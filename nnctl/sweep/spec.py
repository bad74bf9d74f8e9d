"""What a sweep is: a base config, shared overrides, how it searches, and its trials.

A sweep comes from the command line (``--grid KEY=V1,V2``) or from a sweep file::

    base: ../digits-mlp.yaml          # relative to the sweep file
    set: [train.epochs=10]            # optional, applied to every trial
    grid:                             # cartesian product
      optimizer.lr: [0.01, 0.001]
      model.layers[0].n_out: [32, 64]
    random:                           # optional; crossed with the grid points
      trials: 8
      seed: 0
      space:
        optimizer.lr: {loguniform: [1.0e-4, 1.0e-1]}
        data.batch_size: {choice: [16, 32, 64]}

or, with a search that learns and a scheduler that stops trials early
(``nnctl.sweep.search``; the entries of ``space`` are ``nnctl.sweep.space``'s)::

    base: ../digits-mlp.yaml
    search: {type: tpe, trials: 30, seed: 0}       # grid | random | tpe
    space:
      optimizer.lr: {loguniform: [1.0e-4, 1.0e-1]}
      model.layers[0].n_out: [32, 64, 128]
    early_stopping: {type: asha, metric: val_accuracy, grace_period: 1, reduction_factor: 3}

Each trial is a list of ``KEY=VALUE`` overrides; ``expand`` numbers the trials of a grid or
random search and names their folders (``003-optimizer.lr=0.01,model.layers.0.n_out=64``);
a tpe search creates its trials as it goes (``make_trial``). ``nnctl.sweep.validate``
checks the whole sweep before anything runs.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nnctl.config.paths import format_path, parse_path
from nnctl.config.yamlio import load_yaml, parse_scalar, read_text
from nnctl.core.checks import show
from nnctl.errors import ConfigError, ConfigErrors
from nnctl.fileio import user_path
from nnctl.registry import did_you_mean
from nnctl.sweep.search import DEFAULT_METRIC, Scheduler, objective, read_scheduler, read_search
from nnctl.sweep.space import (  # noqa: F401  (sample_space, SIGNIFICANT_DIGITS: re-exported)
    SIGNIFICANT_DIGITS,
    Dimension,
    check_distribution,
    check_entry,
    sample_space,
)

SWEEP_KEYS = ("base", "set", "grid", "random", "search", "space", "early_stopping")
RANDOM_KEYS = ("trials", "seed", "space")
MAX_NAME = 120
MAX_TRIALS = 10_000  # each trial is a run directory; more is a mistake, or an alias bomb


@dataclass(frozen=True)
class Trial:
    """One run of the sweep: its index, folder name and ``KEY=VALUE`` overrides."""

    index: int
    name: str
    params: dict = field(hash=False)

    @property
    def overrides(self) -> list[str]:
        return [f"{key}={format_value(value)}" for key, value in self.params.items()]


@dataclass
class SweepSpec:
    """A base config, overrides shared by every trial, a grid and/or a random search, or
    a tpe search over ``space``; optionally a scheduler that stops trials early."""

    base: Path
    overrides: tuple[str, ...] = ()
    grid: dict[str, list] = field(default_factory=dict)
    trials: int = 0  # random (or tpe) trials; 0 = no random search
    seed: int = 0
    space: dict[str, Dimension] = field(default_factory=dict)
    name: str = "sweep"
    search: str = ""  # grid, random or tpe; "" = random if trials else grid
    metric: str = DEFAULT_METRIC  # what the search optimizes and the scheduler watches
    mode: str = "min"
    scheduler: Scheduler | None = None
    file: str | None = None  # the sweep file, for error locations
    origins: dict[str, str] = field(default_factory=dict)  # swept key → its path in the file
    lines: dict[str, int] = field(default_factory=dict)  # the file's key paths → lines

    @property
    def kind(self) -> str:
        return self.search or ("random" if self.trials else "grid")

    @property
    def adaptive(self) -> bool:
        """Trials made as the sweep goes (tpe), not known up front."""
        return self.kind == "tpe"

    @property
    def uses_study(self) -> bool:
        """Trials report every epoch to a study (a learning search or a scheduler)."""
        return self.adaptive or self.scheduler is not None

    @property
    def keys(self) -> list[str]:
        """Every swept key: the grid's, then the space's."""
        return [*self.grid, *(key for key in self.space if key not in self.grid)]

    def check_size(self, file: str | None = None) -> None:
        """ConfigError when the sweep has more than ``MAX_TRIALS`` trials."""
        if self.size() > MAX_TRIALS:
            raise ConfigError(
                self._trials_key() if self.trials > MAX_TRIALS else "grid",
                f"{self.size():,} trials; a sweep runs at most {MAX_TRIALS:,}",
                file=file,
            )

    def _trials_key(self) -> str:
        return "search.trials" if self.search else "random.trials"

    def size(self) -> int:
        """How many trials :meth:`expand` gives, without expanding them."""
        return math.prod(len(values) for values in self.grid.values()) * max(self.trials, 1)

    def expand(self) -> list[Trial]:
        """Every trial, in a fixed order: grid points (last key fastest) × random samples;
        [] for a tpe search (its trials come from ``make_trial``).

        ConfigError beyond ``MAX_TRIALS`` (each trial is a run directory)."""
        self.check_size()
        if self.adaptive:
            return []
        grid_points = [dict(zip(self.grid, values)) for values in
                       itertools.product(*self.grid.values())]  # fmt: skip
        samples = sample_space(self.space, self.trials, self.seed) if self.trials else [{}]
        params = [{**point, **sample} for point in grid_points for sample in samples]
        width = max(3, len(str(len(params) - 1)))
        return [Trial(i, trial_name(i, p, width), p) for i, p in enumerate(params)]

    def make_trial(self, index: int, params: dict) -> Trial:
        """A trial of a tpe search (named like the others)."""
        return Trial(index, trial_name(index, params, max(3, len(str(self.trials - 1)))), params)

    def fingerprint(self) -> dict:
        """What identifies the sweep in its folder: base, shared overrides, trials (for a
        tpe search its space and settings, without the number of trials: more may be
        asked for later), the scheduler."""
        found = {"base": str(self.base), "set": list(self.overrides)}
        if self.adaptive:
            found["search"] = {"type": "tpe", "seed": self.seed, "metric": self.metric,
                               "mode": self.mode}  # fmt: skip
            found["space"] = {key: list(dimension) for key, dimension in self.space.items()}
        else:
            found["trials"] = [t.name for t in self.expand()]
        if self.scheduler is not None:
            found["early_stopping"] = self.scheduler.to_dict()
        return found

    def default_out(self) -> Path:
        """``runs/<name>-sweep-<hash>``: the same sweep always lands in the same folder."""
        digest = hashlib.sha256(json.dumps(self.fingerprint()).encode()).hexdigest()[:8]
        return Path("runs") / f"{self.name}-sweep-{digest}"

    def error(self, path: str, message: str) -> ConfigError:
        """A ConfigError at ``path`` of the sweep file (its line, else its closest written
        ancestor's); a key swept from the command line is ``--grid KEY``."""
        return ConfigError(path, message, file=self.file, line=line_of(self.lines, path))

    def where(self, key: str) -> str:
        """The path of the swept ``key`` in the sweep file (``space.optimizer.lr``)."""
        return self.origins.get(key, f"--grid {key}")


# --- values and names -------------------------------------------------------------------


def format_value(value) -> str:
    """A value as ``--set`` text that reads back as the same value (``parse_scalar``)."""
    if isinstance(value, list):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
    if isinstance(value, float):  # the shortest text that reads back as this float
        short = f"{value:g}"
        parsed = parse_scalar(short)
        return short if isinstance(parsed, float) and parsed == value else repr(value)
    if isinstance(value, str):
        try:
            plain = parse_scalar(value) == value and "," not in value
        except yaml.YAMLError:  # not valid as plain YAML ("[", "{", ...): quote it
            plain = False
        return value if plain else json.dumps(value)
    return json.dumps(value)


def trial_name(index: int, params: dict, width: int = 3) -> str:
    """``007-optimizer.lr=0.01,model.layers.0.n_out=64``, safe as a folder name."""
    parts = [f"{_name_key(key)}={format_value(value)}" for key, value in params.items()]
    text = re.sub(r"[^A-Za-z0-9._=,+\-]+", "_", ",".join(parts)).strip("_")
    return f"{index:0{width}d}" + (f"-{text[:MAX_NAME]}" if text else "")


def _name_key(key: str) -> str:
    return re.sub(r"\[(-?\d+)\]", r".\1", key)


def normalize_key(key: str, where: str) -> str:
    try:
        return format_path(parse_path(str(key).strip()))
    except ValueError as error:
        raise ConfigError(where, str(error)) from None


# --- building a spec --------------------------------------------------------------------


def parse_grid_option(text: str) -> tuple[str, list]:
    """``"optimizer.lr=0.1,0.01"`` → ``("optimizer.lr", [0.1, 0.01])``; ValueError if bad.

    The values are read as one YAML flow list, so ``kernel_shape=[3, 3],[5, 5]`` works."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise ValueError(f"expected KEY=V1,V2,... (e.g. optimizer.lr=0.1,0.01); got {show(text)}")
    try:
        parsed = parse_scalar(f"[{values}]")
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ValueError(f"cannot read the values of {show(text)} as YAML: {problem}") from None
    if not parsed:
        raise ValueError(f"no values in {show(text)}")
    return normalize_key(key, "--grid"), parsed


def is_sweep_file(path: str | Path) -> bool:
    """A YAML mapping with a ``base:`` key (a training config has none)."""
    try:
        data, _ = load_yaml(read_text(Path(path), str(path)), str(path))
    except ConfigError:
        return False
    return isinstance(data, dict) and "base" in data


def spec_from_config(config: str | Path, overrides=(), grid=()) -> SweepSpec:
    """A sweep over ``config`` from ``--set`` and ``--grid`` options."""
    spec = SweepSpec(base=user_path(config).resolve(), overrides=tuple(overrides),
                     name=Path(config).stem)  # fmt: skip
    add_grid(spec, grid, "--grid")
    return spec


def add_grid(spec: SweepSpec, grid_options, where: str) -> None:
    for text in grid_options:
        key, values = parse_grid_option(text)
        if key in spec.grid:
            raise ConfigError("grid", f"{key} is swept twice ({where})")
        spec.grid[key] = values


def spec_from_file(path: str | Path, overrides=(), grid=()) -> SweepSpec:
    """A sweep file (``base``, ``set``, ``grid``, ``random`` or ``search`` and ``space``,
    ``early_stopping``) plus command-line options; ConfigErrors lists every problem with
    its line."""
    path = user_path(path)
    shown = str(path)
    data, lines = load_yaml(read_text(path, shown), shown)
    errors = []

    def error(key: str, message: str) -> None:
        errors.append(ConfigError(key, message, file=shown, line=line_of(lines, key)))

    if not isinstance(data, dict):
        raise ConfigError("", f"expected a mapping with {', '.join(SWEEP_KEYS)}", file=shown)
    for key in data:
        if key not in SWEEP_KEYS:
            error(key, f"unknown key{did_you_mean(key, list(SWEEP_KEYS))} "
                  f"(a sweep file has {', '.join(SWEEP_KEYS)})")  # fmt: skip
    base = data.get("base")
    if not isinstance(base, str) or not base:
        error("base", f"expected the path of a config file; got {show(base)}")
    shared = data.get("set") or []
    if not isinstance(shared, list) or not all(isinstance(s, str) and "=" in s for s in shared):
        error("set", f"expected a list of KEY=VALUE strings; got {show(shared)}")
        shared = []
    spec = SweepSpec(base=(path.parent / str(base)).resolve(), name=path.stem,
                     overrides=(*shared, *overrides), file=shown, lines=lines)  # fmt: skip
    _read_grid(spec, data.get("grid"), error, lines)
    _read_random(spec, data.get("random"), error, lines)
    _read_search(spec, data, error, lines)
    if errors:
        raise ConfigErrors(errors)
    try:
        add_grid(spec, grid, "--grid and the sweep file")
    except ConfigError as problem:
        raise ConfigError(problem.path, problem.message, file=shown) from None
    spec.check_size(shown)
    return spec


def line_of(lines: dict[str, int], key: str) -> int | None:
    """The line of ``key``, else of its closest written ancestor."""
    while key:
        if key in lines:
            return lines[key]
        key = key.rpartition(".")[0]
    return None


def _keep(spec: SweepSpec, key: str, where: str, lines: dict[str, int]) -> str:
    """The normalized ``key``, remembering where it was written."""
    normal = normalize_key(key, where)
    spec.origins[normal] = where
    return normal


def _read_grid(spec: SweepSpec, grid, error, lines) -> None:
    if grid is None:
        return
    if not isinstance(grid, dict):
        error("grid", f"expected a mapping of KEY: [values]; got {show(grid)}")
        return
    for key, values in grid.items():
        where = f"grid.{key}"
        if not isinstance(values, list) or not values:
            error(where, f"expected a non-empty list of values; got {show(values)}")
            continue
        try:
            spec.grid[_keep(spec, key, where, lines)] = values
        except ConfigError as problem:
            error(where, problem.message)


def _read_random(spec: SweepSpec, block, error, lines) -> None:
    if block is None:
        return
    if not isinstance(block, dict):
        error("random", f"expected a mapping with {', '.join(RANDOM_KEYS)}; got {show(block)}")
        return
    for key in block:
        if key not in RANDOM_KEYS:
            error(f"random.{key}", f"unknown key{did_you_mean(key, list(RANDOM_KEYS))}")
    trials, seed, space = block.get("trials"), block.get("seed", 0), block.get("space")
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        error("random.trials", f"must be a positive integer; got {show(trials)}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        error("random.seed", f"must be an integer; got {show(seed)}")
    if not isinstance(space, dict) or not space:
        error("random.space", f"expected a mapping of KEY: {{distribution}}; got {show(space)}")
        return
    _read_space(spec, space, "random.space", error, lines, check_distribution)
    spec.trials, spec.seed = trials, seed


def _read_space(spec: SweepSpec, space: dict, where: str, error, lines, check) -> None:
    for key, value in space.items():
        path = f"{where}.{key}"
        try:
            spec.space[_keep(spec, key, path, lines)] = check(value, path)
        except ConfigError as problem:
            error(problem.path, problem.message)


def _read_search(spec: SweepSpec, data: dict, error, lines) -> None:
    """``search:``, ``space:`` and ``early_stopping:``."""
    search = read_search(data.get("search"), error)
    space = data.get("space")
    if "search" not in data and space is not None:
        error("space", "a space needs search: {type: grid | random | tpe, ...}")
    if search is not None:
        _search_space(spec, search.type, data, space, error, lines)
        spec.search, spec.trials, spec.seed = search.type, search.trials, search.seed
    scheduler = read_scheduler(data.get("early_stopping"), error, search and search.metric)
    spec.scheduler = scheduler
    spec.metric, spec.mode = objective(search, scheduler, error)


def _search_space(spec: SweepSpec, kind: str, data: dict, space, error, lines) -> None:
    if "random" in data:
        error("random", "use search: {type: random, ...} with space:, or random:; not both")
    if kind == "tpe" and "grid" in data:
        error("grid", "a tpe search takes its values from space: (a list is a choice)")
    if not isinstance(space, dict) or not space:
        if kind != "grid" or not spec.grid:
            error("space", f"expected a mapping of KEY: [values] or {{distribution}}; "
                  f"got {show(space)}")  # fmt: skip
        return
    if kind != "grid":
        _read_space(spec, space, "space", error, lines, check_entry)
        return
    for key, values in space.items():
        where = f"space.{key}"
        if not isinstance(values, list) or not values:
            error(where, f"a grid takes a non-empty list of values; got {show(values)} (use "
                  "search: {type: random | tpe} for distributions)")  # fmt: skip
            continue
        try:
            normal = _keep(spec, key, where, lines)
        except ConfigError as problem:
            error(where, problem.message)
            continue
        if normal in spec.grid:
            error(where, f"{normal} is also in grid:")
        spec.grid[normal] = values
