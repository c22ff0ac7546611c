"""DALSession belongs to one task at a time: a second task at the door gets a clear error."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from asyncdal import ConcurrentSessionUseError, DALSession, Database
from asyncdal.accounts import User

SLEEP = text("SELECT pg_sleep(0.2)")
SELECT_ONE = text("SELECT 1")


async def test_second_task_inside_a_busy_session_is_refused(db: Database) -> None:
    async with db.sessionmaker() as s:
        slow = asyncio.create_task(s.execute(SLEEP), name="slow-reader")
        await asyncio.sleep(0.05)  # the slow task is now inside execute()
        with pytest.raises(ConcurrentSessionUseError) as caught:
            await s.scalar(text("SELECT 1"))
        await slow  # the first task is unharmed
        assert await s.scalar(text("SELECT 2")) == 2  # and the session still works
    message = str(caught.value)
    assert "'slow-reader'" in message
    assert "DALSession.scalar()" in message
    assert "db.gather" in message
    assert "one session" in message or "its own session" in message


@pytest.mark.parametrize(
    "call",
    ["execute", "scalar", "scalars", "get", "flush", "commit", "rollback", "connection"],
)
async def test_every_database_call_is_guarded(call: str, db: Database) -> None:
    calls = {
        "execute": lambda s: s.execute(text("SELECT 1")),
        "scalar": lambda s: s.scalar(text("SELECT 1")),
        "scalars": lambda s: s.scalars(text("SELECT 1")),
        "get": lambda s: s.get(User, 1),
        "flush": lambda s: s.flush(),
        "commit": lambda s: s.commit(),
        "rollback": lambda s: s.rollback(),
        "connection": lambda s: s.connection(),
    }
    async with db.sessionmaker() as s:
        slow = asyncio.create_task(s.execute(SLEEP))
        await asyncio.sleep(0.05)
        with pytest.raises(ConcurrentSessionUseError, match=rf"DALSession\.{call}\(\)"):
            await calls[call](s)
        await slow


async def test_tasks_taking_turns_are_allowed(db: Database) -> None:
    async with db.sessionmaker() as s:
        for n in range(3):
            value = await asyncio.create_task(s.scalar(text("SELECT :n").bindparams(n=n)))
            assert value == n
        first = asyncio.create_task(s.scalar(text("SELECT 10")))
        assert await first == 10
        assert await asyncio.create_task(s.scalar(text("SELECT 11"))) == 11


async def test_the_guard_is_released_after_errors_and_cancellation(db: Database) -> None:
    async with db.sessionmaker() as s:
        task = asyncio.create_task(s.execute(SLEEP))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await s.rollback()
        assert await s.scalar(text("SELECT 3")) == 3
        with pytest.raises(Exception, match="division by zero"):
            await s.execute(text("SELECT 1/0"))
        await s.rollback()
        assert await asyncio.create_task(s.scalar(text("SELECT 4"))) == 4


async def test_the_fixture_constructor_still_works(session: DALSession) -> None:
    # conftest builds DALSession(bind=conn, join_transaction_mode=...) directly.
    assert isinstance(session, DALSession)
    assert await session.scalar(text("SELECT 5")) == 5


async def test_docstrings_of_guarded_methods_are_kept() -> None:
    assert DALSession.execute.__doc__ == AsyncSession.execute.__doc__
    assert DALSession.get.__name__ == "get"
