"""B3: concurrent point lookups by primary key: the layer vs plain SQLAlchemy vs asyncpg.

Every pair compares like with like: a unit of work that commits against
``async with sessionmaker.begin()`` (which commits too), a read session that sends no
COMMIT against a plain session that sends none (it closes with ROLLBACK), both per lookup
and, for units of work, per task of ``lookups`` lookups.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from asyncdal.accounts import User, UserRepository
from harness.context import BenchContext, settings_caption
from harness.harness import Benchmark, Contender, Outcome, Sample

__all__ = [
    "COALESCED",
    "COMMITTED_PER_LOOKUP",
    "COMMITTED_PER_TASK",
    "PLAIN_COMMITTED_PER_LOOKUP",
    "PLAIN_COMMITTED_PER_TASK",
    "PLAIN_READ",
    "RAW",
    "RAW_GET_USER",
    "READ_PATH",
    "coalesced",
    "layer_committed",
    "layer_per_task",
    "layer_read",
    "lookups_benchmark",
    "plain_committed",
    "plain_per_task",
    "plain_read",
    "raw",
]

RAW_GET_USER = (
    "SELECT id, username, email, display_name, verified, follower_count, created_at "
    "FROM users WHERE id = $1"
)

COMMITTED_PER_LOOKUP = "db.session() + repository.get, unit of work per lookup"
PLAIN_COMMITTED_PER_LOOKUP = "plain sessionmaker.begin() + session.get, per lookup"
COMMITTED_PER_TASK = "db.session(), unit of work of the task's repository.get"
PLAIN_COMMITTED_PER_TASK = "plain sessionmaker.begin(), the task's session.get"
READ_PATH = "db.read() + repository.get, per lookup"
PLAIN_READ = "plain session + session.get, per lookup (closes with ROLLBACK)"
COALESCED = "db.get (coalesced)"
RAW = "raw asyncpg pool"


async def layer_committed(ctx: BenchContext, ids: list[int]) -> None:
    """A unit of work (BEGIN, SELECT, COMMIT) per lookup."""
    for user_id in ids:
        async with ctx.db.session() as session:
            await UserRepository(session).get(user_id)


async def plain_committed(ctx: BenchContext, ids: list[int]) -> None:
    """``async with sessionmaker.begin()`` (BEGIN, SELECT, COMMIT) per lookup."""
    for user_id in ids:
        async with ctx.plain.begin() as session:
            await _plain_get(session, user_id)


async def layer_per_task(ctx: BenchContext, ids: list[int]) -> None:
    """One unit of work (BEGIN, the lookups, COMMIT) for all of ``ids``."""
    async with ctx.db.session() as session:
        repo = UserRepository(session)
        for user_id in ids:
            await repo.get(user_id)


async def plain_per_task(ctx: BenchContext, ids: list[int]) -> None:
    """One ``sessionmaker.begin()`` (BEGIN, the lookups, COMMIT) for all of ``ids``."""
    async with ctx.plain.begin() as session:
        for user_id in ids:
            await _plain_get(session, user_id)


async def layer_read(ctx: BenchContext, ids: list[int]) -> None:
    """The layer's read path per lookup (its read pool: one round trip, no COMMIT)."""
    for user_id in ids:
        async with ctx.db.read() as session:
            await UserRepository(session).get(user_id)


async def plain_read(ctx: BenchContext, ids: list[int]) -> None:
    """A plain session per lookup (BEGIN, SELECT, ROLLBACK on close)."""
    for user_id in ids:
        async with ctx.plain() as session:
            await _plain_get(session, user_id)


async def coalesced(ctx: BenchContext, ids: list[int]) -> None:
    """``db.get``: lookups of one loop iteration share a query."""
    for user_id in ids:
        await ctx.db.get(User, user_id)


async def raw(ctx: BenchContext, ids: list[int]) -> None:
    """asyncpg's pool: acquire, fetchrow, release, per lookup."""
    for user_id in ids:
        async with ctx.pool.acquire() as conn:
            await conn.fetchrow(RAW_GET_USER, user_id)


def lookups_benchmark(ctx: BenchContext) -> Benchmark:
    """``tasks`` concurrent tasks, each looking up ``lookups`` random users by id."""
    tasks, per_task = ctx.profile.tasks, ctx.profile.lookups
    rng = random.Random(6)
    # The same ids, in the same order, for every contender and every round.
    work = [rng.choices(ctx.user_ids, k=per_task) for _ in range(tasks)]
    total = tasks * per_task

    def run(task: Callable[[BenchContext, list[int]], Awaitable[None]]) -> Sample:
        async def sample() -> int:
            await asyncio.gather(*(task(ctx, ids) for ids in work))
            return total

        return sample

    def judge(outcome: Outcome) -> None:
        raw_tp = outcome.by_name(RAW).throughput
        for stats in outcome.stats:
            outcome.ratios[f"{stats.name} / raw asyncpg"] = stats.throughput / raw_tp

        def ratio(layer: str, plain: str) -> float:
            return outcome.by_name(layer).throughput / outcome.by_name(plain).throughput

        per_task = ratio(COMMITTED_PER_TASK, PLAIN_COMMITTED_PER_TASK)
        per_lookup = ratio(COMMITTED_PER_LOOKUP, PLAIN_COMMITTED_PER_LOOKUP)
        read_path = ratio(READ_PATH, PLAIN_READ)
        coalesced_ratio = outcome.by_name(COALESCED).throughput / raw_tp
        outcome.ratios["committed unit of work per task, layer / plain"] = per_task
        outcome.ratios["committed unit of work per lookup, layer / plain"] = per_lookup
        outcome.ratios["db.read() per lookup / plain session per lookup"] = read_path
        outcome.target = (
            "committed unit of work per task >= 1.0x plain sessionmaker.begin(); db.read() + "
            "repository.get per lookup >= 1.2x plain session per lookup; db.get (coalesced) "
            ">= 3x raw asyncpg"
        )
        outcome.target_met = per_task >= 1.0 and read_path >= 1.2 and coalesced_ratio >= 3.0

    return Benchmark(
        "B3",
        f"{tasks} concurrent tasks x {per_task} point lookups by primary key",
        "lookups",
        [
            Contender(COMMITTED_PER_TASK, run(layer_per_task), "BEGIN, lookups, COMMIT"),
            Contender(PLAIN_COMMITTED_PER_TASK, run(plain_per_task), "BEGIN, lookups, COMMIT"),
            Contender(COMMITTED_PER_LOOKUP, run(layer_committed), "BEGIN, SELECT, COMMIT"),
            Contender(PLAIN_COMMITTED_PER_LOOKUP, run(plain_committed), "BEGIN, SELECT, COMMIT"),
            Contender(READ_PATH, run(layer_read), "read pool (autocommit): SELECT"),
            Contender(PLAIN_READ, run(plain_read), "BEGIN, SELECT, ROLLBACK"),
            Contender(COALESCED, run(coalesced), "one query per batch"),
            Contender(RAW, run(raw), "fetchrow per lookup"),
        ],
        judge,
        notes=(
            "Pairs compare like with like: units of work commit on both sides (db.session() "
            "against async with sessionmaker.begin()); the read path (db.read(): the read "
            "pool, autocommit and read-only, one round trip) against a plain session that is "
            "closed without commit. db.get coalesces the lookups of one loop iteration into "
            "one query.",
            settings_caption(ctx.db),
        ),
    )


async def _plain_get(session: AsyncSession, user_id: int) -> None:
    if await session.get(User, user_id) is None:
        raise LookupError(user_id)
