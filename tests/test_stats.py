"""db.stats(): the pool and the layer's counters; the slow-query log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest
from sqlalchemy import String, bindparam, func, select, text

from asyncdal import (
    ConfigurationError,
    DALSession,
    Database,
    DatabaseStats,
    DatabaseUnavailableError,
    NotFoundError,
    QueryTimeoutError,
    Settings,
)
from asyncdal._slow_query import SLOW_QUERY_LOGGER
from asyncdal.accounts import UserRepository

SECRET_VALUE = "do-not-log-this-7f3a"


@pytest.fixture
async def fresh_db(migrated_url: str) -> AsyncIterator[Database]:
    """A database of the test's own: its counters start at zero."""
    db = Database.from_url(migrated_url, pool_size=10, max_overflow=10, pool_timeout=5)
    yield db
    await db.dispose()


async def _until(condition: object, what: str) -> None:
    """Wait (by ordering, polling the event loop) until ``condition()`` holds."""
    for _ in range(2000):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"never happened: {what}")


async def test_a_new_database_reports_an_idle_pool(fresh_db: Database) -> None:
    stats = fresh_db.stats()
    assert isinstance(stats, DatabaseStats)
    # The main pool and the read pool (read_pool_size defaults to pool_size), and their sum.
    assert set(stats.pools) == {"main", "read"}
    for pool in stats.pools.values():
        assert (pool.pool_size, pool.max_overflow, pool.connections) == (10, 10, 0)
    assert (stats.pool_size, stats.max_overflow) == (20, 20)
    assert (stats.connections, stats.checked_out, stats.overflow, stats.waiting) == (0, 0, 0, 0)
    assert stats.errors == {}
    with pytest.raises(AttributeError):
        stats.checked_out = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        stats.errors["X"] = 1  # type: ignore[index]


async def test_holding_20_sessions_shows_in_the_pool_numbers(fresh_db: Database) -> None:
    async with AsyncExitStack() as stack:
        for _ in range(20):
            session = await stack.enter_async_context(fresh_db.session())
            await session.connection()
        stats = fresh_db.stats()
        assert (stats.checked_out, stats.idle, stats.connections) == (20, 0, 20)
        assert stats.overflow == 10
        assert (stats.pools["main"].checked_out, stats.pools["read"].checked_out) == (20, 0)
        assert stats.checkouts_total == 20

        async def one_more() -> int:
            async with fresh_db.session() as s:
                return int(await s.scalar(select(1)) or 0)

        waiter = asyncio.create_task(one_more())
        await _until(lambda: fresh_db.stats().waiting == 1, "the 21st session waits")
    assert await waiter == 1  # served once the others went back
    stats = fresh_db.stats()
    assert (stats.checked_out, stats.waiting) == (0, 0)
    assert stats.idle == 10  # the overflow connections were closed on return
    assert stats.checkouts_total == 21
    assert stats.connection_wait_seconds > 0


async def test_a_pool_timeout_is_counted(migrated_url: str) -> None:
    db = Database.from_url(migrated_url, pool_size=1, max_overflow=0, pool_timeout=0.2)
    try:
        async with db.session() as held:
            await held.connection()
            with pytest.raises(DatabaseUnavailableError):
                async with db.session() as s:
                    await s.connection()
        stats = db.stats()
        assert stats.pool_timeouts_total == 1
        assert stats.errors == {"DatabaseUnavailableError": 1}
        assert stats.waiting == 0
    finally:
        await db.dispose()


async def test_gather_counts_reads_and_their_queueing(fresh_db: Database) -> None:
    seen_queued: list[int] = []

    async def read(s: DALSession) -> int:
        seen_queued.append(fresh_db.stats().gather_reads_queued)
        await s.execute(select(func.pg_sleep(0.02)))
        return 1

    assert await fresh_db.gather(read, read, read, limit=1) == (1, 1, 1)
    # One at a time: the first read saw the two behind it queued, the last saw none.
    assert seen_queued == [2, 1, 0]
    stats = fresh_db.stats()
    assert (stats.gathers_total, stats.gather_reads_total, stats.gather_reads_queued) == (1, 3, 0)
    # The last read waited for the two before it, each of which slept on the server.
    assert stats.gather_queue_wait_seconds > 0.04


async def test_a_cancelled_gather_leaves_nothing_queued(fresh_db: Database) -> None:
    async def slow(s: DALSession) -> None:
        await s.execute(select(func.pg_sleep(5)))

    with pytest.raises(QueryTimeoutError):
        await fresh_db.gather(slow, slow, slow, slow, limit=1, timeout=0.3)
    stats = fresh_db.stats()
    assert stats.gather_reads_total == 4
    assert stats.gather_reads_queued == 0
    assert stats.query_timeouts_total == 1
    assert stats.errors == {"QueryTimeoutError": 1}


