"""The invoicing service's Alembic environment, beside asyncdal's (its own history and table)."""

from __future__ import annotations

import asyncio
import os

import invoicing.models  # noqa: F401  (registers the service's tables on asyncdal's Base)
from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from asyncdal.alembic import async_url, exclude_asyncdal, target_metadata

# asyncdal's tables on the same metadata, so that a foreign key to users or orders resolves.
metadata = target_metadata()


def database_url() -> str:
    url = os.environ.get("DATABASE_URL")  # libpq's postgresql://... or postgresql+asyncpg://...
    if not url:
        raise SystemExit("set DATABASE_URL to the database to migrate")
    return url


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_object=exclude_asyncdal,  # compare and migrate the service's tables only
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(async_url(database_url()), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_with)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=async_url(database_url()), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_online())
