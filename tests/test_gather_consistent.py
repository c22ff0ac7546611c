"""consistent=True: every read of a gather sees one snapshot, even while writers commit."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from typing import Any, cast

import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from asyncdal import DALSession, Database
from asyncdal.accounts import User
from asyncdal.social import Post, SocialQueries

pytestmark = pytest.mark.committed

Step = Callable[[DALSession], Coroutine[Any, Any, Any]]

SNAPSHOT_STATE = text(
    "SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only'),"
    " pg_current_snapshot()::text"
)


async def _users(db: Database, n: int) -> list[int]:
    async with db.session() as s:
        users = [User(username=f"w{i}", email=f"w{i}@example.org") for i in range(n)]
        s.add_all(users)
    return [u.id for u in users]


async def _add_post(db: Database, author_id: int) -> None:
    async with db.session() as s:
        s.add(Post(author_id=author_id, body="x"))


async def test_all_reads_share_one_snapshot(committed_db: Database) -> None:
    author = (await _users(committed_db, 1))[0]
    commits = itertools.count()

    async def state(s: DALSession) -> tuple[Any, ...]:
        await _add_post(committed_db, author)  # a commit between the reads' statements
        next(commits)
        return tuple((await s.execute(SNAPSHOT_STATE)).one())

    # limit=2 with 6 reads: the importers queue, the exporter waits for all of them.
    states = await committed_db.gather(*[state] * 6, consistent=True, limit=2)
    assert next(commits) == 6
    assert {s[:2] for s in states} == {("repeatable read", "on")}
    assert len({s[2] for s in states}) == 1  # one snapshot: xmin:xmax:xip identical
    assert cast(QueuePool, committed_db.engine.pool).checkedout() == 0
    assert cast(QueuePool, committed_db.read_engine.pool).checkedout() == 0


def _choreography(
    db: Database, author: int
) -> list[Callable[[DALSession], Coroutine[Any, Any, Any]]]:
    """Two reads, and a writer that commits a post after the first and before the second.

    Deterministic (events, not sleeps): the per-user counts are read, then a post is
    committed, then the total is read.
    """
    counted = asyncio.Event()
    written = asyncio.Event()

    async def per_user(s: DALSession) -> dict[int, int]:
        counts = await SocialQueries(s).post_count_by_user()
        counted.set()
        return counts

    async def writer(s: DALSession) -> None:
        await counted.wait()
        await _add_post(db, author)  # its own unit of work, committed
        written.set()

    async def total(s: DALSession) -> int:
        await s.connection()  # the transaction (and, if consistent, the snapshot) begins
        await written.wait()
        return await SocialQueries(s).total_posts()

    return [per_user, total, writer]


async def test_consistent_false_can_disagree_consistent_true_never(committed_db: Database) -> None:
    author = (await _users(committed_db, 1))[0]
    await _add_post(committed_db, author)

    counts, total, _ = await committed_db.gather(*_choreography(committed_db, author))
    # READ COMMITTED, one snapshot per statement: the total includes the post committed
    # after the per-user counts were read. The two numbers of one dashboard disagree.
    assert sum(counts.values()) + 1 == total

    for _ in range(3):
        counts, total, _ = await committed_db.gather(
            *_choreography(committed_db, author), consistent=True
        )
        assert sum(counts.values()) == total  # the committed post is invisible to both


async def test_invariant_holds_every_time_under_concurrent_writers(committed_db: Database) -> None:
    authors = await _users(committed_db, 5)
    stop = asyncio.Event()
    written = 0

    async def write() -> None:
        nonlocal written
        for author in itertools.cycle(authors):
            if stop.is_set():
                return
            await _add_post(committed_db, author)
            written += 1

    async def slow_total(s: DALSession) -> int:
        await s.execute(text("SELECT pg_sleep(0.02)"))  # let writers commit meanwhile
        return await SocialQueries(s).total_posts()

    violations = {True: 0, False: 0}
    writers = [asyncio.create_task(write()) for _ in range(2)]
    try:
        for consistent in [True, False] * 10:
            counts, total, stats = await committed_db.gather(
                lambda s: SocialQueries(s).post_count_by_user(),
                slow_total,
                lambda s: SocialQueries(s).platform_stats(days=1),
                consistent=consistent,
            )
            if sum(counts.values()) != total or stats.total_posts != total:
                violations[consistent] += 1
    finally:
        stop.set()
        await asyncio.gather(*writers)
    assert written > 0
    assert violations[True] == 0
    # Not asserted: how often READ COMMITTED disagrees depends on timing (see the test above
    # for a deterministic disagreement). Printed for the record.
    print(f"\nwriters committed {written} posts; disagreements: {violations}")


async def test_a_failing_exporter_fails_the_group_cleanly(committed_db: Database) -> None:
    async def broken(s: DALSession) -> None:
        raise RuntimeError("exporter read failed")

    async def importer(s: DALSession) -> int:
        return await SocialQueries(s).total_posts()

    with pytest.raises(RuntimeError, match="exporter read failed"):
        await committed_db.gather(broken, importer, importer, consistent=True)
    with pytest.raises(RuntimeError, match="exporter read failed"):
        await committed_db.gather(importer, broken, consistent=True)
    assert cast(QueuePool, committed_db.engine.pool).checkedout() == 0
    assert cast(QueuePool, committed_db.read_engine.pool).checkedout() == 0
    assert await committed_db.gather(importer, importer, consistent=True) == (0, 0)
