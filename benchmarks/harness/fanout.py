"""B1: a fan-out of I/O-bound reads (``pg_sleep``): does ``db.gather`` overlap them fully?"""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from asyncdal import DALSession
from harness.context import BenchContext, settings_caption
from harness.harness import Benchmark, Contender, Outcome

__all__ = ["fanout_benchmark"]


def fanout_benchmark(ctx: BenchContext) -> Benchmark:
    """Sequential on one session vs ``db.gather`` vs plain sessions vs raw asyncpg."""
    n, pause = ctx.profile.fanout, ctx.profile.sleep
    statement = select(func.pg_sleep(pause))

    async def sleep_read(session: DALSession) -> None:
        await session.execute(statement)

    async def single() -> int:
        # The yardstick: one read alone, the same way db.gather runs each of its reads.
        await ctx.db.gather(sleep_read)
        return 1

    async def sequential() -> int:
        async with ctx.db.session() as session:
            for _ in range(n):
                await session.execute(statement)
        return n

    async def gathered() -> int:
        await ctx.db.gather(*[sleep_read] * n)
        return n

    async def read_sessions() -> int:
        async def one() -> None:
            async with ctx.db.read() as session:
                await session.execute(statement)

        await asyncio.gather(*(one() for _ in range(n)))
        return n

    async def plain_per_read() -> int:
        async def one() -> None:
            async with ctx.plain() as session:
                await session.execute(statement)

        await asyncio.gather(*(one() for _ in range(n)))
        return n

    async def raw() -> int:
        async def one() -> None:
            async with ctx.pool.acquire() as conn:
                await conn.execute("SELECT pg_sleep($1)", pause)

        await asyncio.gather(*(one() for _ in range(n)))
        return n

    def judge(outcome: Outcome) -> None:
        base = outcome.by_name("one read alone").median
        for stats in outcome.stats:
            outcome.ratios[f"{stats.name} / one read alone"] = stats.median / base
        ratio = outcome.ratios["db.gather / one read alone"]
        outcome.target = "db.gather <= 1.03x one read alone (raw asyncpg's ratio: the floor)"
        outcome.target_met = ratio <= 1.03

    return Benchmark(
        "B1",
        f"fan-out of {n} reads of pg_sleep({pause})",
        "fan-outs",
        [
            Contender("one read alone", single, "db.gather of a single read"),
            Contender("sequential, one session", sequential),
            Contender("db.gather", gathered, "a session per read, on the read path"),
            Contender("db.read() per read + asyncio.gather", read_sessions, "the read path"),
            Contender("plain SQLAlchemy, session per read", plain_per_read, "asyncio.gather"),
            Contender("raw asyncpg pool + gather", raw, "seed 000 way"),
        ],
        judge,
        notes=(settings_caption(ctx.db),),
    )
