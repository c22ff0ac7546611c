"""Seed 002's own SQL and ``SocialQueries`` agree row for row on a seeded dataset.

The seed's three statements are in tests/_seed002.py (its table and column names adapted).
Both run on the same connection in one transaction, so ``NOW()`` is the same instant for both.

The seed orders by the count alone; ``SocialQueries`` breaks ties (by id, by tag). So rows are
compared exactly above the last count on the page, and at that boundary count both pages must
hold the same number of rows, each one of the rows that have that count.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from asyncdal import DALSession, Database
from asyncdal.social import SocialQueries
from asyncdal.testing import load_dataset
from tests._seed002 import SEED_STATS, SEED_TOP_USERS, SEED_TRENDING

pytestmark = pytest.mark.committed

# Everything the boundary check needs: all rows of a count, to check ties against.
ALL_USERS = "SELECT username, follower_count, verified FROM users"
ALL_TRENDING = SEED_TRENDING.replace("LIMIT 10", "")


async def _driver(session: DALSession) -> Any:
    """The asyncpg connection under ``session``, inside the session's transaction."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection


def _by_count(rows: Sequence[tuple[Any, ...]]) -> dict[Any, set[tuple[Any, ...]]]:
    groups: dict[Any, set[tuple[Any, ...]]] = {}
    for row in rows:
        groups.setdefault(row[1], set()).add(row)
    return groups


def assert_same_page(
    seed: Sequence[tuple[Any, ...]], ours: Sequence[tuple[Any, ...]], everything: set[Any]
) -> None:
    """The same page up to the order of ties: rows are ``(key, count, ...)``."""
    assert [row[1] for row in seed] == [row[1] for row in ours]  # the same counts, in order
    if not seed:
        return
    boundary = seed[-1][1]
    seed_groups, our_groups = _by_count(seed), _by_count(ours)
    tied_seed, tied_ours = seed_groups.pop(boundary), our_groups.pop(boundary)
    # Above the boundary a page holds every row of each count: the same rows.
    assert seed_groups == our_groups
    for count, rows in seed_groups.items():
        assert rows == {row for row in everything if row[1] == count}
    # At the boundary each page holds some of the tied rows (as many, the order left open).
    assert len(tied_seed) == len(tied_ours)
    assert tied_seed <= everything
    assert tied_ours <= everything


@pytest.fixture
async def seeded(committed_db: Database) -> Database:
    result = await load_dataset(committed_db, 0.05, random_seed=2)
    assert not result.skipped
    return committed_db


async def test_top_users_row_for_row(seeded: Database) -> None:
    async with seeded.session() as session:
        conn = await _driver(session)
        everything = {tuple(r) for r in await conn.fetch(ALL_USERS)}
        for limit in (1, 5, 10, 37, 200):
            seed = [tuple(r) for r in await conn.fetch(SEED_TOP_USERS, limit)]
            ours = [
                (u.username, u.follower_count, u.verified)
                for u in await SocialQueries(session).top_users(limit=limit)
            ]
            assert len(seed) == len(ours) == limit
            assert_same_page(seed, ours, everything)


@pytest.mark.parametrize("days", [1, 3, 7, 30])
async def test_trending_hashtags_row_for_row(seeded: Database, days: int) -> None:
    async with seeded.session() as session:
        conn = await _driver(session)
        everything = {tuple(r) for r in await conn.fetch(ALL_TRENDING, str(days))}
        seed = [tuple(r) for r in await conn.fetch(SEED_TRENDING, str(days))]
        ours = [
            (h.tag, h.post_count)
            for h in await SocialQueries(session).trending_hashtags(days=days, limit=10)
        ]
        assert len(seed) == len(ours) == min(10, len(everything))
        assert seed, "the window holds posts with hashtags"
        assert_same_page(seed, ours, everything)


async def test_platform_stats_match_the_seed(seeded: Database) -> None:
    async with seeded.session() as session:
        conn = await _driver(session)
        seed = await conn.fetchrow(SEED_STATS)
        ours = await SocialQueries(session).platform_stats(days=7)
    assert seed["total_tweets"] > 0
    assert ours.total_posts == seed["total_tweets"]
    assert ours.active_users == seed["active_users"]
    assert ours.total_likes == seed["total_likes"]
    # The seed's AVG is unrounded; ours is the same exact decimal rounded to two places.
    assert ours.avg_likes == seed["avg_likes"].quantize(Decimal("0.01"))
