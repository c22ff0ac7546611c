"""The two seed mistakes, reproduced as written, next to the layer's way that works.

- Seed 002 runs three queries with ``asyncio.gather`` on ONE asyncpg connection.
- Seed 003 creates two tasks that ``execute`` on ONE SQLAlchemy ``AsyncSession``.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import asyncpg
import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.pool import QueuePool

from asyncdal import ConcurrentSessionUseError, Database
from asyncdal.accounts import User
from asyncdal.social import SocialDashboard
from tests._seed002 import SEED_STATS, SEED_TOP_USERS, SEED_TRENDING

pytestmark = pytest.mark.committed


# Seed 002's three queries, as written there (its SQL: tests/_seed002.py).
async def get_top_users(conn: asyncpg.Connection, limit: int = 10) -> list[dict[str, Any]]:
    rows = await conn.fetch(SEED_TOP_USERS, limit)
    return [dict(r) for r in rows]


async def get_trending_hashtags(conn: asyncpg.Connection, days: int = 7) -> list[dict[str, Any]]:
    rows = await conn.fetch(SEED_TRENDING, str(days))
    return [dict(r) for r in rows]


async def get_platform_stats(conn: asyncpg.Connection) -> dict[str, Any]:
    row = await conn.fetchrow(SEED_STATS)
    return dict(row)


async def test_seed_002_gather_on_one_asyncpg_connection_fails(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        results = await asyncio.gather(
            get_top_users(conn, limit=5),
            get_trending_hashtags(conn, days=7),
            get_platform_stats(conn),
            return_exceptions=True,
        )
    finally:
        await conn.close()
    failures = [r for r in results if isinstance(r, BaseException)]
    # The first query gets the connection; the other two find it busy.
    assert isinstance(results[0], list)
    assert len(failures) == 2
    for failure in failures:
        assert isinstance(failure, asyncpg.InterfaceError)
        assert "another operation is in progress" in str(failure)


async def test_seed_000_way_one_connection_per_query_works(dsn: str) -> None:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=3)
    try:

        async def fetch(query: Any, *args: Any) -> Any:
            async with pool.acquire() as conn:
                return await query(conn, *args)

        top, trending, stats = await asyncio.gather(
            fetch(get_top_users, 5), fetch(get_trending_hashtags, 7), fetch(get_platform_stats)
        )
    finally:
        await pool.close()
    assert (top, trending, stats["total_tweets"]) == ([], [], 0)


async def test_the_layer_runs_the_seed_002_dashboard_concurrently(committed_db: Database) -> None:
    async with committed_db.session() as s:
        s.add(User(username="ada", email="ada@example.org", follower_count=7))
    dashboard = await SocialDashboard.load(committed_db, top=5, days=7)
    assert [(u.username, u.follower_count) for u in dashboard.top_users] == [("ada", 7)]
    assert dashboard.stats.total_posts == 0


# The failed sync connect leaves asyncpg's connect() coroutine unawaited.
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
async def test_seed_003_sync_engine_with_an_async_driver_fails(migrated_url: str) -> None:
    # The seed builds its engine with the sync create_engine() and an asyncpg URL.
    engine = create_engine(migrated_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    try:
        with pytest.raises(TypeError, match="asynchronous context manager"):
            async with engine.begin():  # type: ignore[attr-defined]
                pass
        with pytest.raises(sa_exc.MissingGreenlet):
            # Also from a coroutine: the sync API cannot drive the async driver.
            with engine.connect():
                pass
    finally:
        engine.dispose()


async def test_seed_003_two_tasks_on_one_plain_async_session(migrated_url: str) -> None:
    engine = create_async_engine(migrated_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    session_factory = async_sessionmaker(engine, expire_on_commit=False)
    try:
        # As written: both tasks start on a fresh session. SQLAlchemy notices the second
        # task while the first is still checking out a connection.
        async with session_factory() as db:
            tasks = [
                asyncio.create_task(db.execute(select(User))),
                asyncio.create_task(db.execute(select(User).where(User.username == "John"))),
            ]
            results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1
        assert isinstance(errors[0], sa_exc.InvalidRequestError)
        assert "concurrent operations are not permitted" in str(errors[0])

        # Once the session holds its connection, the same mistake raises nothing: the
        # driver adapter serializes the two statements behind a lock. No error, and no
        # concurrency either: the server's own clock shows the second sleep starting only
        # after the first ended, on the same backend.
        timed = text(
            "SELECT pg_backend_pid() AS pid, clock_timestamp() AS started, "
            "pg_sleep(0.1)::text AS slept, clock_timestamp() AS ended"
        )
        async with session_factory() as db:
            await db.execute(text("SELECT 1"))
            first, second = await asyncio.gather(
                asyncio.create_task(db.execute(timed)),
                asyncio.create_task(db.execute(timed)),
            )
        a, b = sorted((first.one(), second.one()), key=lambda row: row.started)
        assert a.pid == b.pid
        assert b.started >= a.ended
    finally:
        await engine.dispose()


async def test_seed_003_mistake_on_a_layer_session_is_caught(db: Database) -> None:
    async with db.sessionmaker() as session:
        await session.execute(text("SELECT 1"))  # even once connected: no silent serializing
        tasks = [
            asyncio.create_task(session.execute(text("SELECT pg_sleep(0.1)"))),
            asyncio.create_task(session.execute(select(User).where(User.username == "John"))),
        ]
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert not isinstance(results[0], BaseException)
    assert isinstance(results[1], ConcurrentSessionUseError)
    assert "db.gather" in str(results[1])

    async with db.sessionmaker() as fresh:  # and as written, on a fresh session
        tasks = [
            asyncio.create_task(fresh.execute(select(User))),
            asyncio.create_task(fresh.execute(select(User).where(User.username == "John"))),
        ]
        results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[1], ConcurrentSessionUseError)
    assert cast(QueuePool, db.engine.pool).checkedout() == 0
    assert cast(QueuePool, db.read_engine.pool).checkedout() == 0


async def test_seed_003_done_right_with_db_gather(committed_db: Database) -> None:
    async with committed_db.session() as s:
        s.add_all(
            [
                User(username="John", email="john@example.org"),
                User(username="Jane", email="jane@example.org"),
            ]
        )
    everyone, johns = await committed_db.gather(
        lambda s: s.scalars(select(User.username).order_by(User.username)),
        lambda s: s.scalars(select(User.username).where(User.username == "John")),
    )
    assert list(everyone) == ["Jane", "John"]
    assert list(johns) == ["John"]
