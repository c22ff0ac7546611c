"""Every API of the layer through a real PgBouncer in transaction mode.

PgBouncer (4 server connections) multiplexes the layer's 50 client connections, so consecutive
transactions of one client connection run on different server connections. asyncpg's named
prepared statements then collide (``prepared statement "__asyncpg_stmt_1__" already exists``,
SQLSTATE 42P05) or go missing (26000). ``pgbouncer=True`` must bring that to zero; without it the
same workload shows the failure.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing

import pytest
from sqlalchemy import func, select

from asyncdal import Database, upgrade
from asyncdal._error_mapping import sqlstate_of
from asyncdal.accounts import User, UserRepository
from asyncdal.social import PostRepository, SocialQueries
from asyncdal.testing import EmbeddedPostgres
from tests._cluster import PgBouncer, pgbouncer, requires_pgbouncer

pytestmark = requires_pgbouncer

TASKS = 50
STEPS = 9
PREPARED_STATEMENT_ERRORS = {"42P05", "26000"}  # duplicate / unknown prepared statement
_ids = itertools.count()


class CopyingUsers(UserRepository):
    """Small batches go through COPY too, so the test exercises it cheaply."""

    copy_threshold = 5


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres() as pg:
        yield pg


@pytest.fixture(scope="module")
async def bouncer(server: EmbeddedPostgres) -> AsyncIterator[PgBouncer]:
    await upgrade(server.url)
    with pgbouncer(server.port or 0, server.database, pool_size=4) as running:
        yield running


async def iteration(db: Database, step: int, *, consistent: bool = True) -> None:
    """One request's worth of work, through every API of the layer."""
    n = next(_ids)
    name = f"b{n}"
    async with db.session() as s:
        user = await UserRepository(s).create(username=name, email=f"{name}@example.org")
        await s.scalar(select(func.count()).select_from(User))
    await db.transaction(
        lambda s: PostRepository(s).create(author_id=user.id, body="hello", tags=[f"t{n % 7}"])
    )
    _, again, _ = await db.gather(
        lambda s: SocialQueries(s).top_users(limit=3),
        lambda s: UserRepository(s).get(user.id),
        lambda s: SocialQueries(s).trending_hashtags(days=1, limit=3),
    )
    assert again.username == name
    async with db.read() as s:
        async with aclosing(UserRepository(s).stream({"username": name})) as stream:
            assert [u.id async for u in stream] == [user.id]
    if step % 5 == 0:
        rows = [{"username": f"{name}_{i}", "email": f"{name}_{i}@example.org"} for i in range(6)]
        async with db.session() as s:
            assert await CopyingUsers(s).add_many(rows) == 6  # COPY
            extra = [{"username": f"{name}_r", "email": f"{name}_r@example.org"}]
            added = await UserRepository(s).add_many(extra, returning=True)  # INSERT RETURNING
            assert [u.username for u in added] == [f"{name}_r"]
    if step % 5 == 0 and consistent:
        total, listed = await db.gather(
            lambda s: SocialQueries(s).total_posts(),
            lambda s: SocialQueries(s).post_count_by_user(),
            consistent=True,
        )
        assert total == sum(listed.values())


async def run(
    bouncer: PgBouncer, *, pgbouncer: bool, steps: int, consistent: bool = True
) -> tuple[int, Counter[str], float]:
    """The workload from 50 tasks: (queries PgBouncer passed, errors by SQLSTATE, seconds)."""
    before = bouncer.stats().get("total_query_count", 0)
    errors: Counter[str] = Counter()
    async with Database.from_url(
        bouncer.url, pgbouncer=pgbouncer, pool_size=10, max_overflow=40
    ) as db:

        async def worker(task: int) -> None:
            for step in range(steps):
                try:
                    await iteration(db, step, consistent=consistent)
                except Exception as exc:
                    code = getattr(exc, "sqlstate", None) or sqlstate_of(exc)
                    errors[code or type(exc).__name__] += 1
                    if code in PREPARED_STATEMENT_ERRORS and "pgbouncer=True" not in str(exc):
                        errors["without the pgbouncer=True hint"] += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(t) for t in range(TASKS)))
        seconds = time.monotonic() - started
    await asyncio.sleep(1.2)  # PgBouncer folds its counters into SHOW STATS every second
    return bouncer.stats()["total_query_count"] - before, errors, seconds


async def test_every_api_through_pgbouncer_transaction_mode(bouncer: PgBouncer) -> None:
    queries, errors, seconds = await run(bouncer, pgbouncer=True, steps=STEPS)
    print(
        f"pgbouncer=True: {queries} queries through PgBouncer from {TASKS} tasks in "
        f"{seconds:.1f} s; errors {dict(errors)}"
    )
    assert not errors
    assert queries >= 10_000


async def test_without_the_setting_prepared_statements_collide(bouncer: PgBouncer) -> None:
    # No consistent groups here: without pgbouncer=True, an exporter holding one of the four
    # server connections while its importers queue for another can deadlock PgBouncer's pool
    # (until its query_wait_timeout, 2 minutes); with it they share one transaction.
    queries, errors, _ = await run(bouncer, pgbouncer=False, steps=1, consistent=False)
    print(f"pgbouncer=False: {queries} queries; errors {dict(errors)}")
    assert sum(errors[code] for code in PREPARED_STATEMENT_ERRORS) > 0
    # Each of them tells the caller what to do.
    assert errors["without the pgbouncer=True hint"] == 0
