"""Reliability under faults: backends killed under load, a fast restart, a stopped server.

Each scenario runs a bounded mixed load (unit-of-work writes, ``db.gather`` reads,
``db.transaction`` writes) from many tasks while the fault happens, and asserts what the
callers saw:

- every failure is an ``AsyncDALError`` (counted by class; nothing outside the tree);
- no acknowledged write is lost: every write whose call returned is in the database
  (a write whose call failed may or may not be: the commit reply can be lost);
- the pool is back to 0 checked out, and the same ``Database`` serves requests again.

The event loop runs in debug mode and warnings are errors here, so a coroutine never awaited,
a task destroyed while pending or an unclosed transport fails the test; so does anything that
reaches the loop's exception handler. Loops are bounded (seconds), not soaks: the long soak
belongs in ``benchmarks/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from asyncdal import AsyncDALError, DALSession, Database, DatabaseUnavailableError, upgrade
from asyncdal.testing import EmbeddedPostgres
from asyncdal.testing._pg_binaries import find_bin_dir, server_account

pytestmark = pytest.mark.filterwarnings("error")

TASKS = 24
INSERT = text("INSERT INTO hashtags (tag) VALUES (:tag)")


@pytest.fixture
async def strict_loop() -> AsyncIterator[list[dict[str, Any]]]:
    """Debug mode on and the loop's exception handler recorded; both checked at the end."""
    loop = asyncio.get_running_loop()
    seen: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    was_debug = loop.get_debug()
    loop.set_debug(True)
    loop.slow_callback_duration = 10.0  # debug mode's slow-callback log is noise on 2 cores
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        yield seen
        gc.collect()
        await asyncio.sleep(0.1)
        assert seen == [], [(c.get("message"), c.get("exception")) for c in seen]
    finally:
        loop.set_debug(was_debug)
        loop.set_exception_handler(previous)


@dataclass
class Load:
    """What the callers saw: successes, failures by class, acknowledged writes."""

    ok: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    outside_tree: list[BaseException] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)
    attempted: set[str] = field(default_factory=set)
    last_ok: float = 0.0

    def record(self, exc: BaseException) -> None:
        self.failures[type(exc).__name__] += 1
        if not isinstance(exc, AsyncDALError):
            self.outside_tree.append(exc)


