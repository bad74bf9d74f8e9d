"""``nnctl plot``: loss and accuracy curves of runs (``nnctl.train.plots``)."""

from __future__ import annotations

from pathlib import Path

import click

from nnctl import layout
from nnctl.commands.options import PATH
from nnctl.errors import NnctlError
from nnctl.fileio import user_path
from nnctl.train.plots import logged_metrics, plot_runs, require_matplotlib


def _labels(run_dirs: tuple[str, ...]) -> list[str]:
    """Short, distinct curve labels: the folder names, or the paths when names repeat."""
    names = [user_path(d).resolve().name for d in run_dirs]
    return names if len(set(names)) == len(names) else list(run_dirs)


@click.command("plot")
@click.argument("run_dirs", metavar="RUN_DIR...", nargs=-1, required=True, type=PATH)
@click.option("--output", "-o", type=PATH,
              help=f"PNG file to write (default: RUN_DIR/{layout.CURVES_FILE} with one run).")  # fmt: skip
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
    run_dirs = tuple(str(p) for d in given for p in layout.find_runs(user_path(d)))
    if not run_dirs:
        raise NnctlError(f"no runs in {', '.join(given)}")
    if output is None and len(run_dirs) > 1:
        raise click.UsageError("-o FILE.png is required when plotting several runs")
    first = user_path(run_dirs[0])
    out = user_path(output) if output else first / layout.CURVES_FILE
    runs = {label: layout.read_metrics(Path(d)) for label, d in zip(_labels(run_dirs), run_dirs)}
    wanted = ["loss", "accuracy"] if metric == "both" else [metric]
    metrics = logged_metrics(runs, wanted)
    if not metrics:
        raise NnctlError(f"the runs log no {' or '.join(wanted)} (a regression run?)")
    require_matplotlib()
    if not out.parent.is_dir():
        raise NnctlError(f"{out.parent}: no such directory")
    plot_runs(runs, metrics, out)
    click.echo(f"wrote {out}", err=True)


COMMANDS = [plot_command]
