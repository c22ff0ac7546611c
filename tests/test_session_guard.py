"""DALSession belongs to one task at a time: a second task at the door gets a clear error."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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


async def _time_gets(s: AsyncSession, user_id: int, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await s.get(User, user_id)  # identity-map hit: no SQL, the guard's worst case
    return time.perf_counter() - start


async def _time_selects(s: AsyncSession, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await s.scalar(SELECT_ONE)  # one round trip each: the normal case
    return time.perf_counter() - start


async def test_the_guard_costs_little(committed_db: Database) -> None:
    """``get`` on a guarded vs a plain AsyncSession, in short alternating rounds.

    Identity-map hits send no SQL, so the guard's fixed cost is as large a share as it can
    ever be; calls that go to the server (``SELECT 1``) show the normal case. The best round
    of each is compared, which filters out the noise of a shared machine; the numbers are
    printed for the report. The round-trip bound is loose on purpose: it only catches a
    guard that would add real work to every call.
    """
    async with committed_db.session() as s:
        user = User(username="guarded", email="guarded@example.org")
        s.add(user)
    plain_maker = async_sessionmaker(committed_db.engine, expire_on_commit=False)
    best = dict.fromkeys(["guarded", "plain", "guarded_rt", "plain_rt"], float("inf"))
    async with committed_db.sessionmaker() as guarded, plain_maker() as plain:
        # Hold the instances: the identity map is weak, a dropped instance would be reloaded.
        held = [await guarded.get(User, user.id), await plain.get(User, user.id)]
        assert None not in held
        for _ in range(20):
            best["guarded"] = min(best["guarded"], await _time_gets(guarded, user.id, 500))
            best["plain"] = min(best["plain"], await _time_gets(plain, user.id, 500))
            best["plain_rt"] = min(best["plain_rt"], await _time_selects(plain, 50))
            best["guarded_rt"] = min(best["guarded_rt"], await _time_selects(guarded, 50))
    ratio = best["guarded"] / best["plain"]
    ratio_rt = best["guarded_rt"] / best["plain_rt"]
    print(
        f"\nget() identity-map hit, best of 20 rounds of 500: guarded "
        f"{best['guarded'] / 500 * 1e6:.1f} us/call, plain {best['plain'] / 500 * 1e6:.1f} "
        f"us/call, ratio {ratio:.3f}; SELECT 1, best of 20 rounds of 50: guarded "
        f"{best['guarded_rt'] / 50 * 1e6:.0f} us/call, plain {best['plain_rt'] / 50 * 1e6:.0f} "
        f"us/call, ratio {ratio_rt:.3f}"
    )
    assert ratio < 1.5
    assert ratio_rt < 2
    assert await committed_db.gather(lambda s: s.scalar(select(User.id))) == (user.id,)
