"""The error contract: driver errors mapped once at the boundary, the caller's own untouched.

Every database failure reaches the caller as an ``AsyncDALError`` subclass (with the driver's
exception chained); an exception the caller's own code raises inside ``db.session()`` or
``db.transaction()`` passes through unchanged. ``db.transaction`` retries only what the
database itself reported as retryable, and refuses the calls that would break its retries.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool

from asyncdal import (
    AsyncDALError,
    ConcurrencyError,
    DALSession,
    Database,
    DatabaseUnavailableError,
    InvalidQueryError,
    QueryError,
    ReadOnlyTransactionError,
    StaleStatementError,
    TransactionUsageError,
)

pytestmark = pytest.mark.filterwarnings("error")


def _checked_out(db: Database) -> int:
    return int(cast(QueuePool, db.engine.pool).checkedout())


async def test_callers_own_exceptions_pass_through_a_session(committed_db: Database) -> None:
    for own in (FileNotFoundError("config.toml"), ConnectionResetError("upstream"), TimeoutError()):
        with pytest.raises(type(own)) as caught:
            async with committed_db.session() as s:
                await s.execute(text("SELECT 1"))
                raise own
        assert caught.value is own
    assert _checked_out(committed_db) == 0


async def test_callers_own_exceptions_pass_through_a_transaction(committed_db: Database) -> None:
    async def fn(s: DALSession) -> None:
        raise FileNotFoundError("x")

    with pytest.raises(FileNotFoundError):
        await committed_db.transaction(fn)


@pytest.mark.parametrize(
    ("sql", "sqlstate"),
    [("SELECT 1/0", "22012"), ("SELECT * FROM no_such_table_here", "42P01")],
)
async def test_statement_errors_are_query_errors_with_their_sqlstate(
    committed_db: Database, sql: str, sqlstate: str
) -> None:
    with pytest.raises(QueryError) as caught:
        async with committed_db.session() as s:
            await s.execute(text(sql))
    assert caught.value.sqlstate == sqlstate
    assert isinstance(caught.value.__cause__, sa_exc.DBAPIError)
    with pytest.raises(QueryError):
        await committed_db.gather(lambda s: s.execute(text(sql)))
    assert _checked_out(committed_db) == 0


async def test_a_write_inside_gather_is_a_read_only_error(committed_db: Database) -> None:
    with pytest.raises(ReadOnlyTransactionError, match="read-only") as caught:
        await committed_db.gather(
            lambda s: s.execute(text("INSERT INTO users (username, email) VALUES ('x', 'x@x')"))
        )
    assert caught.value.sqlstate == "25006"
    assert isinstance(caught.value, QueryError)


async def test_a_close_that_fails_after_the_work_is_mapped_or_harmless(
    committed_db: Database, dsn: str
) -> None:
    """The server kills the session's backend after its read: the ROLLBACK at close fails."""

    async def read_then_die(s: DALSession) -> int:
        pid = int(await s.scalar(text("SELECT pg_backend_pid()")) or 0)
        admin = await asyncpg.connect(dsn)
        try:
            await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        return pid

    for _ in range(3):
        # Mapped (AsyncDALError) or harmless (the work was done): anything else fails.
        with contextlib.suppress(AsyncDALError):
            await committed_db.gather(read_then_die)
        with contextlib.suppress(AsyncDALError):
            async with committed_db.session() as s:
                await read_then_die(s)
    assert _checked_out(committed_db) == 0
    async with committed_db.session() as s:
        assert await s.scalar(text("SELECT 1")) == 1


@pytest.fixture
async def scratch_table(committed_db: Database, dsn: str) -> AsyncIterator[str]:
    name = f"stale_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, v int NOT NULL)")
        await admin.execute(f"INSERT INTO {name} VALUES (1, 10)")
        yield name
    finally:
        await admin.execute(f"DROP TABLE IF EXISTS {name}")
        await admin.close()


async def _alter_elsewhere(dsn: str, table: str, kind: str) -> None:
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f"ALTER TABLE {table} ALTER COLUMN v TYPE {kind}")
    finally:
        await admin.close()


