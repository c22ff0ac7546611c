"""db.gather: one session per read, results in order, bounded fan-out, the first failure wins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import QueuePool

from asyncdal import (
    DALSession,
    Database,
    InvalidQueryError,
    InvalidTypeError,
    NotFoundError,
    QueryTimeoutError,
    ReadOnlyTransactionError,
)
from asyncdal.accounts import User
from asyncdal.social import ProfileQueries

pytestmark = pytest.mark.committed

PID = text("SELECT pg_backend_pid()")
# An advisory lock the test holds while reads wait on it (a key no other test takes).
LOCK_KEY = 0x6761_7468
# A backend, when its statement started and when its wait for the lock ended, by the server's
# clock. A transaction-level shared lock: it goes when the read's transaction does.
LOCK_SPAN = text(
    "SELECT pg_backend_pid(), statement_timestamp(),"
    " (SELECT clock_timestamp() FROM pg_advisory_xact_lock_shared(:k))"
)
# How many backends wait for the test's lock right now (a bigint key below 2**32 is classid 0,
# objid key, objsubid 1 in pg_locks).
LOCK_WAITERS = """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND NOT granted AND classid = 0 AND objid = $1 AND objsubid = 1
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


async def _span(s: DALSession) -> tuple[int, Any, Any]:
    row = (await s.execute(LOCK_SPAN.bindparams(k=LOCK_KEY))).one()
    return int(row[0]), row[1], row[2]


async def _waiters(conn: asyncpg.Connection, wanted: int, reads: asyncio.Task[Any]) -> int:
    """Poll (bounded) until ``wanted`` backends wait for the lock at once, or the reads ended."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    waiting = 0
    while waiting < wanted and not reads.done() and loop.time() < deadline:
        await asyncio.sleep(0.02)
        waiting = int(await conn.fetchval(LOCK_WAITERS, LOCK_KEY))
    return waiting


async def _pid_after_sleep(s: DALSession, seconds: float) -> int:
    await s.execute(text("SELECT pg_sleep(:s)").bindparams(s=seconds))
    return int(await s.scalar(PID) or 0)


async def test_results_come_back_in_order_each_read_in_its_own_session(db: Database) -> None:
    sessions: list[DALSession] = []

    async def read(s: DALSession, value: int) -> int:
        sessions.append(s)
        await s.execute(text("SELECT pg_sleep(:t)").bindparams(t=0.01 * (5 - value)))
        return int(await s.scalar(text("SELECT :v").bindparams(v=value)) or 0)

    a, b, c, d, e = await db.gather(*(lambda s, v=v: read(s, v) for v in range(5)))
    assert (a, b, c, d, e) == (0, 1, 2, 3, 4)
    assert len({id(s) for s in sessions}) == 5
    assert all(isinstance(s, DALSession) for s in sessions)
    assert await db.gather() == ()
    assert cast(QueuePool, db.engine.pool).checkedout() == 0
    assert cast(QueuePool, db.read_engine.pool).checkedout() == 0


async def test_eight_reads_wait_at_once_on_eight_backends(db: Database, dsn: str) -> None:
    # The server is the evidence, however slowly the reads get going: each waits for a lock the
    # test holds, and the test lets go only once pg_locks shows all eight waiting at the same
    # time. Run one after another (or fewer at once), never eight would wait, and the bounded
    # poll ends with fewer.
    holder = await asyncpg.connect(dsn)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        reads = asyncio.create_task(db.gather(*[_span] * 8))
        try:
            waiting = await _waiters(holder, 8, reads)
        finally:
            await holder.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
            spans = await reads
    finally:
        await holder.close()
    assert waiting == 8
    pids = {pid for pid, _, _ in spans}
    assert len(pids) == 8
    # And by the server's clock: every read had started before any of them finished.
    latest_start = max(start for _, start, _ in spans)
    earliest_end = min(end for _, _, end in spans)
    assert latest_start < earliest_end


async def test_reads_are_read_only_and_never_committed(committed_db: Database) -> None:
    state = await committed_db.gather(
        lambda s: s.scalar(text("SELECT current_setting('transaction_read_only')"))
    )
    assert state == ("on",)
    with pytest.raises(ReadOnlyTransactionError, match="read-only transaction") as caught:
        await committed_db.gather(
            lambda s: s.execute(text("INSERT INTO hashtags (tag) VALUES ('nope')"))
        )
    assert isinstance(caught.value.__cause__, DBAPIError)
    async with committed_db.session() as s:
        assert await s.scalar(text("SELECT count(*) FROM hashtags")) == 0


async def test_the_first_failure_is_raised_and_cancels_the_rest(db: Database) -> None:
    async def missing(s: DALSession) -> object:
        await asyncio.sleep(0.05)
        return await ProfileQueries(s).user(-42)

    finished: list[int] = []

    async def long_read(s: DALSession) -> int:
        pid = await _pid_after_sleep(s, 3)
        finished.append(pid)
        return pid

    with pytest.raises(NotFoundError) as caught:
        await db.gather(long_read, missing, long_read)
    assert finished == []  # the 3 s reads were cancelled, not awaited to the end
    assert caught.value.key == -42
    assert cast(QueuePool, db.engine.pool).checkedout() == 0
    assert cast(QueuePool, db.read_engine.pool).checkedout() == 0


async def test_driver_errors_are_mapped(migrated_url: str) -> None:
    # A gather read runs outside a transaction (SET LOCAL would not apply): the timeout is
    # the Database's own statement_timeout.
    async with Database.from_url(migrated_url, statement_timeout=0.02, pool_size=2) as quick:
        with pytest.raises(QueryTimeoutError) as caught:
            await quick.gather(lambda s: s.execute(text("SELECT pg_sleep(2)")))
    assert isinstance(caught.value.__cause__, DBAPIError)


async def test_arguments_are_checked_before_anything_runs(db: Database) -> None:
    async def read(s: DALSession) -> int:
        return 1

    coroutine = read(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match="not awaitables"):
        await db.gather(coroutine)  # type: ignore[call-overload]
    with pytest.raises(InvalidTypeError, match="callables"):
        await db.gather(42)  # type: ignore[call-overload]
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(InvalidQueryError, match="timeout"):
            await db.gather(read, timeout=bad)
    # Issue 19: a string timeout was a raw TypeError ('>' not supported).
    for wrong_type in ("1", b"1", [1], True):
        with pytest.raises(InvalidTypeError, match="timeout must be a number"):
            await db.gather(read, timeout=wrong_type)  # type: ignore[arg-type]
    with pytest.raises(InvalidTypeError, match=r"db\.transaction\(\) takes a callable"):
        await db.transaction("SELECT 1")  # type: ignore[arg-type]
    for bad_limit in (0, -3, True, 2.5, "2"):
        with pytest.raises(InvalidQueryError, match="limit"):
            await db.gather(read, limit=bad_limit)  # type: ignore[arg-type]
    with pytest.raises(InvalidQueryError, match="limit >= 2"):
        await db.gather(read, read, consistent=True, limit=1)
    assert await db.gather(read, consistent=True, limit=1) == (1,)


class _Meter:
    """Counts reads running at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def read(self, s: DALSession, seconds: float) -> int:
        await s.connection()
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            return await _pid_after_sleep(s, seconds)
        finally:
            self.now -= 1


