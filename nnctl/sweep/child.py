"""``python -m nnctl.sweep.child REQUEST``: one training that dies with its parent.

REQUEST is a JSON object of ``nnctl.train.entry.train_exit_code``'s arguments: ``config``,
``overrides`` and ``out`` for a new run, or ``resume_dir``; and ``argv``, the equivalent
``nnctl`` command line, which meta.json records; and for a search that learns or stops
trials early, ``report`` (``nnctl.sweep.report``: where to report the metric after each
epoch). The exit code is the one ``nnctl train`` would give (0, 1, 3 diverged, 130/143
interrupted), or 4 when the search pruned the trial, with the same ``error:`` lines.

Trials run as child processes of a sweep worker (a local worker thread or a Ray task).
If that worker dies (killed, out of memory, a lost Ray node), its training process must not
live on: the retried trial resumes from the last checkpoint, and two processes writing one
run directory would corrupt it. On Linux the child asks the kernel for SIGKILL when its
parent goes away (``PR_SET_PDEATHSIG``); elsewhere it simply runs.
"""

from __future__ import annotations

import ctypes
import json
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
    from nnctl.train.entry import train_exit_code

    request = json.loads(sys.argv[1])
    report = request.pop("report", None)
    hook = None
    if report:
        from nnctl.sweep.report import make_hook

        hook = make_hook(report)
    sys.exit(train_exit_code(**request, on_epoch_end=hook))


if __name__ == "__main__":
    main()
