"""Social: posts with hashtags, likes (which keep ``like_count`` exact) and the feed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm.attributes import set_committed_value

from asyncdal._checks import check_limit
from asyncdal._error_mapping import wrap_errors
from asyncdal._errors import (
    CheckViolationError,
    DuplicateError,
    InvalidQueryError,
    InvalidTypeError,
)
from asyncdal._repository.base import Repository
from asyncdal._repository.filters import parse_order
from asyncdal._repository.pagination import (
    Page,
    decode_cursor,
    encode_cursor,
    keyset_condition,
)
from asyncdal._repository.values import checker_for, describe, key_column
from asyncdal.accounts import User
from asyncdal.social._counters import link, unlink
from asyncdal.social._models import Follow, Hashtag, Like, Post, PostHashtag

__all__ = ["FollowRepository", "HashtagRepository", "PostRepository", "normalize_tags"]

#: The longest tag the ``hashtags.tag`` column holds.
MAX_TAG = 100

# Ids given to the domain operations are checked like any repository key, before any SQL.
_USER_ID = checker_for(key_column(User), "user id")
_POST_ID = checker_for(key_column(Post), "post id")


def normalize_tags(tags: Iterable[str]) -> list[str]:
    """Tags as stored: ``#`` and surrounding spaces stripped, lower case, unique, sorted.

    Sorted, so concurrent posts upsert shared tags in the same order and cannot deadlock.
    """
    if isinstance(tags, (str, bytes)) or not isinstance(tags, Iterable):
        # A bare string is iterable too: "abc" would silently become the tags a, b and c.
        raise InvalidTypeError(f"tags must be a list of strings, got {describe(tags)}")
    normalized = set()
    for tag in tags:
        if not isinstance(tag, str):
            raise InvalidTypeError(f"hashtags must be strings, got {describe(tag)}")
        clean = tag.strip().lstrip("#").strip().lower()
        if not clean or len(clean) > MAX_TAG or "\x00" in clean:
            raise InvalidQueryError(
                f"invalid hashtag {describe(tag)}: 1 to {MAX_TAG} characters after stripping '#'"
            )
        normalized.add(clean)
    return sorted(normalized)


class HashtagRepository(Repository[Hashtag]):
    """Hashtags (lower case, without ``#``)."""

    model = Hashtag
    filter_fields = frozenset({"id", "tag"})
    sort_fields = frozenset({"id", "tag"})
    upsert_keys = (("tag",),)

    async def ensure(self, tags: Iterable[str]) -> list[Hashtag]:
        """The hashtags for ``tags`` (normalised), inserting the missing ones; sorted by tag.

        One ``INSERT ... ON CONFLICT (tag) DO UPDATE ... RETURNING``: concurrent callers with
        the same new tag both get its row, neither gets a duplicate error.
        """
        clean = normalize_tags(tags)
        if not clean:
            return []
        stmt = insert(Hashtag).values([{"tag": tag} for tag in clean])
        # DO UPDATE (a no-op rewrite) rather than DO NOTHING, so RETURNING includes old rows.
        stmt = stmt.on_conflict_do_update(index_elements=["tag"], set_={"tag": stmt.excluded.tag})
        with wrap_errors():
            rows = await self.session.scalars(stmt.returning(Hashtag))
            return sorted(rows.all(), key=lambda h: h.tag)


class PostRepository(Repository[Post]):
    """Posts: create with hashtags, like and unlike, and a user's feed.

    ``like``/``unlike`` change the like row and the post's ``like_count`` in one statement,
    so the counter always equals the number of likes. Posts already loaded in the session
    keep their old ``like_count``: ``await session.refresh(post)`` to see the new one.
    """

    model = Post
    filter_fields = frozenset({"id", "author_id", "body", "like_count", "created_at"})
    sort_fields = frozenset({"id", "like_count", "created_at"})
    readonly_fields = frozenset({"like_count"})

    async def create(self, *, tags: Iterable[str] = (), **values: Any) -> Post:
        """Insert a post (``author_id``, ``body``) and link its hashtags (normalised, upserted).

        The returned post has ``hashtags`` loaded, sorted by tag. Everything is checked before
        anything is sent, tags included: a bad tag writes no post.
        """
        clean = normalize_tags(tags)
        post = await super().create(**values)
        hashtags = await HashtagRepository(self.session).ensure(clean)
        if hashtags:
            links = [{"post_id": post.id, "hashtag_id": h.id} for h in hashtags]
            with wrap_errors():
                await self.session.execute(insert(PostHashtag).values(links))
        set_committed_value(post, "hashtags", hashtags)
        return post

    async def like(self, user_id: int, post_id: int) -> bool:
        """``user_id`` likes ``post_id``; ``True`` if this call added the like.

        Idempotent: liking again returns ``False`` and changes nothing. An unknown user or
        post is a :class:`ForeignKeyError`.
        """
        _USER_ID(user_id)
        _POST_ID(post_id)
        return await link(
            self.session,
            Like,
            {"user_id": user_id, "post_id": post_id},
            target=Like.post_id,
            counter=Post.like_count,
        )

    async def unlike(self, user_id: int, post_id: int) -> bool:
        """Remove ``user_id``'s like of ``post_id``; ``False`` if there was none."""
        _USER_ID(user_id)
        _POST_ID(post_id)
        return await unlink(
            self.session,
            Like,
            [Like.user_id == user_id, Like.post_id == post_id],
            target=Like.post_id,
            counter=Post.like_count,
        )

    async def feed(self, user_id: int, *, limit: int = 20, cursor: str | None = None) -> Page[Post]:
        """Posts by the users ``user_id`` follows, newest first, keyset paginated.

        Pass the page's ``next_cursor`` as ``cursor`` for the next page; posts written
        meanwhile do not shift it.
        """
        _USER_ID(user_id)
        size = check_limit(limit, self.max_limit)
        keys = parse_order("-created_at", self._columns, self.sort_fields, ["id"])
        followed = select(Follow.followee_id).where(Follow.follower_id == user_id)
        stmt = (
            select(Post)
            .where(Post.author_id.in_(followed))
            .order_by(Post.created_at.desc(), Post.id.desc())
        )
        if cursor is not None:
            stmt = stmt.where(keyset_condition(keys, decode_cursor(cursor, keys)))
        with wrap_errors():
            rows = (await self.session.scalars(stmt.limit(size + 1))).all()
        items = list(rows[:size])
        more = len(rows) > size
        return Page(items, next_cursor=encode_cursor(keys, items[-1]) if more else None, limit=size)


class FollowRepository(Repository[Follow]):
    """Who follows whom; every change keeps the followee's ``follower_count`` exact.

    ``follow``/``unfollow`` change the follow row and the counter in one statement, so the
    counter always equals the number of follow rows, whatever runs concurrently. Users already
    loaded in the session keep their old ``follower_count``: ``await session.refresh(user)``.
    """

    model = Follow
    filter_fields = frozenset({"follower_id", "followee_id", "created_at"})
    sort_fields = frozenset({"created_at"})

    async def follow(self, follower_id: int, followee_id: int, *, exist_ok: bool = False) -> bool:
        """Make ``follower_id`` follow ``followee_id``; ``True`` when a follow was created.

        Following oneself is a :class:`CheckViolationError`; an unknown user a
        :class:`ForeignKeyError`. Following again is a :class:`DuplicateError`, unless
        ``exist_ok`` is true: then it returns ``False`` and changes nothing.
        """
        _USER_ID(follower_id)
        _USER_ID(followee_id)
        if not isinstance(exist_ok, bool):
            raise InvalidTypeError(f"exist_ok must be True or False, got {describe(exist_ok)}")
        if follower_id == followee_id:
            raise CheckViolationError(
                f"user {follower_id} cannot follow themselves", constraint="ck_follows_not_self"
            )
        created = await link(
            self.session,
            Follow,
            {"follower_id": follower_id, "followee_id": followee_id},
            target=Follow.followee_id,
            counter=User.follower_count,
        )
        if not created and not exist_ok:
            raise DuplicateError(
                f"user {follower_id} already follows user {followee_id}", constraint="pk_follows"
            )
        return created

    async def unfollow(self, follower_id: int, followee_id: int) -> bool:
        """Stop ``follower_id`` following ``followee_id``; ``False`` if it did not follow."""
        _USER_ID(follower_id)
        _USER_ID(followee_id)
        return await unlink(
            self.session,
            Follow,
            [Follow.follower_id == follower_id, Follow.followee_id == followee_id],
            target=Follow.followee_id,
            counter=User.follower_count,
        )
