"""Posts with hashtags, idempotent likes with an exact like_count, and the feed."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from asyncdal import DALSession, Database, ForeignKeyError, InvalidQueryError
from asyncdal.accounts import UserRepository
from asyncdal.social import (
    FollowRepository,
    Hashtag,
    HashtagRepository,
    Like,
    Post,
    PostHashtag,
    PostRepository,
)
from asyncdal.testing.factories import PostFactory, UserFactory, create


async def test_create_post_normalises_upserts_and_links_tags(session: DALSession) -> None:
    (author,) = await create(UserFactory, 1)
    repo = PostRepository(session)
    first = await repo.create(author_id=author.id, body="hi", tags=["#Python", "asyncio", "PYTHON"])
    assert [h.tag for h in first.hashtags] == ["asyncio", "python"]
    second = await repo.create(author_id=author.id, body="again", tags=[" #AsyncIO "])
    assert [h.id for h in second.hashtags] == [first.hashtags[0].id]  # reused, not duplicated
    tags = (
        await session.scalars(select(Hashtag.tag).where(Hashtag.tag.in_(["asyncio", "python"])))
    ).all()
    assert sorted(tags) == ["asyncio", "python"]
    links = await session.scalar(
        select(func.count())
        .select_from(PostHashtag)
        .where(PostHashtag.post_id.in_([first.id, second.id]))
    )
    assert links == 3
    untagged = await repo.create(author_id=author.id, body="plain")
    assert untagged.hashtags == []


async def test_create_post_rejects_bad_tags_before_writing(session: DALSession) -> None:
    (author,) = await create(UserFactory, 1)
    repo = PostRepository(session)
    for bad in (["#"], ["  "], ["x" * 101]):
        with pytest.raises(InvalidQueryError, match="invalid hashtag"):
            await repo.create(author_id=author.id, body="nope", tags=bad)
    assert await repo.count({"author_id": author.id}) == 0


async def test_create_post_for_unknown_author_is_a_foreign_key_error(session: DALSession) -> None:
    with pytest.raises(ForeignKeyError):
        await PostRepository(session).create(author_id=999_999, body="ghost")


async def test_hashtag_ensure_is_idempotent(session: DALSession) -> None:
    repo = HashtagRepository(session)
    one = await repo.ensure(["#Zed", "alpha"])
    two = await repo.ensure(["ALPHA", "zed", "#new"])
    assert [h.tag for h in one] == ["alpha", "zed"]
    assert [h.tag for h in two] == ["alpha", "new", "zed"]
    assert {h.id for h in one} <= {h.id for h in two}


async def test_like_and_unlike_are_idempotent(session: DALSession) -> None:
    (post,) = await create(PostFactory, 1)
    fan = post.author
    repo = PostRepository(session)
    assert await repo.like(fan.id, post.id) is True
    assert await repo.like(fan.id, post.id) is False
    await session.refresh(post)
    assert post.like_count == 1
    assert await repo.unlike(fan.id, post.id) is True
    assert await repo.unlike(fan.id, post.id) is False
    await session.refresh(post)
    assert post.like_count == 0


async def test_like_unknown_post_is_a_foreign_key_error(session: DALSession) -> None:
    (user,) = await create(UserFactory, 1)
    with pytest.raises(ForeignKeyError):
        await PostRepository(session).like(user.id, 999_999)


async def test_100_concurrent_likes_by_one_user_count_once(committed_db: Database) -> None:
    async with committed_db.session() as s:
        user = await UserRepository(s).create(username="liker", email="liker@x.org")
        post = await PostRepository(s).create(author_id=user.id, body="like me")

    async def like() -> bool:
        async with committed_db.session() as s:
            return await PostRepository(s).like(user.id, post.id)

    results = await asyncio.gather(*(like() for _ in range(100)))
    assert results.count(True) == 1
    async with committed_db.session() as s:
        count = await s.scalar(select(Post.like_count).where(Post.id == post.id))
        likes = await s.scalar(
            select(func.count()).select_from(Like).where(Like.post_id == post.id)
        )
    assert (count, likes) == (1, 1)


async def test_concurrent_like_unlike_storm_keeps_like_count_exact(committed_db: Database) -> None:
    async with committed_db.session() as s:
        users = [
            await UserRepository(s).create(username=f"l{i}", email=f"l{i}@x.org") for i in range(5)
        ]
        post = await PostRepository(s).create(author_id=users[0].id, body="storm")

    async def flip(i: int) -> None:
        async with committed_db.session() as s:
            repo = PostRepository(s)
            user = users[i % len(users)]
            if i % 3:
                await repo.like(user.id, post.id)
            else:
                await repo.unlike(user.id, post.id)

    await asyncio.gather(*(flip(i) for i in range(200)))
    async with committed_db.session() as s:
        count = await s.scalar(select(Post.like_count).where(Post.id == post.id))
        likes = await s.scalar(
            select(func.count()).select_from(Like).where(Like.post_id == post.id)
        )
    assert count == likes


async def test_feed_shows_followed_authors_newest_first_with_stable_cursor(
    session: DALSession,
) -> None:
    reader, followed, stranger = await create(UserFactory, 3)
    users = FollowRepository(session)
    posts = PostRepository(session)
    await users.follow(reader.id, followed.id)
    mine = [await posts.create(author_id=followed.id, body=f"post {i}") for i in range(5)]
    await posts.create(author_id=stranger.id, body="not followed")
    # created_at is the transaction time, equal for all: the id breaks the tie, newest first.
    first = await posts.feed(reader.id, limit=2)
    assert [p.id for p in first] == [mine[4].id, mine[3].id]
    # A post published meanwhile does not shift the next page.
    await posts.create(author_id=followed.id, body="late")
    second = await posts.feed(reader.id, limit=2, cursor=first.next_cursor)
    assert [p.id for p in second] == [mine[2].id, mine[1].id]
    last = await posts.feed(reader.id, limit=2, cursor=second.next_cursor)
    assert [p.id for p in last] == [mine[0].id]
    assert last.next_cursor is None
    assert (await posts.feed(stranger.id)).items == []
    with pytest.raises(InvalidQueryError, match="malformed cursor"):
        await posts.feed(reader.id, cursor="garbage")
    with pytest.raises(InvalidQueryError, match="limit must be an integer from 1 to"):
        await posts.feed(reader.id, limit=0)
