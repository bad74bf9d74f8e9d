"""``nnctl time``, ``gradcheck``, ``runs`` and ``plot``: the tools of Caffe and Keras users.

The work happens in ``nnctl.train.inspect``; this module parses options and prints.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click

from nnctl.commands.options import config_argument, positive_int
from nnctl.config import build, load_config
from nnctl.errors import NnctlError
from nnctl.train import inspect

PATH = click.Path(path_type=str)
PLOT_INSTALL = "nnctl plot needs matplotlib: pip install 'nnctl[plot]'"


def _table(rows: list[tuple], right: set[int] = frozenset()) -> str:
    """Rows of strings as aligned columns; columns in ``right`` are right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths))]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


# --- nnctl time -------------------------------------------------------------------------


@click.command("time")
@config_argument()
@click.option("--iterations", "-n", type=int, default=20, show_default=True,
              callback=positive_int, help="Timed passes (after 2 warm-up passes).")  # fmt: skip
@click.option("--batch-size", "-b", type=int, callback=positive_int,
              help="Batch size (default: the config's data.batch_size).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the timings as JSON.")
def time_command(config: str, overrides: tuple[str, ...], iterations: int,
                 batch_size: int | None, as_json: bool) -> None:  # fmt: skip
    """Time each layer's forward and backward pass on synthetic input (like `caffe time`).

    Layers are timed one by one (median milliseconds over the iterations); the step row is
    a whole training step as the network runs it, including its fused conv→pool stages,
    and gives the samples per second. Nothing is read from disk but the config.

    \b
    Example:
      nnctl time configs/mnist-cnn.yaml --iterations 50 --batch-size 128
    """
    cfg = load_config(config, overrides)
    experiment = build(cfg)
    batch = batch_size or cfg.data["data"]["batch_size"]
    report = inspect.time_network(experiment.network, experiment.spec, batch, iterations)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
        return
    click.echo(f"{cfg.name}: batch {batch}, median of {iterations} iterations "
               f"({experiment.network.dtype})")  # fmt: skip
    rows = [("#", "layer", "output", "forward ms", "backward ms")]
    for t in report.layers:
        shape = "x".join(map(str, t.output_shape))
        rows.append((str(t.index), t.layer, shape, f"{t.forward_ms:.3f}", f"{t.backward_ms:.3f}"))
    layer_fwd = sum(t.forward_ms for t in report.layers)
    layer_bwd = sum(t.backward_ms for t in report.layers)
    rows.append(("", "sum of layers", "", f"{layer_fwd:.3f}", f"{layer_bwd:.3f}"))
    rows.append(("", "network step", "", f"{report.forward_ms:.3f}", f"{report.backward_ms:.3f}"))
    click.echo(_table(rows, right={3, 4}))
    click.echo(f"step: {report.step_ms:.3f} ms, {report.samples_per_s:,.0f} samples/s")


# --- nnctl gradcheck --------------------------------------------------------------------


@click.command("gradcheck")
@config_argument()
@click.option("--batch-size", "-b", type=int, default=4, show_default=True,
              callback=positive_int, help="Synthetic batch size.")  # fmt: skip
@click.option("--samples", "-k", type=int, default=30, show_default=True, callback=positive_int,
              help="Entries checked per parameter; smaller tensors are checked entirely.")  # fmt: skip
@click.option("--tol", type=float, default=1e-5, show_default=True,
              help="Largest accepted relative error.")  # fmt: skip
@click.option("--eps", type=float, default=1e-6, show_default=True,
              help="Step of the central differences.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the synthetic batch and of the checked entries.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def gradcheck_command(config: str, overrides: tuple[str, ...], batch_size: int, samples: int,
                      tol: float, eps: float, seed: int, as_json: bool) -> None:  # fmt: skip
    """Check backward's gradients against central differences, in float64.

    Builds the network of CONFIG with model.dtype=float64 and its configured weights, and
    compares the gradient of every parameter with (L(p + eps) - L(p - eps)) / (2 eps) on a
    synthetic batch (random normal inputs; random one-hot targets for classification,
    random normal targets for regression). The network is in training mode; dropout draws
    the same mask in every evaluation (its generator is reset before each forward). The
    error of a parameter is the largest |analytic - numeric| over the checked entries
    divided by the largest |analytic| or |numeric| (the gradient's scale). Exits 1 if any
    error is above --tol.

    \b
    Example:
      nnctl gradcheck configs/mnist-cnn.yaml --samples 50
    """
    cfg = load_config(config, (*overrides, "model.dtype=float64"))
    experiment = build(cfg)
    results = inspect.gradcheck(experiment.network, experiment.spec, batch_size, samples,
                                eps=eps, seed=seed)  # fmt: skip
    failed = [r for r in results if not r.max_relative_error <= tol]
    if as_json:
        rows = [{**asdict(r), "ok": r not in failed} for r in results]
        click.echo(json.dumps({"tol": tol, "eps": eps, "ok": not failed, "parameters": rows}))
    else:
        rows = [("#", "layer", "param", "shape", "checked", "max rel error", "")]
        for r in results:
            shape = "x".join(map(str, r.shape))
            mark = "FAIL" if r in failed else "ok"
            rows.append((str(r.index), r.layer, r.parameter, shape, str(r.checked),
                         f"{r.max_relative_error:.2e}", mark))  # fmt: skip
        click.echo(_table(rows, right={4, 5}))
    if failed:
        names = ", ".join(f"layers.{r.index}.{r.parameter}" for r in failed)
        raise NnctlError(f"gradient check failed (tol {tol:g}) for {names}")
    if not as_json:
        click.echo(f"ok: {len(results)} parameters within {tol:g}")