async def _run_load(db: Database, load: Load, stop: asyncio.Event, prefix: str) -> None:
    """TASKS tasks, each looping over a write, a fan-out read and a transaction until stop."""

    async def write(s: DALSession, tag: str) -> None:
        await s.execute(INSERT, {"tag": tag})

    async def one(kind: int, n: int, worker: int) -> None:
        tag = f"{prefix}-{worker}-{n}"
        if kind == 0:
            load.attempted.add(tag)
            async with db.session() as s:
                await write(s, tag)
            load.acknowledged.add(tag)
        elif kind == 1:
            await db.gather(
                lambda s: s.scalar(text("SELECT count(*) FROM hashtags")),
                lambda s: s.scalar(text("SELECT pg_backend_pid()")),
                timeout=10,
            )
        else:
            load.attempted.add(tag)
            await db.transaction(lambda s: write(s, tag), retries=2)
            load.acknowledged.add(tag)

    async def worker(number: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                await one(n % 3, n, number)
            except Exception as exc:  # counted and checked: the test is about what escapes
                load.record(exc)
                await asyncio.sleep(0.02)
            else:
                load.ok += 1
                load.last_ok = time.monotonic()

    async with asyncio.TaskGroup() as group:
        for number in range(TASKS):
            group.create_task(worker(number))


async def _committed(dsn: str, prefix: str) -> set[str]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        rows = await conn.fetch("SELECT tag FROM hashtags WHERE tag LIKE $1", f"{prefix}-%")
        return {r["tag"] for r in rows}
    finally:
        await conn.close()


def _checked_out(db: Database) -> int:
    return int(cast(QueuePool, db.engine.pool).checkedout())


async def _recovery_seconds(db: Database, since: float, bound: float = 30.0) -> float:
    """Seconds from ``since`` until a unit of work succeeds again (polling; bounded)."""
    while time.monotonic() - since < bound:
        with contextlib.suppress(AsyncDALError):
            async with db.session() as s:
                await s.scalar(text("SELECT 1"))
            return time.monotonic() - since
        await asyncio.sleep(0.05)
    raise AssertionError(f"no recovery within {bound} s")


def _report(name: str, load: Load, committed: set[str], recovery: float) -> str:
    lost = load.acknowledged - committed
    unacknowledged_but_committed = (committed - load.acknowledged) & load.attempted
    return (
        f"{name}: ok={load.ok} failures={dict(load.failures)} "
        f"acknowledged={len(load.acknowledged)} committed={len(committed)} lost={len(lost)} "
        f"committed-without-ack={len(unacknowledged_but_committed)} recovery={recovery:.2f}s"
    )


async def test_backends_terminated_under_concurrent_load(
    committed_db: Database, migrated_url: str, dsn: str, strict_loop: list[dict[str, Any]]
) -> None:
    app = f"asyncdal-kill-{secrets.token_hex(3)}"
    prefix = f"k{secrets.token_hex(3)}"
    load = Load()
    kills = 0
    async with Database.from_url(
        migrated_url, application_name=app, pool_size=8, max_overflow=4, pool_timeout=10
    ) as db:
        stop = asyncio.Event()
        runner = asyncio.create_task(_run_load(db, load, stop, prefix))
        admin = await asyncpg.connect(dsn)
        try:
            for _ in range(6):  # ~3 s of load, every backend of the app killed 6 times
                await asyncio.sleep(0.5)
                kills += await admin.fetchval(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM "
                    "pg_stat_activity WHERE application_name = $1) t",
                    app,
                )
            killed_at = time.monotonic()
            recovery = await _recovery_seconds(db, killed_at)
            await asyncio.sleep(0.3)
        finally:
            stop.set()
            await asyncio.wait_for(runner, 60)
            await admin.close()
        assert _checked_out(db) == 0
        committed = await _committed(dsn, prefix)
        print("\n" + _report(f"terminate x6 ({kills} backends)", load, committed, recovery))
        assert kills > 0
        assert load.outside_tree == [], load.outside_tree[:3]
        assert load.failures, "the kills should have failed some calls"
        assert set(load.failures) <= {"DatabaseUnavailableError", "ConcurrencyError"}
        assert load.acknowledged <= committed  # no acknowledged write lost
        assert load.ok > 0
        # The same Database works afterwards.
        async with db.session() as s:
            assert await s.scalar(text("SELECT 1")) == 1
        assert _checked_out(db) == 0


@pytest.fixture(scope="module")
def private_server() -> Iterator[EmbeddedPostgres]:
    """A server of this module's own, on a fixed port, that the tests restart and stop."""
    with EmbeddedPostgres() as first:
        port = first.port
    with EmbeddedPostgres(port=port) as pg:
        yield pg


def _pg_ctl(pg: EmbeddedPostgres, *args: str) -> None:
    bin_dir = find_bin_dir(None)
    assert pg.data_dir is not None
    pg._run([str(bin_dir / "pg_ctl"), "-D", str(pg.data_dir), "-w", *args], server_account())


def _restart(pg: EmbeddedPostgres) -> None:
    """Fast shutdown, then start the same data directory on the same port again."""
    assert pg._proc is not None
    _pg_ctl(pg, "stop", "-m", "fast")
    pg._proc.wait(30)
    pg._proc = None
    pg._launch(find_bin_dir(None), server_account())


async def test_fast_restart_under_load(
    private_server: EmbeddedPostgres, strict_loop: list[dict[str, Any]]
) -> None:
    url = private_server.url
    await upgrade(url)
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    prefix = f"r{secrets.token_hex(3)}"
    load = Load()
    async with Database.from_url(url, pool_size=8, max_overflow=4, pool_timeout=10) as db:
        stop = asyncio.Event()
        runner = asyncio.create_task(_run_load(db, load, stop, prefix))
        try:
            await asyncio.sleep(1.0)
            await asyncio.to_thread(_restart, private_server)
            restarted = time.monotonic()
            recovery = await _recovery_seconds(db, restarted)
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            await asyncio.wait_for(runner, 60)
        assert _checked_out(db) == 0
        committed = await _committed(dsn, prefix)
        print("\n" + _report("pg_ctl restart -m fast", load, committed, recovery))
        assert load.outside_tree == [], load.outside_tree[:3]
        assert set(load.failures) <= {"DatabaseUnavailableError", "ConcurrencyError"}
        assert load.acknowledged <= committed
        async with db.session() as s:
            assert await s.scalar(text("SELECT 1")) == 1


async def test_server_stopped_then_started(
    private_server: EmbeddedPostgres, strict_loop: list[dict[str, Any]]
) -> None:
    url = private_server.url
    await upgrade(url)
    async with Database.from_url(url, pool_size=4, max_overflow=0, connect_timeout=2) as db:
        async with db.session() as s:
            assert await s.scalar(text("SELECT 1")) == 1
        await asyncio.to_thread(_pg_ctl, private_server, "stop", "-m", "fast")
        assert private_server._proc is not None
        private_server._proc.wait(30)
        private_server._proc = None
        try:
            for attempt in (
                lambda: db.gather(lambda s: s.scalar(text("SELECT 1"))),
                lambda: db.transaction(lambda s: s.execute(text("SELECT 1"))),
            ):
                with pytest.raises(DatabaseUnavailableError):
                    await attempt()
                assert _checked_out(db) == 0
        finally:
            await asyncio.to_thread(private_server._launch, find_bin_dir(None), server_account())
        started = time.monotonic()
        recovery = await _recovery_seconds(db, started)
        print(f"\nserver stopped: DatabaseUnavailableError at once; recovery {recovery:.2f}s")
        assert _checked_out(db) == 0
