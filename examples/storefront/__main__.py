"""``python -m examples.storefront``: serve the storefront with uvicorn.

With ``DATABASE_URL`` set, that database is used (migrated only if ``--migrate`` or
``ASYNCDAL_MIGRATE_ON_START`` asks). Without it, a throwaway embedded PostgreSQL is started,
migrated, and removed when the server stops. ``--seed SCALE`` loads the demo dataset first
(through the ``asyncdal seed`` command), so ``/dashboard`` has something to show.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn

from asyncdal import Settings
from asyncdal.testing import EmbeddedPostgres
from examples.storefront.app import MIGRATE_ON_START_ENV, create_app, migrate_on_start

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m examples.storefront", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on")
    parser.add_argument(
        "--migrate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"migrate to head at start-up (default: ${MIGRATE_ON_START_ENV}; always "
        "for the embedded server)",
    )
    parser.add_argument(
        "--seed",
        type=float,
        metavar="SCALE",
        help="load the demo dataset at this scale (1 = 10k users, 100k posts) if empty",
    )
    return parser


@contextlib.contextmanager
def _database_url() -> Iterator[tuple[str, bool]]:
    """``(url, embedded)``: ``DATABASE_URL``, or an embedded server's for the block."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url, False
        return
    with EmbeddedPostgres() as pg:
        print(f"embedded PostgreSQL at {pg.url}", file=sys.stderr)
        yield pg.url, True


def _seed(url: str, scale: float) -> None:
    # The dataset loader is the `asyncdal seed` command's (public) job; it migrates first.
    command = Path(sys.executable).with_name("asyncdal")
    subprocess.run(  # noqa: S603 (a fixed program; the URL is an argument, not shell text)
        [str(command), "seed", "--scale", str(scale)],
        env={**os.environ, "DATABASE_URL": url},
        check=True,
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``argv``, find or start the database, and serve until interrupted."""
    args = _parser().parse_args(argv)
    with _database_url() as (url, embedded):
        if args.seed is not None:
            _seed(url, args.seed)
        migrate = args.migrate if args.migrate is not None else embedded or migrate_on_start()
        # The pool settings still come from ASYNCDAL_* variables; the URL is the one found here.
        app = create_app(settings=Settings.from_env(url=url), migrate=migrate)
        uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
