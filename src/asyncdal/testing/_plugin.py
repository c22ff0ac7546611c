"""The implementation of :mod:`asyncdal.testing.plugin` (see there)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url

from asyncdal._base import Base
from asyncdal._database import Database
from asyncdal._migrate import upgrade
from asyncdal._session import DALSession
from asyncdal.testing._context import current_session
from asyncdal.testing._embedded import EmbeddedPostgres

if TYPE_CHECKING:
    import httpx

__all__ = [
    "TEST_APPLICATION_NAME",
    "app_client",
    "committed_db",
    "database_url",
    "db",
    "dsn",
    "empty_database_url",
    "fresh_database",
    "migrated_url",
    "server_url",
    "session",
    "to_dsn",
    "truncate_all",
]

#: ``application_name`` of the ``db`` fixture's connections (find them in pg_stat_activity).
TEST_APPLICATION_NAME = "asyncdal-tests"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``committed`` marker the fixtures' users put on fan-out tests."""
    config.addinivalue_line(
        "markers", "committed: the test commits data visible to other sessions (fan-out tests)"
    )


def to_dsn(url: str) -> str:
    """A libpq-style DSN for raw asyncpg from an SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(server_url: str, prefix: str) -> AsyncIterator[str | None]:
    """Create an empty database on the server, yield its URL, drop it afterwards.

    Yields ``None`` when the role may not ``CREATE DATABASE``.
    """
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(to_dsn(server_url))
    try:
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.InsufficientPrivilegeError:
            yield None
            return
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def truncate_all(db: Database) -> None:
    """Empty every table on ``Base`` that exists in ``db`` (a service's too) and reset ids."""
    async with db.engine.begin() as conn:
        existing = set(
            (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                )
            ).scalars()
        )
        # Names from the metadata, quoted; never from input.
        names = [f'"{t.name}"' for t in Base.metadata.sorted_tables if t.name in existing]
        if names:
            await conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """The URL of a PostgreSQL server: ``DATABASE_URL`` or a throwaway embedded one."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with EmbeddedPostgres() as pg:
        yield pg.url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for this run (or ``DATABASE_URL`` itself without CREATEDB)."""
    async with fresh_database(server_url, "asyncdal_test") as url:
        yield url or server_url


@pytest_asyncio.fixture(loop_scope="session")
async def empty_database_url(server_url: str) -> AsyncIterator[str]:
    """An empty database of the test's own (no schema), for tests that migrate it themselves."""
    async with fresh_database(server_url, "asyncdal_empty") as url:
        if url is None:
            pytest.skip("the test server's role cannot CREATE DATABASE")
        yield url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def migrated_url(database_url: str) -> str:
    """The test database, migrated to head by asyncdal's own Alembic scripts."""
    await upgrade(database_url)
    return database_url


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def db(migrated_url: str) -> AsyncIterator[Database]:
    """One :class:`Database` for the whole run, like a service would hold."""
    database = Database.from_url(
        migrated_url, application_name=TEST_APPLICATION_NAME, pool_size=10, max_overflow=10
    )
    yield database
    await database.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def session(db: Database) -> AsyncIterator[DALSession]:
    """A session inside an outer transaction that is rolled back after the test."""
    async with db.engine.connect() as conn:
        outer = await conn.begin()
        test_session = DALSession(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        token = current_session.set(test_session)
        try:
            yield test_session
        finally:
            current_session.reset(token)
            await test_session.close()
            if outer.is_active:
                await outer.rollback()


@pytest_asyncio.fixture(loop_scope="session")
async def committed_db(db: Database) -> AsyncIterator[Database]:
    """The run's database for tests that commit; every table is emptied before and after."""
    await truncate_all(db)
    try:
        yield db
    finally:
        await truncate_all(db)


@pytest.fixture
def dsn(migrated_url: str) -> str:
    """The test database as a DSN for raw asyncpg (seed 000/002 style code)."""
    return to_dsn(migrated_url)


@pytest_asyncio.fixture(loop_scope="session")
async def app_client(
    app: Any, committed_db: Database, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    """An ``httpx.AsyncClient`` on the service's ``app`` fixture, with the app's lifespan running.

    The service defines an ``app`` fixture (its FastAPI or any ASGI app with a lifespan). While
    the lifespan starts, ``DATABASE_URL`` is the test database, so an app that builds its
    database from the environment (``lifespan()`` without ``db``) uses it. Requests commit
    (one unit of work each): like ``committed_db``, every table is emptied before and after the
    test. Needs httpx (in the ``[testing]`` extra).
    """
    import httpx

    monkeypatch.setenv("DATABASE_URL", committed_db.url.render_as_string(hide_password=False))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client
