"""The invoicing service's Alembic environment, beside asyncdal's.

Its models subclass ``asyncdal.Base``, so ``Base.metadata`` holds asyncdal's tables too;
``exclude_asyncdal`` keeps autogenerate and ``alembic check`` to the service's own tables (and
away from asyncdal's version table). The service's history stays in ``alembic_version``.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from invoicing import models
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from asyncdal import Base
from asyncdal.alembic import exclude_asyncdal

assert models.Invoice.__table__ is not None  # imported for its table on Base.metadata


def _url() -> str:
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise SystemExit("set DATABASE_URL to the database to migrate")
    return url


def _run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_object=exclude_asyncdal,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_with)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
