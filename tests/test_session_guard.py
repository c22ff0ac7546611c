"""DALSession belongs to one task at a time: a second task at the door gets a clear error."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from asyncdal import ConcurrentSessionUseError, DALSession, Database, TransactionUsageError
from asyncdal._guard import UNGUARDED, GuardedConnection
from asyncdal.accounts import User, UserRepository
from asyncdal.testing.factories import UserFactory, create

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
        with pytest.raises(Exception, match="22012"):
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


def _coroutine_methods(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and inspect.iscoroutinefunction(member)
    }


def test_every_coroutine_method_of_the_installed_asyncsession_is_guarded_or_exempt() -> None:
    # Guarded means: defined on DALSession itself (not inherited unchanged from AsyncSession).
    methods = _coroutine_methods(AsyncSession)
    assert {"execute", "commit", "flush", "stream"} <= methods
    unguarded = {
        name
        for name in methods - UNGUARDED
        if getattr(DALSession, name) is getattr(AsyncSession, name)
    }
    assert unguarded == set(), f"AsyncSession coroutines without the guard: {sorted(unguarded)}"
    assert methods | {"close_all"} >= UNGUARDED


def test_every_statement_method_of_the_installed_asyncconnection_is_guarded() -> None:
    # The coroutines that send statements, plus the two stream starters (not coroutines).
    statement_methods = {"execute", "exec_driver_sql", "scalar", "scalars", "run_sync"}
    assert statement_methods <= _coroutine_methods(AsyncConnection)
    exempt = {  # transaction control belongs to the session; the rest sends no statement
        "aclose", "close", "commit", "rollback", "invalidate", "start",
        "execution_options", "get_isolation_level", "get_raw_connection",
    }  # fmt: skip
    assert _coroutine_methods(AsyncConnection) - statement_methods <= exempt
    for name in [*statement_methods, "stream", "stream_scalars"]:
        assert getattr(GuardedConnection, name) is not getattr(AsyncConnection, name), name


async def test_the_guarded_connection_is_an_asyncconnection_and_streams_as_a_context(
    db: Database,
) -> None:
    async with db.session() as s:
        conn = await s.connection()
        assert isinstance(conn, AsyncConnection)
        async with conn.stream(text("SELECT generate_series(1, 5)")) as result:
            assert [row[0] async for row in result] == [1, 2, 3, 4, 5]
        streamed = await conn.stream_scalars(text("SELECT generate_series(1, 3)"))
        assert [v async for v in streamed] == [1, 2, 3]
        await streamed.close()
        assert await conn.scalar(text("SELECT 7")) == 7
        # The session still hands out its own connection, and it is guarded too.
        assert isinstance(await s.connection(), AsyncConnection)


async def test_a_connection_stream_held_by_one_task_refuses_another(db: Database) -> None:
    async with db.session() as s:
        conn = await s.connection()
        async with conn.stream(text("SELECT generate_series(1, 100)")) as result:
            await anext(aiter(result))
            intruder = asyncio.create_task(s.scalar(SELECT_ONE), name="intruder")
            with pytest.raises(ConcurrentSessionUseError, match="'intruder'"):
                await intruder
        s._dal_misuse = None  # the misuse was this test's own doing: let the block commit


async def test_a_repository_stream_refuses_other_tasks_while_it_iterates(
    session: DALSession,
) -> None:
    # Issue 19: another task's statements ran interleaved with an open Repository.stream().
    await create(UserFactory, n=20)
    outcomes: list[str] = []

    async def other() -> None:
        try:
            await session.scalar(SELECT_ONE)
            outcomes.append("ran")
        except ConcurrentSessionUseError:
            outcomes.append("refused")

    seen = 0
    async for _ in UserRepository(session).stream(batch_size=5):
        seen += 1
        await asyncio.create_task(other())
    session._dal_misuse = None  # this test's own doing
    assert seen >= 20
    assert outcomes == ["refused"] * seen
    assert await session.scalar(SELECT_ONE) == 1  # after the stream, the session is free


async def _streams(s: DALSession, how: str) -> list[int]:
    """Stream ``SELECT generate_series(1, 3)`` (or the users) one of the four ways."""
    if how == "repository":
        return [u.id async for u in UserRepository(s).stream()]
    if how == "stream":
        return [row[0] async for row in await s.stream(text("SELECT generate_series(1, 3)"))]
    if how == "stream_scalars":
        return [v async for v in await s.stream_scalars(text("SELECT generate_series(1, 3)"))]
    conn = await s.connection()
    async with conn.stream(text("SELECT generate_series(1, 3)")) as result:
        return [row[0] async for row in result]


@pytest.mark.parametrize("how", ["repository", "stream", "stream_scalars", "connection"])
async def test_a_stream_in_a_read_session_is_refused_clearly_before_any_sql(
    db: Database, how: str
) -> None:
    """Issue 19: a stream in db.read() failed with a bare 25P01 ("cursor cannot be created
    outside of a transaction"), which says nothing of where a stream belongs. A read session
    has no transaction (the read pool's autocommit): the layer refuses the stream itself."""
    sent: list[str] = []

    def record(conn: object, cursor: object, statement: str, *args: object) -> None:
        sent.append(statement)

    engine = db.read_engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        async with db.read() as s:
            await s.connection()
            with pytest.raises(TransactionUsageError) as refused:
                await _streams(s, how)
            assert sent == []
            assert await s.scalar(SELECT_ONE) == 1  # the read session still works
        with pytest.raises(TransactionUsageError):
            await db.gather(lambda s: _streams(s, how))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    message = str(refused.value)
    assert "db.read()" in message
    assert "transaction" in message
    assert "db.session()" in message
    # Where a transaction exists, each way streams: db.session(), and a consistent gather.
    async with db.session() as s:
        assert len(await _streams(s, how)) == len(await _streams(s, how))
    assert await db.gather(lambda s: _streams(s, "stream"), consistent=True) == ([1, 2, 3],)


async def test_without_a_read_pool_a_stream_in_db_read_works(migrated_url: str) -> None:
    """read_pool_size=0: db.read() runs in BEGIN READ ONLY on the main pool, so it streams."""
    async with Database.from_url(migrated_url, read_pool_size=0) as database:
        async with database.read() as s:
            assert await _streams(s, "stream") == [1, 2, 3]
            assert await _streams(s, "connection") == [1, 2, 3]
