"""The replica tests' set-up: a primary and a lagging streaming replica per test module.

``primary`` and ``replica`` are module-scoped (a module gets servers of its own; conftest.py
registers the fixtures for every test module), and the replica applies WAL
:data:`APPLY_DELAY_MS` late (``recovery_min_apply_delay``), so a row just written is missing
there for a while. How long "a while" lasts on a loaded machine is not up to the test: a test
that needs the replica to miss a write holds its replay with :func:`replay_paused`.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
import pytest

from asyncdal import Database, upgrade
from asyncdal.testing import EmbeddedPostgres
from tests._cluster import Standby, standby

__all__ = ["APPLY_DELAY_MS", "fresh", "primary", "replay_paused", "replica", "replica_db"]

T = TypeVar("T")
APPLY_DELAY_MS = 300


@pytest.fixture(scope="module")
def primary() -> Iterator[EmbeddedPostgres]:
    """A primary of the module's own."""
    with EmbeddedPostgres() as server:
        yield server


@pytest.fixture(scope="module")
async def replica(primary: EmbeddedPostgres) -> AsyncIterator[Standby]:
    """A hot standby of the migrated ``primary``, applying WAL :data:`APPLY_DELAY_MS` late."""
    await upgrade(primary.url)
    with standby(primary, apply_delay_ms=APPLY_DELAY_MS) as server:
        yield server


@pytest.fixture
async def replica_db(primary: EmbeddedPostgres, replica: Standby) -> AsyncIterator[Database]:
    """A Database on ``primary`` reading from ``replica``, waiting up to 5 s for it."""
    async with Database.from_url(primary.url, replicas=[replica.url], replica_wait=5) as db:
        yield db


def fresh(coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """Run ``coro`` in a brand-new context: another request, with no write of its own."""
    return asyncio.create_task(coro, context=contextvars.Context())


@asynccontextmanager
async def replay_paused(replica: Standby) -> AsyncIterator[None]:
    """``replica`` replays no WAL written inside the block (``pg_wal_replay_pause()``).

    The startup process checks the pause before it applies each record (also after its
    ``recovery_min_apply_delay`` wait), so every record written after the call stays
    unapplied, however slowly the test runs; replay resumes when the block ends.
    """
    conn = await asyncpg.connect(replica.dsn)
    try:
        await conn.execute("SELECT pg_wal_replay_pause()")
        try:
            yield
        finally:
            await conn.execute("SELECT pg_wal_replay_resume()")
    finally:
        await conn.close()
