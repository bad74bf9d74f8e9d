"""CLI commands that read configs: ``check``, ``summary`` and ``config``."""

from __future__ import annotations

import json

import click
import yaml

from nnctl import data as datamod
from nnctl.commands.options import config_argument
from nnctl.commands.table import format_table
from nnctl.config import load_config
from nnctl.config.model import format_shape
from nnctl.config.summary import human, summarize
from nnctl.errors import SYSTEM_ERRORS, ConfigError, DataError, NnctlError, error_lines
from nnctl.sweep.spec import is_sweep_file, spec_from_file
from nnctl.sweep.validate import validate_sweep


@click.command()
@config_argument(multiple=True)
@click.option(
    "--data",
    "with_data",
    is_flag=True,
    help="Also load a config's data as training would: every value, label and checksum.",
)
def check(config: tuple[str, ...], overrides: tuple[str, ...], with_data: bool) -> None:
    """Validate config and sweep files: print 'ok: FILE' or every error found.

    A config's every key is checked, the model's shapes against the data's, the memory
    training needs, and what the data's headers and labels show (sizes, classes); --data
    loads the data too (NaN, text or complex features, malformed CSV cells, truncated
    files, checksums). A sweep file (one with base:) is checked as `nnctl sweep` checks
    it: its own keys, the base config with --set, every value of every swept key, the
    metric and the early-stopping settings. Exits 1 if any file is invalid.

    \b
    Example:
      nnctl check configs/*.yaml configs/sweeps/*.yaml
      nnctl check configs/digits-mlp.yaml --set optimizer.lr=0.01
      nnctl check my-data.yaml --data
    """
    failed = False
    for path in config:
        try:
            check_file(path, overrides, with_data)
        except (NnctlError, *SYSTEM_ERRORS) as error:
            failed = True
            for line in error_lines(error):
                click.echo(line, err=True)
        else:
            click.echo(f"ok: {path}")
    if failed:
        raise SystemExit(1)


def check_file(path: str, overrides: tuple[str, ...], with_data: bool = False) -> None:
    """Validate a config (and load its data, ``with_data``), or a sweep file with
    everything it sweeps."""
    if is_sweep_file(path):
        validate_sweep(spec_from_file(path, overrides))
        return
    cfg = load_config(path, overrides)
    if with_data:
        _load_data(cfg, path)


def _load_data(cfg, path: str) -> None:
    try:
        datamod.load(cfg.data["data"], seed=cfg.seed)
    except DataError as error:
        raise ConfigError("data", str(error), file=path) from None


@click.command()
@config_argument()
def summary(config: str, overrides: tuple[str, ...]) -> None:
    """Print the model's layers: output shapes, parameters, FLOPs and memory.

    A block's layers follow it, indented, named by their position inside it (3.0, 3.1,
    3.shortcut, as in checkpoint keys); the block's numbers include theirs. Everything is
    inferred from the config and the data set's shape; no data is loaded.

    \b
    Example:
      nnctl summary configs/mnist-cnn.yaml
      nnctl summary configs/mnist-cnn.yaml --set model.layers[0].n_out=16
    """
    cfg = load_config(config, overrides)
    table = summarize(cfg.data["model"], cfg.spec.input_shape)
    rows = [("#", "layer", "output shape", "parameters", "FLOPs")]
    rows.append(("", "input", format_shape(table.input_shape), "", ""))
    for row in table.rows:
        shape, kind = format_shape(row.output_shape), "  " * row.depth + row.type
        rows.append((row.name, kind, shape, f"{row.parameters:,}", f"{row.flops:,}"))
    click.echo(f"{cfg.name}: data '{cfg.spec.name}', dtype {table.dtype}")
    click.echo(format_table(rows, right={3, 4}))
    click.echo(f"total parameters: {table.parameters:,}")
    click.echo(f"FLOPs per example (forward): {human(table.flops)} ({table.flops:,})")
    click.echo(f"activation memory per example: {human(table.activation_bytes, 'B')}")


@click.command("config")
@config_argument()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
def show_config(config: str, overrides: tuple[str, ...], as_json: bool) -> None:
    """Print the fully resolved config (every default filled in).

    \b
    Example:
      nnctl config configs/digits-mlp.yaml
      nnctl config configs/digits-mlp.yaml --json --set train.epochs=2
    """
    cfg = load_config(config, overrides)
    if as_json:
        click.echo(json.dumps(cfg.data, indent=2))
    else:
        click.echo(to_yaml(cfg.data), nl=False)


class _Flow(list):
    """A list dumped in flow style: ``[3, 3]``."""


class _FlowMap(dict):
    """A mapping dumped in flow style: ``{type: relu, alpha: 0.1}``."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, True))
_Dumper.add_representer(
    _FlowMap, lambda d, v: d.represent_mapping("tag:yaml.org,2002:map", v.items(), True)
)


def _holds_lists(value: dict) -> bool:
    """A mapping with lists of mappings or lists inside (a block's layers)."""
    return any(
        isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v) for v in value.values()
    )


def _styled(value, in_list: bool = False):
    if isinstance(value, dict):
        items = {k: _styled(v) for k, v in value.items()}
        return _FlowMap(items) if in_list and not _holds_lists(value) else items
    if isinstance(value, list):
        if all(not isinstance(v, (dict, list)) for v in value):
            return _Flow(value)
        return [_styled(v, in_list=True) for v in value]
    return value


def to_yaml(data: dict) -> str:
    """Block-style YAML, with list items (layers) and short lists on one line each; a
    block's layers are listed one per line below it."""
    return yaml.dump(_styled(data), Dumper=_Dumper, sort_keys=False, width=100)


COMMANDS = [check, summary, show_config]
