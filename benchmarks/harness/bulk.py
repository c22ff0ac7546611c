"""B4: bulk insert: ``add_many`` vs ORM ``add_all`` vs Core ``insert()`` vs asyncpg COPY.

Every contender inserts the same rows into ``users`` inside a transaction that is rolled back
afterwards, and ``users`` is vacuumed (neither timed), so the seeded data stays as it was and
every sample starts alike: the rolled-back rows would otherwise stay in the table and its
indexes as dead entries, more with every sample, until an autovacuum cleared them in the
middle of some later contender's sample.
"""

from __future__ import annotations

import gc
import itertools
import time
from typing import Any

from sqlalchemy import insert

from asyncdal.accounts import User, UserRepository
from harness.context import BenchContext, settings_caption
from harness.harness import Benchmark, Contender, Outcome

__all__ = ["bulk_benchmark"]

COLUMNS = ("username", "email", "display_name", "verified", "follower_count")


def bulk_benchmark(ctx: BenchContext) -> Benchmark:
    """Rows per second inserting ``rows`` users, each contender in its own way."""
    n = ctx.profile.rows
    batch = itertools.count()

    def fresh_rows() -> list[dict[str, Any]]:
        # Unique per call: the unique indexes on username/email are maintained for real.
        tag = f"b{next(batch)}x{time.monotonic_ns() % 1_000_000}"
        return [
            {
                "username": f"bench-{tag}-{i}",
                "email": f"bench-{tag}-{i}@example.org",
                "display_name": f"Bench {i}",
                "verified": False,
                "follower_count": 0,
            }
            for i in range(n)
        ]

    async def vacuum() -> None:
        async with ctx.pool.acquire() as conn:
            await conn.execute("VACUUM users")

    async def add_many() -> tuple[int, float]:
        rows = fresh_rows()
        async with ctx.db.sessionmaker() as session:
            gc.collect()  # the fresh input rows' collection is not the insert's cost
            started = time.perf_counter()
            await UserRepository(session).add_many(rows)
            elapsed = time.perf_counter() - started
            await session.rollback()
        await vacuum()
        return n, elapsed

    async def orm_add_all() -> tuple[int, float]:
        rows = fresh_rows()
        async with ctx.plain() as session:
            gc.collect()  # the fresh input rows' collection is not the insert's cost
            started = time.perf_counter()
            session.add_all([User(**row) for row in rows])
            await session.flush()
            elapsed = time.perf_counter() - started
            await session.rollback()
        await vacuum()
        return n, elapsed

    async def core_insert() -> tuple[int, float]:
        rows = fresh_rows()
        async with ctx.plain() as session:
            gc.collect()  # the fresh input rows' collection is not the insert's cost
            started = time.perf_counter()
            await session.execute(insert(User), rows)
            elapsed = time.perf_counter() - started
            await session.rollback()
        await vacuum()
        return n, elapsed

    async def copy() -> tuple[int, float]:
        records = [tuple(row[c] for c in COLUMNS) for row in fresh_rows()]
        async with ctx.pool.acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            gc.collect()  # the fresh input rows' collection is not the insert's cost
            started = time.perf_counter()
            await conn.copy_records_to_table("users", records=records, columns=list(COLUMNS))
            elapsed = time.perf_counter() - started
            await transaction.rollback()
        await vacuum()
        return n, elapsed

    def judge(outcome: Outcome) -> None:
        copy_tp = outcome.by_name("asyncpg copy_records_to_table").throughput
        for stats in outcome.stats:
            outcome.ratios[f"{stats.name} / asyncpg COPY"] = stats.throughput / copy_tp
        ratio = outcome.ratios["add_many / asyncpg COPY"]
        outcome.target = "add_many >= 0.95x asyncpg COPY"
        outcome.target_met = ratio >= 0.95

    return Benchmark(
        "B4",
        f"bulk insert of {n:,} users",
        "rows",
        [
            Contender("add_many", add_many, "UserRepository.add_many(dicts)"),
            Contender("ORM add_all + flush", orm_add_all, "User(**row) objects"),
            Contender("Core insert() with dicts", core_insert, "executemany / insertmanyvalues"),
            Contender("asyncpg copy_records_to_table", copy, "tuples prepared before timing"),
        ],
        judge,
        notes=(
            "Timed: the insert call only (add_many, add_all + flush, execute, COPY); building "
            "the input rows, a gc.collect() just before the timer (so the collection the "
            "freshly built rows trigger lands in no contender's time), the final rollback "
            "and the VACUUM of users after it are not timed.",
            settings_caption(ctx.db),
        ),
    )
