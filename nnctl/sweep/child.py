"""``python -m nnctl.sweep.child ARGS...``: ``nnctl ARGS...`` that dies with its parent.

Trials run as child processes of a sweep worker (a local worker thread or a Ray task).
If that worker dies (killed, out of memory, a lost Ray node), its training process must not
live on: the retried trial resumes from the last checkpoint, and two processes writing one
run directory would corrupt it. On Linux the child asks the kernel for SIGKILL when its
parent goes away (``PR_SET_PDEATHSIG``); elsewhere it simply runs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
PARENT_VARIABLE = "NNCTL_SWEEP_PARENT"


def die_with_parent() -> None:
    """Be killed when the parent dies; exit at once if it is gone already."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    except (OSError, AttributeError):  # no usable libc: run without the guard
        return
    expected = os.environ.get(PARENT_VARIABLE)
    if expected and os.getppid() != int(expected):  # the parent died before prctl
        os._exit(128 + int(signal.SIGKILL))


def main() -> None:
    die_with_parent()
    from nnctl.cli import main as cli

    sys.argv[0] = "nnctl"  # recorded in meta.json as the run's command
    cli(sys.argv[1:], prog_name="nnctl")


if __name__ == "__main__":
    main()
