"""Cancellation and timeouts: every session closed, every connection back, no query left running.

Warnings are errors here, so a connection that is garbage-collected instead of checked in
("non-checked-in connection", "The garbage collector is trying to clean up") fails the test.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import time
from collections.abc import AsyncIterator
from typing import cast

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from asyncdal import DALSession, Database, QueryTimeoutError

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
async def isolated_db(migrated_url: str) -> AsyncIterator[Database]:
    """A Database whose application_name no other test (or run) uses.

    A read cancelled while its connection is being closed may leave the connection dropped
    rather than cancelled; ``client_check_interval`` makes the server end such a query
    promptly (see test_orphaned_queries.py), so "nothing left running" holds under load too.
    """
    database = Database.from_url(
        migrated_url,
        application_name=f"asyncdal-cancel-{secrets.token_hex(4)}",
        pool_size=5,
        max_overflow=5,
        client_check_interval=0.2,
    )
    yield database
    await database.dispose()
    gc.collect()  # surface any connection dropped without being checked in


async def _active(dsn: str, application_name: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE application_name = $1 AND state = 'active' AND pid <> pg_backend_pid()",
                application_name,
            )
        )
    finally:
        await conn.close()


async def _wait_for_active(dsn: str, db: Database, predicate: object, seconds: float = 5) -> int:
    """Poll pg_stat_activity (bounded) until ``predicate(count)`` holds; the last count."""
    deadline = time.monotonic() + seconds
    while True:
        count = await _active(dsn, db.settings.application_name)
        if predicate(count) or time.monotonic() > deadline:  # type: ignore[operator]
            return count
        await asyncio.sleep(0.05)


async def _sleep(s: DALSession, seconds: float = 30) -> None:
    await s.execute(text("SELECT pg_sleep(:s)").bindparams(s=seconds))


async def test_100_in_flight_reads_cancelled_from_outside(isolated_db: Database, dsn: str) -> None:
    running = isolated_db.settings.capacity - max(1, isolated_db.settings.capacity // 5)
    fan_out = asyncio.create_task(isolated_db.gather(*[_sleep] * 100))
    # Wait until the server runs as many reads as the bound allows (the rest are queued).
    assert await _wait_for_active(dsn, isolated_db, lambda n: n >= running) == running

    fan_out.cancel()
    with pytest.raises(asyncio.CancelledError):
        await fan_out

    # Every session closed before gather() let the cancellation out.
    assert cast(QueuePool, isolated_db.engine.pool).checkedout() == 0
    assert cast(QueuePool, isolated_db.read_engine.pool).checkedout() == 0
    assert await _wait_for_active(dsn, isolated_db, lambda n: n == 0) == 0
    gc.collect()
    # The Database is fine afterwards, with its whole share of the pool.
    pids = await isolated_db.gather(
        *[lambda s: s.scalar(text("SELECT pg_backend_pid() FROM pg_sleep(0.1)"))] * running
    )
    assert len(set(pids)) == running


async def test_timeout_cancels_the_queries_on_the_server(isolated_db: Database, dsn: str) -> None:
    finished: list[DALSession] = []

    async def long_read(s: DALSession) -> None:
        await _sleep(s)
        finished.append(s)

    with pytest.raises(QueryTimeoutError, match=r"did not finish within 0\.5 s") as caught:
        await isolated_db.gather(*[long_read] * 4, timeout=0.5)
    assert finished == []  # none of the 30 s reads ran to its end
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert cast(QueuePool, isolated_db.engine.pool).checkedout() == 0
    assert cast(QueuePool, isolated_db.read_engine.pool).checkedout() == 0
    assert await _wait_for_active(dsn, isolated_db, lambda n: n == 0) == 0


async def test_500_tiny_timeouts_in_a_row(isolated_db: Database, dsn: str) -> None:
    # The timeouts hit every phase: waiting for a slot, connecting, BEGIN, the query itself.
    timeouts = [0.0001, 0.001, 0.002, 0.005, 0.01]
    outcomes: dict[str, int] = {}
    for i in range(500):
        try:
            await isolated_db.gather(_sleep, _sleep, timeout=timeouts[i % len(timeouts)])
        except QueryTimeoutError:
            outcomes["timeout"] = outcomes.get("timeout", 0) + 1
    assert outcomes == {"timeout": 500}
    assert cast(QueuePool, isolated_db.engine.pool).checkedout() == 0
    assert cast(QueuePool, isolated_db.read_engine.pool).checkedout() == 0
    assert await isolated_db.gather(lambda s: s.scalar(text("SELECT 42"))) == (42,)
    async with isolated_db.session() as s:
        assert await s.scalar(text("SELECT 43")) == 43
    assert await _wait_for_active(dsn, isolated_db, lambda n: n == 0) == 0


async def test_a_failing_read_cancels_the_others_on_the_server(
    isolated_db: Database, dsn: str
) -> None:
    async def fails_soon(s: DALSession) -> None:
        await s.execute(text("SELECT pg_sleep(0.2)"))
        raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        await isolated_db.gather(_sleep, fails_soon, _sleep, _sleep)
    assert cast(QueuePool, isolated_db.engine.pool).checkedout() == 0
    assert cast(QueuePool, isolated_db.read_engine.pool).checkedout() == 0
    assert await _wait_for_active(dsn, isolated_db, lambda n: n == 0) == 0


async def test_cancelled_while_queued_gives_back_every_slot(isolated_db: Database) -> None:
    capacity = isolated_db.settings.capacity
    running = capacity - max(1, capacity // 5)
    tasks = [asyncio.create_task(isolated_db.gather(*[_sleep] * 10)) for _ in range(5)]
    consistent = asyncio.create_task(isolated_db.gather(*[_sleep] * 4, consistent=True))
    await asyncio.sleep(0.3)
    for task in [*tasks, consistent]:
        task.cancel()
    results = await asyncio.gather(*tasks, consistent, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert cast(QueuePool, isolated_db.engine.pool).checkedout() == 0
    assert cast(QueuePool, isolated_db.read_engine.pool).checkedout() == 0

    now = peak = 0

    async def metered(s: DALSession) -> None:
        nonlocal now, peak
        await s.connection()
        now += 1
        peak = max(peak, now)
        await s.execute(text("SELECT pg_sleep(0.1)"))
        now -= 1

    await isolated_db.gather(*[metered] * (2 * running))
    assert peak == running
    # A consistent group needs all its connections at once: it gets them again.
    assert len(await isolated_db.gather(*[metered] * running, consistent=True)) == running


async def test_failed_fan_outs_leave_no_never_retrieved_future(
    isolated_db: Database, dsn: str
) -> None:
    """50 fan-outs whose first read fails at once: the siblings are cancelled while their
    connections open. asyncpg's connect, cancelled there, left its SSLRequest probe's future
    failed and unretrieved ("Future exception was never retrieved ... connection_lost()",
    one per cancelled connect); the layer lets each attempt finish and closes it instead."""
    seen: list[dict[str, object]] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))

    async def fails_at_once(s: DALSession) -> None:
        raise LookupError("first")

    try:
        for _ in range(50):
            with pytest.raises(LookupError, match="first"):
                await isolated_db.gather(fails_at_once, _sleep, _sleep, _sleep, _sleep)
        await isolated_db.dispose()
        for _ in range(3):  # "never retrieved" is reported when the future is collected
            gc.collect()
            await asyncio.sleep(0.05)
    finally:
        loop.set_exception_handler(previous)
    assert [(c.get("message"), c.get("exception")) for c in seen] == []
    assert cast(QueuePool, isolated_db.read_engine.pool).checkedout() == 0
    # The abandoned connections were closed, not left open on the server.
    assert await _wait_for_backends(dsn, isolated_db, lambda n: n == 0) == 0


async def _wait_for_backends(dsn: str, db: Database, predicate: object, seconds: float = 5) -> int:
    """Poll (bounded) the server's backends of ``db`` until ``predicate(count)`` holds."""
    deadline = time.monotonic() + seconds
    while True:
        conn = await asyncpg.connect(dsn)
        try:
            count = int(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                    db.settings.application_name,
                )
            )
        finally:
            await conn.close()
        if predicate(count) or time.monotonic() > deadline:  # type: ignore[operator]
            return count
        await asyncio.sleep(0.05)
