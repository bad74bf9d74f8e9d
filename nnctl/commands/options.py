"""Click options shared by every command that takes a config.

``@config_argument()`` adds the ``CONFIG`` argument and a repeatable ``--set KEY=VALUE``;
the command receives ``config`` (a path, or a tuple of paths with ``multiple=True``) and
``overrides`` (a tuple of ``KEY=VALUE`` strings, ready for ``load_config``)::

    @click.command()
    @config_argument()
    def train(config: str, overrides: tuple[str, ...]) -> None:
        cfg = load_config(config, overrides)

A malformed ``--set`` (no ``=``, a bad key path) is a usage error (exit 2); a key that does
not exist in the config is reported by ``load_config`` (exit 1).
"""

from __future__ import annotations

from collections.abc import Callable

import click

from nnctl.config.overrides import split_override

PATH = click.Path(path_type=str)
"""A file or folder argument, passed on as a string and checked by the command itself."""

SET_HELP = (
    "Override a config value, e.g. --set optimizer.lr=0.01 --set model.layers[0].n_out=128; "
    "VALUE is read as YAML. Repeatable."
)


def _check_overrides(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]):
    for value in values:
        try:
            split_override(value)
        except ValueError as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    return tuple(values)


def set_option(function: Callable) -> Callable:
    """The repeatable ``--set KEY=VALUE`` option, passed as ``overrides``."""
    return click.option(
        "--set",
        "overrides",
        metavar="KEY=VALUE",
        multiple=True,
        callback=_check_overrides,
        help=SET_HELP,
    )(function)


def config_argument(multiple: bool = False) -> Callable[[Callable], Callable]:
    """The ``CONFIG`` argument (``CONFIG...`` with ``multiple``) plus ``--set``.

    Files are not checked by click: a missing or unreadable file is a config error reported
    by ``load_config`` with exit code 1.
    """

    def decorate(function: Callable) -> Callable:
        function = set_option(function)
        return click.argument(
            "config", metavar="CONFIG..." if multiple else "CONFIG", nargs=-1 if multiple else 1,
            required=True, type=click.Path(dir_okay=True, path_type=str),
        )(function)  # fmt: skip

    return decorate


def positive_int(ctx: click.Context, param: click.Parameter, value):
    """Callback for integer options that must be >= 1 (None passes: not given)."""
    if value is not None and value < 1:
        raise click.BadParameter(f"must be a positive integer; got {value}")
    return value
