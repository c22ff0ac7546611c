"""A read whose connection dies mid-read runs again (reads are idempotent); nothing else does.

The backend of a running read is terminated by the server (as a failover or a restart does):
``db.gather`` runs the read once more on a new connection, and the caller sees only the result
(``db.get``'s batches likewise: tests/test_lookups.py). A unit of work is not retried (its
code ran), nor is a caller's own exception, nor a read that keeps dying (bounded).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from sqlalchemy import text

from asyncdal import DALSession, Database, DatabaseUnavailableError
from asyncdal._read_retry import READ_RETRIES


@contextlib.asynccontextmanager
async def _admin(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()


def _dying_read(dsn: str, runs: list[int], deaths: int) -> Callable[[DALSession], Awaitable[int]]:
    """A read that has the server kill its own backend on its first ``deaths`` runs."""

    async def read(s: DALSession) -> int:
        pid = int(await s.scalar(text("SELECT pg_backend_pid()")) or 0)
        runs.append(pid)
        if len(runs) <= deaths:
            async with _admin(dsn) as admin:
                assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid) is True
            await s.execute(text("SELECT pg_sleep(5)"))  # the server ends it at once
        return pid

    return read


async def test_a_read_whose_backend_dies_runs_again_on_a_new_connection(
    migrated_url: str, dsn: str
) -> None:
    runs: list[int] = []
    async with Database.from_url(migrated_url) as db:
        (pid,) = await db.gather(_dying_read(dsn, runs, deaths=1))
    assert len(runs) == 2
    assert pid == runs[1] != runs[0]


async def test_a_read_outlives_three_dead_connections_in_a_row(migrated_url: str, dsn: str) -> None:
    # A switchover ends every pooled connection to the old primary; a loaded process may hand
    # one read several of them before its loop has seen them closed.
    runs: list[int] = []
    async with Database.from_url(migrated_url) as db:
        (pid,) = await db.gather(_dying_read(dsn, runs, deaths=3))
    assert len(runs) == 4
    assert pid == runs[3]
    assert len(set(runs)) == 4


async def test_a_read_that_keeps_dying_fails_after_a_bounded_number_of_runs(
    migrated_url: str, dsn: str
) -> None:
    runs: list[int] = []
    async with Database.from_url(migrated_url) as db:
        with pytest.raises(DatabaseUnavailableError):
            await db.gather(_dying_read(dsn, runs, deaths=100))
    assert len(runs) == 1 + READ_RETRIES


async def test_a_unit_of_work_whose_backend_dies_is_not_run_again(
    migrated_url: str, dsn: str
) -> None:
    runs: list[int] = []
    read = _dying_read(dsn, runs, deaths=1)
    async with Database.from_url(migrated_url) as db:
        with pytest.raises(DatabaseUnavailableError):
            async with db.session() as s:
                await read(s)
    assert len(runs) == 1


async def test_the_callers_own_exception_is_not_retried(migrated_url: str) -> None:
    runs = 0

    async def fails(s: DALSession) -> None:
        nonlocal runs
        runs += 1
        raise DatabaseUnavailableError("the caller's own, not a lost connection")

    async with Database.from_url(migrated_url) as db:
        with pytest.raises(DatabaseUnavailableError, match="caller's own"):
            await db.gather(fails)
    assert runs == 1
