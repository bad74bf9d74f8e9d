"""``nnctl data``: list, inspect and download the built-in data sets."""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from nnctl.commands.options import PATH, config_argument, positive_int
from nnctl.commands.table import format_table
from nnctl.config import load_config
from nnctl.data import load
from nnctl.data.builtin import DATASETS, builtin_counts
from nnctl.data.fetch import fetch as fetch_dataset
from nnctl.data.preview import draw_preview, preview_grid
from nnctl.errors import DataError, NnctlError
from nnctl.fileio import user_path
from nnctl.registry import did_you_mean
from nnctl.train.plots import require_matplotlib


def _builtin(name: str):
    if name not in DATASETS:
        hint = did_you_mean(name, DATASETS.names())
        raise DataError(
            f"unknown dataset '{name}'{hint} (choose from {', '.join(DATASETS.names())})"
        )
    return DATASETS.get(name)()


@click.group("data")
def data() -> None:
    """List, inspect and download the built-in data sets; preview augmentation.

    \b
    Example:
      nnctl data list
      nnctl data info digits
      nnctl data fetch fashion_mnist
      nnctl data preview configs/mnist-cnn.yaml --set 'data.augment=[{type: random_crop, pad: 2}]'
    """


@data.command("list")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Extra folder to look in.")
def list_cmd(data_dir: str | None) -> None:
    """Show each built-in data set: shape, classes, size, source, whether present.

    \b
    Example:
      nnctl data list
    """
    rows = [("name", "shape", "classes", "train/test", "source", "present")]
    for name, cls in DATASETS.items():
        ds = cls()
        n_train, n_test = builtin_counts(ds)
        shape = "x".join(str(s) for s in ds.input_shape)
        present = "yes" if ds.present(data_dir) else "no"
        rows.append((name, shape, str(ds.n_classes), f"{n_train}/{n_test}", ds.source, present))
    click.echo(format_table(rows))


@data.command("info")
@click.argument("name")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Extra folder to look in.")
def info_cmd(name: str, data_dir: str | None) -> None:
    """Show class balance, value range, mean and std of a built-in data set.

    \b
    Example:
      nnctl data info iris
    """
    ds = _builtin(name)
    X, y, X_test, y_test = ds.read(data_dir)
    first = "train" if X_test is not None else "all"
    parts = [(first, X, y)] + ([("test", X_test, y_test)] if X_test is not None else [])
    click.echo(f"{name}: {ds.source}; license {ds.license}")
    click.echo(f"example shape: {tuple(ds.input_shape)}; classes: {ds.n_classes}")
    if ds.test_fraction:
        click.echo(f"no official test split: {ds.test_fraction:.0%} held out, stratified, seed 0")
    for part, Xp, yp in parts:
        mean, std = _moments(Xp)
        click.echo(
            f"{part}: {len(Xp)} examples; values {Xp.min()}..{Xp.max()} ({Xp.dtype}); "
            f"mean {mean:.4g}, std {std:.4g}"
        )
        counts = np.bincount(np.asarray(yp, dtype=np.int64), minlength=ds.n_classes)
        names = ds.class_names or [str(i) for i in range(ds.n_classes)]
        balance = ", ".join(f"{n} {c} ({c / len(yp):.1%})" for n, c in zip(names, counts))
        click.echo(f"  classes: {balance}")


def _moments(X: np.ndarray) -> tuple[float, float]:
    flat = X.reshape(len(X), -1)
    total = flat.sum(dtype=np.float64)
    squares = sum(float(np.square(row, dtype=np.float64).sum()) for row in np.array_split(flat, 16))
    mean = total / flat.size
    return mean, float(np.sqrt(max(squares / flat.size - mean**2, 0.0)))


@data.command("fetch")
@click.argument("name")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Folder to download into (default: $NNCTL_DATA or ~/.cache/nnctl).",
)
def fetch_cmd(name: str, data_dir: str | None) -> None:
    """Download a data set's official files, verify their SHA-256, store them.

    Files go to DATA_DIR/NAME/ and are written only once all are verified.

    \b
    Example:
      nnctl data fetch fashion_mnist --data-dir ~/data
    """
    ds = _builtin(name)
    if not ds.fetchable:
        click.echo(f"{name} is shipped with nnctl; nothing to download")
        return
    folder = fetch_dataset(name, data_dir, echo=click.echo)
    click.echo(f"{name}: verified files in {Path(folder)}")


@data.command("preview")
@config_argument()
@click.option("--output", "-o", type=PATH, help="PNG file to write (default: NAME-augment.png).")
@click.option(
    "--n",
    "-n",
    "n",
    type=int,
    default=8,
    show_default=True,
    callback=positive_int,
    help="Training examples (rows).",
)
@click.option(
    "--draws",
    type=int,
    default=5,
    show_default=True,
    callback=positive_int,
    help="Augmented draws of each example (columns after the original).",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Picks the examples and seeds the draws.",
)
def preview_cmd(
    config: str, overrides: tuple[str, ...], output: str | None, n: int, draws: int, seed: int
) -> None:
    """Draw training examples next to augmented versions of them (data.augment) as a PNG.

    One row per training example, titled with its class: the original first, then --draws
    augmented versions of it, all on one grey scale. Needs matplotlib: pip install
    'nnctl[plot]'.

    \b
    Examples:
      nnctl data preview configs/mnist-cnn.yaml -o grid.png \\
          --set 'data.augment=[{type: random_crop, pad: 2}, {type: random_erasing}]'
      nnctl data preview configs/mnist-cnn.yaml --n 4 --draws 3 --seed 1 \\
          --set 'data.augment=[{type: random_rotation, degrees: 15}]'
    """
    cfg = load_config(config, overrides)
    specs = cfg.data["data"].get("augment")
    if not specs:
        raise NnctlError(
            f"{config}: data.augment is empty, nothing to preview; add a list such as "
            "[{type: random_crop, pad: 2}, flip] (or try one with --set 'data.augment=[...]')"
        )
    require_matplotlib("nnctl data preview")
    out = user_path(output) if output else Path(f"{cfg.name}-augment.png")
    if not out.parent.is_dir():
        raise NnctlError(f"{out.parent}: no such directory")
    grid = preview_grid(load(cfg.data["data"], seed=cfg.seed), n, draws, seed)
    names = ", ".join(spec["type"] for spec in specs)
    draw_preview(grid, out, f"{cfg.name}: original, then {draws} draws of {names}")
    click.echo(f"wrote {out}", err=True)


COMMANDS = [data]