async def test_stale_cached_statement_is_retried_transparently(
    migrated_url: str, dsn: str, scratch_table: str
) -> None:
    select_all = text(f"SELECT * FROM {scratch_table} WHERE id = :id")
    async with Database.from_url(migrated_url, pool_size=1, max_overflow=0) as db:

        async def read(s: DALSession) -> Any:
            return (await s.execute(select_all, {"id": 1})).all()

        async with db.session() as s:
            assert await read(s) == [(1, 10)]  # prepared and cached on the one connection
        await _alter_elsewhere(dsn, scratch_table, "bigint")
        async with db.session() as s:  # the first statement of a unit of work: safe to retry
            assert await read(s) == [(1, 10)]

        await _alter_elsewhere(dsn, scratch_table, "int")
        assert await db.gather(read) == ([(1, 10)],)

        await _alter_elsewhere(dsn, scratch_table, "bigint")
        assert await db.transaction(read) == [(1, 10)]

        # Inside a transaction that already did work, a retry would not be transparent.
        await _alter_elsewhere(dsn, scratch_table, "int")
        with pytest.raises(StaleStatementError, match="retry") as caught:
            async with db.session() as s:
                await s.execute(text("SELECT 1"))
                await read(s)
        assert isinstance(caught.value, AsyncDALError)
        async with db.session() as s:  # and the next call works
            assert await read(s) == [(1, 10)]
        assert _checked_out(db) == 0


async def test_a_stale_statement_in_a_session_on_the_callers_transaction_is_not_retried(
    migrated_url: str, dsn: str, scratch_table: str
) -> None:
    # A session bound to the caller's connection shares the caller's transaction: rolling it
    # back to run the statement again would silently drop what the caller wrote before.
    select_all = text(f"SELECT * FROM {scratch_table} WHERE id = :id")
    async with Database.from_url(migrated_url, pool_size=1, max_overflow=0) as db:
        async with db.engine.connect() as conn:
            await conn.execute(select_all, {"id": 1})  # prepared and cached on this connection
            await conn.commit()
            await _alter_elsewhere(dsn, scratch_table, "bigint")
            await conn.execute(text("INSERT INTO users (username, email) VALUES ('c', 'c@x.org')"))
            sent: list[str] = []

            def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
                sent.append(statement)

            event.listen(conn.sync_connection, "before_cursor_execute", record)
            session = DALSession(bind=conn)
            with pytest.raises(StaleStatementError):
                await session.execute(select_all, {"id": 1})
            assert len(sent) == 1  # not rolled back and run again
            assert conn.in_transaction()  # the caller's, still the caller's to end
            await session.close()
            await conn.rollback()


async def test_close_ends_a_failed_transaction_and_the_block_commits_what_follows(
    committed_db: Database,
) -> None:
    from asyncdal import DuplicateError
    from asyncdal.accounts import UserRepository

    async with committed_db.session() as s:
        await UserRepository(s).create(username="taken", email="taken@x.org")
    async with committed_db.session() as s:
        with contextlib.suppress(DuplicateError):
            await s.execute(text("INSERT INTO users (username, email) VALUES ('taken', 'y@x.org')"))
        await s.close()  # the failed transaction is rolled back and over
        await UserRepository(s).create(username="after", email="after@x.org")
    async with committed_db.session() as s:
        names = (await s.scalars(text("SELECT username FROM users ORDER BY 1"))).all()
    assert names == ["after", "taken"]
    assert _checked_out(committed_db) == 0


