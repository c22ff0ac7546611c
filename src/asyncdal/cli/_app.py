"""The ``asyncdal`` command: ``demo``, ``migrate``, ``seed`` and ``check``.

Errors a user can cause (a bad URL, a server that is down, a wrong password, an unknown option)
end with one line on stderr and a non-zero exit status, never a traceback, and never the
password. Ctrl-C ends with status 130 after the throwaway server (if any) is stopped and removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from asyncdal._database import Database
from asyncdal._error_mapping import translate_error
from asyncdal._errors import AsyncDALError, ConfigurationError, MigrationError
from asyncdal._urls import mask_url

__all__ = ["app", "main"]

T = TypeVar("T")

#: Exit status after Ctrl-C, as shells report a process ended by SIGINT.
EXIT_INTERRUPTED = 130

app = typer.Typer(
    name="asyncdal",
    help="asyncdal: an async data-access layer for PostgreSQL. Try `asyncdal demo`.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        show_envvar=True,
        show_default=False,
        help="postgresql+asyncpg://user:password@host/db (default: $DATABASE_URL).",
    ),
]
#: The dataset scales the command accepts (scale 100: 1M users, 10M posts).
MIN_SCALE, MAX_SCALE = 0.0001, 100.0


def _scale(value: float) -> float:
    # Not typer's min/max: NaN compares false with everything and got "should be <= 100".
    if not math.isfinite(value) or not MIN_SCALE <= value <= MAX_SCALE:
        raise typer.BadParameter(
            f"{value!r} is not a number from {MIN_SCALE:g} to {MAX_SCALE:g}", param_hint="--scale"
        )
    return value


ScaleOption = Annotated[
    float,
    typer.Option(
        callback=_scale, help="Dataset size: 1 = 10k users, 100k posts, 20k orders (0.0001-100)."
    ),
]


def _console() -> Console:
    console = Console(highlight=False)
    # Off a terminal (a pipe, a CI log) rich would hard-wrap every line at 80 columns, cutting
    # URLs and messages in two: print lines whole there; a terminal still wraps at its width.
    if not console.is_terminal:
        console.soft_wrap = True
    return console


@contextlib.contextmanager
def _server(url: str | None, console: Console, *, purpose: str) -> Iterator[str]:
    """``url``, or a throwaway embedded server's URL when there is none (stopped on exit)."""
    if url:
        yield url
        return
    from asyncdal.testing import EmbeddedPostgres

    console.print(f"No DATABASE_URL: starting a throwaway PostgreSQL server for the {purpose}…")
    with EmbeddedPostgres() as pg:
        console.print(
            f"  PostgreSQL on 127.0.0.1:{pg.port}, data in {pg.temp_dir} "
            f"(started in {pg.startup_seconds or 0:.1f} s; removed on exit, also on Ctrl-C)"
        )
        try:
            yield pg.url
        finally:
            console.print("Stopping the throwaway PostgreSQL server and removing its files.")


def _require_url(url: str | None, command: str) -> str:
    if not url:
        raise ConfigurationError(
            f"DATABASE_URL is not set: `asyncdal {command}` needs a database "
            "(set DATABASE_URL or pass --database-url)"
        )
    return url


def _run(url: str, work: Callable[[Database], Awaitable[T]], **settings: object) -> T:
    """Open a :class:`Database` on ``url``, run ``work`` on it, and dispose of it."""

    async def go() -> T:
        async with Database.from_url(url, application_name="asyncdal-cli", **settings) as db:
            return await work(db)

    return asyncio.run(go())


@app.command()
def demo(
    database_url: UrlOption = None,
    scale: ScaleOption = 1.0,
) -> None:
    """Migrate, seed, run the seed dashboards two ways, and catch the shared-session mistake.

    The dashboards run sequentially in one session and with db.gather, side by side.
    With no DATABASE_URL a throwaway PostgreSQL server is started and removed at the end.
    """
    from asyncdal.cli._demo import run_demo

    console = _console()
    with _server(database_url, console, purpose="demo") as url:
        _run(url, lambda db: run_demo(db, console, scale=scale))


