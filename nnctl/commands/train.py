"""``nnctl train`` and ``nnctl resume``."""

from __future__ import annotations

import json
import sys

import click

from nnctl.commands.options import PATH, config_argument, set_option
from nnctl.train import entry


def output_options(function):
    """``--json`` (the summary on stdout, nothing else) and ``--quiet`` (no progress)."""
    function = click.option("--quiet", "-q", is_flag=True, help="No progress output.")(function)
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the summary as JSON on stdout.")(function)  # fmt: skip


def _emit_summary(summary: dict, as_json: bool, quiet: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, sort_keys=False))
        return
    if quiet:
        return
    test = summary.get("test") or {}
    stopped = f" (stopped early: {summary['stop_reason']})" if summary.get("stop_reason") else ""
    parts = [f"done: {summary['epochs']} epochs{stopped} in {summary['train_seconds']:.1f}s"]
    if summary.get("best_epoch"):
        parts.append(f"best epoch {summary['best_epoch']} ({summary['monitor']})")
    if "accuracy" in test:
        parts.append(f"test accuracy {test['accuracy']:.4f}, loss {test['loss']:.4f}")
    elif test:
        parts.append(f"test mse {test['mse']:.4g}, mae {test['mae']:.4g}")
    parts.append(f"run: {summary['run_dir']}")
    click.echo("; ".join(parts), err=True)


@click.command("train")
@config_argument()
@click.option("--out", type=PATH, help="Run directory (default runs/<config>-<timestamp>).")
@click.option(
    "--resume",
    "resume_dir",
    type=PATH,
    metavar="RUN_DIR",
    help="Continue the run in RUN_DIR from its last checkpoint.",
)
@click.option("--force", is_flag=True, help="With --resume: accept a changed config.")
@output_options
def train_command(config, overrides, out, resume_dir, force, as_json, quiet):
    """Train the network described by CONFIG.

    Writes the resolved config, meta.json, metrics.jsonl/csv, checkpoints and
    summary.json to the run directory. SIGINT/SIGTERM checkpoint and stop (exit 130/143);
    divergence stops before the bad update (exit 3).

    \b
    Examples:
      nnctl train configs/digits-mlp.yaml
      nnctl train configs/digits-mlp.yaml --set optimizer.lr=0.01 --out runs/lr01
      acc=$(nnctl train configs/iris-mlp.yaml --json | jq .test.accuracy)
    """
    _, summary = entry.train_file(config, overrides, out=out, resume_dir=resume_dir,
                                  force=force, quiet=quiet, argv=sys.argv)  # fmt: skip
    _emit_summary(summary, as_json, quiet)


@click.command("resume")
@click.argument("run_dir", type=PATH)
@set_option
@click.option(
    "--force",
    is_flag=True,
    help="Accept a config that differs from the one the run was trained with, or "
    "start again from epoch 1 when the last checkpoint is missing.",
)
@output_options
def resume_command(run_dir, overrides, force, as_json, quiet):
    """Continue the run in RUN_DIR from its last checkpoint, exactly, with its own config.

    The run continues in RUN_DIR (one process at a time). Its config.yaml, with any --set,
    must equal the config its checkpoint was trained with: a difference is an error listing
    the changed values, unless --force. Raising train.epochs needs no --force: that is how
    a finished run is extended. Resuming a finished run does nothing and says so.

    \b
    Examples:
      nnctl resume runs/digits-mlp-20261130-221500
      nnctl resume runs/digits-mlp-20261130-221500 --set train.epochs=60
    """
    _, summary = entry.resume_run(run_dir, overrides, force=force, quiet=quiet, argv=sys.argv)
    _emit_summary(summary, as_json, quiet)


COMMANDS = [train_command, resume_command]
