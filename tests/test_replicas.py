"""Reads on a real streaming replica, with read-your-writes by WAL position.

The replica (``pg_basebackup -R``) applies WAL 300 ms late (``recovery_min_apply_delay``), so a
row just written is visibly missing there for a while; a test that needs the miss holds the
replica's replay (``replay_paused``) rather than race the delay. Each read reports where it ran
with ``pg_is_in_recovery()``: true on the replica, false on the primary.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select

from asyncdal import DALSession, Database
from asyncdal.accounts import User
from asyncdal.testing import EmbeddedPostgres
from tests._cluster import Standby, requires_replication, standby
from tests._replicas import fresh, replay_paused

pytestmark = requires_replication

_names = itertools.count()


async def add_user(db: Database) -> str:
    name = f"u{next(_names)}"
    async with db.session() as s:
        s.add(User(username=name, email=f"{name}@example.org"))
    return name


async def where_and_found(s: DALSession, name: str) -> tuple[bool, bool]:
    """(ran on a replica, the user is visible)."""
    on_replica = await s.scalar(select(func.pg_is_in_recovery()))
    found = await s.scalar(select(func.count()).select_from(User).where(User.username == name))
    return bool(on_replica), found == 1


async def read(db: Database, name: str, after: str | None = None) -> tuple[bool, bool]:
    async with db.read(after=after) as s:
        return await where_and_found(s, name)


async def test_reads_without_a_write_go_to_the_replica_and_can_miss(
    primary: EmbeddedPostgres, replica: Standby
) -> None:
    async with (
        Database.from_url(primary.url, replicas=[replica.url]) as db,
        replay_paused(replica),  # the replica lags however long the write and read take
    ):
        name = await fresh(add_user(db))
        on_replica, found = await fresh(read(db, name))
        # No write in this context, no token: no waiting, the lagging replica answers.
        assert on_replica
        assert not found


async def test_read_your_writes_in_the_same_context(
    primary: EmbeddedPostgres, replica: Standby
) -> None:
    # replica_wait above the apply delay: the read waits for the replica and is served there.
    async with Database.from_url(primary.url, replicas=[replica.url], replica_wait=2.0) as db:
        name = await add_user(db)
        assert await read(db, name) == (True, True)
    # replica_wait below the delay: the primary serves, and still sees the write.
    async with Database.from_url(primary.url, replicas=[replica.url], replica_wait=0.01) as db:
        for _ in range(10):
            name = await add_user(db)
            assert await read(db, name) == (False, True)

    async def commit_inside() -> str:  # a block that commits by itself counts too
        async with db.session() as s:
            s.add(User(username="self_committed", email="self@example.org"))
            await s.commit()
        return "self_committed"

    async with Database.from_url(primary.url, replicas=[replica.url], replica_wait=0.01) as db:
        assert await fresh(_then_read(db, commit_inside)) == (False, True)


async def _then_read(db: Database, write: Callable[[], Awaitable[str]]) -> tuple[bool, bool]:
    return await read(db, await write())


async def test_a_write_token_carries_the_write_to_another_context(
    primary: EmbeddedPostgres, replica: Standby
) -> None:
    async with Database.from_url(primary.url, replicas=[replica.url], replica_wait=0.05) as db:
        assert db.write_token() is None

        async def write() -> tuple[str, str | None]:
            return await add_user(db), db.write_token()

        misses_with, misses_without = 0, 0
        for _ in range(10):
            name, token = await fresh(write())
            assert token is not None
            assert token.startswith("w2.")
            without = await fresh(read(db, name))
            with_token = await fresh(read(db, name, after=token))
            misses_without += not without[1]
            misses_with += not with_token[1]
            assert without[0]  # no token: the replica
        assert misses_with == 0
        assert misses_without > 0


async def test_hostile_tokens_are_ignored(primary: EmbeddedPostgres, replica: Standby) -> None:
    # More forged tokens, and the far-future case, in test_write_tokens.
    async with Database.from_url(primary.url, replicas=[replica.url]) as db:
        tokens = ["", "w1.", "w1.xyz", "w2.10", "w1." + "f" * 17, "w1.10; DROP", "w1.-1"]
        for token in tokens:
            async with db.read(after=token) as s:
                assert await s.scalar(select(func.pg_is_in_recovery())) is True
        assert db.stats().write_tokens_ignored_total == len(tokens)
        # A far-future position, validly signed: bounded wait, then the primary.
        async with Database.from_url(
            primary.url, replicas=[replica.url], replica_wait=0.05
        ) as short:
            future = short._router.signer.sign(0xFFFFFFFFFFF0)
            async with short.read(after=future) as s:
                assert await s.scalar(select(func.pg_is_in_recovery())) is False


async def test_reads_answer_when_the_replica_stops(primary: EmbeddedPostgres) -> None:
    with standby(primary) as doomed:
        async with Database.from_url(primary.url, replicas=[doomed.url]) as db:
            async with db.read() as s:  # a pooled connection to the replica
                assert await s.scalar(select(func.pg_is_in_recovery())) is True
            doomed.stop()  # blocks this loop: let asyncpg see the goodbye, as a live service would
            await asyncio.sleep(0.05)
            for _ in range(20):
                async with db.read() as s:
                    assert await s.scalar(select(func.pg_is_in_recovery())) is False


async def test_gather_reads_on_the_replica_and_honours_a_token(
    primary: EmbeddedPostgres, replica: Standby
) -> None:
    async with Database.from_url(primary.url, replicas=[replica.url], replica_wait=2.0) as db:

        async def write() -> tuple[str, str | None]:
            return await add_user(db), db.write_token()

        name, token = await fresh(write())

        async def fan_out(after: str | None, consistent: bool) -> tuple[tuple[bool, bool], ...]:
            reads = [lambda s: where_and_found(s, name)] * 3
            return tuple(await db.gather(*reads, after=after, consistent=consistent))

        # With the token: every read waits for the replica to replay the write, then sees it.
        assert await fresh(fan_out(token, False)) == ((True, True),) * 3
        # A consistent group: one snapshot, exported and imported on the replica.
        assert await fresh(fan_out(token, True)) == ((True, True),) * 3
        # A forged token is ignored: the read runs on the replica at once.
        forged = await fresh(fan_out("forged", False))
        assert all(on_replica for on_replica, _ in forged)


async def test_mixed_load_read_share(primary: EmbeddedPostgres, replica: Standby) -> None:
    """Requests that write then read, and requests that only read, side by side."""
    async with (
        Database.from_url(primary.url, replicas=[replica.url], replica_wait=0.05) as db,
        replay_paused(replica),  # no write reaches the replica within replica_wait, however slow
    ):
        places: list[bool] = []
        misses = 0

        async def writer() -> None:
            nonlocal misses
            name = await add_user(db)
            on_replica, found = await read(db, name)  # read-your-writes: must see it
            places.append(on_replica)
            misses += not found

        async def reader() -> None:
            on_replica, _ = await read(db, "nobody")
            places.append(on_replica)

        for _ in range(5):  # 5 rounds of 4 readers per writer, each request in its own context
            await asyncio.gather(fresh(writer()), *(fresh(reader()) for _ in range(4)))
        share = sum(places) / len(places)
        print(f"replica read share {share:.0%} of {len(places)} reads; RYW misses {misses}")
        assert misses == 0
        # Readers (80% of reads) never wait and use the replica; the writers' reads use the
        # primary here, as the replica has not replayed their writes within replica_wait.
        assert share == pytest.approx(0.8)
