"""Run asyncdal's Alembic migrations from code, for services that embed the layer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError

from asyncdal._database import Database
from asyncdal._error_mapping import sqlstate_of, wrap_errors
from asyncdal._errors import MigrationError, QueryError
from asyncdal._versions import VERSION_TABLE, include_asyncdal, read_version

__all__ = [
    "alembic_config",
    "check_schema",
    "current_revision",
    "downgrade",
    "script_location",
    "upgrade",
]

#: Where the migration scripts live: inside the package, in a wheel and in a checkout alike.
SCRIPT_LOCATION = "asyncdal:migrations"


def script_location() -> str:
    """Where asyncdal's migration scripts are (``asyncdal:migrations``, a package resource)."""
    if not (Path(__file__).with_name("migrations") / "env.py").is_file():
        raise MigrationError("asyncdal's migration scripts are missing from this installation")
    return SCRIPT_LOCATION


def alembic_config() -> Config:
    """An Alembic ``Config`` for asyncdal's scripts, with no ini file and no URL."""
    config = Config()
    config.set_main_option("script_location", script_location())
    # Leave the host application's logging alone.
    config.attributes["configure_logger"] = False
    return config


@asynccontextmanager
async def _database(target: Database | str | URL) -> AsyncIterator[Database]:
    if isinstance(target, Database):
        yield target
        return
    db = Database.from_url(target, pool_size=1, max_overflow=0)
    try:
        yield db
    finally:
        await db.dispose()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def _run(target: Database | str | URL, fn: Callable[[Connection], Any]) -> Any:
    """Run ``fn`` on one connection of ``target`` inside a transaction.

    Driver errors the layer maps (unavailable, conflict...) keep their class; anything else a
    migration or check raises (an unknown revision, DDL the server refused) is MigrationError.
    """
    # Connecting is inside wrap_errors too: a refused connection is DatabaseUnavailableError.
    async with _database(target) as db:
        try:
            with wrap_errors():
                async with db.engine.begin() as conn:
                    return await conn.run_sync(fn)
        except CommandError as exc:  # Alembic's: "Can't locate revision identified by 'x'"
            message = str(exc)
            if "Can't locate revision" in message:
                known = ", ".join(sorted(_revisions()))
                message = f"unknown revision: {message} (asyncdal's: {known}, head, base)"
            raise MigrationError(message) from exc
        except QueryError as exc:  # a statement of a migration the server refused
            raise MigrationError(f"the migration failed: {exc}") from exc
        except SQLAlchemyError as exc:
            code = sqlstate_of(exc)
            where = f" (SQLSTATE {code})" if code else ""
            raise MigrationError(f"the migration failed{where}: {_first_line(exc)}") from exc


def _with_connection(connection: Connection) -> Config:
    config = alembic_config()
    config.attributes["connection"] = connection
    return config


async def upgrade(target: Database | str | URL, revision: str = "head") -> None:
    """Upgrade the schema of ``target`` (a :class:`Database` or a URL) to ``revision``.

    Example::

        await asyncdal.upgrade(db)            # the same as `alembic upgrade head`
    """
    await _run(target, lambda conn: command.upgrade(_with_connection(conn), revision))


async def downgrade(target: Database | str | URL, revision: str) -> None:
    """Downgrade the schema of ``target`` to ``revision`` (``"base"`` removes every table)."""
    await _run(target, lambda conn: command.downgrade(_with_connection(conn), revision))


def _revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return {revision.revision for revision in script.walk_revisions()}


async def current_revision(target: Database | str | URL) -> str | None:
    """The revision ``target`` is at, or ``None`` when it was never migrated.

    Read from asyncdal's own version table (``asyncdal_alembic_version``), or from Alembic's
    default table in a database migrated before asyncdal had its own.
    """
    revisions = _revisions()
    return await _run(  # type: ignore[no-any-return]
        target, lambda conn: read_version(conn, revisions)
    )


def head_revision() -> str | None:
    """The newest revision among asyncdal's migration scripts."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def check_schema(target: Database | str | URL) -> list[Any]:
    """Differences between asyncdal's models and the migrated schema of ``target``.

    Empty when in sync. The same comparison as ``alembic check`` with asyncdal's scripts; a
    service can call it at start-up. Only asyncdal's tables are compared: a service's own
    tables (also on ``Base``) and version tables are not drift.
    """

    # Importing the domain registers its tables on Base.metadata; done here, not at module
    # level, so `import asyncdal` stays free of the domain packages.
    from asyncdal._schema import Base

    def compare(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "version_table": VERSION_TABLE,
                "include_object": include_asyncdal,
            },
        )
        return list(compare_metadata(context, Base.metadata))

    return await _run(target, compare)  # type: ignore[no-any-return]