async def test_errors_are_counted_by_class_and_callers_errors_are_not(fresh_db: Database) -> None:
    with pytest.raises(NotFoundError):
        async with fresh_db.session() as s:
            await UserRepository(s).get(-1)
    with pytest.raises(NotFoundError):
        await fresh_db.gather(lambda s: UserRepository(s).get(-2))
    with pytest.raises(KeyError):
        async with fresh_db.session():
            raise KeyError("the caller's own")
    assert fresh_db.stats().errors == {"NotFoundError": 2}


async def test_transactions_and_retries_are_counted(fresh_db: Database) -> None:
    calls = 0

    async def conflicts_once(s: DALSession) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            # SQLSTATE 40001 raised by the server, as a real serialization failure is.
            await s.execute(
                text("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'serialization_failure'; END $$")
            )
        return calls

    assert await fresh_db.transaction(conflicts_once) == 2
    stats = fresh_db.stats()
    assert (stats.transactions_total, stats.transaction_retries_total) == (1, 1)
    assert stats.concurrency_errors_total == 0


async def test_slow_queries_are_logged_above_the_threshold_only(
    migrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database.from_url(migrated_url, slow_query_threshold=1.0)
    caplog.set_level(logging.WARNING, logger=SLOW_QUERY_LOGGER)
    try:
        async with db.session() as s:
            secret = bindparam("secret", SECRET_VALUE, type_=String)
            await s.execute(select(func.pg_sleep(0.05), secret))  # below: not logged
            assert caplog.records == []
            await s.execute(select(func.pg_sleep(1.2), secret))  # above: logged
    finally:
        await db.dispose()
    [record] = [r for r in caplog.records if r.name == SLOW_QUERY_LOGGER]
    assert record.levelno == logging.WARNING
    assert "pg_sleep" in record.getMessage()
    assert record.duration >= 1.2  # type: ignore[attr-defined]
    assert "pg_sleep" in record.statement  # type: ignore[attr-defined]
    assert record.failed is None  # type: ignore[attr-defined]
    assert SECRET_VALUE not in record.getMessage()
    assert SECRET_VALUE not in repr(record.__dict__)


async def test_a_slow_statement_that_fails_is_logged_with_its_error_class(
    migrated_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database.from_url(migrated_url, slow_query_threshold=0.1, statement_timeout=0.3)
    caplog.set_level(logging.WARNING, logger=SLOW_QUERY_LOGGER)
    try:
        with pytest.raises(QueryTimeoutError):
            async with db.session() as s:
                await s.execute(select(func.pg_sleep(5), bindparam("v", SECRET_VALUE)))
    finally:
        await db.dispose()
    [record] = [r for r in caplog.records if r.name == SLOW_QUERY_LOGGER]
    assert record.failed  # type: ignore[attr-defined]
    assert "failed" in record.getMessage()
    assert SECRET_VALUE not in repr(record.__dict__)


async def test_no_threshold_registers_no_listener(migrated_url: str) -> None:
    db = Database.from_url(migrated_url)
    try:
        assert db.settings.slow_query_threshold is None
        engine = db.engine.sync_engine
        assert not engine.dispatch.before_cursor_execute
        assert not engine.dispatch.after_cursor_execute
    finally:
        await db.dispose()


def test_slow_query_threshold_from_env_and_validation() -> None:
    env = {"DATABASE_URL": "postgresql://u@h/db", "ASYNCDAL_SLOW_QUERY_THRESHOLD": "0.25"}
    assert Settings.from_env(env).slow_query_threshold == 0.25
    env["ASYNCDAL_SLOW_QUERY_THRESHOLD"] = "none"
    assert Settings.from_env(env).slow_query_threshold is None
    with pytest.raises(ConfigurationError, match="slow_query_threshold"):
        Settings.from_url("postgresql://u@h/db", slow_query_threshold=0)
    env["ASYNCDAL_SLOW_QUERY_THRESHOLD"] = "fast"
    with pytest.raises(ConfigurationError, match="ASYNCDAL_SLOW_QUERY_THRESHOLD"):
        Settings.from_env(env)


async def test_every_pool_is_in_the_snapshot(migrated_url: str) -> None:
    # A replica URL is only parsed here; stats() opens no connection.
    db = Database.from_url(migrated_url, pool_size=3, max_overflow=1, replicas=[migrated_url])
    try:
        stats = db.stats()
        assert list(stats.pools) == ["main", "read", "replica1"]
        assert [p.pool_size for p in stats.pools.values()] == [3, 3, 3]
        assert stats.pool_size == 9
        assert len(db.engines()) == 3
    finally:
        await db.dispose()
    no_read_pool = Database.from_url(migrated_url, read_pool_size=0)
    try:
        assert list(no_read_pool.stats().pools) == ["main"]
        assert no_read_pool.engines() == [no_read_pool.engine]
    finally:
        await no_read_pool.dispose()
