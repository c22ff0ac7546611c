"""Bulk inserts: ``COPY`` through the session's own connection for large batches.

``COPY`` is PostgreSQL's fastest way in, but it cannot return generated ids and does not run
ORM events or Python-side column defaults (server defaults still apply to omitted columns).
It runs on the asyncpg connection under the session, inside the session's transaction, so it
commits or rolls back with the rest of the unit of work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from asyncdal._errors import AsyncDALError, InvalidQueryError
from asyncdal._writes import mark_written

__all__ = ["copy_records"]


async def copy_records(
    session: AsyncSession,
    table: Table,
    names: Sequence[str],
    records: Iterable[tuple[Any, ...]],
) -> None:
    """Insert ``records`` (tuples in the order of the column ``names``) with ``COPY``.

    ``records`` may be any iterable, consumed as the data is sent. The COPY runs under a
    savepoint (SQLAlchemy's ``begin_nested``): a failure, of the server or of the iterable,
    rolls back to it and leaves the session's transaction usable, with nothing copied.
    """
    # Pending ORM objects go first, so the copied rows can refer to them.
    await session.flush()
    # SAVEPOINT also makes the driver open the session's transaction (SQLAlchemy's asyncpg
    # adapter begins lazily, at the first statement): the COPY joins the unit of work.
    async with session.begin_nested():
        conn = await session.connection()
        dialect = conn.dialect
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        # The dialect's own bind processors (an Enum member -> its label, JSON -> text) give
        # the driver what it expects; COPY bypasses SQLAlchemy's statement compilation.
        processors: list[Callable[[Any], Any] | None] = [
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
        ]
        if any(processors):
            records = (
                tuple(v if p is None else p(v) for v, p in zip(record, processors, strict=True))
                for record in records
            )
        mark_written(session)  # the driver's COPY bypasses SQLAlchemy's statement events
        try:
            await driver.copy_records_to_table(
                table.name, records=records, columns=list(names), schema_name=table.schema
            )
        except AsyncDALError:
            raise  # a row the layer's own checks refused, as the records streamed
        except (ValueError, TypeError, OverflowError) as exc:
            # The driver could not encode a value of a type the layer does not check (an INET
            # that is not an address): the caller's input, refused before the server saw it.
            raise InvalidQueryError(
                f"add_many: a value for {table.name} could not be encoded "
                f"({type(exc).__name__}); nothing was written"
            ) from exc
