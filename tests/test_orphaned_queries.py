"""``client_check_interval``: a query whose client vanished stops on the server.

A connection the client drops mid-query (a killed process, or the layer discarding a
connection on a timeout or a cancellation) leaves its backend running the statement to its end:
PostgreSQL only notices the missing client when it next writes to it. With
``client_check_interval`` the server checks the socket while the query runs and ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Any

import asyncpg
import pytest

from asyncdal import ConfigurationError, Database, Settings


async def _orphan(db: Database) -> int:
    """Start pg_sleep(30) through the layer's engine, then drop the connection under it."""
    async with db.engine.connect() as conn:
        raw: Any = (await conn.get_raw_connection()).driver_connection
        pid = int(await raw.fetchval("SELECT pg_backend_pid()"))
        sleeping = asyncio.ensure_future(raw.fetchval("SELECT pg_sleep(30)"))
        await asyncio.sleep(0.3)
        raw.terminate()  # the socket closes; no cancel request reaches the server
        with contextlib.suppress(Exception):
            await sleeping
        await conn.invalidate()
    return pid


async def _running(dsn: str, pid: int, seconds: float) -> bool:
    """Whether backend ``pid`` still runs a query after ``seconds`` (polled, bounded)."""
    deadline = time.monotonic() + seconds
    admin = await asyncpg.connect(dsn)
    try:
        while True:
            state = await admin.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)
            if state != "active" or time.monotonic() > deadline:
                return bool(state == "active")
            await asyncio.sleep(0.05)
    finally:
        await admin.execute("SELECT pg_terminate_backend($1)", pid)
        await admin.close()


@pytest.mark.parametrize(("interval", "still_running"), [(0.2, False), (None, True)])
async def test_a_dropped_client_s_query_stops_only_with_the_check(
    migrated_url: str, dsn: str, interval: float | None, still_running: bool
) -> None:
    db = Database.from_url(
        migrated_url,
        application_name=f"asyncdal-orphan-{secrets.token_hex(4)}",
        client_check_interval=interval,
    )
    try:
        pid = await _orphan(db)
        # With the check, the server ends the query within a few intervals; without it, the
        # 30 s sleep is still running well after the client is gone.
        assert await _running(dsn, pid, seconds=5 if interval else 1) is still_running
    finally:
        await db.dispose()


def test_the_setting_is_checked() -> None:
    url = "postgresql://app@localhost/app"
    assert Settings.from_url(url, client_check_interval=0.0001).client_check_interval == 0.0001
    for bad in (0, -1, float("nan"), float("inf"), "1"):
        with pytest.raises(ConfigurationError, match="client_check_interval"):
            Settings.from_url(url, client_check_interval=bad)
    with pytest.raises(ConfigurationError, match="PgBouncer"):
        Settings.from_url(url, client_check_interval=1.0, pgbouncer=True)