@app.command()
def migrate(
    database_url: UrlOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Upgrade the database schema to REVISION (default: head)."""
    from asyncdal._migrate import current_revision, upgrade

    url = _require_url(database_url, "migrate")
    console = _console()

    async def work(db: Database) -> tuple[str | None, str | None]:
        before = await current_revision(db)
        await upgrade(db, revision)
        return before, await current_revision(db)

    before, after = _run(url, work, pool_size=1, max_overflow=0)
    where = mask_url(url)
    if not _reached(revision, after):
        # Below the current revision: upgrading did nothing. Exiting 0 would let a deploy
        # script believe the schema is now at the target.
        raise MigrationError(
            f"{where} is at revision {after or 'base'}, above the target {revision!r}: "
            "`asyncdal migrate` only upgrades. To go down (this drops what the later "
            f"revisions added), run `await asyncdal.downgrade(db, {revision!r})`, or "
            f"`alembic downgrade {revision}` with `script_location = asyncdal:migrations`."
        )
    if before == after:
        console.print(f"{where} is already at revision {after or 'base'}: nothing to do.")
    else:
        console.print(f"Migrated {where} from revision {before or 'base'} to {after or 'base'}.")


def _reached(revision: str, current: str | None) -> bool:
    """Whether the database at ``current`` is at the target ``revision`` of ``migrate``."""
    from alembic.script import ScriptDirectory

    from asyncdal._migrate import alembic_config

    if revision in {"head", "heads"}:
        return True  # upgrade() succeeded, so it is at head
    if revision == "base":
        return current is None
    script = ScriptDirectory.from_config(alembic_config())
    # A known revision (a unique prefix too: upgrade() accepted it); relative ones (+1) passed.
    target = script.get_revision(revision) if not revision.startswith(("+", "-")) else None
    return target is None or target.revision == current


@app.command()
def seed(
    database_url: UrlOption = None,
    scale: ScaleOption = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same rows.")] = 42,
) -> None:
    """Migrate, then fill an empty database with the demo dataset (skips one with data)."""
    from asyncdal.cli._demo import migrate_and_seed

    url = _require_url(database_url, "seed")
    console = _console()
    _run(url, lambda db: migrate_and_seed(db, console, scale=scale, random_seed=seed))


@app.command()
def check(database_url: UrlOption = None) -> None:
    """Compare the database's schema with asyncdal's models; exit 1 when they differ."""
    from asyncdal._migrate import check_schema

    url = _require_url(database_url, "check")
    console = _console()
    differences = _run(url, check_schema, pool_size=1, max_overflow=0)
    if not differences:
        console.print(f"{mask_url(url)}: the schema matches asyncdal's models.")
        return
    console.print(f"{mask_url(url)}: {len(differences)} difference(s) from asyncdal's models:")
    for difference in differences:
        console.print(f"  {difference}", markup=False)
    raise typer.Exit(1)


def _secret(argv: list[str]) -> str | None:
    """The password in DATABASE_URL or --database-url, to scrub from any message."""
    candidates = [os.environ.get("DATABASE_URL", "")]
    for i, arg in enumerate(argv):
        if arg.startswith("--database-url="):
            candidates.append(arg.partition("=")[2])
        elif arg == "--database-url" and i + 1 < len(argv):
            candidates.append(argv[i + 1])
    for candidate in candidates:
        with contextlib.suppress(Exception):
            password = make_url(candidate).password
            if password:
                return str(password)
    return None


def _describe(exc: BaseException) -> str:
    """One line: the layer's message, plus what the server or the OS said, if anything."""
    message = str(exc) or type(exc).__name__
    cause = exc.__cause__
    while cause is not None:
        # asyncpg's server errors ("password authentication failed for user ...") and OS
        # errors ("Connect call failed") say what went wrong; they never carry the password.
        if type(cause).__module__.startswith("asyncpg") or isinstance(cause, OSError):
            detail = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
            if detail and detail not in message:
                message += f": {detail}"
            break
        cause = cause.__cause__ or getattr(cause, "orig", None)
    return " ".join(message.split())


def _fail(message: str, status: int, secret: str | None) -> NoReturn:
    if secret:
        message = message.replace(secret, "***")
    print(f"asyncdal: {message}", file=sys.stderr)
    raise SystemExit(status)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``asyncdal`` console script."""
    args = sys.argv[1:] if argv is None else argv
    args = args or ["--help"]  # no arguments: the help, and success
    secret = _secret(args)
    try:
        status = app(args=args, prog_name="asyncdal", standalone_mode=False)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except (KeyboardInterrupt, typer.Abort):
        _fail("interrupted; nothing was left running", EXIT_INTERRUPTED, secret)
    except typer.TyperException as exc:
        # Typer's (vendored click) usage errors: unknown option or command, bad value.
        text = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        hint = " (see `asyncdal --help`)"
        _fail(f"error: {' '.join(text.split())}{hint}", getattr(exc, "exit_code", 2), secret)
    except AsyncDALError as exc:
        _fail(f"error: {_describe(exc)}", 1, secret)
    except Exception as exc:
        mapped = translate_error(exc)
        if mapped is not None:  # a driver error that escaped the layer's own mapping
            mapped.__cause__ = exc
            _fail(f"error: {_describe(mapped)}", 1, secret)
        # Not an error a user can cause: still one line, with a way to get the traceback.
        if os.environ.get("ASYNCDAL_DEBUG"):
            raise
        _fail(
            f"unexpected error: {type(exc).__name__}: {_describe(exc)} "
            "(set ASYNCDAL_DEBUG=1 for the traceback)",
            1,
            secret,
        )
    # Typer turns KeyboardInterrupt into the return value 130 when not in standalone mode.
    if status == EXIT_INTERRUPTED:
        _fail("interrupted; nothing was left running", EXIT_INTERRUPTED, secret)
    if isinstance(status, int) and status:
        raise SystemExit(status)
