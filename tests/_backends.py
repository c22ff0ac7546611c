"""Backends in tests: ended by the server, as an administrator or a failover would end them,
or kept busy in COMMIT, where a failover can cut them."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["make_commit_slow", "terminate_backend"]


async def terminate_backend(dsn: str, pid: int) -> None:
    """End backend ``pid`` (``pg_terminate_backend``) and wait, bounded, until it has gone.

    Then a short pause: the client's driver reads the server's goodbye on its socket, as a
    live service's would before its next checkout.
    """
    admin = await asyncpg.connect(dsn)
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid) is True
        gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1"
        for _ in range(100):  # bounded: until the backend has ended
            if await admin.fetchval(gone, pid):
                break
            await asyncio.sleep(0.02)
    finally:
        await admin.close()
    await asyncio.sleep(0.05)


async def make_commit_slow(session: AsyncSession, seconds: float) -> None:
    """Make the COMMIT of ``session``'s transaction take ``seconds`` (a deferred trigger).

    Temporary objects only: they go with the session's connection.
    """
    await session.execute(text("CREATE TEMP TABLE slow_commit (x int)"))
    await session.execute(
        text(
            "CREATE FUNCTION pg_temp.slow_commit() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN PERFORM pg_sleep({float(seconds)}); RETURN NULL; END $$"
        )
    )
    await session.execute(
        text(
            "CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON slow_commit "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.slow_commit()"
        )
    )
    await session.execute(text("INSERT INTO slow_commit VALUES (1)"))
