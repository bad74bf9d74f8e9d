"""Starting and finishing a run directory: the folder, the resolved config and meta.json.

The file names and readers are ``nnctl.layout``'s; this is the training side that writes.
"""

from __future__ import annotations

import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import yaml

from nnctl import __version__, layout
from nnctl.errors import NnctlError
from nnctl.fileio import atomic_write_json, atomic_write_text, make_dirs, user_path


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def default_run_dir(config_name: str, root: Path = layout.RUNS_ROOT) -> Path:
    """``runs/<config-name>-<timestamp>``, with ``-2``, ``-3``... if that exists already."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = root / f"{config_name}-{stamp}"
    suffix = 2
    while candidate.exists():
        candidate = root / f"{config_name}-{stamp}-{suffix}"
        suffix += 1
    return candidate


def prepare_new_run(path: Path) -> Path:
    """Create ``path`` for a new run; refuse to reuse a folder that holds a run already."""
    path = user_path(path)
    if path.exists() and not path.is_dir():
        raise NnctlError(f"{path}: exists and is not a directory")
    checkpoints = path / layout.CHECKPOINT_DIR
    if path.is_dir() and (layout.is_run_dir(path) or checkpoints.exists()):
        raise NnctlError(
            f"{path}: already holds a run; resume it with 'nnctl resume {path}' "
            "or choose another --out"
        )
    make_dirs(path, "run directory")
    make_dirs(checkpoints, "run directory")
    return path


def blas_info() -> str:
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{deps.get('name', '?')} {deps.get('version', '')}".strip()
    except (KeyError, TypeError, AttributeError):  # not a stable numpy API
        return "unknown"


def write_config(run_dir: Path, config: dict) -> None:
    atomic_write_text(run_dir / layout.CONFIG_FILE, yaml.safe_dump(config, sort_keys=False))


def start_meta(run_dir: Path, config, argv: list[str]) -> None:
    """Write the new run's meta.json: versions, seed, config hash, command, status running."""
    meta = {
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
    atomic_write_json(run_dir / layout.META_FILE, meta)


def finish_meta(run_dir: Path, status: str) -> None:
    """Record the end time and final status in meta.json."""
    path = run_dir / layout.META_FILE
    meta = layout.read_required(path) if path.exists() else {}
    meta.update(end_time=now_iso(), status=status)
    atomic_write_json(path, meta)


def write_summary(run_dir: Path, summary: dict) -> None:
    atomic_write_json(run_dir / layout.SUMMARY_FILE, summary)


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