async def test_limit_bounds_one_call(db: Database) -> None:
    meter = _Meter()
    pids = await db.gather(*[lambda s: meter.read(s, 0.05)] * 9, limit=3)
    assert len(pids) == 9
    assert meter.peak == 3


@pytest.fixture
async def small_db(migrated_url: str) -> AsyncIterator[Database]:
    """A pool of 4 connections with a 1 s pool timeout: starving it would show."""
    database = Database.from_url(
        migrated_url,
        application_name="asyncdal-gather-small",
        pool_size=2,
        max_overflow=2,
        pool_timeout=1.0,
    )
    yield database
    await database.dispose()


async def test_three_times_capacity_queues_and_leaves_room_for_others(small_db: Database) -> None:
    capacity = small_db.settings.capacity
    meter = _Meter()
    served_during_fan_out: list[bool] = []

    async def other_user() -> None:
        # Another task of the service: it must get a connection while the fan-out runs,
        # within the 1 s pool timeout (past it, the pool raises). Each read holds its
        # connection for 0.3 s and the fan-out lasts several seconds.
        await asyncio.sleep(0.1)
        for _ in range(3):
            async with small_db.session() as s:
                assert await s.scalar(text("SELECT 1")) == 1
            served_during_fan_out.append(not fan_out.done())
            await asyncio.sleep(0.2)

    reads = [lambda s: meter.read(s, 0.3)] * (3 * capacity)
    async with asyncio.TaskGroup() as group:
        fan_out = group.create_task(small_db.gather(*reads))
        second = group.create_task(small_db.gather(*reads[:4]))  # shares the same bound
        group.create_task(other_user())

    assert len(fan_out.result()) == 3 * capacity
    assert len(second.result()) == 4
    # Never more than the bound at once, across both calls, yet every read ran: they queued.
    assert meter.peak == capacity - 1
    assert served_during_fan_out == [True, True, True]
    assert cast(QueuePool, small_db.engine.pool).checkedout() == 0
    assert cast(QueuePool, small_db.read_engine.pool).checkedout() == 0


async def test_a_read_may_use_its_session_like_any_other(committed_db: Database) -> None:
    async with committed_db.session() as s:
        s.add(User(username="ada", email="ada@example.org"))

    async def two_statements(s: DALSession) -> tuple[Any, Any]:
        user = (await s.scalars(text("SELECT username FROM users"))).one()
        count = await s.scalar(text("SELECT count(*) FROM users"))
        return user, count

    assert await committed_db.gather(two_statements, two_statements) == (("ada", 1), ("ada", 1))


async def test_db_get_inside_gather_takes_no_connection_of_its_own(committed_db: Database) -> None:
    # Issue 22: `lambda _s: db.get(...)` left its read's session idle while db.get read on a
    # connection of its own; a read's session now checks a connection out at its first
    # statement only, so the three lookups below cost one coalesced query on one connection.
    async with committed_db.session() as s:
        users = [User(username=f"g{n}", email=f"g{n}@example.org") for n in range(3)]
        s.add_all(users)
    checkouts: list[object] = []

    def count(*_: object) -> None:
        checkouts.append(_)

    pool = committed_db.read_engine.sync_engine.pool
    event.listen(pool, "checkout", count)
    try:
        found = await committed_db.gather(
            *[lambda _s, key=user.id: committed_db.get(User, key) for user in users]
        )
        assert [u.username for u in found] == ["g0", "g1", "g2"]
        assert len(checkouts) == 1
        # A read that does use its session still gets one, checked out when it is used.
        assert await committed_db.gather(lambda s: s.scalar(text("SELECT 1"))) == (1,)
        assert len(checkouts) == 2
    finally:
        event.remove(pool, "checkout", count)
