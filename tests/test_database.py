"""Database: the unit of work, pool hygiene, settings on the wire, errors without passwords."""

from __future__ import annotations

import asyncio
import socket
import traceback
from typing import cast

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.pool import QueuePool

from asyncdal import Database, DatabaseUnavailableError, DuplicateError, QueryTimeoutError
from asyncdal.accounts import User

SECRET = "s3cr3t-Pa55"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _count_users(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(User)) or 0)


async def test_session_commits_on_success(committed_db: Database) -> None:
    async with committed_db.session() as s:
        s.add(User(username="ada", email="ada@example.org"))
    # Visible from another session, so it was committed.
    async with committed_db.session() as s:
        user = await s.scalar(select(User).where(User.username == "ada"))
    assert user is not None
    assert user.email == "ada@example.org"
    assert user.follower_count == 0
    assert user.created_at.tzinfo is not None


async def test_session_rolls_back_on_error_and_writes_nothing(committed_db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with committed_db.session() as s:
            s.add(User(username="bob", email="bob@example.org"))
            await s.flush()
            raise RuntimeError("boom")
    assert await _count_users(committed_db) == 0
    assert cast(QueuePool, committed_db.engine.pool).checkedout() == 0
    assert cast(QueuePool, committed_db.read_engine.pool).checkedout() == 0


async def test_session_maps_driver_errors_and_loses_nothing(committed_db: Database) -> None:
    async with committed_db.session() as s:
        s.add(User(username="ada", email="ada@example.org"))
    with pytest.raises(DuplicateError) as info:
        async with committed_db.session() as s:
            s.add(User(username="other", email="other@example.org"))
            await s.flush()
            s.add(User(username="ada", email="ada2@example.org"))
    assert info.value.constraint == "uq_users_username"
    assert "ada" not in str(info.value)  # the duplicate key stays in .detail, out of the message
    assert "(username)=(ada)" in (info.value.detail or "")
    assert info.value.__cause__ is not None  # the driver error is chained
    # The first insert of the failed unit of work was rolled back with it.
    assert await _count_users(committed_db) == 1
    assert cast(QueuePool, committed_db.engine.pool).checkedout() == 0
    assert cast(QueuePool, committed_db.read_engine.pool).checkedout() == 0


async def test_cancelled_session_returns_its_connection(committed_db: Database) -> None:
    started = asyncio.Event()

    async def slow() -> None:
        async with committed_db.session() as s:
            s.add(User(username="slow", email="slow@example.org"))
            await s.flush()
            started.set()
            await s.execute(text("SELECT pg_sleep(10)"))

    task = asyncio.create_task(slow())
    await started.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cast(QueuePool, committed_db.engine.pool).checkedout() == 0
    assert cast(QueuePool, committed_db.read_engine.pool).checkedout() == 0
    assert await _count_users(committed_db) == 0


async def test_settings_reach_the_server(migrated_url: str) -> None:
    async with Database.from_url(
        migrated_url, statement_timeout=1.5, application_name="asyncdal-settings-test"
    ) as db:
        async with db.session() as s:
            name = await s.scalar(text("SHOW application_name"))
            timeout = await s.scalar(text("SHOW statement_timeout"))
    assert name == "asyncdal-settings-test"
    assert timeout == "1500ms"


async def test_statement_timeout_raises_query_timeout(migrated_url: str) -> None:
    async with Database.from_url(migrated_url, statement_timeout=0.1) as db:
        with pytest.raises(QueryTimeoutError):
            async with db.session() as s:
                await s.execute(text("SELECT pg_sleep(5)"))
        assert cast(QueuePool, db.engine.pool).checkedout() == 0
        assert cast(QueuePool, db.read_engine.pool).checkedout() == 0
        # The pool is still usable afterwards.
        async with db.session() as s:
            assert await s.scalar(text("SELECT 1")) == 1


async def test_unreachable_server_is_unavailable_and_password_never_shown() -> None:
    url = f"postgresql+asyncpg://app:{SECRET}@127.0.0.1:{_closed_port()}/app"
    async with Database.from_url(url, connect_timeout=2) as db:
        assert SECRET not in repr(db)
        with pytest.raises(DatabaseUnavailableError) as info:
            async with db.session() as s:
                await s.execute(text("SELECT 1"))
    rendered = "".join(traceback.format_exception(info.value))
    assert SECRET not in rendered
    assert SECRET not in repr(info.value)


async def test_pool_exhaustion_is_unavailable(migrated_url: str) -> None:
    async with Database.from_url(migrated_url, pool_size=1, max_overflow=0, pool_timeout=0.2) as db:
        async with db.session() as holder:
            await holder.execute(text("SELECT 1"))
            with pytest.raises(DatabaseUnavailableError, match="pool"):
                async with db.session() as s:
                    await s.execute(text("SELECT 1"))
        async with db.session() as s:
            assert await s.scalar(text("SELECT 2")) == 2


async def _terminate_backends(db: Database, application_name: str) -> int:
    async with db.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :name AND pid <> pg_backend_pid()"
            ),
            {"name": application_name},
        )
        return int(result.scalar_one())


async def test_connection_killed_by_the_server_costs_one_request(
    migrated_url: str, db: Database
) -> None:
    """A connection the server drops fails its session once, mapped; the pool then recovers.

    (Dropped while idle in the pool, it is replaced at checkout when the client has already
    seen the server's goodbye, which is a race: so it is dropped under an open session.)
    """
    name = "asyncdal-terminate-test"
    async with Database.from_url(migrated_url, application_name=name, pool_size=2) as victim:
        with pytest.raises(DatabaseUnavailableError):
            async with victim.session() as s:
                assert await s.scalar(text("SELECT 1")) == 1
                assert await _terminate_backends(db, name) == 1
                await s.execute(text("SELECT 1"))
        assert cast(QueuePool, victim.engine.pool).checkedout() == 0
        assert cast(QueuePool, victim.read_engine.pool).checkedout() == 0
        async with victim.session() as s:
            assert await s.scalar(text("SELECT 2")) == 2


async def test_pre_ping_hides_a_connection_killed_by_the_server(
    migrated_url: str, db: Database
) -> None:
    name = "asyncdal-preping-test"
    async with Database.from_url(
        migrated_url, application_name=name, pool_size=2, pool_pre_ping=True
    ) as pinged:
        async with pinged.session() as s:
            assert await s.scalar(text("SELECT 1")) == 1
        assert await _terminate_backends(db, name) == 1
        async with pinged.session() as s:
            assert await s.scalar(text("SELECT 2")) == 2
