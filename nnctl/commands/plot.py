"""``nnctl plot``: curves of runs, grouped or coloured by a hyperparameter, or a metric
against a hyperparameter (``nnctl.train.plots``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from nnctl import layout
from nnctl.commands.options import PATH
from nnctl.errors import NnctlError
from nnctl.fileio import user_path
from nnctl.rungroups import MISSING, config_value, parse_keys, read_config
from nnctl.train.plots import (
    Curve,
    Point,
    logged_metrics,
    mean_curve,
    plot_curves,
    plot_vs,
    require_matplotlib,
)
from nnctl.train.plotstyle import wants_log

AUTO_COLOUR = 10  # from this many runs on, colour by the swept hyperparameter by default


@dataclass
class Run:
    label: str
    path: Path
    rows: list[dict]
    config: dict
    status: str | None
    params: dict  # a sweep trial's own values (trial.json), else {}


def _labels(run_dirs: tuple[str, ...]) -> list[str]:
    """Short, distinct curve labels: the folder names, or the paths when names repeat."""
    names = [user_path(d).resolve().name for d in run_dirs]
    return names if len(set(names)) == len(names) else list(run_dirs)


def _read(label: str, path: Path) -> Run:
    meta = layout.load_json(path / layout.META_FILE)
    params = layout.load_json(path / layout.TRIAL_FILE).get("params") or {}
    return Run(label, path, layout.read_metrics(path), read_config(path), meta.get("status"),
               params)  # fmt: skip


def _value(run: Run, key: str):
    value = config_value(run.config, key)
    if value is MISSING:
        raise NnctlError(f"{run.path}: its config has no {key!r}")
    return value


def _auto_key(runs: list[Run]) -> str | None:
    """The swept key with the most distinct values (seeds last), when there are many runs."""
    if len(runs) < AUTO_COLOUR:
        return None
    keys = list(dict.fromkeys(key for run in runs for key in run.params))
    distinct = {k: len({json.dumps(run.params.get(k)) for run in runs}) for k in keys}
    ranked = sorted((k for k in keys if distinct[k] > 1), key=lambda k: (k == "seed",
                                                                         -distinct[k]))  # fmt: skip
    return ranked[0] if ranked else None


def _log(runs: list[Run], key: str, values: list) -> bool:
    """Log scale for a log-uniform space (in a tpe sweep's sweep.json) or a wide range."""
    for folder in {run.path.parent for run in runs}:
        space = layout.load_json(folder / layout.SWEEP_SPEC_FILE).get("space") or {}
        if key in space:
            return space[key][0] == "loguniform"
    return wants_log(values)


def _curves(runs: list[Run], color_by: str | None, group_by: str | None) -> list[Curve]:
    if not group_by:
        return [Curve(r.label, r.rows, _value(r, color_by) if color_by else None) for r in runs]
    keys = parse_keys(group_by)
    groups: dict[str, list[Run]] = {}
    for run in runs:
        values = [_value(run, key) for key in keys]
        groups.setdefault(json.dumps(values), []).append(run)
    curves = []
    for text, members in groups.items():
        values = json.loads(text)
        label = ", ".join(f"{k}={json.dumps(v)}" for k, v in zip(keys, values))
        value = _value(members[0], color_by) if color_by else (values[0] if len(keys) == 1
                                                               else label)  # fmt: skip
        curves.append(mean_curve(f"{label} (n={len(members)})", [m.rows for m in members], value))
    return curves


def _points(runs: list[Run], key: str, color_by: str | None) -> tuple[list[Point], str]:
    metric = "val_accuracy" if any(r.get("val_accuracy") is not None for run in runs
                                   for r in run.rows) else "val_loss"  # fmt: skip
    pick = max if metric == "val_accuracy" else min
    points = []
    for run in runs:
        values = [r[metric] for r in run.rows if isinstance(r.get(metric), (int, float))]
        if values:
            points.append(Point(_value(run, key), pick(values), run.status == "pruned",
                                _value(run, color_by) if color_by else None))  # fmt: skip
    if not points:
        raise NnctlError(f"the runs log no {metric}; --vs needs validation data")
    return points, metric


@click.command("plot")
@click.argument("run_dirs", metavar="RUN_DIR...", nargs=-1, required=True, type=PATH)
@click.option("--output", "-o", type=PATH,
              help=f"PNG file to write (default: RUN_DIR/{layout.CURVES_FILE} with one run).")  # fmt: skip
@click.option("--metric", type=click.Choice(["loss", "accuracy", "both"]), default="both",
              show_default=True, help="Which curves to draw.")  # fmt: skip
@click.option("--color-by", "color_by", metavar="KEY",
              help="Colour the runs by this config key (a colour scale for numbers). "
                   f"Default with {AUTO_COLOUR}+ sweep trials: the swept key.")  # fmt: skip
@click.option("--group-by", "group_by", metavar="KEY[,KEY]",
              help="One curve per value of these keys: the mean over its runs (seeds) with "
                   "a ± std band.")  # fmt: skip
@click.option("--vs", "vs", metavar="KEY",
              help="Instead of curves: each run's best validation metric against KEY "
                   "(log axis for log-uniform spaces).")  # fmt: skip
def plot_command(run_dirs: tuple[str, ...], output: str | None, metric: str,
                 color_by: str | None, group_by: str | None, vs: str | None) -> None:  # fmt: skip
    """Plot the loss and accuracy curves of one or several runs, overlaid, as a PNG.

    A folder that is not a run (a sweep) stands for the runs in it. Training curves are
    solid, validation curves dashed; the legend or colour bar sits beside the panels.
    Needs matplotlib: pip install 'nnctl[plot]'.

    \b
    Examples:
      nnctl plot runs/digits-mlp-20261130-221500
      nnctl plot runs/my-sweep -o sweep.png --metric accuracy --color-by optimizer.lr
      nnctl plot runs/lr-seeds -o seeds.png --group-by optimizer.lr
      nnctl plot runs/my-sweep -o lr.png --vs optimizer.lr
    """
    given = run_dirs
    run_dirs = tuple(str(p) for d in given for p in layout.find_runs(user_path(d)))
    if not run_dirs:
        raise NnctlError(f"no runs in {', '.join(given)}")
    if output is None and len(run_dirs) > 1:
        raise click.UsageError("-o FILE.png is required when plotting several runs")
    first = user_path(run_dirs[0])
    out = user_path(output) if output else first / layout.CURVES_FILE
    runs = [_read(label, Path(d)) for label, d in zip(_labels(run_dirs), run_dirs)]
    color_by = color_by and parse_keys(color_by)[0]
    if not (color_by or group_by or vs):
        color_by = _auto_key(runs)
    require_matplotlib()
    if not out.parent.is_dir():
        raise NnctlError(f"{out.parent}: no such directory")
    if vs:
        _plot_vs(runs, parse_keys(vs)[0], color_by, out)
    else:
        _plot_curves(runs, metric, color_by, group_by, out)
    click.echo(f"wrote {out}", err=True)


def _plot_curves(runs: list[Run], metric: str, color_by, group_by, out: Path) -> None:
    wanted = ["loss", "accuracy"] if metric == "both" else [metric]
    metrics = logged_metrics({run.label: run.rows for run in runs}, wanted)
    if not metrics:
        raise NnctlError(f"the runs log no {' or '.join(wanted)} (a regression run?)")
    curves = _curves(runs, color_by, group_by)
    title = color_by or (group_by if group_by and "," not in group_by else None)
    if group_by and not title:
        title = "group"
    values = [c.value for c in curves]
    log = bool(title) and title != "group" and _log(runs, title, values)
    plot_curves(curves, metrics, out, title, log)


def _plot_vs(runs: list[Run], key: str, color_by: str | None, out: Path) -> None:
    points, metric = _points(runs, key, color_by)
    log = _log(runs, key, [p.x for p in points])
    color_log = bool(color_by) and _log(runs, color_by, [p.value for p in points])
    plot_vs(points, key, metric, out, log, color_by, color_log)


COMMANDS = [plot_command]
