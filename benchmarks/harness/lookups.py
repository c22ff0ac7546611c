"""B3: concurrent point lookups by primary key: repository ``get`` vs plain ORM vs asyncpg."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from asyncdal.accounts import User, UserRepository
from harness.context import BenchContext
from harness.harness import Benchmark, Contender, Outcome

__all__ = ["lookups_benchmark"]

RAW_GET_USER = (
    "SELECT id, username, email, display_name, verified, follower_count, created_at "
    "FROM users WHERE id = $1"
)


def lookups_benchmark(ctx: BenchContext) -> Benchmark:
    """``tasks`` concurrent tasks, each looking up ``lookups`` random users by id."""
    tasks, per_task = ctx.profile.tasks, ctx.profile.lookups
    rng = random.Random(6)
    # The same ids, in the same order, for every contender and every round.
    work = [rng.choices(ctx.user_ids, k=per_task) for _ in range(tasks)]
    total = tasks * per_task

    async def run(task: Callable[[list[int]], Awaitable[None]]) -> int:
        await asyncio.gather(*(task(ids) for ids in work))
        return total

    async def layer_per_lookup(ids: list[int]) -> None:
        for user_id in ids:
            async with ctx.db.session() as session:
                await UserRepository(session).get(user_id)

    async def layer_per_lookup_pre_ping(ids: list[int]) -> None:
        for user_id in ids:
            async with ctx.db_pre_ping.session() as session:
                await UserRepository(session).get(user_id)

    async def layer_per_task(ids: list[int]) -> None:
        async with ctx.db.session() as session:
            repo = UserRepository(session)
            for user_id in ids:
                await repo.get(user_id)

    async def coalesced(ids: list[int]) -> None:
        for user_id in ids:
            await ctx.db.get(User, user_id)

    async def read_path_per_lookup(ids: list[int]) -> None:
        for user_id in ids:
            async with ctx.db.read() as session:
                await UserRepository(session).get(user_id)

    async def plain_per_lookup(ids: list[int]) -> None:
        for user_id in ids:
            async with ctx.plain() as session:
                await _plain_get(session, user_id)

    async def plain_per_task(ids: list[int]) -> None:
        async with ctx.plain() as session:
            for user_id in ids:
                await _plain_get(session, user_id)

    async def raw(ids: list[int]) -> None:
        for user_id in ids:
            async with ctx.pool.acquire() as conn:
                await conn.fetchrow(RAW_GET_USER, user_id)

    def judge(outcome: Outcome) -> None:
        raw_tp = outcome.by_name("raw asyncpg pool").throughput
        for stats in outcome.stats:
            outcome.ratios[f"{stats.name} / raw asyncpg"] = stats.throughput / raw_tp
        per_lookup = (
            outcome.by_name("repository.get, session per lookup").throughput
            / outcome.by_name("plain session.get, session per lookup").throughput
        )
        per_task = (
            outcome.by_name("repository.get, session per task").throughput
            / outcome.by_name("plain session.get, session per task").throughput
        )
        read_path = outcome.by_name("db.read() + repository.get, per lookup").throughput
        coalesced_tp = outcome.by_name("db.get (coalesced)").throughput
        outcome.ratios["layer / plain SQLAlchemy, session per lookup"] = per_lookup
        outcome.ratios["layer / plain SQLAlchemy, session per task"] = per_task
        outcome.ratios["read path, per lookup / plain session per lookup"] = (
            read_path / outcome.by_name("plain session.get, session per lookup").throughput
        )
        outcome.target = (
            ">= 1.0x plain SQLAlchemy in each pattern; db.get (coalesced) >= 1.5x raw "
            "asyncpg; single-lookup read path >= 0.6x raw asyncpg"
        )
        outcome.target_met = (
            per_lookup >= 1.0
            and per_task >= 1.0
            and coalesced_tp / raw_tp >= 1.5
            and read_path / raw_tp >= 0.6
        )

    return Benchmark(
        "B3",
        f"{tasks} concurrent tasks x {per_task} point lookups by primary key",
        "lookups",
        [
            Contender("repository.get, session per lookup", lambda: run(layer_per_lookup)),
            Contender(
                "repository.get, session per lookup, with pool_pre_ping=True",
                lambda: run(layer_per_lookup_pre_ping),
                "opt-in: Database(pool_pre_ping=True)",
            ),
            Contender("repository.get, session per task", lambda: run(layer_per_task)),
            Contender("db.get (coalesced)", lambda: run(coalesced), "one query per batch"),
            Contender(
                "db.read() + repository.get, per lookup",
                lambda: run(read_path_per_lookup),
                "the read path, no coalescing",
            ),
            Contender("plain session.get, session per lookup", lambda: run(plain_per_lookup)),
            Contender("plain session.get, session per task", lambda: run(plain_per_task)),
            Contender("raw asyncpg pool", lambda: run(raw), "fetchrow per lookup"),
        ],
        judge,
        notes=(
            "db.session() commits at the end of each unit of work; plain sessions roll back "
            "on close: one round trip each. db.read() runs on the read pool (autocommit, "
            "read-only): one round trip per lookup. db.get coalesces the lookups of one "
            "loop iteration into one query. The layer runs with its defaults (no pre-ping); "
            "the opt-in pool_pre_ping=True row shows the ping's round trip per checkout.",
        ),
    )


async def _plain_get(session: AsyncSession, user_id: int) -> None:
    if await session.get(User, user_id) is None:
        raise LookupError(user_id)
