"""Users: create, find by username, follow/unfollow with an exact follower_count."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import func, select, text

from asyncdal import (
    CheckViolationError,
    DALSession,
    Database,
    DuplicateError,
    ForeignKeyError,
    NotFoundError,
)
from asyncdal.accounts import User, UserRepository
from asyncdal.social import Follow, FollowRepository
from asyncdal.testing.factories import UserFactory, create


async def _followers(session: DALSession, user_id: int) -> tuple[int, int]:
    """(follower_count column, actual number of follow rows) for ``user_id``."""
    count = await session.scalar(select(User.follower_count).where(User.id == user_id))
    rows = await session.scalar(
        select(func.count()).select_from(Follow).where(Follow.followee_id == user_id)
    )
    return int(count or 0), int(rows or 0)


async def test_create_and_find_by_username(session: DALSession) -> None:
    repo = UserRepository(session)
    user = await repo.create(username="grace", email="grace@example.org", display_name="Grace")
    assert user.id is not None
    found = await repo.by_username("grace")
    assert (found.id, found.display_name, found.follower_count) == (user.id, "Grace", 0)
    with pytest.raises(NotFoundError, match="User 'nobody' not found"):
        await repo.by_username("nobody")


async def test_create_duplicate_username_or_email(session: DALSession) -> None:
    repo = UserRepository(session)
    await repo.create(username="linus", email="linus@example.org")
    with pytest.raises(DuplicateError) as info:
        await repo.create(username="linus", email="other@example.org")
    assert info.value.constraint == "uq_users_username"


async def test_create_duplicate_email(session: DALSession) -> None:
    repo = UserRepository(session)
    await repo.create(username="a1", email="same@example.org")
    with pytest.raises(DuplicateError) as info:
        await repo.create(username="a2", email="same@example.org")
    assert info.value.constraint == "uq_users_email"


async def test_follow_and_unfollow_keep_the_counter(session: DALSession) -> None:
    alice, bob, carol = await create(UserFactory, 3)
    repo = FollowRepository(session)
    assert await repo.follow(alice.id, bob.id) is True
    assert await repo.follow(carol.id, bob.id) is True
    assert await _followers(session, bob.id) == (2, 2)
    assert await repo.unfollow(alice.id, bob.id) is True
    assert await repo.unfollow(alice.id, bob.id) is False
    assert await _followers(session, bob.id) == (1, 1)
    assert await _followers(session, alice.id) == (0, 0)


async def test_duplicate_follow_is_an_error_unless_exist_ok(session: DALSession) -> None:
    alice, bob = await create(UserFactory, 2)
    repo = FollowRepository(session)
    await repo.follow(alice.id, bob.id)
    with pytest.raises(DuplicateError, match="already follows") as info:
        await repo.follow(alice.id, bob.id)
    assert info.value.constraint == "pk_follows"
    assert await repo.follow(alice.id, bob.id, exist_ok=True) is False
    assert await _followers(session, bob.id) == (1, 1)


async def test_self_follow_is_a_check_violation_and_writes_nothing(session: DALSession) -> None:
    (alice,) = await create(UserFactory, 1)
    with pytest.raises(CheckViolationError, match="cannot follow themselves") as info:
        await FollowRepository(session).follow(alice.id, alice.id)
    assert info.value.constraint == "ck_follows_not_self"
    assert await _followers(session, alice.id) == (0, 0)


async def test_follow_unknown_user_is_a_foreign_key_error(session: DALSession) -> None:
    (alice,) = await create(UserFactory, 1)
    with pytest.raises(ForeignKeyError):
        await FollowRepository(session).follow(alice.id, 999_999)


async def test_concurrent_follow_unfollow_storm_keeps_every_counter_exact(
    committed_db: Database,
) -> None:
    async with committed_db.session() as s:
        users = [
            await UserRepository(s).create(username=f"s{i}", email=f"s{i}@x.org") for i in range(6)
        ]
    ids = [u.id for u in users]
    rng = random.Random(4)
    pairs = [(a, b) for a in ids for b in ids if a != b]
    ops = [
        (rng.choice(("follow", "unfollow", "follow")), *rng.choice(pairs[:8])) for _ in range(300)
    ]

    async def run(op: str, a: int, b: int) -> bool:
        async with committed_db.session() as s:
            repo = FollowRepository(s)
            if op == "follow":
                return await repo.follow(a, b, exist_ok=True)
            return await repo.unfollow(a, b)

    results = await asyncio.gather(*(run(*op) for op in ops))
    async with committed_db.session() as s:
        mismatched = (
            await s.execute(
                text(
                    "SELECT u.id, u.follower_count, count(f.follower_id) AS n FROM users u "
                    "LEFT JOIN follows f ON f.followee_id = u.id GROUP BY u.id "
                    "HAVING u.follower_count <> count(f.follower_id)"
                )
            )
        ).all()
        total = await s.scalar(select(func.count()).select_from(Follow))
    assert mismatched == []
    # Every change the calls reported happened exactly once.
    created = sum(r for (op, _, _), r in zip(ops, results, strict=True) if op == "follow")
    removed = sum(r for (op, _, _), r in zip(ops, results, strict=True) if op == "unfollow")
    assert created - removed == total
    assert created > 0
    assert removed > 0


async def test_concurrent_duplicate_follows_create_exactly_one(committed_db: Database) -> None:
    async with committed_db.session() as s:
        a = await UserRepository(s).create(username="fa", email="fa@x.org")
        b = await UserRepository(s).create(username="fb", email="fb@x.org")

    async def follow() -> bool:
        async with committed_db.session() as s:
            return await FollowRepository(s).follow(a.id, b.id, exist_ok=True)

    results = await asyncio.gather(*(follow() for _ in range(50)))
    assert results.count(True) == 1
    async with committed_db.session() as s:
        assert await _followers(s, b.id) == (1, 1)
