"""db.dispose() while reads are in flight: their connections close when they come back (issue 19).

SQLAlchemy's dispose() closes the idle connections and starts a new pool; a connection checked
out at that moment goes back to the old pool when its read ends and stays open there, a backend
nobody will use, until the garbage collector drops it with a ResourceWarning.
"""

from __future__ import annotations

import asyncio
import gc
import secrets
import warnings

import asyncpg
import pytest
from sqlalchemy import text

from asyncdal import Database
from asyncdal.testing.plugin import to_dsn

pytestmark = pytest.mark.committed


async def _backends(dsn: str, name: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", name
            )
        )
    finally:
        await conn.close()


async def _sleep(s: object, seconds: float) -> int:
    return int(await s.scalar(text("SELECT 1 FROM pg_sleep(:s)").bindparams(s=seconds)))  # type: ignore[attr-defined]


async def test_dispose_closes_the_connections_of_reads_in_flight(migrated_url: str) -> None:
    name = f"asyncdal-dispose-{secrets.token_hex(3)}"
    dsn = to_dsn(migrated_url)
    db = Database.from_url(migrated_url, application_name=name, pool_size=4, max_overflow=0)
    try:
        async with db.session() as s:  # one idle connection in the main pool too
            await s.execute(text("SELECT 1"))
        reads = asyncio.create_task(db.gather(*[lambda s: _sleep(s, 0.5)] * 3))
        async with db.session() as s:
            writer = asyncio.create_task(s.scalar(text("SELECT 1 FROM pg_sleep(0.5)")))
            await asyncio.sleep(0.2)  # every statement is running now
            assert await _backends(dsn, name) == 4
            await db.dispose()
            assert await writer == 1
        assert await reads == (1, 1, 1)
        # They came back after the dispose: closed, not parked in the old pools.
        for _ in range(100):  # bounded: 5 s
            if await _backends(dsn, name) == 0:
                break
            await asyncio.sleep(0.05)
        assert await _backends(dsn, name) == 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
        assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
        # And the database works on.
        async with db.read() as s:
            assert await s.scalar(text("SELECT 2")) == 2
    finally:
        await db.dispose()
