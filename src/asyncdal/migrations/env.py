"""Alembic environment: async, URL from DATABASE_URL, or a connection passed by the caller.

asyncdal's history is recorded in its own version table (``asyncdal_alembic_version``) and
compares only asyncdal's tables, so a service's own Alembic history and tables in the same
database are neither touched nor reported. A minimal ini (``[alembic]`` and
``script_location = asyncdal:migrations``) is enough: logging is configured only when the ini
has logging sections.
"""

from __future__ import annotations

import asyncio
import logging
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from asyncdal._database import Database
from asyncdal._errors import ConfigurationError
from asyncdal._schema import Base
from asyncdal._urls import normalize_url
from asyncdal.alembic import VERSION_TABLE, adopt_legacy_version, include_asyncdal

config = context.config
# Logging comes from the ini only when it has a logging section: a service's minimal ini
# (just `script_location = asyncdal:migrations`) must not crash, nor reset the service's logging.
# With such an ini the `alembic` command still says what it did (its INFO lines on stderr, as
# its own template's logging sections would), unless logging is already set up.
# asyncdal.upgrade() runs without an ini and leaves the application's logging alone.
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    if config.file_config.has_section("formatters"):
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    elif not logging.getLogger().handlers and all(
        isinstance(h, logging.NullHandler) for h in logging.getLogger("alembic").handlers
    ):
        _handler = logging.StreamHandler()
        _handler.setFormatter(logging.Formatter("%(levelname)-5.5s [%(name)s] %(message)s"))
        logging.getLogger("alembic").addHandler(_handler)
        logging.getLogger("alembic").setLevel(logging.INFO)

target_metadata = Base.metadata


def _url() -> str:
    # A URL set programmatically (asyncdal.upgrade) wins; otherwise DATABASE_URL.
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise ConfigurationError("set DATABASE_URL to the database to migrate")
    return normalize_url(url).render_as_string(hide_password=False)


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_object=include_asyncdal,
        compare_type=True,
        compare_server_default=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """Emit the migration SQL to stdout (``alembic upgrade head --sql``)."""
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_with(connection: Connection) -> None:
    # A database migrated before asyncdal had its own version table: move its revision over.
    own = {script.revision for script in context.script.walk_revisions()}
    external = connection.in_transaction()
    adopt_legacy_version(connection, own)
    if not external and connection.in_transaction():
        connection.commit()
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    # Through Database, so the URL's libpq parameters (sslmode=require...) are translated for
    # asyncpg exactly as for the service itself, and connect failures are mapped the same way.
    db = Database.from_url(_url(), pool_size=1, max_overflow=0)
    try:
        async with db.engine.connect() as connection:
            await connection.run_sync(_run_with)
    finally:
        await db.dispose()


def run_migrations_online() -> None:
    """Migrate on the caller's connection if it passed one, else connect to the URL."""
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(_run_async())
    else:
        _run_with(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
