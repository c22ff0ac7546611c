"""The multi-server harness itself: a standby replays, PgBouncer pools, a standby promotes."""

from __future__ import annotations

import asyncio

import asyncpg

from asyncdal.testing import EmbeddedPostgres
from tests._cluster import pgbouncer, requires_pgbouncer, requires_replication, standby, sync_pair


@requires_replication
async def test_standby_is_a_delayed_copy_of_the_primary() -> None:
    with EmbeddedPostgres() as primary, standby(primary, apply_delay_ms=300) as replica:
        writer = await asyncpg.connect(primary.dsn)
        reader = await asyncpg.connect(replica.dsn)
        try:
            await writer.execute("CREATE TABLE harness (x int)")
            assert await reader.fetchval("SELECT pg_is_in_recovery()") is True
            for _ in range(100):  # the delay is 0.3 s: the table appears, later
                if await reader.fetchval("SELECT to_regclass('harness') IS NOT NULL"):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the standby never replayed the CREATE TABLE")
            assert await reader.fetchval("SELECT count(*) FROM harness") == 0
        finally:
            await writer.close()
            await reader.close()


@requires_pgbouncer
async def test_pgbouncer_runs_in_transaction_mode() -> None:
    with (
        EmbeddedPostgres() as server,
        pgbouncer(server.port or 0, server.database, pool_size=1) as bouncer,
    ):
        dsn = bouncer.url.replace("+asyncpg", "")
        first = await asyncpg.connect(dsn, statement_cache_size=0)
        second = await asyncpg.connect(dsn, statement_cache_size=0)
        try:
            # Session state set by one client leaks to the other: they share the one server
            # connection, transaction by transaction (and no reset query runs in between).
            await first.execute("SELECT set_config('search_path', 'leaked', false)")
            assert await second.fetchval("SHOW search_path") == "leaked"
        finally:
            await first.close()
            await second.close()


@requires_replication
async def test_sync_standby_has_every_commit_and_promotes() -> None:
    with sync_pair() as (primary, replica):
        writer = await asyncpg.connect(primary.dsn)
        try:
            await writer.execute("CREATE TABLE harness (x int)")
            await writer.execute("INSERT INTO harness SELECT generate_series(1, 50)")
        finally:
            await writer.close()
        primary.stop()
        replica.promote()
        conn = await asyncpg.connect(replica.dsn)
        try:
            assert await conn.fetchval("SELECT pg_is_in_recovery()") is False
            assert await conn.fetchval("SELECT count(*) FROM harness") == 50
            await conn.execute("INSERT INTO harness VALUES (51)")
        finally:
            await conn.close()
