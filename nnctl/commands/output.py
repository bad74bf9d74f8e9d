"""Files a command writes where the user asks (``predict --output``).

Such a file never replaces one of the command's inputs (the same file under any name) and
never goes inside a run directory or sweep folder, whose files only nnctl writes; it
replaces another existing file only with ``--force``. A missing or read-only folder and a
folder in place of the file are one-line errors, checked before the work starts; a write
that fails anyway is one too (``fileio.atomic_write_bytes`` names the file).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import click

from nnctl import layout
from nnctl.errors import NnctlError
from nnctl.fileio import user_path


def check_output(path, inputs: Iterable, force: bool, suffixes: tuple[str, ...]) -> Path:
    """The output path, once it is safe to write; NnctlError naming it otherwise (a usage
    error when its suffix is none of ``suffixes``)."""
    out = user_path(path)
    if out.is_dir():
        raise NnctlError(f"{out}: is a folder; give a file name")
    if out.suffix not in suffixes:
        raise click.UsageError(f"--output must end in {' or '.join(suffixes)}; got {path}")
    folder = out.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise NnctlError(f"{out}: cannot write: {folder} {what}")
    for source in inputs:
        if out.exists() and Path(source).exists() and os.path.samefile(out, source):
            raise NnctlError(f"{out}: is an input of this command ({source}); write elsewhere")
    owner = layout.enclosing_run(folder)
    if owner is not None:
        raise NnctlError(
            f"{out}: is inside {owner}, whose files only nnctl writes; write elsewhere"
        )
    if out.exists() and not force:
        raise NnctlError(f"{out}: already exists; use --force to replace it")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NnctlError(f"{out}: cannot write: {folder} is not writable")
    return out
