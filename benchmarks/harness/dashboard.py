"""B2: seed 002's dashboard on the demo dataset: sequential vs ``db.gather`` vs raw asyncpg."""

from __future__ import annotations

import asyncio
from typing import Any

from asyncdal.social import SocialDashboard, SocialQueries
from harness.context import BenchContext, settings_caption
from harness.harness import Benchmark, Contender, Outcome

__all__ = ["dashboard_benchmark"]

TOP, DAYS, TRENDING = 5, 7, 10
#: The dashboard's reads, which the sequential contender runs one by one on one session.
READS = SocialDashboard.reads(top=TOP, days=DAYS, trending=TRENDING)

# Seed 002's three queries, written by hand against this schema. "Fixed": each runs on its own
# pooled connection (the seed gathered them on one connection, which asyncpg refuses).
RAW_TOP_USERS = """
SELECT id, username, display_name, follower_count, verified
FROM users ORDER BY follower_count DESC, id LIMIT $1
"""
RAW_TRENDING = """
SELECT h.tag, count(*) AS post_count
FROM hashtags h
JOIN post_hashtags ph ON ph.hashtag_id = h.id
JOIN posts p ON p.id = ph.post_id
WHERE p.created_at >= now() - make_interval(days => $1)
GROUP BY h.id, h.tag ORDER BY post_count DESC, h.tag LIMIT $2
"""
RAW_STATS = """
SELECT count(*), count(DISTINCT author_id), coalesce(sum(like_count), 0),
       round(avg(like_count), 2)
FROM posts WHERE created_at >= now() - make_interval(days => $1)
"""


def dashboard_benchmark(ctx: BenchContext) -> Benchmark:
    """Dashboards per second, each contender building the same three results."""
    per_sample = ctx.profile.dashboards

    async def sequential() -> int:
        for _ in range(per_sample):
            async with ctx.db.session() as session:
                [await read(session) for read in READS]
        return per_sample

    async def gathered() -> int:
        for _ in range(per_sample):
            await SocialDashboard.load(ctx.db, top=TOP, days=DAYS, trending=TRENDING)
        return per_sample

    async def plain() -> int:
        statements = (
            SocialQueries.top_users_query(limit=TOP),
            SocialQueries.trending_hashtags_query(days=DAYS, limit=TRENDING),
            SocialQueries.platform_stats_query(days=DAYS),
        )

        async def one(statement: Any) -> list[Any]:
            async with ctx.plain() as session:
                return list((await session.execute(statement)).all())

        for _ in range(per_sample):
            await asyncio.gather(*(one(s) for s in statements))
        return per_sample

    async def raw() -> int:
        async def fetch(query: str, *args: Any) -> list[Any]:
            async with ctx.pool.acquire() as conn:
                return list(await conn.fetch(query, *args))

        for _ in range(per_sample):
            await asyncio.gather(
                fetch(RAW_TOP_USERS, TOP),
                fetch(RAW_TRENDING, DAYS, TRENDING),
                fetch(RAW_STATS, DAYS),
            )
        return per_sample

    def judge(outcome: Outcome) -> None:
        raw_tp = outcome.by_name("raw asyncpg pool + gather").throughput
        for stats in outcome.stats:
            outcome.ratios[f"{stats.name} / raw asyncpg (throughput)"] = stats.throughput / raw_tp
        ratio = outcome.ratios["db.gather / raw asyncpg (throughput)"]
        outcome.target = "db.gather >= 1.0x raw asyncpg's throughput"
        outcome.target_met = ratio >= 1.0

    return Benchmark(
        "B2",
        f"seed 002 dashboard (top {TOP} users, trending over {DAYS} days, stats)",
        "dashboards",
        [
            Contender("sequential, one session", sequential, "SocialDashboard.reads(), one by one"),
            Contender("db.gather", gathered, "SocialDashboard.load(db)"),
            Contender("plain SQLAlchemy, session per read", plain, "same statements"),
            Contender("raw asyncpg pool + gather", raw, "hand-written SQL"),
        ],
        judge,
        notes=(settings_caption(ctx.db),),
    )
