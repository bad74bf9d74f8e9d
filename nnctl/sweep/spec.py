"""What a sweep is: a base config, shared overrides, and the trials to run.

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

Each trial is a list of ``KEY=VALUE`` overrides; ``expand`` numbers them and names their
folders (``003-optimizer.lr=0.01,model.layers.0.n_out=64``), and ``validate_trials`` loads
every trial's config before anything runs, reporting all errors at once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nnctl.config import load_config
from nnctl.config.paths import format_path, parse_path
from nnctl.config.yamlio import load_yaml, parse_scalar, read_text
from nnctl.core.checks import show
from nnctl.errors import ConfigError, ConfigErrors
from nnctl.fileio import user_path
from nnctl.registry import did_you_mean

SWEEP_KEYS = ("base", "set", "grid", "random")
RANDOM_KEYS = ("trials", "seed", "space")
SIGNIFICANT_DIGITS = 6  # random floats are rounded so the override text is the exact value
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
    """A base config, overrides shared by every trial, a grid and/or a random search."""

    base: Path
    overrides: tuple[str, ...] = ()
    grid: dict[str, list] = field(default_factory=dict)
    trials: int = 0  # random trials; 0 = no random search
    seed: int = 0
    space: dict[str, tuple[str, list]] = field(default_factory=dict)
    name: str = "sweep"

    def check_size(self, file: str | None = None) -> None:
        """ConfigError when the sweep has more than ``MAX_TRIALS`` trials."""
        if self.size() > MAX_TRIALS:
            raise ConfigError(
                "random.trials" if self.trials > MAX_TRIALS else "grid",
                f"{self.size():,} trials; a sweep runs at most {MAX_TRIALS:,}",
                file=file,
            )

    def size(self) -> int:
        """How many trials :meth:`expand` gives, without expanding them."""
        return math.prod(len(values) for values in self.grid.values()) * max(self.trials, 1)

    def expand(self) -> list[Trial]:
        """Every trial, in a fixed order: grid points (last key fastest) × random samples.

        ConfigError beyond ``MAX_TRIALS`` (each trial is a run directory)."""
        self.check_size()
        grid_points = [dict(zip(self.grid, values)) for values in
                       itertools.product(*self.grid.values())]  # fmt: skip
        samples = sample_space(self.space, self.trials, self.seed) if self.trials else [{}]
        params = [{**point, **sample} for point in grid_points for sample in samples]
        width = max(3, len(str(len(params) - 1)))
        return [Trial(i, trial_name(i, p, width), p) for i, p in enumerate(params)]

    def fingerprint(self) -> dict:
        """What identifies the sweep in its folder: base, shared overrides, trials."""
        return {"base": str(self.base), "set": list(self.overrides),
                "trials": [t.name for t in self.expand()]}  # fmt: skip

    def default_out(self) -> Path:
        """``runs/<name>-sweep-<hash>``: the same sweep always lands in the same folder."""
        digest = hashlib.sha256(json.dumps(self.fingerprint()).encode()).hexdigest()[:8]
        return Path("runs") / f"{self.name}-sweep-{digest}"


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


# --- random search ----------------------------------------------------------------------


def _uniform(rng: random.Random, low: float, high: float) -> float:
    return _round(rng.uniform(low, high))


def _loguniform(rng: random.Random, low: float, high: float) -> float:
    return _round(math.exp(rng.uniform(math.log(low), math.log(high))))


def _round(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


SAMPLERS = {
    "uniform": lambda rng, args: _uniform(rng, *args),
    "loguniform": lambda rng, args: _loguniform(rng, *args),
    "choice": lambda rng, args: rng.choice(args),
}


def sample_space(space: dict[str, tuple[str, list]], trials: int, seed: int) -> list[dict]:
    """``trials`` samples of the space, the same for the same seed (Python's Mersenne
    Twister, whose ``uniform`` and ``choice`` are stable across versions)."""
    rng = random.Random(seed)
    return [{key: SAMPLERS[kind](rng, args) for key, (kind, args) in space.items()}
            for _ in range(trials)]  # fmt: skip


def check_distribution(value, where: str) -> tuple[str, list]:
    """``{loguniform: [1e-4, 1e-1]}`` → ``("loguniform", [0.0001, 0.1])``; ConfigError if bad."""
    if not isinstance(value, dict) or len(value) != 1:
        raise ConfigError(where, "expected one of {uniform: [low, high]}, "
                          f"{{loguniform: [low, high]}}, {{choice: [values]}}; got {show(value)}")  # fmt: skip
    (kind, args), = value.items()  # fmt: skip
    if kind not in SAMPLERS:
        hint = did_you_mean(kind, list(SAMPLERS))
        raise ConfigError(where, f"unknown distribution '{kind}'{hint} "
                          f"(choose from {', '.join(SAMPLERS)})")  # fmt: skip
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{where}.choice", f"expected a non-empty list; got {show(args)}")
        return kind, args
    numbers = isinstance(args, list) and len(args) == 2 and all(
        isinstance(a, (int, float)) and not isinstance(a, bool) for a in args)  # fmt: skip
    if not numbers or not args[0] < args[1] or (kind == "loguniform" and args[0] <= 0):
        rule = "two positive numbers" if kind == "loguniform" else "two numbers"
        raise ConfigError(f"{where}.{kind}", f"expected [low, high], {rule} with low < high; "
                          f"got {show(args)}")  # fmt: skip
    return kind, [float(a) for a in args]


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
    """A sweep file (``base``, ``set``, ``grid``, ``random``) plus command-line options."""
    path = user_path(path)
    shown = str(path)
    data, lines = load_yaml(read_text(path, shown), shown)
    errors = []

    def error(key: str, message: str) -> None:
        errors.append(ConfigError(key, message, file=shown, line=lines.get(key)))

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
                     overrides=(*shared, *overrides))  # fmt: skip
    _read_grid(spec, data.get("grid"), error)
    _read_random(spec, data.get("random"), error)
    if errors:
        raise ConfigErrors(errors)
    try:
        add_grid(spec, grid, "--grid and the sweep file")
    except ConfigError as problem:
        raise ConfigError(problem.path, problem.message, file=shown) from None
    spec.check_size(shown)
    return spec


def _read_grid(spec: SweepSpec, grid, error) -> None:
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
            spec.grid[normalize_key(key, where)] = values
        except ConfigError as problem:
            error(where, problem.message)


def _read_random(spec: SweepSpec, block, error) -> None:
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
    for key, value in space.items():
        where = f"random.space.{key}"
        try:
            spec.space[normalize_key(key, where)] = check_distribution(value, where)
        except ConfigError as problem:
            error(problem.path, problem.message)
    spec.trials, spec.seed = trials, seed


# --- validation -------------------------------------------------------------------------


def validate_trials(spec: SweepSpec, trials: list[Trial]) -> None:
    """Load every trial's config; ConfigErrors with every problem, each naming its trials.

    A problem that every trial shares (a bad base config or ``--set``) is reported once."""
    if not trials or not (spec.grid or spec.trials):
        raise ConfigError("", "nothing to sweep: give --grid KEY=V1,V2,... or a sweep file "
                          "with grid: or random:")  # fmt: skip
    seen: dict[str, list[str]] = {}
    for trial in trials:
        try:
            load_config(spec.base, [*spec.overrides, *trial.overrides])
        except ConfigErrors as problems:
            for problem in problems.errors:
                seen.setdefault(str(problem), []).append(trial.name)
        except ConfigError as problem:
            seen.setdefault(str(problem), []).append(trial.name)
    if not seen:
        return
    errors = []
    for message, names in seen.items():
        if len(names) == len(trials) and len(trials) > 1:
            errors.append(ConfigError("", message))
            continue
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        errors.append(ConfigError("", f"trial {shown}: {message}"))
    raise ConfigErrors(errors)
