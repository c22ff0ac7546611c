"""Bulk inserts: ``COPY`` through the session's own connection for large batches.

``COPY`` is PostgreSQL's fastest way in, but it cannot return generated ids and does not run
ORM events or Python-side column defaults (server defaults still apply to omitted columns).
It runs on the asyncpg connection under the session, inside the session's transaction, so it
commits or rolls back with the rest of the unit of work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["copy_records"]


async def copy_records(
    session: AsyncSession,
    table: Table,
    names: Sequence[str],
    records: Iterable[tuple[Any, ...]],
    *,
    savepoint: bool = False,
) -> None:
    """Insert ``records`` (tuples in the order of the column ``names``) with ``COPY``.

    ``records`` may be any iterable, consumed as the data is sent. ``savepoint``: the COPY
    runs under a savepoint, and a failure (of the server, or of the iterable) rolls back to
    it, leaving the transaction usable.
    """
    # Pending ORM objects go first, so the copied rows can refer to them.
    await session.flush()
    conn = await session.connection()
    dialect = conn.dialect
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens its transaction lazily, at the first statement.
        # COPY on the bare connection before that would autocommit, outside the unit of work.
        await conn.execute(select(1))
    # The dialect's own bind processors (e.g. Enum -> its value) give the driver what it expects.
    processors: list[Callable[[Any], Any] | None] = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    if any(processors):
        records = (
            tuple(v if p is None else p(v) for v, p in zip(record, processors, strict=True))
            for record in records
        )
    copy = driver.copy_records_to_table(
        table.name, records=records, columns=list(names), schema_name=table.schema
    )
    if not savepoint:
        await copy
        return
    # Raw SQL on the driver: the savepoint is released before SQLAlchemy sees the connection
    # again, so its own transaction bookkeeping never knows it existed.
    await driver.execute("SAVEPOINT asyncdal_copy")
    try:
        await copy
    except BaseException:
        with contextlib.suppress(Exception):
            await driver.execute("ROLLBACK TO SAVEPOINT asyncdal_copy")
            await driver.execute("RELEASE SAVEPOINT asyncdal_copy")
        raise
    await driver.execute("RELEASE SAVEPOINT asyncdal_copy")
