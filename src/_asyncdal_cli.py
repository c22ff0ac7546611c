"""The ``asyncdal`` console script's entry point, outside the ``asyncdal`` package on purpose.

Importing :mod:`asyncdal.cli` imports ``asyncdal`` first (SQLAlchemy, asyncpg: most of a
second on a small machine). A Ctrl-C in that time would otherwise end in a traceback; from
here it is the command's usual one line and status 130.
"""

from __future__ import annotations

import sys

__all__ = ["main"]

#: The status of a command ended by Ctrl-C (128 + SIGINT), as the command's own handler uses.
EXIT_INTERRUPTED = 130


def main() -> None:
    """Run ``asyncdal.cli.main`` (the ``asyncdal`` command)."""
    try:
        from asyncdal.cli import main as run
    except KeyboardInterrupt:
        print("asyncdal: interrupted; nothing was left running", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
    run()
