"""The ``asyncdal`` command (``demo``, ``migrate``, ``seed``, ``check``): an optional extra.

Its dependencies (typer, rich) come with ``pip install 'asyncdal[cli]'``. Without them the
command says so in one line instead of a traceback; ``import asyncdal`` never imports this.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["main"]

#: What the command needs beyond the library itself.
_REQUIRES = ("typer", "rich")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``asyncdal`` console script."""
    try:  # importing typer, rich and the commands takes a while: Ctrl-C then is no traceback
        missing = [name for name in _REQUIRES if not _importable(name)]
        if missing:
            print(
                f"asyncdal: the command line needs {' and '.join(missing)}: "
                "pip install 'asyncdal[cli]'",
                file=sys.stderr,
            )
            raise SystemExit(1)
        from asyncdal.cli._app import main as run
    except KeyboardInterrupt:
        print("asyncdal: interrupted; nothing was left running", file=sys.stderr)
        raise SystemExit(130) from None
    run(argv)


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True
