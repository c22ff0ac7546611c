"""Misusing a session: the seed 003 mistake written literally, streams, the connection, and a
session used after its block. The caller always sees the clear error, the pool gets its
connection back, and nothing reaches the event loop's exception handler or warns."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, cast

import pytest
from sqlalchemy import select, text
from sqlalchemy.pool import QueuePool

from asyncdal import (
    ConcurrentSessionUseError,
    DALSession,
    Database,
    SessionClosedError,
)
from asyncdal.accounts import User, UserRepository

pytestmark = pytest.mark.filterwarnings("error")

SLOW = text("SELECT pg_sleep(0.2)")


@pytest.fixture
async def loop_errors() -> AsyncIterator[list[dict[str, Any]]]:
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
        gc.collect()
        await asyncio.sleep(0.05)
        assert seen == []
    finally:
        loop.set_exception_handler(previous)


def _checked_out(db: Database) -> int:
    return int(cast(QueuePool, db.engine.pool).checkedout())


async def test_seed_003_literally_with_asyncio_gather(
    committed_db: Database, loop_errors: list[dict[str, Any]]
) -> None:
    with pytest.raises(ConcurrentSessionUseError, match=r"db\.gather"):
        async with committed_db.session() as s:
            await asyncio.gather(s.execute(select(User)), s.execute(SLOW))
    assert _checked_out(committed_db) == 0


async def test_seed_003_with_create_task(
    committed_db: Database, loop_errors: list[dict[str, Any]]
) -> None:
    with pytest.raises(ConcurrentSessionUseError):
        async with committed_db.session() as s:
            first = asyncio.create_task(s.execute(SLOW))
            second = asyncio.create_task(s.execute(select(User)))
            await second
    assert first.done()  # waited for, not abandoned
    assert not first.cancelled()
    assert _checked_out(committed_db) == 0


async def test_caught_inside_the_block_is_raised_again_and_nothing_is_committed(
    committed_db: Database, loop_errors: list[dict[str, Any]]
) -> None:
    with pytest.raises(ConcurrentSessionUseError):
        async with committed_db.session() as s:
            await UserRepository(s).create(username="half", email="half@x.org")
            # The caller swallows it; leaving the block must not commit.
            with contextlib.suppress(ConcurrentSessionUseError):
                await asyncio.gather(s.execute(SLOW), s.execute(select(User)))
    assert _checked_out(committed_db) == 0
    async with committed_db.session() as s:
        assert await s.scalar(text("SELECT count(*) FROM users")) == 0


async def test_a_second_task_is_refused_while_a_stream_is_open(
    committed_db: Database, loop_errors: list[dict[str, Any]]
) -> None:
    async with committed_db.session() as s:
        await UserRepository(s).add_many(
            [{"username": f"u{i}", "email": f"u{i}@x.org"} for i in range(50)]
        )
    interleavings = 0
    # The misuse is raised again when the block ends (nothing is committed).
    with pytest.raises(ConcurrentSessionUseError):
        async with committed_db.session() as s:
            seen = 0
            async with aclosing(UserRepository(s).stream(batch_size=5)) as rows:
                async for _ in rows:
                    seen += 1
                    other = asyncio.create_task(s.execute(text("SELECT 1")))
                    with pytest.raises(ConcurrentSessionUseError):
                        await other
                    interleavings += 1
                    # The stream's own task may still use the session.
                    assert await s.scalar(text("SELECT 2")) == 2
            assert seen == 50
            # Closed: another task may take its turn again.
            assert await asyncio.create_task(s.scalar(text("SELECT 3"))) == 3
    assert interleavings == 50
    assert _checked_out(committed_db) == 0


async def test_the_sessions_connection_is_guarded(
    committed_db: Database, loop_errors: list[dict[str, Any]]
) -> None:
    with pytest.raises(ConcurrentSessionUseError):
        async with committed_db.session() as s:
            conn = await s.connection()
            slow = asyncio.create_task(conn.execute(SLOW))
            await asyncio.sleep(0.05)
            with pytest.raises(ConcurrentSessionUseError):
                await conn.execute(text("SELECT 1"))
            with pytest.raises(ConcurrentSessionUseError):
                await s.execute(text("SELECT 1"))
            await slow
            assert (await conn.execute(text("SELECT 4"))).scalar() == 4
    assert _checked_out(committed_db) == 0


async def test_a_session_used_after_its_block_is_refused_at_once(
    committed_db: Database, loop_errors: list[dict[str, Any]]
) -> None:
    async with committed_db.session() as s:
        await s.execute(text("SELECT 1"))
    with pytest.raises(SessionClosedError, match="after the session's block ended"):
        await s.execute(text("INSERT INTO hashtags (tag) VALUES ('ghost')"))
    with pytest.raises(SessionClosedError):
        await s.commit()

    kept: list[DALSession] = []

    async def read(s: DALSession) -> int:
        kept.append(s)
        return 1

    await committed_db.gather(read)
    with pytest.raises(SessionClosedError):
        await kept[0].execute(text("SELECT 1"))
    assert _checked_out(committed_db) == 0
    async with committed_db.session() as s2:
        assert await s2.scalar(text("SELECT count(*) FROM hashtags")) == 0
