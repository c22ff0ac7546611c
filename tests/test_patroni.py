"""A real HA cluster: etcd and three Patroni nodes in synchronous mode, under load.

The libpq multi-host URL with default settings (``failover_timeout`` 45 s on such a URL):

- every read path works on it, and a read-only URL's read pool goes to a standby;
- a replica dying under a read: the read runs again on another server;
- HAProxy routing on Patroni's REST health checks (``/primary``, ``/replica``).

Each event prints its pause (``pytest -s``); docs/scaling.md quotes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import func, select, text

from asyncdal import DALSession, Database, DatabaseUnavailableError, upgrade
from asyncdal.accounts import User
from tests._cluster import (
    PATRONI_TTL,
    PatroniCluster,
    PatroniNode,
    haproxy,
    haproxy_config,
    patroni_cluster,
    requires_haproxy,
    requires_patroni,
    wait_until,
)

# Guards against a hang, not performance thresholds: the measured times are printed.
EVENT_GUARD = 90.0
WRITERS = 6
SESSION_WRITERS = 2
_names = itertools.count()


@pytest.fixture(scope="module")
def running_cluster() -> Iterator[PatroniCluster]:
    # Started and stopped outside the event loop: both take seconds.
    with patroni_cluster() as running:
        yield running


@pytest.fixture(scope="module")
async def cluster(running_cluster: PatroniCluster) -> PatroniCluster:
    leader = running_cluster.leader()
    assert leader is not None
    await upgrade(running_cluster.node_url(leader))
    # A synchronous commit waits for the standby's flush, not its replay: wait (bounded)
    # until every node shows the migrated schema before a test reads from a standby.
    for node in running_cluster.nodes:
        for _ in range(int(EVENT_GUARD * 10)):
            if await _has_schema(running_cluster.node_url(node)):
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"{node.name} did not replay the migrations")
    return running_cluster


async def _has_schema(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        return bool(await conn.fetchval("SELECT to_regclass('users') IS NOT NULL"))
    finally:
        await conn.close()


async def _insert(s: DALSession, *, name: str) -> None:
    s.add(User(username=name, email=f"{name}@example.org"))


@dataclass
class Load:
    """What writers and readers saw: acknowledged writes, errors by caller, progress times."""

    acknowledged: list[str] = field(default_factory=list)
    errors: dict[str, Counter[str]] = field(
        default_factory=lambda: {"transaction": Counter(), "session": Counter(), "read": Counter()}
    )
    done: dict[str, list[float]] = field(
        default_factory=lambda: {"transaction": [], "session": [], "read": []}
    )
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    #: The first errors of each kind, described (what a failed assertion shows).
    seen: list[str] = field(default_factory=list)

    def failed(self, kind: str, exc: Exception) -> None:
        self.errors[kind][_error_name(exc)] += 1
        if len(self.seen) < 10:
            causes: list[str] = []
            cause: BaseException | None = exc
            while cause is not None and len(causes) < 4:
                causes.append(f"{type(cause).__name__}: {str(cause)[:160]}")
                cause = cause.__cause__ or cause.__context__
            self.seen.append(f"{kind} at {time.monotonic():.2f}: " + " <- ".join(causes))

    def succeeded(self, kind: str) -> None:
        self.done[kind].append(time.monotonic())
        self.progress.set()

    def pause(self, kind: str, start: float) -> float:
        """The longest time without a success of ``kind`` from ``start`` on."""
        times = sorted(t for t in self.done[kind] if t >= start)
        if not times:
            return float("inf")
        return max(b - a for a, b in itertools.pairwise([start, *times]))

    def count(self, kind: str) -> int:
        return sum(self.errors[kind].values())

    def report(self, event: str, start: float) -> str:
        parts = [f"{event}: {len(self.acknowledged)} acknowledged writes"]
        for kind in ("transaction", "session", "read"):
            if self.done[kind] or self.errors[kind]:
                parts.append(
                    f"{kind}s: {len(self.done[kind])} ok, pause {self.pause(kind, start):.2f} s, "
                    f"errors {dict(self.errors[kind]) or 0}"
                )
        return "; ".join(parts)


def _error_name(exc: Exception) -> str:
    if isinstance(exc, DatabaseUnavailableError) and "outcome is unknown" in str(exc):
        return "CommitOutcomeUnknown"
    return type(exc).__name__


@contextlib.asynccontextmanager
async def _load(db: Database, *, sessions: int = 0) -> AsyncIterator[Load]:
    """Transaction writers, ``sessions`` db.session() writers, a gather and a db.get reader."""
    load = Load()
    stop = asyncio.Event()
    async with db.session() as s:
        known = User(username=f"k{next(_names)}", email=f"k{next(_names)}@example.org")
        s.add(known)

    async def in_transaction(name: str) -> None:
        await db.transaction(functools.partial(_insert, name=name))

    async def in_session(name: str) -> None:
        async with db.session() as s:
            await _insert(s, name=name)

    async def writer(kind: str, write: Callable[[str], Awaitable[None]]) -> None:
        while not stop.is_set():
            name = f"{kind[0]}{next(_names)}"
            try:
                await write(name)
            except Exception as exc:
                load.failed(kind, exc)
                await asyncio.sleep(0.05)
                continue
            load.acknowledged.append(name)
            load.succeeded(kind)

    async def gather_reader() -> None:
        while not stop.is_set():
            try:
                count, top = await db.gather(
                    lambda s: s.scalar(select(func.count()).select_from(User)),
                    lambda s: s.scalar(select(func.max(User.id))),
                )
                assert count is not None
                assert top is not None
            except Exception as exc:
                load.failed("read", exc)
                await asyncio.sleep(0.05)
                continue
            load.succeeded("read")
            await asyncio.sleep(0.01)

    async def get_reader() -> None:
        while not stop.is_set():
            try:
                assert (await db.get(User, known.id)).username == known.username
            except Exception as exc:
                load.failed("read", exc)
                await asyncio.sleep(0.05)
                continue
            load.succeeded("read")
            await asyncio.sleep(0.01)

    workers = [writer("transaction", in_transaction) for _ in range(WRITERS)]
    workers += [writer("session", in_session) for _ in range(sessions)]
    workers += [gather_reader(), get_reader()]
    tasks = [asyncio.create_task(w) for w in workers]
    try:
        yield load
    finally:
        stop.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 120)
    assert not [r for r in results if isinstance(r, BaseException)]


async def _progress(load: Load, kind: str, after: float, count: int) -> None:
    """Wait (bounded) until ``count`` successes of ``kind`` after ``after``."""
    async with asyncio.timeout(EVENT_GUARD):
        while sum(1 for t in load.done[kind] if t >= after) < count:
            load.progress.clear()
            await load.progress.wait()


async def _lost(cluster: PatroniCluster, acknowledged: list[str]) -> set[str]:
    leader = cluster.leader()
    assert leader is not None
    conn = await asyncpg.connect(cluster.node_url(leader).replace("+asyncpg", ""))
    try:
        stored = {r["username"] for r in await conn.fetch("SELECT username FROM users")}
    finally:
        await conn.close()
    return set(acknowledged) - stored


async def _healthy(cluster: PatroniCluster) -> None:
    await asyncio.to_thread(cluster.wait_healthy, EVENT_GUARD)


@requires_patroni
async def test_every_read_path_works_on_the_patroni_url(cluster: PatroniCluster) -> None:
    async with Database.from_url(cluster.url()) as db:
        name = f"r{next(_names)}"
        await db.transaction(functools.partial(_insert, name=name))
        async with db.read() as s:
            user = await s.scalar(select(User).where(User.username == name))
            assert await s.scalar(select(func.pg_is_in_recovery())) is False
        assert user is not None
        assert (await db.get(User, user.id)).username == name
        (found,) = await db.gather(lambda s: s.scalar(select(User.id).where(User.username == name)))
        assert found == user.id
    # A read-only URL puts the read pool on a standby; the unit of work still needs the primary
    # (the URL's choice: such a URL is for a read-only service).
    async with Database.from_url(cluster.url("read-only")) as db:
        (standby,) = await db.gather(lambda s: s.scalar(select(func.pg_is_in_recovery())))
        assert standby is True


@requires_patroni
async def test_a_replica_killed_mid_read_is_read_again_elsewhere(cluster: PatroniCluster) -> None:
    runs: list[int] = []
    started = asyncio.Event()

    async def slow_read(s: DALSession) -> int:
        port = int(await s.scalar(text("SELECT inet_server_port()")))
        runs.append(port)
        started.set()
        await s.execute(text("SELECT pg_sleep(1.5)"))
        return port

    async with Database.from_url(cluster.url("read-only")) as db:
        read = asyncio.create_task(db.gather(slow_read))
        await asyncio.wait_for(started.wait(), EVENT_GUARD)
        victim = next(n for n in cluster.nodes if n.port == runs[0])
        assert victim is not cluster.leader()
        killed_at = time.monotonic()
        await asyncio.to_thread(victim.kill)
        (port,) = await asyncio.wait_for(read, EVENT_GUARD)
        took = time.monotonic() - killed_at
    # The read ran twice: on the replica that died, then on the other standby.
    assert len(runs) == 2
    assert port == runs[1] != victim.port
    print(f"\nreplica killed mid-read: the read answered {took:.2f} s after the kill, no error")
    cluster.restart(victim)
    await _healthy(cluster)


async def _server(db: Database) -> tuple[int, bool]:
    """The port and recovery state of the server a unit of work of ``db`` reaches."""
    async with db.session() as s:
        port = await s.scalar(text("SELECT inet_server_port()"))
        return int(port), bool(await s.scalar(select(func.pg_is_in_recovery())))


@requires_patroni
@requires_haproxy
async def test_haproxy_routes_by_patroni_health_checks(cluster: PatroniCluster) -> None:
    await _healthy(cluster)
    with haproxy(cluster) as proxy:
        await asyncio.to_thread(
            wait_until, lambda: proxy.routes_to(cluster), "HAProxy's routes", EVENT_GUARD
        )
        async with Database.from_url(proxy.primary_url, replicas=[proxy.replica_url]) as db:
            async with db.read() as s:  # nothing written in this context: a replica serves
                assert await s.scalar(select(func.pg_is_in_recovery())) is True
                replica_port = await s.scalar(text("SELECT inet_server_port()"))
            leader = cluster.leader()
            assert leader is not None
            assert replica_port != leader.port
            assert await _server(db) == (leader.port, False)
            # After a switchover the same primary port leads to the new leader.
            await asyncio.to_thread(cluster.switchover)
            await _healthy(cluster)
            await asyncio.to_thread(
                wait_until, lambda: proxy.routes_to(cluster), "HAProxy's routes", EVENT_GUARD
            )
            new = cluster.leader()
            assert new is not None
            assert new is not leader
            # The pooled connection HAProxy cut (shutdown-sessions) is replaced at checkout.
            assert await _server(db) == (new.port, False)


@requires_patroni
async def test_a_switchover_is_invisible_to_transactions_and_reads(
    cluster: PatroniCluster,
) -> None:
    await _healthy(cluster)
    async with Database.from_url(cluster.url()) as db, _load(db, sessions=SESSION_WRITERS) as load:
        await _progress(load, "transaction", 0, 100)
        await _progress(load, "read", 0, 20)
        started = time.monotonic()
        await asyncio.to_thread(cluster.switchover)  # returns once the leader has moved
        # Writes and reads go on on the new leader.
        await _progress(load, "transaction", time.monotonic(), 100)
        await _progress(load, "read", time.monotonic(), 20)
    print(f"\n{load.report('switchover', started)}")
    assert not await _lost(cluster, load.acknowledged)
    assert load.count("transaction") == 0, load.seen
    assert load.count("read") == 0, load.seen
    await _healthy(cluster)


@requires_patroni
async def test_a_dead_leader_costs_a_pause_and_in_flight_work_only(
    cluster: PatroniCluster,
) -> None:
    # Last: the old leader stays down.
    await _healthy(cluster)
    async with Database.from_url(cluster.url()) as db, _load(db, sessions=SESSION_WRITERS) as load:
        await _progress(load, "transaction", 0, 100)
        old = cluster.leader()
        assert old is not None
        killed_at = time.monotonic()
        await asyncio.to_thread(old.kill)
        await asyncio.to_thread(cluster.wait_for_new_leader, old, EVENT_GUARD)
        # Patroni's part of the pause (the lease runs out, a standby is promoted); the layer's
        # part is what the callers' pause adds to it.
        promoted_after = time.monotonic() - killed_at
        await _progress(load, "transaction", time.monotonic(), 100)
        await _progress(load, "read", time.monotonic(), 20)
    print(
        f"\n{load.report('leader killed', killed_at)}; Patroni's new leader after "
        f"{promoted_after:.2f} s"
    )
    assert not await _lost(cluster, load.acknowledged)
    # Transactions lost before COMMIT ran again on the new leader; COMMITs whose answer was
    # lost were checked there (committed, or not on the surviving history and run again).
    assert load.count("transaction") == 0, load.seen
    assert set(load.errors["session"]) <= {"DatabaseUnavailableError"}, load.errors
    assert load.count("session") <= SESSION_WRITERS
    assert load.count("read") == 0, load.seen
    # Patroni promotes once the dead leader's lease ran out: ttl plus a loop or two.
    # A guard, not a target: the measured pause is printed (ttl, a loop, the promotion).
    assert load.pause("transaction", killed_at) < 3 * PATRONI_TTL


def test_the_docs_haproxy_recipe_is_the_tested_one() -> None:
    # docs/scaling.md shows HAProxy's configuration with sample ports: its check lines must
    # be those of the configuration these tests run.
    docs = (Path(__file__).parent.parent / "docs" / "scaling.md").read_text(encoding="utf-8")
    nodes = [
        PatroniNode(f"node{i + 1}", 5432 + i, 8008 + i, Path(), Path(), None)  # type: ignore[arg-type]
        for i in range(3)
    ]
    cluster = PatroniCluster(nodes, "app", Path(), None)  # type: ignore[arg-type]
    tested = haproxy_config(cluster, primary=5000, replica=5001, stats=7000)
    for section in ("listen primary", "listen replicas"):
        shown = docs.split(section, 1)[1].split("```", 1)[0].split("\n\n", 1)[0]
        ran = tested.split(section, 1)[1].split("listen ", 1)[0]
        assert [line.strip() for line in shown.strip().splitlines()] == [
            line.strip() for line in ran.strip().splitlines()
        ]
