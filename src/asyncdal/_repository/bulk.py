"""Bulk inserts: ``COPY`` through the session's own connection for large batches.

``COPY`` is PostgreSQL's fastest way in, but it cannot return generated ids and does not run
ORM events or Python-side column defaults (server defaults still apply to omitted columns).
It runs on the asyncpg connection under the session, inside the session's transaction, so it
commits or rolls back with the rest of the unit of work.

The server checks every value it stores (length, numeric range, NOT NULL, CHECK, unique,
encoding), and when it refuses one its error context says where: ``COPY users, line 5234,
column email``. That becomes the layer's error naming the row (``rows[5233]``: the line less
one, an index in the caller's list) and the field, from the columns copied: nothing of the
context but the line number and a known column name is used, and no value is ever quoted.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession

from asyncdal._error_mapping import is_driver_error, sqlstate_of, translate_error
from asyncdal._errors import AsyncDALError, InvalidQueryError
from asyncdal._repository.columns import CheckedRows, at_row, converter_for
from asyncdal._writes import mark_written

__all__ = ["copy_checked", "copy_records"]

# What the server's refusal of one value means, by SQLSTATE (class 22, data exception).
_REFUSED = {
    "22001": "too long for the column",
    "22003": "out of the column's numeric range",
    "22007": "not a valid date or time",
    "22008": "a date or time out of range",
    "22021": "not valid text in the database's encoding",
    "22P02": "not a valid value of the column's type",
    "22P05": "text the database's encoding cannot hold",
}
_LINE = re.compile(r"COPY (?P<table>.+?), line (?P<line>\d+)(?:, column (?P<rest>.+))?\Z")


@dataclass(frozen=True)
class _Origin:
    """What a failed COPY was, for its error: who copied, which columns, how many rows."""

    what: str
    #: Column name in the database -> (the field, as errors name it: key, label).
    fields: Mapping[str, tuple[str, str]]
    rows: int | None
    #: The row the driver was encoding when it failed on the client side, if known.
    row_in_hand: Callable[[], int | None]


async def copy_records(
    session: AsyncSession,
    table: Table,
    names: Sequence[str],
    records: Iterable[tuple[Any, ...]],
) -> None:
    """Insert ``records`` (tuples in the order of the column ``names``) with ``COPY``.

    ``records`` may be any iterable, consumed as the data is sent; the dialect's bind
    processors run on each row. The COPY runs under a savepoint (SQLAlchemy's
    ``begin_nested``): a failure, of the server or of the iterable, rolls back to it and
    leaves the session's transaction usable, with nothing copied.
    """
    origin = _Origin("COPY", {name: (name, name) for name in names}, None, lambda: None)
    async with _copying(session) as (driver, dialect):
        converters = [converter_for(table.c[name], dialect) for name in names]
        if any(converters):
            records = (
                tuple(v if c is None else c(v) for v, c in zip(record, converters, strict=True))
                for record in records
            )
        await _copy(driver, table, names, records, origin)


async def copy_checked(session: AsyncSession, table: Table, rows: CheckedRows) -> None:
    """``copy_records`` for ``add_many``: ``rows`` are checked and converted as they stream.

    An error names the row and field (see the module): the server's, from its context; the
    driver's (a value it could not encode), from the row it was encoding.
    """
    fields = {plan.column: (plan.key, plan.label) for plan in rows.plans}
    origin = _Origin(rows.what, fields, len(rows), rows.row_in_hand)
    names = [plan.column for plan in rows.plans]
    async with _copying(session) as (driver, _):
        await _copy(driver, table, names, rows, origin)


@asynccontextmanager
async def _copying(session: AsyncSession) -> AsyncIterator[tuple[Any, Dialect]]:
    """The driver's connection under ``session``, inside a savepoint, and its dialect."""
    # Pending ORM objects go first, so the copied rows can refer to them.
    await session.flush()
    # SAVEPOINT also makes the driver open the session's transaction (SQLAlchemy's asyncpg
    # adapter begins lazily, at the first statement): the COPY joins the unit of work.
    async with session.begin_nested():
        conn = await session.connection()
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        mark_written(session)  # the driver's COPY bypasses SQLAlchemy's statement events
        yield driver, conn.dialect


async def _copy(
    driver: Any, table: Table, names: Sequence[str], records: Iterable[Any], origin: _Origin
) -> None:
    try:
        await driver.copy_records_to_table(
            table.name, records=records, columns=list(names), schema_name=table.schema
        )
    except AsyncDALError:
        raise  # a row the layer's own checks refused, as the records streamed
    except (ValueError, TypeError, OverflowError) as exc:
        # The driver could not encode a value of a type the layer does not check (an INET
        # that is not an address): the caller's input, refused before the server saw it.
        error = InvalidQueryError(
            f"a value for {table.name} could not be encoded ({type(exc).__name__}); "
            "nothing was written"
        )
        raise at_row(error, origin.what, origin.row_in_hand(), None) from exc
    except Exception as exc:
        mapped = translate_error(exc) if is_driver_error(exc) else None
        if mapped is None:
            raise
        raise _located(exc, mapped, table, origin) from exc


def _located(
    exc: BaseException, mapped: AsyncDALError, table: Table, origin: _Origin
) -> AsyncDALError:
    """The server's refusal of a COPY as the layer's error, naming the row and the field."""
    row, column = _where(exc, table.name, origin)
    if column is None:
        # NOT NULL reports its column, a constraint has its columns: one of them names a field.
        columns: tuple[str, ...] = getattr(mapped, "columns", ())
        if len(columns) == 1:
            column = columns[0]
    field, label = origin.fields.get(column or "", (None, None))
    code = sqlstate_of(exc)
    if code is not None and code.startswith("22"):
        # A value the server would not store: the caller's input, like the layer's own checks.
        what = _REFUSED.get(code, "refused")
        refused = InvalidQueryError(
            f"{label or table.name}: the database refused the value ({what}; SQLSTATE {code}); "
            "nothing was written"
        )
        refused.detail, refused.server_message = mapped.detail, mapped.server_message
        mapped = refused
    return at_row(mapped, origin.what, row, field)


def _where(exc: BaseException, table: str, origin: _Origin) -> tuple[int | None, str | None]:
    """The row index and the column named by the server's COPY context, when it names them.

    Only the line number and a column name the copy knows are taken from the context (a text
    COPY's context also quotes the value: never read).
    """
    context = _context(exc)
    for line in reversed(context.splitlines()):  # the COPY's own line comes last
        match = _LINE.match(line.strip())
        if match is None or match["table"] != table:
            continue
        row = int(match["line"]) - 1
        if origin.rows is not None and not 0 <= row < origin.rows:
            return None, None
        rest = match["rest"]
        column = next(
            (
                name
                for name in origin.fields
                if rest is not None and (rest == name or rest.startswith(f"{name}: "))
            ),
            None,
        )
        return row, column
    return None, None


def _context(exc: BaseException) -> str:
    seen: BaseException | None = exc
    while seen is not None:
        context = getattr(seen, "context", None)
        if isinstance(context, str):
            return context
        seen = seen.__cause__
    return ""
