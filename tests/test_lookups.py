"""Coalesced point lookups: ``db.get`` / ``db.get_many`` on the read path.

Statements are counted by a proxy between the ``Database`` and the server (one Sync per
statement once it is prepared); rows are checked value by value.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from asyncdal import Database, DatabaseUnavailableError, InvalidQueryError, NotFoundError
from asyncdal.accounts import User, UserRepository
from asyncdal.social import Follow
from tests._proxy import Proxy

pytestmark = pytest.mark.committed


@pytest.fixture
async def users(committed_db: Database) -> list[int]:
    """Five committed users; their ids in order."""
    async with committed_db.session() as s:
        created = await UserRepository(s).add_many(
            [{"username": f"u{i}", "email": f"u{i}@example.org"} for i in range(5)],
            returning=True,
        )
    return [user.id for user in created]


@pytest.fixture
async def proxied(
    committed_db: Database, migrated_url: str
) -> AsyncIterator[tuple[Database, Proxy]]:
    """A Database of its own reaching the server through a counting proxy."""
    target = make_url(migrated_url)
    async with Proxy(target.host or "127.0.0.1", target.port or 5432, lifetime=120) as proxy:
        db = Database.from_url(
            target.set(host="127.0.0.1", port=proxy.port),
            application_name=f"asyncdal-lookups-{secrets.token_hex(4)}",
            pool_size=3,
            max_overflow=0,
            pool_timeout=10,
        )
        try:
            yield db, proxy
        finally:
            await db.dispose()


async def test_concurrent_gets_are_one_statement_each_caller_its_own_row(
    proxied: tuple[Database, Proxy], users: list[int]
) -> None:
    db, proxy = proxied
    await db.get(User, users[0])  # warm up: a connection, the statement prepared
    missing = max(users) + 1000
    asked = [*users, missing, users[0], users[3]]
    before = proxy.round_trips
    results = await asyncio.gather(*(db.get(User, key) for key in asked), return_exceptions=True)
    assert proxy.round_trips - before == 1  # one statement for all eight callers
    for key, result in zip(asked, results, strict=True):
        if key == missing:
            assert isinstance(result, NotFoundError)
            assert (result.model, result.key) == ("User", missing)
        else:
            assert isinstance(result, User)
            assert result.id == key
            assert result.username == f"u{users.index(key)}"
    assert results[0] is results[6]  # the same key in one batch: the same object
    assert cast(QueuePool, db.read_engine.pool).checkedout() == 0

    # Callers of different moments are different batches: nothing is cached between them.
    before = proxy.round_trips
    assert (await db.get(User, users[1])).id == users[1]
    assert (await db.get(User, users[1])).id == users[1]
    assert proxy.round_trips - before == 2


async def test_a_batch_is_capped(proxied: tuple[Database, Proxy], users: list[int]) -> None:
    db, proxy = proxied
    db._lookups.max_batch = 2
    for _ in range(2):  # warm up: three connections (three batches at once), each prepared
        await asyncio.gather(*(db.get(User, key) for key in users))
    before = proxy.round_trips
    found = await asyncio.gather(*(db.get(User, key) for key in users))
    assert [u.id for u in found] == users
    assert proxy.round_trips - before == 3  # 2 + 2 + 1 keys


async def test_no_stale_reads(committed_db: Database, users: list[int]) -> None:
    assert (await committed_db.get(User, users[2])).display_name == ""
    async with committed_db.session() as s:
        await UserRepository(s).update(users[2], display_name="Ada")
    assert (await committed_db.get(User, users[2])).display_name == "Ada"


async def test_a_bad_key_fails_its_caller_only(committed_db: Database, users: list[int]) -> None:
    hostile: list[Any] = ["1", 2**63, -(2**63) - 1, True, None, 1.0, b"1", [users[0]]]
    results = await asyncio.gather(
        committed_db.get(User, users[0]),
        *(committed_db.get(User, key) for key in hostile),
        committed_db.get(User, users[1]),
        return_exceptions=True,
    )
    first, *refused, last = results
    assert isinstance(first, User)
    assert first.id == users[0]
    assert isinstance(last, User)
    assert last.id == users[1]
    for key, error in zip(hostile, refused, strict=True):
        assert isinstance(error, InvalidQueryError), (key, error)
        assert str(error).startswith("User.id: expected")
    # The largest 64-bit key is a valid (missing) key, not an error.
    with pytest.raises(NotFoundError):
        await committed_db.get(User, 2**63 - 1)
    with pytest.raises(InvalidQueryError, match="not a mapped model"):
        await committed_db.get(int, 1)  # type: ignore[type-var]


async def test_a_cancelled_caller_leaves_the_others_answered(
    proxied: tuple[Database, Proxy], users: list[int]
) -> None:
    db, proxy = proxied
    await db.get(User, users[0])
    # Cancelled before the batch's query starts.
    first, second = (asyncio.create_task(db.get(User, key)) for key in users[:2])
    await asyncio.sleep(0)
    first.cancel()
    assert (await second).id == users[1]
    assert first.cancelled()
    # Cancelled while the query is on the wire (the network held still).
    proxy.stall()
    tasks = [asyncio.create_task(db.get(User, key)) for key in users[:3]]
    await asyncio.sleep(0.05)
    tasks[1].cancel()
    proxy.resume()
    done = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert [done[0].id, done[2].id] == [users[0], users[2]]  # type: ignore[union-attr]
    # Everyone cancelled: the query is abandoned and the connection goes back.
    proxy.stall()
    tasks = [asyncio.create_task(db.get(User, key)) for key in users[:3]]
    await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    proxy.resume()
    await asyncio.sleep(0.1)
    assert cast(QueuePool, db.read_engine.pool).checkedout() == 0
    assert (await db.get(User, users[4])).id == users[4]


async def test_an_error_reaches_every_caller_of_the_batch(
    proxied: tuple[Database, Proxy], users: list[int]
) -> None:
    db, proxy = proxied
    await db.get(User, users[0])
    # A connection lost mid-batch: the batch is read again (reads are idempotent).
    proxy.stall()
    tasks = [asyncio.create_task(db.get(User, key)) for key in users[:3]]
    await asyncio.sleep(0.05)
    proxy.drop()
    proxy.resume()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
    assert [getattr(r, "id", r) for r in results] == users[:3]
    # The server gone for good (no connection possible): every caller gets the error.
    proxy.stall()
    tasks = [asyncio.create_task(db.get(User, key)) for key in users[:3]]
    await asyncio.sleep(0.05)
    await proxy.close()
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 20)
    assert all(isinstance(r, DatabaseUnavailableError) for r in results), results
    assert cast(QueuePool, db.read_engine.pool).checkedout() == 0


async def test_get_many_in_order_each_once(committed_db: Database, users: list[int]) -> None:
    missing = max(users) + 1000
    found = await committed_db.get_many(User, [users[3], missing, users[0], users[3]])
    assert [u.id for u in found] == [users[3], users[0]]
    assert await committed_db.get_many(User, []) == []
    with pytest.raises(InvalidQueryError):
        await committed_db.get_many(User, [users[0], "x"])


async def test_composite_keys(committed_db: Database, users: list[int]) -> None:
    async with committed_db.session() as s:
        await s.execute(
            text("INSERT INTO follows (follower_id, followee_id) VALUES (:a, :b)"),
            {"a": users[0], "b": users[1]},
        )
    follow = await committed_db.get(Follow, (users[0], users[1]))
    assert (follow.follower_id, follow.followee_id) == (users[0], users[1])
    with pytest.raises(NotFoundError):
        await committed_db.get(Follow, (users[1], users[0]))
    found = await committed_db.get_many(Follow, [(users[1], users[0]), (users[0], users[1])])
    assert [(f.follower_id, f.followee_id) for f in found] == [(users[0], users[1])]
    with pytest.raises(InvalidQueryError, match="tuple of 2"):
        await committed_db.get(Follow, users[0])
