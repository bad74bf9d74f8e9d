"""The ``nnctl`` executable and ``python -m nnctl``.

Importing the command line (NumPy, click, every command) takes a noticeable fraction of a
second; a Ctrl-C in that time exits 130 with one line, as it does at any later point
(``nnctl.cli`` handles those), instead of a traceback.
"""

from __future__ import annotations

import sys


def run() -> None:
    try:
        from nnctl.cli import main
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    main()


if __name__ == "__main__":
    run()
