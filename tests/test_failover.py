"""Failover: a primary and a synchronous standby behind one multi-host URL.

Writers commit through the layer; the primary stops; the standby is promoted. In between, the
layer raises only :class:`DatabaseUnavailableError` (never a raw driver error, never a hang),
writes resume on the new primary by themselves, and every acknowledged write is there
(synchronous replication: a commit is acknowledged only once the standby has it).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import socket
import time
from collections import Counter

import asyncpg
import pytest
from sqlalchemy import func, select, text

from asyncdal import (
    ConfigurationError,
    Database,
    DatabaseUnavailableError,
    NotFoundError,
    ReadOnlyTransactionError,
    Settings,
    upgrade,
)
from asyncdal.accounts import User
from asyncdal.social import SocialDashboard
from asyncdal.testing import EmbeddedPostgres
from tests._backends import terminate_backend
from tests._cluster import Standby, requires_replication, sync_pair

pytestmark = requires_replication

WRITERS = 8
# A guard against a hang, not a performance threshold: the measured time is reported.
RESUME_GUARD = 60.0


def test_a_libpq_multi_host_url_reaches_asyncpg_as_a_host_list() -> None:
    settings = Settings.from_url(
        "postgresql://app:pw@db1:5433,db2/app?target_session_attrs=read-write"
    )
    db = Database(settings)
    _, kwargs = db.engine.dialect.create_connect_args(db.engine.url)
    assert kwargs["host"] == ["db1", "db2"]
    assert kwargs["port"] == [5433, 5432]
    assert settings.url.query["target_session_attrs"] == "read-write"  # to asyncpg too
    assert "pw" not in repr(settings)


async def test_writes_resume_on_the_promoted_standby_and_none_is_lost() -> None:
    with sync_pair() as (primary, standby):
        await upgrade(primary.url)
        url = (
            f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/"
            f"{primary.database}?target_session_attrs=read-write"
        )
        acknowledged: list[str] = []
        failures: Counter[str] = Counter()
        down_at: list[float] = []  # when the old primary had fully stopped
        resumed_at: list[float] = []  # the first commit of a write begun after that
        names = itertools.count()
        done = asyncio.Event()
        progress = asyncio.Event()  # set on every acknowledged write

        async with Database.from_url(url, connect_timeout=2.0, pool_size=WRITERS) as db:

            async def writer() -> None:
                while not done.is_set():
                    name = f"f{next(names)}"
                    began = time.monotonic()
                    try:
                        async with db.session() as s:
                            s.add(User(username=name, email=f"{name}@example.org"))
                    except DatabaseUnavailableError:
                        failures["DatabaseUnavailableError"] += 1
                        await asyncio.sleep(0.02)
                        continue
                    except Exception as exc:  # anything else is a bug of the layer
                        failures[type(exc).__name__] += 1
                        raise
                    acknowledged.append(name)
                    if down_at and not resumed_at and began >= down_at[0]:
                        resumed_at.append(time.monotonic())
                    progress.set()

            async def acknowledged_at_least(count: int) -> None:
                while len(acknowledged) < count:
                    progress.clear()
                    await progress.wait()

            tasks = [asyncio.create_task(writer()) for _ in range(WRITERS)]
            try:
                await asyncio.wait_for(acknowledged_at_least(50), RESUME_GUARD)
                await asyncio.to_thread(primary.stop)  # the writers keep writing meanwhile
                down_at.append(time.monotonic())
                await asyncio.to_thread(standby.promote)
                promoted_at = time.monotonic()
                # The writers fail (DatabaseUnavailableError) until asyncpg finds the new
                # primary among the URL's hosts; then 50 more writes.
                await asyncio.wait_for(acknowledged_at_least(len(acknowledged) + 50), RESUME_GUARD)
            finally:
                done.set()
                results = await asyncio.gather(*tasks, return_exceptions=True)
            assert not [r for r in results if isinstance(r, BaseException)]

        assert resumed_at, "no write begun after the primary stopped was acknowledged"
        print(
            f"failover: {len(acknowledged)} acknowledged writes; writes resumed "
            f"{resumed_at[0] - down_at[0]:.2f} s after the primary was down "
            f"({resumed_at[0] - promoted_at:.2f} s after the promotion returned); "
            f"failures meanwhile {dict(failures)}"
        )
        assert set(failures) <= {"DatabaseUnavailableError"}
        conn = await asyncpg.connect(standby.dsn)
        try:
            assert await conn.fetchval("SELECT pg_is_in_recovery()") is False
            stored = {r["username"] for r in await conn.fetch("SELECT username FROM users")}
        finally:
            await conn.close()
        lost = set(acknowledged) - stored
        assert not lost, f"{len(lost)} acknowledged writes lost"


@pytest.mark.parametrize("hosts", ["db1,,db2", "db1:99999,db2", "db1:5432,[zz]"])
def test_malformed_host_lists_are_configuration_errors(hosts: str) -> None:
    with pytest.raises(ConfigurationError, match="host") as caught:
        Settings.from_url(f"postgresql://app:s3cret@{hosts}/app")
    assert "s3cret" not in str(caught.value)


def _read_write(url: str) -> str:
    return url + ("&" if "?" in url else "?") + "target_session_attrs=read-write"


async def _every_read_path(db: Database) -> None:
    """db.read, db.gather, db.get and a view all answer, and the reads still cannot write."""
    async with db.read() as s:
        assert await s.scalar(text("SELECT 1")) == 1
        with pytest.raises(ReadOnlyTransactionError):
            await s.execute(text("CREATE TABLE read_path_probe (a int)"))
    pair = await db.gather(
        lambda s: s.scalar(text("SELECT 1")), lambda s: s.scalar(text("SELECT 2"))
    )
    assert pair == (1, 2)
    with pytest.raises(NotFoundError):
        await db.get(User, 987_654_321)
    assert (await SocialDashboard.load(db, top=3, days=7)).stats is not None


async def test_every_read_path_works_on_a_single_host_read_write_url(migrated_url: str) -> None:
    # Issue 21: the read pool's read-only startup setting made asyncpg's read-write check
    # refuse every host, so every read outside a unit of work failed.
    async with Database.from_url(_read_write(migrated_url)) as db:
        await _every_read_path(db)


async def test_every_read_path_works_on_a_multi_host_url_with_the_standby_first() -> None:
    with sync_pair() as (primary, standby):
        await upgrade(primary.url)
        url = (
            f"postgresql://postgres@127.0.0.1:{standby.port},127.0.0.1:{primary.port}/"
            f"{primary.database}?target_session_attrs=read-write"
        )
        async with Database.from_url(url, connect_timeout=2.0) as db:
            await _every_read_path(db)
            async with db.read() as s:  # the read pool found the primary, not the standby
                assert await s.scalar(text("SELECT pg_is_in_recovery()")) is False


def _cluster_url(primary: EmbeddedPostgres, standby: Standby, attrs: str) -> str:
    return (
        f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/"
        f"{primary.database}?target_session_attrs={attrs}"
    )


@pytest.mark.parametrize("attrs", ["read-only", "prefer-standby", "standby"])
async def test_the_read_pool_goes_to_a_standby_when_the_url_asks(attrs: str) -> None:
    with sync_pair() as (primary, standby):
        async with Database.from_url(_cluster_url(primary, standby, attrs)) as db:
            async with db.read() as s:
                assert await s.scalar(select(func.pg_is_in_recovery())) is True
                assert await s.scalar(text("SHOW default_transaction_read_only")) == "on"


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _time_to_fail(url: str, **options: float) -> float:
    async with Database.from_url(url, **options) as db:
        began = time.monotonic()
        with pytest.raises(DatabaseUnavailableError) as caught:
            async with db.session() as s:
                await s.execute(text("SELECT 1"))
        assert "s3cret" not in str(caught.value)
        return time.monotonic() - began


async def test_failover_timeout_keeps_trying_a_cluster_but_a_single_server_fails_fast() -> None:
    single = f"postgresql://app:s3cret@127.0.0.1:{_closed_port()}/app"
    assert Settings.from_url(single).effective_failover_timeout == 0.0
    hosts = f"127.0.0.1:{_closed_port()},127.0.0.1:{_closed_port()}"
    cluster = f"postgresql://app:s3cret@{hosts}/app?target_session_attrs=read-write"
    assert Settings.from_url(cluster).effective_failover_timeout == 45.0
    fast = await _time_to_fail(single)
    bounded = await _time_to_fail(cluster, failover_timeout=1.0)
    # The cluster kept trying for its whole failover_timeout; the single server did not wait.
    assert bounded >= 1.0
    assert fast < bounded / 5, (fast, bounded)
    print(f"\nstopped server: single host fails in {fast * 1000:.1f} ms")


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, "5", True])
def test_failover_timeout_must_be_a_finite_non_negative_number(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="failover_timeout"):
        Settings.from_url("postgresql://app@db1,db2/app", failover_timeout=bad)


async def test_a_unit_of_work_never_gets_a_pooled_connection_the_server_closed(
    migrated_url: str, dsn: str
) -> None:
    # After a failover (or a restart) the pool holds connections the old server closed; the
    # first unit of work on each would fail, and units of work are not retried.
    async with Database.from_url(migrated_url, pool_size=1, max_overflow=0) as db:
        async with db.session() as s:
            first = await s.scalar(text("SELECT pg_backend_pid()"))
        await terminate_backend(dsn, first)
        async with db.session() as s:  # no DatabaseUnavailableError: a fresh connection
            assert await s.scalar(text("SELECT pg_backend_pid()")) != first
