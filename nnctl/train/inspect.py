"""Inspection tools behind ``nnctl time``, ``gradcheck``, ``runs`` and ``plot``.

Everything here works on built networks and run directories and returns plain data; the
click layer (``nnctl.commands.tools``) only parses options and prints.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import yaml

from nnctl.core import NeuralNetwork
from nnctl.errors import NnctlError
from nnctl.train import rundir

# --- synthetic data -------------------------------------------------------------------


def synthetic_batch(network: NeuralNetwork, spec, batch_size: int, rng: np.random.Generator):
    """Random normal inputs of ``spec.input_shape`` and targets of the network's output
    shape: one-hot rows for classification, random normal values for regression."""
    X = rng.standard_normal((batch_size, *spec.input_shape)).astype(network.dtype)
    out_shape = network.output_shapes(spec.input_shape)[-1]
    if spec.task == "classification":
        n_classes = out_shape[-1]
        labels = rng.integers(0, n_classes, size=(batch_size, *out_shape[:-1]))
        Y = np.eye(n_classes, dtype=network.dtype)[labels]  # (batch, ..., n_classes)
    else:
        Y = rng.standard_normal((batch_size, *out_shape)).astype(network.dtype)
    return X, Y


# --- nnctl time -----------------------------------------------------------------------


@dataclass
class LayerTiming:
    index: int
    layer: str
    output_shape: tuple[int, ...]
    forward_ms: float
    backward_ms: float


@dataclass
class TimingReport:
    """Median milliseconds per layer (run one by one) and per whole training step (run as
    the network trains, with its fused stages)."""

    batch_size: int
    iterations: int
    layers: list[LayerTiming]
    forward_ms: float
    backward_ms: float
    step_ms: float
    samples_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _layer_pass(network: NeuralNetwork, X, Y) -> tuple[list[float], list[float]]:
    """One forward and backward pass layer by layer; milliseconds of each layer."""
    forward, backward = [], []
    for layer in network.layers:
        start = time.perf_counter()
        X = layer.forward(X)
        forward.append(_ms(start))
    fused = network.fused_output
    dLdY = network.loss.backward_logits(Y, X) if fused else network.loss.backward(Y, X)
    for position, layer in reversed(list(enumerate(network.layers))):
        start = time.perf_counter()
        last = position == len(network.layers) - 1
        dLdY = layer.backward_linear(dLdY) if fused and last else layer.backward(dLdY)
        backward.append(_ms(start))
    return forward, backward[::-1]


def _step(network: NeuralNetwork, X, Y) -> tuple[float, float]:
    start = time.perf_counter()
    out = network.forward(X)
    forward = _ms(start)
    start = time.perf_counter()
    network.backward(Y, out)
    return forward, _ms(start)


def time_network(network: NeuralNetwork, spec, batch_size: int, iterations: int,
                 warmup: int = 2, seed: int = 0) -> TimingReport:  # fmt: skip
    """Time ``iterations`` training passes (after ``warmup``) on a synthetic batch.

    Per-layer times call each layer's ``forward``/``backward`` in sequence; the step times
    run ``network.forward``/``backward`` (including the network's fused conv→pool stages),
    which is what training pays.
    """
    network.train()
    X, Y = synthetic_batch(network, spec, batch_size, np.random.default_rng(seed))
    for _ in range(warmup):
        _layer_pass(network, X, Y)
        _step(network, X, Y)
    layer_runs = [_layer_pass(network, X, Y) for _ in range(iterations)]
    step_runs = [_step(network, X, Y) for _ in range(iterations)]
    shapes = network.output_shapes(spec.input_shape)
    layers = [
        LayerTiming(
            index=i,
            layer=layer.type_name,
            output_shape=tuple(shapes[i]),
            forward_ms=statistics.median(run[0][i] for run in layer_runs),
            backward_ms=statistics.median(run[1][i] for run in layer_runs),
        )
        for i, layer in enumerate(network.layers)
    ]
    steps = [f + b for f, b in step_runs]
    step_ms = statistics.median(steps)
    return TimingReport(
        batch_size=batch_size,
        iterations=iterations,
        layers=layers,
        forward_ms=statistics.median(f for f, _ in step_runs),
        backward_ms=statistics.median(b for _, b in step_runs),
        step_ms=step_ms,
        samples_per_s=batch_size / (step_ms / 1000.0) if step_ms > 0 else float("inf"),
    )


# --- nnctl gradcheck ------------------------------------------------------------------


@dataclass
class GradCheck:
    index: int
    layer: str
    parameter: str
    shape: tuple[int, ...]
    checked: int
    max_relative_error: float


def _loss_function(network: NeuralNetwork, X, Y):
    """The loss as a function of the parameters. The network's generator is reset before
    every forward, so dropout draws the same mask in every evaluation."""
    state = network.rng.bit_generator.state

    def loss() -> float:
        network.rng.bit_generator.state = state
        return float(network.loss_value(Y, network.forward(X)))

    def backward() -> None:
        network.rng.bit_generator.state = state
        network.backward(Y, network.forward(X))

    return loss, backward


def _check_parameter(loss, param, grad, entries, eps: float) -> float:
    """max |analytic - numeric| over ``entries`` relative to the gradient's scale."""
    flat, analytic = param.reshape(-1), grad.reshape(-1)[entries]
    numeric = np.empty(len(entries))
    for n, k in enumerate(entries):
        original = flat[k]
        flat[k] = original + eps
        plus = loss()
        flat[k] = original - eps
        minus = loss()
        flat[k] = original
        numeric[n] = (plus - minus) / (2 * eps)
    if not len(entries):
        return 0.0
    scale = max(np.abs(grad).max(), np.abs(numeric).max(), 1e-8)
    return float(np.abs(analytic - numeric).max() / scale)


def gradcheck(network: NeuralNetwork, spec, batch_size: int = 4, samples: int = 30,
              eps: float = 1e-6, seed: int = 0) -> list[GradCheck]:  # fmt: skip
    """Compare backward's gradients with central differences for every parameter.

    Tensors with more than ``samples`` entries are checked on ``samples`` entries chosen at
    random. The error of a parameter is ``max |analytic - numeric|`` over the checked entries
    divided by ``max(max |analytic|, max |numeric|, 1e-8)``: relative to the scale of the
    gradient, so that tiny entries do not drown in finite-difference noise.
    """
    if network.dtype != np.float64:
        raise NnctlError(f"gradcheck needs a float64 network; got {network.dtype}")
    rng = np.random.default_rng(seed)
    network.train()
    X, Y = synthetic_batch(network, spec, batch_size, rng)
    loss, backward = _loss_function(network, X, Y)
    backward()
    analytic = {key: grad.copy() for key, _, grad in network.param_grads()}
    results = []
    for index, layer in enumerate(network.layers):
        for name, param in layer.parameters.items():
            grad = analytic[f"layers.{index}.{name}"]
            size = param.size
            entries = np.arange(size) if size <= samples else rng.choice(size, samples, False)
            error = _check_parameter(loss, param, grad, entries, eps)
            results.append(GradCheck(index, layer.type_name, name, tuple(param.shape),
                                     len(entries), error))  # fmt: skip
    return results


# --- nnctl runs -----------------------------------------------------------------------

RUN_FILES = (rundir.CONFIG_FILE, rundir.META_FILE, rundir.SUMMARY_FILE, "metrics.jsonl")


def looks_like_run(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in RUN_FILES)


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


@dataclass
class RunRow:
    """One line of ``nnctl runs``; None where a value is unknown."""

    name: str
    path: str
    config: str | None = None
    optimizer: str | None = None
    lr: float | None = None
    batch_size: int | None = None
    epochs: int | None = None
    epochs_planned: int | None = None
    status: str | None = None
    val_accuracy: float | None = None
    test_accuracy: float | None = None
    wall_seconds: float | None = None
    problems: list[str] = field(default_factory=list)


def _read(path: Path, parse, problems: list[str]):
    """Parsed file, or None (noting why) when it is missing or malformed."""
    if not path.is_file():
        if path.name != rundir.SUMMARY_FILE:  # no summary yet: the run is not finished
            problems.append(f"no {path.name}")
        return None
    try:
        value = parse(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        problems.append(f"bad {path.name}")
        return None
    if path.suffix != ".jsonl" and not isinstance(value, dict):
        problems.append(f"bad {path.name}")
        return None
    return value


def _jsonl(text: str) -> list[dict]:
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    if not all(isinstance(row, dict) for row in rows):
        raise ValueError("not one JSON object per line")
    return rows


def _get(mapping, *keys):
    for key in keys:
        if not isinstance(mapping, dict):
            return None
        mapping = mapping.get(key)
    return mapping


def _seconds_between(start, end) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


def read_run(path: Path, root: Path) -> RunRow:
    """The table row of the run in ``path``; unreadable files are listed in ``problems``."""
    name = path.name if path == root else path.relative_to(root).as_posix()
    row = RunRow(name=name, path=str(path))
    config = _read(path / rundir.CONFIG_FILE, yaml.safe_load, row.problems) or {}
    meta = _read(path / rundir.META_FILE, json.loads, row.problems) or {}
    summary = _read(path / rundir.SUMMARY_FILE, json.loads, row.problems) or {}
    metrics = _read(path / "metrics.jsonl", _jsonl, row.problems) or []
    config_file = meta.get("config_file")
    row.config = summary.get("config") or (Path(config_file).stem if config_file else None)
    row.optimizer = _get(config, "optimizer", "type")
    row.lr = _get(config, "optimizer", "lr")
    row.batch_size = _get(config, "data", "batch_size")
    row.epochs_planned = _get(config, "train", "epochs")
    row.status = meta.get("status") or summary.get("status")
    row.epochs = metrics[-1].get("epoch") if metrics else summary.get("epochs")
    val = [r["val_accuracy"] for r in metrics if isinstance(r.get("val_accuracy"), (int, float))]
    row.val_accuracy = _get(summary, "best", "val_accuracy")
    if row.val_accuracy is None and val:
        row.val_accuracy = max(val)
    row.test_accuracy = _get(summary, "test", "accuracy")
    row.wall_seconds = summary.get("train_seconds")
    seconds = [r["seconds"] for r in metrics if isinstance(r.get("seconds"), (int, float))]
    if row.wall_seconds is None and seconds:
        row.wall_seconds = round(sum(seconds), 3)
    if row.wall_seconds is None:
        row.wall_seconds = _seconds_between(meta.get("start_time"), meta.get("end_time"))
    return row


SORT_KEYS = ("name", "config", "optimizer", "lr", "batch_size", "epochs", "status",
             "val_accuracy", "test_accuracy", "wall_seconds")  # fmt: skip
DESCENDING = ("val_accuracy", "test_accuracy")


def sort_runs(rows: list[RunRow], key: str) -> list[RunRow]:
    """Sorted by ``key`` (accuracies best first); unknown values always last."""
    known = [row for row in rows if getattr(row, key) is not None]
    unknown = [row for row in rows if getattr(row, key) is None]
    try:
        known.sort(key=lambda row: getattr(row, key), reverse=key in DESCENDING)
    except TypeError:  # mixed types from a hand-edited file
        known.sort(key=lambda row: str(getattr(row, key)), reverse=key in DESCENDING)
    return known + unknown


def list_runs(root: Path, sort: str = "name") -> list[RunRow]:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise NnctlError(f"{root}: no such directory")
    return sort_runs([read_run(path, root) for path in find_runs(root)], sort)


# --- nnctl plot -----------------------------------------------------------------------


def read_metrics(run_dir: Path) -> list[dict]:
    """The epoch rows of a run's metrics.jsonl; NnctlError if there are none."""
    path = Path(run_dir).expanduser() / "metrics.jsonl"
    try:
        rows = _jsonl(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NnctlError(f"{run_dir}: no metrics.jsonl (not a run directory?)") from None
    except (OSError, ValueError) as error:
        raise NnctlError(f"{path}: malformed ({error})") from None
    if not rows:
        raise NnctlError(f"{path}: no epochs logged yet")
    return rows


def plot_runs(runs: dict[str, list[dict]], metrics: list[str], out: Path) -> None:
    """Curves of ``metrics`` ("loss", "accuracy") for every run, train solid and validation
    dashed, one panel per metric, saved as PNG. Needs matplotlib (imported here)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4), squeeze=False)
    try:
        for ax, metric in zip(axes[0], metrics):
            _plot_metric(ax, runs, metric)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.tight_layout()
        fig.savefig(out, format="png", dpi=100)
    finally:
        plt.close(fig)


def _plot_metric(ax, runs: dict[str, list[dict]], metric: str) -> None:
    for color, (label, rows) in enumerate(runs.items()):
        for split, style in (("train", "-"), ("val", "--")):
            points = [(r["epoch"], r[f"{split}_{metric}"]) for r in rows
                      if r.get(f"{split}_{metric}") is not None and "epoch" in r]  # fmt: skip
            if points:
                x, y = zip(*points)
                ax.plot(x, y, style, color=f"C{color % 10}", label=f"{label} {split}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small")
