"""``nnctl runs``: a table of the runs in a folder (``nnctl.runlist``)."""

from __future__ import annotations

import json
from dataclasses import asdict

import click

from nnctl import layout
from nnctl.commands.options import PATH
from nnctl.commands.table import format_table
from nnctl.fileio import user_path
from nnctl.rungroups import RunGroup, group_runs, parse_keys
from nnctl.runlist import SORT_KEYS, RunRow, list_runs
from nnctl.sweep.spec import format_value

HEADER = ("name", "config", "optimizer", "lr", "batch", "epochs", "best val acc", "test acc",
          "best val loss", "test loss", "train time", "status")  # fmt: skip


def _fmt(value, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "-"
    minutes, secs = divmod(float(seconds), 60)
    return f"{int(minutes)}m{secs:04.1f}s" if minutes else f"{secs:.1f}s"


def _run_cells(row: RunRow) -> tuple[str, ...]:
    epochs = _fmt(row.epochs) + (f"/{row.epochs_planned}" if row.epochs_planned else "")
    status = row.status or "?"
    if row.problems:
        status += f" ({', '.join(row.problems)})"
    return (row.name, _fmt(row.config), _fmt(row.optimizer), _fmt(row.lr, "g"),
            _fmt(row.batch_size), epochs, _fmt(row.val_accuracy, ".4f"),
            _fmt(row.test_accuracy, ".4f"), _fmt(row.val_loss, ".4g"), _fmt(row.test_loss, ".4g"),
            _duration(row.train_seconds), status)  # fmt: skip


@click.command("runs")
@click.argument("directory", metavar="[DIR]", default=str(layout.RUNS_ROOT), type=PATH)
@click.option("--sort", "sort_key", type=click.Choice(SORT_KEYS), default="name",
              show_default=True,
              help="Column to sort by, best first: accuracies descending, losses and the "
                   "rest ascending; unknown values last.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the runs as a JSON list.")
@click.option("--group-by", "group_by", metavar="KEY[,KEY]",
              help="One row per value of these config keys (e.g. optimizer.lr): mean ± std "
                   "and n over the other keys (seeds).")  # fmt: skip
def runs_command(directory: str, sort_key: str, as_json: bool, group_by: str | None) -> None:
    """List the runs in DIR (default runs/) and its sweep folders, or DIR if it is a run.

    Shows config, optimizer and learning rate, batch size, epochs done/planned, best
    validation accuracy and loss (of the best checkpoint), test accuracy and loss, training
    time (time in training steps over all sessions of a resumed run; start-up, data loading
    and evaluation not counted) and status. A run recorded as running whose process is
    gone (killed) shows as interrupted. Missing or malformed files are noted in the status
    column.

    \b
    Examples:
      nnctl runs
      nnctl runs runs/lr-sweep --sort val_accuracy
      nnctl runs runs/lr-sweep --sort val_loss
      nnctl runs --json | jq '.[] | select(.status == "completed") | .name'
      nnctl runs runs/lr-seeds --group-by optimizer.lr
    """
    root = user_path(directory)
    if directory == str(layout.RUNS_ROOT) and not root.exists():
        rows = []
    else:
        rows = list_runs(root, sort_key)
    if group_by is not None:
        _print_groups(group_runs(rows, parse_keys(group_by)), parse_keys(group_by), as_json)
        return
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows]))
        return
    if not rows:
        click.echo(f"no runs in {directory}", err=True)
        return
    click.echo(format_table([HEADER, *map(_run_cells, rows)], right={3, 4, 5, 6, 7, 8, 9, 10}))


def _mean_std(summary: dict, spec: str) -> str:
    if summary["mean"] is None:
        return "-"
    mean = format(summary["mean"], spec)
    return mean if summary["std"] is None else f"{mean} ± {format(summary['std'], spec)}"


def _print_groups(groups: list[RunGroup], keys: list[str], as_json: bool) -> None:
    """One line per group: its values, n, mean ± std of the metrics, statuses."""
    if as_json:
        click.echo(json.dumps([group.to_dict() for group in groups]))
        return
    header = (*keys, "n", "best val acc", "test acc", "epochs", "train time", "status")
    lines = [header]
    for group in groups:
        m = group.metrics
        seconds = m["train_seconds"]
        statuses = ", ".join(f"{n} {status}" for status, n in group.statuses.items())
        lines.append((*(format_value(v) for v in group.values.values()), str(len(group.runs)),
                      _mean_std(m["val_accuracy"], ".4f"), _mean_std(m["test_accuracy"], ".4f"),
                      _mean_std(m["epochs"], ".1f"), _duration(seconds["mean"]), statuses))  # fmt: skip
    width = len(keys)
    click.echo(format_table(lines, right=set(range(width, width + 5))))


COMMANDS = [runs_command]