async def test_an_app_exception_chained_from_a_serialization_failure_is_not_retried(
    committed_db: Database,
) -> None:
    calls = 0

    async def fn(s: DALSession) -> None:
        nonlocal calls
        calls += 1
        try:
            await s.execute(
                text("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
            )
        except AsyncDALError as exc:
            raise LookupError("the app's own decision") from exc

    with pytest.raises(LookupError):
        await committed_db.transaction(fn, retries=3)
    assert calls == 1


async def test_a_serialization_failure_reported_by_the_database_is_retried(
    committed_db: Database,
) -> None:
    calls = 0

    async def fn(s: DALSession) -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            await s.execute(
                text("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
            )
        return calls

    assert await committed_db.transaction(fn, retries=3) == 3
    calls = 0
    with pytest.raises(ConcurrencyError) as caught:
        await committed_db.transaction(fn, retries=1)
    assert caught.value.attempts == 2


async def test_nested_transaction_is_refused_and_retries_never_multiply(
    committed_db: Database,
) -> None:
    inner_calls = 0

    async def inner(s: DALSession) -> None:
        nonlocal inner_calls
        inner_calls += 1

    async def outer(s: DALSession) -> None:
        await committed_db.transaction(inner)

    with pytest.raises(TransactionUsageError, match="nested"):
        await committed_db.transaction(outer, retries=3)
    assert inner_calls == 0
    assert _checked_out(committed_db) == 0


@pytest.mark.parametrize("call", ["commit", "rollback", "close", "reset"])
async def test_fn_calling_commit_is_refused_and_nothing_is_committed(
    committed_db: Database, call: str
) -> None:
    name = f"tx{secrets.token_hex(3)}"

    async def fn(s: DALSession) -> None:
        await s.execute(
            text("INSERT INTO users (username, email) VALUES (:n, :e)"),
            {"n": name, "e": f"{name}@x.org"},
        )
        await getattr(s, call)()
        raise RuntimeError("after the commit")

    with pytest.raises(TransactionUsageError, match=call):
        await committed_db.transaction(fn)
    async with committed_db.session() as s:
        count = await s.scalar(text("SELECT count(*) FROM users WHERE username = :n"), {"n": name})
    assert count == 0


def test_new_errors_are_in_the_tree() -> None:
    assert issubclass(QueryError, AsyncDALError)
    assert issubclass(ReadOnlyTransactionError, QueryError)
    assert issubclass(StaleStatementError, AsyncDALError)
    assert issubclass(TransactionUsageError, AsyncDALError)
    assert issubclass(InvalidQueryError, ValueError)
    assert issubclass(DatabaseUnavailableError, AsyncDALError)


async def test_lookups_and_flags_are_checked_before_sql(committed_db: Database) -> None:
    """Found by a second hostile-input property run: by_username sent a NUL to the server,
    and follow(exist_ok=...) took any truthy value."""
    from asyncdal import InvalidTypeError
    from asyncdal.accounts import UserRepository
    from asyncdal.social import FollowRepository

    async with committed_db.session() as s:
        a = await UserRepository(s).create(username="a", email="a@x.org")
        b = await UserRepository(s).create(username="b", email="b@x.org")
    with pytest.raises(InvalidQueryError, match="username"):
        async with committed_db.session() as s:
            await UserRepository(s).by_username("a\x00b")
    with pytest.raises(InvalidTypeError, match="exist_ok"):
        async with committed_db.session() as s:
            await FollowRepository(s).follow(a.id, b.id, exist_ok="no")  # type: ignore[arg-type]
    async with committed_db.session() as s:
        assert await s.scalar(text("SELECT count(*) FROM follows")) == 0


async def test_a_swallowed_statement_error_is_not_reported_as_a_commit(
    committed_db: Database,
) -> None:
    """PostgreSQL answers COMMIT of a failed transaction with a silent ROLLBACK: the block
    must not look committed when the caller caught the error and carried on."""
    from asyncdal import DuplicateError
    from asyncdal.accounts import UserRepository

    async with committed_db.session() as s:
        await UserRepository(s).create(username="taken", email="taken@x.org")
    with pytest.raises(DuplicateError):
        async with committed_db.session() as s:
            await UserRepository(s).create(username="fresh", email="fresh@x.org")
            with contextlib.suppress(DuplicateError):
                await s.execute(
                    text("INSERT INTO users (username, email) VALUES ('taken', 'y@x.org')")
                )
    # Inside a savepoint that was rolled back, the same mistake is recovered from.
    async with committed_db.session() as s:
        await UserRepository(s).create(username="kept", email="kept@x.org")
        with contextlib.suppress(DuplicateError):
            async with s.begin_nested():
                await s.execute(
                    text("INSERT INTO users (username, email) VALUES ('taken', 'z@x.org')")
                )
    async with committed_db.session() as s:
        names = (await s.scalars(text("SELECT username FROM users ORDER BY 1"))).all()
    assert names == ["kept", "taken"]
