"""Where runs and sweeps keep their files, and how those files are read back.

```
runs/digits-mlp-20261130-221500/     a run directory (default: runs/<config>-<timestamp>)
  config.yaml      the fully resolved config
  meta.json        versions, BLAS, seed, config hash, times, command line, status
  metrics.jsonl    one row per epoch (and metrics.csv, the same rows)
  checkpoints/     last.npz (resume), best.npz, epoch-NNNN.npz
  summary.json     best epoch and metrics, test metrics, training time
  curves.png       what ``nnctl plot`` draws by default
  model.onnx       what ``nnctl export`` writes by default (model.safetensors likewise)
  tensorboard/     event files of the ``tensorboard`` logger
  .lock            held by the process training the run (``nnctl.train.lock``)
runs/lr-width/                       a sweep folder
  sweep.json       the sweep's fingerprint (a different sweep may not reuse the folder)
  sweep.jsonl      one row per trial (and sweep.csv)
  study.journal    the search's Optuna study (tpe searches and early stopping only)
  000-optimizer.lr=0.01/   each trial: a run directory plus trial.json and trial.log
```

Every file is parsed by ``read_file``; the readers around it only decide what a missing or
malformed file means: ``read_required`` and ``read_metrics`` raise (the file must be there),
``load_json`` gives ``{}`` and ``RunFiles`` notes the problem and reads on (tables rebuilt
from folders show whatever is there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from nnctl.config.yamlio import parse_document
from nnctl.core.checks import show
from nnctl.errors import CheckpointError, NnctlError
from nnctl.fileio import user_path

RUNS_ROOT = Path("runs")
CONFIG_FILE = "config.yaml"
META_FILE = "meta.json"
SUMMARY_FILE = "summary.json"
METRICS_JSONL, METRICS_CSV = "metrics.jsonl", "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
LAST_CHECKPOINT, BEST_CHECKPOINT = "last.npz", "best.npz"
CURVES_FILE = "curves.png"
EXPORT_STEM = "model"  # nnctl export's default file: RUN_DIR/model.onnx
SWEEP_SPEC_FILE = "sweep.json"
SWEEP_JSONL, SWEEP_CSV = "sweep.jsonl", "sweep.csv"
TRIAL_FILE, TRIAL_LOG = "trial.json", "trial.log"
LOCK_FILE = ".lock"
STUDY_FILE = "study.journal"

RUN_FILES = (CONFIG_FILE, META_FILE, SUMMARY_FILE, METRICS_JSONL)


def epoch_checkpoint(epoch: int) -> str:
    """The name of the checkpoint kept for ``epoch`` with ``keep: all``."""
    return f"epoch-{epoch:04d}.npz"


def last_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT


def model_checkpoint(target: Path) -> Path:
    """The checkpoint that stands for ``target``: a run directory's reported checkpoint
    (``summary.json``), else its ``last.npz``; a file stands for itself. CheckpointError when
    neither exists."""
    target = user_path(target)
    if target.is_dir():
        if not is_run_dir(target):
            raise CheckpointError(
                f"{target}: not an nnctl run directory (no config.yaml/meta.json) or checkpoint"
            )
        return _reported_checkpoint(target)
    if target.exists():
        return target
    raise CheckpointError(f"{target}: no such run directory or checkpoint")


def _reported_checkpoint(run_dir: Path) -> Path:
    """The checkpoint the run's summary reports (it must lie in the run's checkpoints/),
    else the last one."""
    summary_path = run_dir / SUMMARY_FILE
    if not summary_path.exists():
        return last_checkpoint(run_dir)
    name = read_required(summary_path).get("checkpoint")
    folder = (run_dir / CHECKPOINT_DIR).resolve()
    if not isinstance(name, str) or (run_dir / name).resolve().parent != folder:
        raise CheckpointError(
            f"{summary_path}: 'checkpoint' must name a file in {CHECKPOINT_DIR}/; got {show(name)}"
        )
    return run_dir / name


# --- finding runs -----------------------------------------------------------------------


def is_run_dir(path: Path) -> bool:
    """A run that can be resumed or opened: it has its config and meta.json."""
    return (path / CONFIG_FILE).is_file() and (path / META_FILE).is_file()


def looks_like_run(path: Path) -> bool:
    """A folder with any of a run's files (a broken run still counts)."""
    return path.is_dir() and any((path / name).is_file() for name in RUN_FILES)


def enclosing_run(path: Path) -> Path | None:
    """The run directory or sweep folder that ``path`` is or lies in (at any depth), or
    None: the places whose files only nnctl writes. (A folder with a config.yaml alone is
    a project, not a run.)"""
    for folder in (Path(path).resolve(), *Path(path).resolve().parents):
        if is_run_dir(folder) or (folder / SWEEP_SPEC_FILE).is_file():
            return folder
    return None


def find_runs(root: Path) -> list[Path]:
    """``root`` if it is a run, else the runs in it and in its sub-folders (sweeps)."""
    if looks_like_run(root):
        return [root]
    found = []
    for child in _subdirs(root):
        if looks_like_run(child):
            found.append(child)
        else:
            found.extend(grandchild for grandchild in _subdirs(child) if looks_like_run(grandchild))
    return found


