"""A connection goes back to its pool clean, or not at all (issue 19).

asyncpg parses a statement before it encodes the arguments; when a value cannot be encoded
(an int64 overflow, a NUL, a lone surrogate, a wrong Python type reaching a hand-written
query) it raises without sending the Sync that ends the extended-protocol exchange. The
backend then sits in the implicit transaction the Parse opened, holding the locks it took
(``AccessShareLock`` on the table), and a read-pool connection in autocommit has nothing that
would end it: the next ``ALTER TABLE`` waits behind it, and every read queued behind the ALTER.

Every entry point gets every unsendable value; then, from a connection of its own, the test
asks the server whether any backend of the app is in a transaction or holds a relation lock,
and takes an ACCESS EXCLUSIVE lock on the table with a short ``lock_timeout``.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from asyncdal import AsyncDALError, DALSession, Database, InvalidQueryError
from asyncdal.commerce import Product, ProductRepository
from asyncdal.testing.plugin import to_dsn

UNSENDABLE: list[object] = [2**63, -(2**63) - 1, "a\x00b", "\ud800", object()]


@pytest_asyncio.fixture(loop_scope="session")
async def app(migrated_url: str) -> AsyncIterator[tuple[Database, str]]:
    name = f"asyncdal-hygiene-{secrets.token_hex(3)}"
    db = Database.from_url(migrated_url, application_name=name, pool_size=2, max_overflow=0)
    yield db, name
    await db.dispose()


def _count_where(value: object) -> Any:
    return select(func.count()).select_from(Product).where(Product.id == value)


async def _read(db: Database, value: object) -> None:
    async with db.read() as s:
        await s.scalar(_count_where(value))


async def _get(db: Database, value: object) -> None:
    await db.get(Product, value)


async def _gather(db: Database, value: object) -> None:
    await db.gather(lambda s: s.scalar(_count_where(value)), lambda s: s.scalar(select(1)))


async def _session(db: Database, value: object) -> None:
    async with db.session() as s:
        await s.scalar(_count_where(value))


async def _transaction(db: Database, value: object) -> None:
    await db.transaction(lambda s: s.scalar(_count_where(value)))


async def _stream(db: Database, value: object) -> None:
    async with db.session() as s:
        result = await s.stream(select(Product).where(Product.id == value))
        await result.close()


async def _add_many(db: Database, value: object) -> None:
    rows = [{"sku": f"H-{i}", "name": "h", "price": value, "stock": 1} for i in range(3)]
    async with db.session() as s:
        await ProductRepository(s).add_many(rows)


async def _add_many_copy(db: Database, value: object) -> None:
    # COPY: the first chunk is checked before any SQL, so the bad value is in the second one
    # and reaches the driver or the server in the middle of the COPY (an int the server finds
    # too large for numeric(12, 2); the rest refused by the layer as the rows stream).
    rows = [
        {"sku": f"HC-{i}", "name": "h", "price": 1, "stock": 1}
        for i in range(ProductRepository.copy_threshold * 5)
    ]
    rows[-1]["price"] = value
    async with db.session() as s:
        await ProductRepository(s).add_many(rows)


async def _repository_read(db: Database, value: object) -> None:
    async with db.read() as s:
        await ProductRepository(s).count({"id": value})


def _swallowed(
    block: Callable[[Database], AbstractAsyncContextManager[DALSession]], *, close: bool
) -> Callable[[Database, object], Awaitable[None]]:
    """The caller catches the error and the block ends normally (after ``close()`` in it,
    with ``close``): the connection the failed call left still must not go back as it is."""

    async def entry(db: Database, value: object) -> None:
        async with block(db) as s:
            with contextlib.suppress(AsyncDALError):
                await s.scalar(_count_where(value))
            if close:
                await s.close()
        raise InvalidQueryError("swallowed")

    return entry


ENTRY_POINTS: dict[str, Callable[[Database, object], Awaitable[None]]] = {
    "db.read": _read,
    "db.get": _get,
    "db.gather": _gather,
    "db.session": _session,
    "db.transaction": _transaction,
    "session.stream": _stream,
    "add_many": _add_many,
    "add_many COPY": _add_many_copy,
    "repository on db.read": _repository_read,
    "db.read, error swallowed": _swallowed(Database.read, close=False),
    "db.session, error swallowed": _swallowed(Database.session, close=False),
    "db.read, error swallowed, close()": _swallowed(Database.read, close=True),
    "db.session, error swallowed, close()": _swallowed(Database.session, close=True),
}


async def _backends(dsn: str, name: str) -> list[tuple[str, str | None, int]]:
    """(state, xact_start, relation locks) of every backend of the app."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT a.state, a.xact_start::text,
                   (SELECT count(*) FROM pg_locks l
                     WHERE l.pid = a.pid AND l.locktype = 'relation')::int
              FROM pg_stat_activity a
             WHERE a.application_name = $1
            """,
            name,
        )
        return [(r[0], r[1], r[2]) for r in rows]
    finally:
        await conn.close()


async def _can_lock_products(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '2s'")
            await conn.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        return True
    except asyncpg.LockNotAvailableError:
        return False
    finally:
        await conn.close()


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
async def test_no_unsendable_value_leaves_a_transaction_or_a_lock_behind(
    app: tuple[Database, str], migrated_url: str, entry: str
) -> None:
    db, name = app
    dsn = to_dsn(migrated_url)
    for value in UNSENDABLE:
        with pytest.raises((AsyncDALError, TypeError, ValueError)) as caught:
            await ENTRY_POINTS[entry](db, value)
        # The layer's error (or, for the caller's own object(), at worst a plain TypeError).
        assert isinstance(caught.value, AsyncDALError), (entry, value, caught.value)
        # Its connection is back in the pool (or discarded): not busy, holding no lock.
        for backend in await _backends(dsn, name):
            assert backend == ("idle", None, 0), (entry, value)
        assert await _can_lock_products(dsn), f"{entry} with {value!r} left a lock on products"
    # And the database still answers on every path.
    async with db.read() as s:
        assert await s.scalar(select(1)) == 1
    async with db.session() as s:
        assert await s.scalar(select(1)) == 1


async def test_the_reported_case_an_out_of_range_id_on_db_read(
    app: tuple[Database, str], migrated_url: str
) -> None:
    db, name = app
    for _ in range(5):
        with pytest.raises(AsyncDALError):
            await _read(db, 2**63)
    assert all(b == ("idle", None, 0) for b in await _backends(to_dsn(migrated_url), name))
    assert await _can_lock_products(to_dsn(migrated_url))
