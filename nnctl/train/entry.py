"""One training as ``nnctl train`` and ``nnctl resume`` run it, without the command line.

The two commands call ``train_file`` and ``resume_run`` and print the summary. A sweep's
trial process calls ``train_exit_code``, which runs the same training quietly and turns an
NnctlError into what the command line would show (its ``error:`` lines on stderr) and its
exit code, so that the sweep never reaches up into the commands.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from nnctl.config import load_config
from nnctl.errors import SYSTEM_ERRORS, NnctlError, error_lines, exit_code
from nnctl.train import run


def train_file(
    config_path: str,
    overrides: Sequence[str] = (),
    out=None,
    resume_dir=None,
    force: bool = False,
    quiet: bool = False,
    argv=None,
    on_epoch_end=None,
) -> tuple[Path, dict]:
    """Load ``config_path`` with ``overrides`` and train it; (run_dir, summary)."""
    config = load_config(config_path, tuple(overrides))
    return run.train(config, out=out, resume_dir=resume_dir, force=force, quiet=quiet, argv=argv,
                     on_epoch_end=on_epoch_end)  # fmt: skip


def resume_run(
    run_dir,
    overrides: Sequence[str] = (),
    force: bool = False,
    quiet: bool = False,
    argv=None,
    on_epoch_end=None,
) -> tuple[Path, dict]:
    """Continue the run in ``run_dir`` with its own config and ``overrides`` (checked against
    the config it was trained with; ``force`` accepts changes); (run_dir, summary)."""
    config = run.run_config(run_dir, overrides)
    return run.train(config, resume_dir=run_dir, force=force, quiet=quiet, argv=argv,
                     on_epoch_end=on_epoch_end)  # fmt: skip


def train_exit_code(
    config: str | None = None,
    overrides: Sequence[str] = (),
    out=None,
    resume_dir=None,
    argv=None,
    on_epoch_end=None,
) -> int:
    """Train ``config`` into ``out``, or resume ``resume_dir``, without progress output.

    ``on_epoch_end(row)`` is called after every epoch (a sweep trial reports its metric
    to the search through it, and stops when it raises TrialPruned). Returns 0, or the exit
    code of the NnctlError that stopped the training (3 diverged, 4 pruned, 130/143
    interrupted, 1 otherwise) after writing its ``error:`` lines to stderr.
    """
    try:
        if resume_dir is not None:
            resume_run(resume_dir, quiet=True, argv=argv, on_epoch_end=on_epoch_end)
        else:
            train_file(config, overrides, out=out, quiet=True, argv=argv, on_epoch_end=on_epoch_end)
    except (NnctlError, *SYSTEM_ERRORS) as error:
        for line in error_lines(error):
            print(line, file=sys.stderr, flush=True)
        return exit_code(error)
    return 0