# --- nnctl runs -------------------------------------------------------------------------


def _fmt(value, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _wall(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    minutes, secs = divmod(float(seconds), 60)
    return f"{int(minutes)}m{secs:04.1f}s" if minutes else f"{secs:.1f}s"


def _run_cells(row: inspect.RunRow) -> tuple[str, ...]:
    epochs = _fmt(row.epochs) + (f"/{row.epochs_planned}" if row.epochs_planned else "")
    status = row.status or "?"
    if row.problems:
        status += f" ({', '.join(row.problems)})"
    return (row.name, _fmt(row.config), _fmt(row.optimizer), _fmt(row.lr, "g"),
            _fmt(row.batch_size), epochs, _fmt(row.val_accuracy, ".4f"),
            _fmt(row.test_accuracy, ".4f"), _wall(row.wall_seconds), status)  # fmt: skip


@click.command("runs")
@click.argument("directory", metavar="[DIR]", default="runs", type=PATH)
@click.option("--sort", "sort_key", type=click.Choice(inspect.SORT_KEYS), default="name",
              show_default=True, help="Column to sort by; accuracies best first.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the runs as a JSON list.")
def runs_command(directory: str, sort_key: str, as_json: bool) -> None:
    """List the runs in DIR (default runs/) and its sweep folders, or DIR if it is a run.

    Shows config, optimizer and learning rate, batch size, epochs done/planned, best
    validation accuracy (of the best checkpoint), test accuracy, wall time spent training
    (over all sessions of a resumed run) and status.
    Missing or malformed files are noted in the status column.

    \b
    Examples:
      nnctl runs
      nnctl runs runs/lr-sweep --sort val_accuracy
      nnctl runs --json | jq '.[] | select(.status == "completed") | .name'
    """
    root = Path(directory).expanduser()
    if directory == "runs" and not root.exists():
        rows = []
    else:
        rows = inspect.list_runs(root, sort_key)
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows]))
        return
    if not rows:
        click.echo(f"no runs in {directory}", err=True)
        return
    header = ("name", "config", "optimizer", "lr", "batch", "epochs", "best val acc",
              "test acc", "wall", "status")  # fmt: skip
    click.echo(_table([header, *map(_run_cells, rows)], right={3, 4, 5, 6, 7, 8}))


# --- nnctl plot -------------------------------------------------------------------------


def _labels(run_dirs: tuple[str, ...]) -> list[str]:
    """Short, distinct curve labels: the folder names, or the paths when names repeat."""
    names = [Path(d).expanduser().resolve().name for d in run_dirs]
    return names if len(set(names)) == len(names) else list(run_dirs)


def _logged(runs: dict[str, list[dict]], metric: str) -> bool:
    keys = (f"train_{metric}", f"val_{metric}")
    return any(row.get(key) is not None for rows in runs.values() for row in rows for key in keys)


@click.command("plot")
@click.argument("run_dirs", metavar="RUN_DIR...", nargs=-1, required=True, type=PATH)
@click.option("--output", "-o", type=PATH,
              help="PNG file to write (default: RUN_DIR/curves.png with one run).")  # fmt: skip
@click.option("--metric", type=click.Choice(["loss", "accuracy", "both"]), default="both",
              show_default=True, help="Which curves to draw.")  # fmt: skip
def plot_command(run_dirs: tuple[str, ...], output: str | None, metric: str) -> None:
    """Plot the loss and accuracy curves of one or several runs, overlaid, as a PNG.

    A folder that is not a run (a sweep) stands for the runs in it. Training curves are
    solid, validation curves dashed, one colour per run. Needs matplotlib:
    pip install 'nnctl[plot]'.

    \b
    Examples:
      nnctl plot runs/digits-mlp-20261130-221500
      nnctl plot runs/my-sweep -o sweep.png --metric accuracy
    """
    given = run_dirs
    run_dirs = tuple(str(p) for d in given for p in inspect.find_runs(Path(d).expanduser()))
    if not run_dirs:
        raise NnctlError(f"no runs in {', '.join(given)}")
    if output is None and len(run_dirs) > 1:
        raise click.UsageError("-o FILE.png is required when plotting several runs")
    out = Path(output).expanduser() if output else Path(run_dirs[0]).expanduser() / "curves.png"
    runs = {label: inspect.read_metrics(Path(d)) for label, d in zip(_labels(run_dirs), run_dirs)}
    wanted = ["loss", "accuracy"] if metric == "both" else [metric]
    metrics = [m for m in wanted if _logged(runs, m)]
    if not metrics:
        raise NnctlError(f"the runs log no {' or '.join(wanted)} (a regression run?)")
    try:
        import matplotlib  # noqa: F401  (optional extra)
    except ImportError:
        raise NnctlError(PLOT_INSTALL) from None
    if not out.parent.is_dir():
        raise NnctlError(f"{out.parent}: no such directory")
    inspect.plot_runs(runs, metrics, out)
    click.echo(f"wrote {out}", err=True)


COMMANDS = [time_command, gradcheck_command, runs_command, plot_command]