def _subdirs(path: Path) -> list[Path]:
    try:
        return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


# --- reading ----------------------------------------------------------------------------


def split_partial_line(text: str) -> tuple[str, str]:
    """(the complete lines, a partial last line): the last line when it has no newline and
    is not valid JSON, which is what a crash during an append leaves; else ""."""
    head, _, last = text.rpartition("\n")
    if not last.strip():
        return text, ""
    try:
        json.loads(last)
    except ValueError:
        return head + "\n" if head else "", last
    return text, ""


def parse_jsonl(text: str) -> list[dict]:
    """One JSON object per non-blank line, a partial last line ignored; ValueError naming
    the line otherwise."""
    numbered = []
    for number, line in enumerate(split_partial_line(text)[0].splitlines(), 1):
        if line.strip():
            try:
                numbered.append((number, json.loads(line)))
            except ValueError as error:
                raise ValueError(f"line {number}: {getattr(error, 'msg', error)}") from None
    wrong = [number for number, row in numbered if not isinstance(row, dict)]
    if wrong:
        raise ValueError(f"line {wrong[0]}: not a JSON object")
    return [row for _, row in numbered]


PARSERS = {
    ".json": ("JSON", json.loads),
    ".jsonl": ("JSON lines", parse_jsonl),
    ".yaml": ("YAML", parse_document),  # with the config loader's limits
}


def read_file(path: Path) -> dict | list[dict]:
    """A run or sweep file, parsed by its suffix: a mapping (``.json``, ``.yaml``) or a list
    of rows (``.jsonl``). FileNotFoundError when it is missing, ValueError when malformed."""
    path = Path(path)
    _, parse = PARSERS[path.suffix]
    try:
        value = parse(path.read_text(encoding="utf-8"))
    except RecursionError:  # JSON nested thousands deep
        raise ValueError("nested too deeply") from None
    if path.suffix != ".jsonl" and not isinstance(value, dict):
        raise ValueError("not a mapping")
    return value


def read_required(path: Path) -> dict:
    """A file a run cannot do without (its config, meta or summary); CheckpointError when it
    is missing or malformed."""
    try:
        return read_file(path)
    except FileNotFoundError as error:
        raise CheckpointError(f"{path}: not found") from error
    except ValueError as error:
        kind, _ = PARSERS[Path(path).suffix]
        raise CheckpointError(f"{path}: not valid {kind} ({error})") from error


def load_json(path: Path) -> dict:
    """A JSON mapping, or {} when the file is missing or malformed."""
    try:
        return read_file(path)
    except (OSError, ValueError):
        return {}


def read_metrics(run_dir: Path) -> list[dict]:
    """The epoch rows of a run's metrics.jsonl; NnctlError if there are none."""
    path = user_path(run_dir) / METRICS_JSONL
    try:
        rows = read_file(path)
    except FileNotFoundError:
        raise NnctlError(f"{run_dir}: no {METRICS_JSONL} (not a run directory?)") from None
    except (OSError, ValueError) as error:
        raise NnctlError(f"{path}: malformed ({error})") from None
    if not rows:
        raise NnctlError(f"{path}: no epochs logged yet")
    return rows


@dataclass
class RunFiles:
    """What a run directory holds, read without failing: a missing or malformed file reads
    as empty and is noted in ``problems`` (``no meta.json``, ``bad summary.json``; a missing
    summary or epoch log is no problem: the run has not finished, or not logged an epoch)."""

    path: Path
    config: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> RunFiles:
        files = cls(Path(path))
        files.config = files._read(CONFIG_FILE, {})
        files.meta = files._read(META_FILE, {})
        files.summary = files._read(SUMMARY_FILE, {})
        files.metrics = files._read(METRICS_JSONL, [])
        return files

    def _read(self, name: str, empty):
        try:
            return read_file(self.path / name)
        except FileNotFoundError:
            if name not in (SUMMARY_FILE, METRICS_JSONL):
                self.problems.append(f"no {name}")
        except (OSError, ValueError):
            self.problems.append(f"bad {name}")
        return empty

    @property
    def epochs(self) -> int | None:
        """The last epoch logged, else the summary's count."""
        return self.metrics[-1].get("epoch") if self.metrics else self.summary.get("epochs")

    @property
    def train_seconds(self) -> float | None:
        """Seconds spent in training steps over all sessions of the run: the summary's, else
        the logged epochs' sum (start-up, data loading and evaluation are not counted)."""
        if isinstance(self.summary.get("train_seconds"), (int, float)):
            return self.summary["train_seconds"]
        seconds = self.logged("seconds")
        return round(sum(seconds), 3) if seconds else None

    def best(self, key: str, pick=max):
        """``key`` of the summary's best epoch, else ``pick`` (max or min) of the logged
        values; None when neither has one."""
        best = self.summary.get("best")
        if isinstance(best, dict) and best.get(key) is not None:
            return best[key]
        return pick(self.logged(key), default=None)

    def logged(self, key: str) -> list[float]:
        """The numeric values of ``key`` over the epoch rows."""
        return [row[key] for row in self.metrics if isinstance(row.get(key), (int, float))]
