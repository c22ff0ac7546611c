"""The read path: reads outside a unit of work cost one round trip and cannot write.

Round trips are counted by a proxy between the ``Database`` and the server (every Sync or
simple Query message waits for the server's ReadyForQuery); what was written is checked on the
server.
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import AsyncIterator
from typing import cast

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.engine.events import ConnectionEvents
from sqlalchemy.pool import QueuePool

from asyncdal import DALSession, Database, ReadOnlyTransactionError, Settings
from tests._backends import terminate_backend
from tests._proxy import Proxy

ONE_ROW = text("SELECT 1")


@pytest.fixture
async def proxy(migrated_url: str) -> AsyncIterator[Proxy]:
    target = make_url(migrated_url)
    async with Proxy(target.host or "127.0.0.1", target.port or 5432, lifetime=120) as running:
        yield running


async def _database(migrated_url: str, proxy: Proxy, **options: object) -> Database:
    return Database.from_url(
        make_url(migrated_url).set(host="127.0.0.1", port=proxy.port),
        application_name=f"asyncdal-readpath-{secrets.token_hex(4)}",
        pool_size=4,
        max_overflow=0,
        **options,
    )


async def _one(s: DALSession) -> int:
    return int((await s.execute(ONE_ROW)).scalar_one())


async def _trips(proxy: Proxy, db: Database, reads: int) -> int:
    before = proxy.round_trips
    assert await db.gather(*[_one] * reads) == (1,) * reads
    return proxy.round_trips - before


async def test_a_plain_gather_read_is_one_round_trip(migrated_url: str, proxy: Proxy) -> None:
    db = await _database(migrated_url, proxy)
    try:
        for _ in range(2):  # warm up: connections opened, the statement prepared on each
            await _trips(proxy, db, 3)
        assert await _trips(proxy, db, 1) == 1
        assert await _trips(proxy, db, 3) == 3
        before = proxy.round_trips
        async with db.read() as s:
            assert await _one(s) == 1
            assert await _one(s) == 1
        assert proxy.round_trips - before == 2  # one per statement, nothing around them
        assert cast(QueuePool, db.read_engine.pool).checkedout() == 0
        # A consistent group keeps its snapshot transactions (BEGIN, export/import, ROLLBACK).
        before = proxy.round_trips
        await db.gather(_one, _one, consistent=True)
        assert proxy.round_trips - before >= 6
    finally:
        await db.dispose()


async def test_without_a_read_pool_reads_are_read_only_transactions(
    migrated_url: str, proxy: Proxy
) -> None:
    db = await _database(migrated_url, proxy, read_pool_size=0)
    try:
        assert db.read_engine is db.engine
        await _trips(proxy, db, 2)
        assert await _trips(proxy, db, 1) == 3  # BEGIN READ ONLY, the read, ROLLBACK
        (state,) = await db.gather(
            lambda s: s.scalar(text("SELECT current_setting('transaction_read_only')"))
        )
        assert state == "on"
    finally:
        await db.dispose()


async def test_a_write_on_the_read_path_is_refused(committed_db: Database) -> None:
    async def write(s: DALSession) -> None:
        await s.execute(text("INSERT INTO hashtags (tag) VALUES ('nope')"))

    # The server refuses it (read_only_sql_transaction), and the caller is told where to write.
    with pytest.raises(ReadOnlyTransactionError, match=r"db\.session\(\)") as caught:
        await committed_db.gather(write)
    assert caught.value.sqlstate == "25006"
    with pytest.raises(ReadOnlyTransactionError) as caught:
        async with committed_db.read() as s:
            await write(s)
    assert caught.value.sqlstate == "25006"
    with pytest.raises(ReadOnlyTransactionError) as caught:
        async with committed_db.read() as s:
            await s.execute(text("CREATE TEMP TABLE t_nope (x int)"))
    assert caught.value.sqlstate == "25006"
    async with committed_db.session() as s:
        assert await s.scalar(text("SELECT count(*) FROM hashtags")) == 0
    # The read path's connections stay usable after a refused write.
    assert await committed_db.gather(_one, _one) == (1, 1)


async def test_each_statement_sees_what_is_committed(committed_db: Database) -> None:
    async with committed_db.read() as reader:
        before = await reader.scalar(text("SELECT count(*) FROM hashtags"))
        async with committed_db.session() as writer:
            await writer.execute(text("INSERT INTO hashtags (tag) VALUES ('seen')"))
        after = await reader.scalar(text("SELECT count(*) FROM hashtags"))
        assert (before, after) == (0, 1)  # READ COMMITTED, statement by statement
        state = await reader.scalar(text("SELECT current_setting('transaction_read_only')"))
        assert state == "on"


def test_the_read_pool_is_budgeted_in_the_settings() -> None:
    url = "postgresql+asyncpg://app@localhost/app"
    assert Settings.from_url(url, pool_size=10, max_overflow=5).read_capacity == 15
    assert Settings.from_url(url, pool_size=10, read_pool_size=4).read_capacity == 14
    assert Settings.from_url(url, read_pool_size=0).read_capacity == 0
    assert (
        Settings.from_env({"DATABASE_URL": url, "ASYNCDAL_READ_POOL_SIZE": "3"}).read_pool_size == 3
    )
    with pytest.raises(ValueError, match="read_pool_size"):
        Settings.from_url(url, read_pool_size=-1)


async def test_a_connection_a_read_left_writable_is_never_handed_out_again(
    migrated_url: str,
) -> None:
    async with Database.from_url(migrated_url, pool_size=1, max_overflow=0) as db:
        pid = text("SELECT pg_backend_pid()")
        read_only = text("SELECT current_setting('transaction_read_only')")
        async with db.read() as s:
            first = await s.scalar(pid)
            await s.execute(text("SET default_transaction_read_only = off"))
        async with db.read() as s:
            second = await s.scalar(pid)
            assert await s.scalar(read_only) == "on"
            await s.execute(text("BEGIN"))  # a transaction the driver did not open
        async with db.read() as s:
            third = await s.scalar(pid)
            assert await s.scalar(read_only) == "on"
            assert await s.scalar(pid) == third  # a healthy connection is kept
        assert len({first, second, third}) == 3
        assert await db.gather(_one) == (1,)


async def test_a_connection_the_server_closed_in_the_pool_is_replaced(
    migrated_url: str, dsn: str
) -> None:
    async with Database.from_url(migrated_url, pool_size=1, max_overflow=0) as db:
        pid = text("SELECT pg_backend_pid()")
        async with db.read() as s:
            first = await s.scalar(pid)
        await terminate_backend(dsn, first)
        async with db.read() as s:  # no DatabaseUnavailableError: a fresh connection
            assert await s.scalar(pid) != first


def test_a_default_database_adds_no_connection_events() -> None:
    # Any listener of SQLAlchemy's ConnectionEvents on an engine makes every Connection of it
    # dispatch events on each statement: CPU on every unit of work and read. The layer's
    # defaults need none (pool and dialect events are checked per connect or checkout only).
    db = Database.from_url(
        "postgresql+asyncpg://app@db1,db2/app?target_session_attrs=read-write",
        replicas=["postgresql+asyncpg://app@db3/app"],
        token_secret="s" * 32,
    )
    names = [
        name
        for name, member in vars(ConnectionEvents).items()
        if inspect.isfunction(member) and not name.startswith("_")
    ]
    assert "engine_disposed" in names
    assert "before_cursor_execute" in names
    for engine in db.engines():
        listening = {n for n in names if len(getattr(engine.sync_engine.dispatch, n))}
        assert listening == set(), engine.url
