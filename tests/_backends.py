"""A backend ended by the server, as an administrator or a failover would end it."""

from __future__ import annotations

import asyncio

import asyncpg

__all__ = ["terminate_backend"]


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
