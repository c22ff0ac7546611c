"""The demo dataset: deterministic, realistic, consistent counters, written once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from asyncdal import Database, check_schema
from asyncdal.accounts import User
from asyncdal.testing import (
    Sizes,
    generate_batches,
    generate_dataset,
    load_dataset,
    table_counts,
)

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def test_generate_is_deterministic_for_a_seed() -> None:
    first = generate_dataset(0.01, random_seed=7, now=NOW)
    again = generate_dataset(0.01, random_seed=7, now=NOW)
    other = generate_dataset(0.01, random_seed=8, now=NOW)
    assert first.rows == again.rows
    assert first.rows != other.rows


def test_generate_sizes_and_shape() -> None:
    data = generate_dataset(0.05, random_seed=1, now=NOW)
    sizes = Sizes.for_scale(0.05)
    assert data.count(User) == sizes.users == 500
    posts = data.rows[next(m for m in data.rows if m.__name__ == "Post")]
    assert len(posts) == sizes.posts == 5000
    ages = [NOW - row[4] for row in posts]
    assert all(timedelta(0) <= age <= timedelta(days=30) for age in ages)
    recent = sum(age <= timedelta(days=7) for age in ages) / len(ages)
    assert 0.15 < recent < 0.35  # spread over ~30 days: about a quarter in the last week
    followers = sorted((row[5] for row in data.rows[User]), reverse=True)
    # Skewed: the most followed user has many times the median follower count.
    assert followers[0] > 10 * max(1, followers[len(followers) // 2])


async def test_seed_writes_consistent_data_once(committed_db: Database) -> None:
    result = await load_dataset(committed_db, 0.01, random_seed=3)
    assert not result.skipped
    counts = await table_counts(committed_db)
    assert counts == result.counts
    assert counts["users"] == 100
    assert counts["posts"] == 1000
    assert counts["orders"] == 200
    assert all(counts[t] > 0 for t in ("follows", "likes", "post_hashtags", "order_items"))
    checks = {
        "follower_count": """SELECT count(*) FROM users u WHERE u.follower_count <>
            (SELECT count(*) FROM follows f WHERE f.followee_id = u.id)""",
        "like_count": """SELECT count(*) FROM posts p WHERE p.like_count <>
            (SELECT count(*) FROM likes l WHERE l.post_id = p.id)""",
        "order totals": """SELECT count(*) FROM orders o WHERE o.total <>
            (SELECT sum(quantity * unit_price) FROM order_items i WHERE i.order_id = o.id)""",
        "orders without items": """SELECT count(*) FROM orders o WHERE NOT EXISTS
            (SELECT 1 FROM order_items i WHERE i.order_id = o.id)""",
    }
    async with committed_db.session() as session:
        for name, query in checks.items():
            assert (await session.execute(text(query))).scalar_one() == 0, name
        # Identities moved past the seeded ids: a new row does not clash.
        user = User(username="after-seed", email="after-seed@example.org")
        session.add(user)
        await session.flush()
        assert user.id > counts["users"]
    # The foreign keys were dropped for the load and re-added exactly as migrated.
    assert await check_schema(committed_db) == []

    again = await load_dataset(committed_db, 0.01, random_seed=3)
    assert again.skipped
    assert "already has data" in again.reason
    assert (await table_counts(committed_db))["posts"] == counts["posts"]


def test_batches_are_bounded_and_progress_reaches_the_total() -> None:
    batches = list(generate_batches(0.02, random_seed=5, now=NOW, batch=300))
    # A batch closes once it holds 300 rows: one entity (a post's likes) may top it up.
    most_per_entity = Sizes.for_scale(0.02).users
    assert all(len(b.rows) < 300 + most_per_entity for b in batches)
    done = [b.done for b in batches]
    assert done == sorted(done)
    assert batches[-1].done == batches[-1].total
    # The same rows as the in-memory dataset, batch size aside.
    whole = generate_dataset(0.02, random_seed=5, now=NOW)
    assert sum(len(b.rows) for b in batches) == sum(len(r) for r in whole.rows.values())


async def test_progress_moves_from_the_first_batch(committed_db: Database) -> None:
    calls: list[tuple[str, int, int]] = []
    result = await load_dataset(
        committed_db, 0.02, random_seed=3, chunk=500, progress=lambda *a: calls.append(a)
    )
    assert not result.skipped
    assert len(calls) > 20
    assert calls[0][1] < calls[0][2] / 10  # the first report comes early, not at the end
    assert [c[1] for c in calls] == sorted(c[1] for c in calls)
    assert calls[-1][1] == calls[-1][2]


async def test_cancelling_a_load_leaves_no_rows(committed_db: Database) -> None:
    started = asyncio.Event()
    task = asyncio.create_task(
        load_dataset(committed_db, 0.2, chunk=500, progress=lambda *_: started.set())
    )
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not any((await table_counts(committed_db)).values())
    # ...and the foreign keys dropped for the load are back (the transaction rolled back).
    assert await check_schema(committed_db) == []
