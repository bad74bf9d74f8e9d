"""Errors that nnctl reports to users as one line and an exit code.

Every error a user can cause (a bad config, data file, checkpoint or shape) is an
``NnctlError``; the CLI prints ``str(error)`` and exits with ``error.exit_code``
without a traceback.
"""

from __future__ import annotations


class NnctlError(Exception):
    """Base class of user-facing errors; ``exit_code`` is the CLI exit status."""

    exit_code = 1


class ConfigError(NnctlError, ValueError):
    """A config value is wrong.

    Parameters
    ----------
    path : str
        Dotted key path of the offending value, e.g. ``model.layers[2].n_out``.
    message : str
        What is wrong and what was allowed.
    file, line : optional
        Where the value was written, when known.
    line_path : str, optional
        The key path whose YAML line locates the error, when it is not ``path``: an unknown
        key is reported at its mapping (``model.layers[0]``) but found on its own line
        (``model.layers[0].kernal_shape``). Defaults to ``path``.
    """

    def __init__(
        self,
        path: str,
        message: str,
        file: str | None = None,
        line: int | None = None,
        line_path: str | None = None,
    ):
        self.path = path
        self.message = message
        self.file = file
        self.line = line
        self.line_path = path if line_path is None else line_path
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        key = f"{self.path}: " if self.path else ""
        return f"{where}{key}{self.message}"

    def __str__(self) -> str:
        return self.format()


class ConfigErrors(NnctlError):
    """Several config errors found in one pass; printed one per line."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))


class ShapeError(NnctlError, ValueError):
    """An input does not fit a layer (rank, channels, kernel larger than input)."""


class DataError(NnctlError):
    """A data file or data set is missing, malformed or inconsistent."""


class CheckpointError(NnctlError):
    """A checkpoint or run directory is missing, malformed or incompatible."""


class ExportError(NnctlError):
    """A model cannot be exported: a layer without an exporter, a missing extra."""


class LoggerError(NnctlError):
    """A logger cannot work: a missing extra, a tracking server that cannot be reached."""


class DivergedError(NnctlError):
    """Training produced NaN or Inf; exit code 3."""

    exit_code = 3


class TrialPruned(NnctlError):
    """A sweep's scheduler stopped this trial early (its metric fell behind the others').

    Raised from a trial's epoch-end hook, after the epoch's checkpoint; the run directory
    is kept (status ``pruned``). Only sweep trials see it: exit code 4, which the sweep
    reads as "pruned", not as a failure.
    """

    exit_code = 4


class Interrupted(NnctlError):
    """Training stopped by SIGINT (exit 130) or SIGTERM (exit 143) after a checkpoint."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


#: Failures of the machine, or of an input too large or too deep for it, rather than of
#: nnctl: shown as one line like an NnctlError (exit 1), the traceback only with --debug.
SYSTEM_ERRORS = (MemoryError, RecursionError, OSError)
#: Longest error line and most lines shown; values echoed in messages are cut far earlier
#: (``nnctl.core.checks.show``), so these only stop what slipped through.
MAX_LINE, MAX_LINES = 2000, 100


def exit_code(error: BaseException) -> int:
    """The CLI exit status for ``error``: its own for an NnctlError, 130 for Ctrl-C, else 1."""
    if isinstance(error, KeyboardInterrupt):
        return 130
    return error.exit_code if isinstance(error, NnctlError) else 1


def error_lines(error: BaseException) -> list[str]:
    """How an error is shown to users: ``error: ...``, one line per line of its message."""
    lines = message(error).splitlines() or [type(error).__name__]
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], f"... and {len(lines) - MAX_LINES + 1} more"]
    return [f"error: {_cut(line)}" for line in lines]


def _cut(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[:MAX_LINE] + "..."


def message(error: BaseException) -> str:
    """An error's text as users see it: an NnctlError's message, a machine error's meaning
    (``out of memory``, ``FILE: reason``), ``interrupted`` for Ctrl-C."""
    if isinstance(error, NnctlError):
        return str(error)
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, MemoryError):
        return f"out of memory: {error}" if str(error) else "out of memory"
    if isinstance(error, RecursionError):
        return "input nested too deeply (beyond Python's recursion limit)"
    if isinstance(error, OSError) and error.filename is not None:
        target = error.filename
        if error.filename2 is not None:
            target = f"{target} -> {error.filename2}"
        return f"{target}: {error.strerror or error}"
    return str(error) or type(error).__name__


def run_status(error: BaseException) -> str:
    """How a run (and its loggers' session) ended, from the exception that ended it:
    ``interrupted`` (a signal, Ctrl-C), ``diverged``, ``pruned`` (by a sweep), else
    ``failed``."""
    if isinstance(error, (Interrupted, KeyboardInterrupt)):
        return "interrupted"
    if isinstance(error, DivergedError):
        return "diverged"
    if isinstance(error, TrialPruned):
        return "pruned"
    return "failed"
