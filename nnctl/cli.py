"""The ``nnctl`` command line: a click group whose commands live in ``nnctl.commands``.

User errors (NnctlError) become one line on stderr and the error's exit code; so do the
machine's (MemoryError, RecursionError, OSError: exit 1) and Ctrl-C (exit 130). ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import importlib
import sys
import traceback

import click

from nnctl import __version__
from nnctl.errors import SYSTEM_ERRORS, NnctlError, error_lines, exit_code

COMMAND_MODULES = (
    "config",
    "data",
    "train",
    "evaluate",
    "export",
    "timing",
    "gradcheck",
    "runs",
    "plot",
    "sweep",
)


class NnctlGroup(click.Group):
    """A group that turns errors into a clean message and exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (NnctlError, KeyboardInterrupt, *SYSTEM_ERRORS) as error:
            if ctx.obj and ctx.obj.get("debug"):
                if not isinstance(error, KeyboardInterrupt):
                    raise
                traceback.print_exc()  # click would print "Aborted!" instead
            else:
                for line in error_lines(error):
                    click.echo(line, err=True)
            sys.exit(exit_code(error))


@click.group(cls=NnctlGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nnctl")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """nnctl: train neural networks described by YAML configs.

    \b
    Example:
      nnctl train configs/digits-mlp.yaml
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


for _name in COMMAND_MODULES:
    _module = importlib.import_module(f"nnctl.commands.{_name}")
    for _command in getattr(_module, "COMMANDS", []):
        main.add_command(_command)
