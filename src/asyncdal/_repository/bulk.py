"""Bulk inserts: ``COPY`` through the session's own connection for large batches.

``COPY`` is PostgreSQL's fastest way in, but it cannot return generated ids and does not run
ORM events or Python-side column defaults (server defaults still apply to omitted columns).
It runs on the asyncpg connection under the session, inside the session's transaction, so it
commits or rolls back with the rest of the unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["copy_records", "copy_rows"]


async def copy_rows(
    session: AsyncSession,
    table: Table,
    columns: Mapping[str, str],
    rows: Sequence[Mapping[str, Any]],
) -> int:
    """Insert ``rows`` into ``table`` with ``COPY``.

    ``columns`` maps each row key to its table column; every row has exactly those keys.
    """
    keys = list(columns)
    # itemgetter builds each record tuple in C: this loop is most of COPY's client-side cost.
    get = itemgetter(*keys) if len(keys) > 1 else (lambda row: (row[keys[0]],))
    return await copy_records(session, table, [columns[key] for key in keys], list(map(get, rows)))


async def copy_records(
    session: AsyncSession,
    table: Table,
    names: Sequence[str],
    records: Sequence[tuple[Any, ...]],
) -> int:
    """Insert ``records`` (tuples in the order of the column ``names``) with ``COPY``."""
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
        records = [
            tuple(v if p is None else p(v) for v, p in zip(record, processors, strict=True))
            for record in records
        ]
    await driver.copy_records_to_table(
        table.name, records=records, columns=list(names), schema_name=table.schema
    )
    return len(records)
