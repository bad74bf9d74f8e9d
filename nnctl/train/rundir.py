"""Run directories: where a training run keeps its config, metadata, logs and checkpoints.

```
runs/digits-mlp-20261130-221500/
  config.yaml      the fully resolved config
  meta.json        versions, BLAS, seed, config hash, times, command line, status
  metrics.jsonl    one row per epoch (and metrics.csv)
  checkpoints/     last.npz (resume), best.npz, epoch-NNNN.npz
  summary.json     best epoch and metrics, test metrics, wall time
```
"""

from __future__ import annotations

import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

from nnctl import __version__
from nnctl.errors import CheckpointError, NnctlError
from nnctl.train.checkpoint import atomic_write_text

CONFIG_FILE, META_FILE, SUMMARY_FILE = "config.yaml", "meta.json", "summary.json"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_run_dir(config_name: str, root: Path = Path("runs")) -> Path:
    """``runs/<config-name>-<timestamp>``, with ``-2``, ``-3``... if that exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{config_name}-{stamp}"
    suffix = 2
    while candidate.exists():
        candidate = root / f"{config_name}-{stamp}-{suffix}"
        suffix += 1
    return candidate


def is_run_dir(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() and (path / META_FILE).is_file()


def prepare_new_run(path: Path) -> Path:
    """Create ``path`` for a new run; refuse to reuse a folder that holds a run already."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise NnctlError(f"{path}: exists and is not a directory")
    if path.is_dir() and (is_run_dir(path) or (path / "checkpoints").exists()):
        raise NnctlError(
            f"{path}: already holds a run; resume it with 'nnctl resume {path}' "
            "or choose another --out"
        )
    (path / "checkpoints").mkdir(parents=True, exist_ok=True)
    return path


def blas_info() -> str:
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{deps.get('name', '?')} {deps.get('version', '')}".strip()
    except (KeyError, TypeError, AttributeError):  # not a stable numpy API
        return "unknown"


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise CheckpointError(f"{path}: not found") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: not valid JSON ({error})") from error


def write_config(run_dir: Path, config: dict) -> None:
    atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))


def start_meta(config, argv: list[str]) -> dict:
    return {
        "nnctl": __version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "blas": blas_info(),
        "seed": config.data.get("seed", 0),
        "config_hash": config.hash(),
        "config_file": str(config.path) if config.path else None,
        "command": argv or sys.argv,
        "start_time": now_iso(),
        "end_time": None,
        "status": "running",
    }


def finish_meta(run_dir: Path, status: str) -> None:
    path = run_dir / META_FILE
    meta = read_json(path) if path.exists() else {}
    meta.update(end_time=now_iso(), status=status)
    write_json(path, meta)


def flatten_config(value, prefix: str = "") -> dict:
    """{"a": {"b": [1, 2]}} → {"a.b[0]": 1, "a.b[1]": 2}."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(flatten_config(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for index, item in enumerate(value):
            out.update(flatten_config(item, f"{prefix}[{index}]"))
        return out or {prefix: []}
    return {prefix: value}


def config_differences(old: dict, new: dict) -> list[str]:
    """Dotted keys whose values differ between two resolved configs."""
    a, b = flatten_config(old), flatten_config(new)
    return sorted(
        key for key in set(a) | set(b) if a.get(key, "<absent>") != b.get(key, "<absent>")
    )
