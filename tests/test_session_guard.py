"""DALSession belongs to one task at a time: a second task at the door gets a clear error."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from asyncdal import ConcurrentSessionUseError, DALSession, Database, User

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
    """10k identity-map ``get`` calls, guarded vs a plain AsyncSession, interleaved rounds.

    No SQL is sent, so the guard's fixed cost is as large a share as it can ever be; a call
    that goes to the server costs far more. The ratio of the best rounds is printed (see the
    report) and must stay well under 1.5 even on a loaded machine.
    """
    async with committed_db.session() as s:
        user = User(username="guarded", email="guarded@example.org")
        s.add(user)
    plain_maker = async_sessionmaker(committed_db.engine, expire_on_commit=False)
    best = {"guarded": float("inf"), "plain": float("inf")}
    async with committed_db.sessionmaker() as guarded, plain_maker() as plain:
        # Hold the instances: the identity map is weak, a dropped instance would be reloaded.
        held = [await guarded.get(User, user.id), await plain.get(User, user.id)]
        assert None not in held
        for _ in range(5):
            best["guarded"] = min(best["guarded"], await _time_gets(guarded, user.id, 2000))
            best["plain"] = min(best["plain"], await _time_gets(plain, user.id, 2000))
            best["guarded_rt"] = min(best.get("guarded_rt", 1e9), await _time_selects(guarded, 200))
            best["plain_rt"] = min(best.get("plain_rt", 1e9), await _time_selects(plain, 200))
    ratio = best["guarded"] / best["plain"]
    ratio_rt = best["guarded_rt"] / best["plain_rt"]
    print(
        f"\n10k get() in 5 rounds, best round of 2000: guarded {best['guarded'] * 1e3:.1f} ms, "
        f"plain {best['plain'] * 1e3:.1f} ms, ratio {ratio:.3f}; "
        f"1k SELECT 1, best round of 200: guarded {best['guarded_rt'] * 1e3:.1f} ms, "
        f"plain {best['plain_rt'] * 1e3:.1f} ms, ratio {ratio_rt:.3f}"
    )
    assert ratio < 1.5
    assert ratio_rt < 1.5
    assert await committed_db.gather(lambda s: s.scalar(select(User.id))) == (user.id,)
