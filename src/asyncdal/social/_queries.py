"""Seed 002's social dashboard as a read model: top users, trending hashtags, platform stats."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from asyncdal._checks import check_days, check_limit
from asyncdal._error_mapping import wrap_errors
from asyncdal.accounts import User
from asyncdal.social._models import Hashtag, Post, PostHashtag
from asyncdal.social._results import PlatformStats, TopUser, TrendingHashtag

__all__ = ["SocialQueries"]

_NO_LIKES = Decimal("0.00")


def _since(days: int) -> ColumnElement[bool]:
    """Posts of the last ``days`` days, relative to the server's clock (``now()``).

    The interval is a bound parameter; ``posts.created_at`` is indexed.
    """
    return Post.created_at >= func.now() - timedelta(days=days)


class SocialQueries:
    """Read-only queries of the social tables over one session.

    Every method runs one statement, so the methods are the reads to hand to
    :meth:`Database.gather`::

        top, trending, stats = await db.gather(
            lambda s: SocialQueries(s).top_users(limit=5),
            lambda s: SocialQueries(s).trending_hashtags(days=7),
            lambda s: SocialQueries(s).platform_stats(days=7),
        )
    """

    def __init__(self, session: AsyncSession) -> None:
        """Query through ``session``; the caller owns it (and its transaction)."""
        self.session = session

    @staticmethod
    def top_users_query(*, limit: int = 10) -> Select[int, str, str, int, bool]:
        """The statement of :meth:`top_users` (uses the index on ``users.follower_count``)."""
        return (
            select(User.id, User.username, User.display_name, User.follower_count, User.verified)
            .order_by(User.follower_count.desc(), User.id)
            .limit(check_limit(limit))
        )

    async def top_users(self, *, limit: int = 10) -> list[TopUser]:
        """The ``limit`` users with the most followers, most first (ties by id)."""
        with wrap_errors():
            rows = (await self.session.execute(self.top_users_query(limit=limit))).all()
        return [TopUser(*row) for row in rows]

    @staticmethod
    def trending_hashtags_query(*, days: int = 7, limit: int = 10) -> Select[str, int]:
        """The statement of :meth:`trending_hashtags`."""
        post_count = func.count().label("post_count")
        return (
            select(Hashtag.tag, post_count)
            .join(PostHashtag, PostHashtag.hashtag_id == Hashtag.id)
            .join(Post, Post.id == PostHashtag.post_id)
            .where(_since(check_days(days)))
            .group_by(Hashtag.id, Hashtag.tag)
            .order_by(post_count.desc(), Hashtag.tag)
            .limit(check_limit(limit))
        )

    async def trending_hashtags(self, *, days: int = 7, limit: int = 10) -> list[TrendingHashtag]:
        """The ``limit`` hashtags on the most posts of the last ``days`` days (ties by tag)."""
        with wrap_errors():
            rows = (
                await self.session.execute(self.trending_hashtags_query(days=days, limit=limit))
            ).all()
        return [TrendingHashtag(*row) for row in rows]

    @staticmethod
    def platform_stats_query(*, days: int = 7) -> Select[int, int, int, Decimal | None]:
        """The statement of :meth:`platform_stats`."""
        return select(
            func.count(Post.id),
            func.count(Post.author_id.distinct()),
            func.coalesce(func.sum(Post.like_count), 0),
            func.round(func.avg(Post.like_count), 2),
        ).where(_since(check_days(days)))

    async def platform_stats(self, *, days: int = 7) -> PlatformStats:
        """Posts, active authors, total and average likes of the last ``days`` days."""
        with wrap_errors():
            row = (await self.session.execute(self.platform_stats_query(days=days))).one()
        total_posts, active_users, total_likes, avg_likes = row
        return PlatformStats(
            days=days,
            total_posts=total_posts,
            active_users=active_users,
            total_likes=int(total_likes),
            avg_likes=_NO_LIKES if avg_likes is None else avg_likes,
        )

    async def total_posts(self) -> int:
        """How many posts exist, all time."""
        with wrap_errors():
            return int(await self.session.scalar(select(func.count()).select_from(Post)) or 0)

    async def post_count_by_user(self) -> dict[int, int]:
        """Posts per author, all time: ``{user_id: post_count}`` for users with posts.

        Its values sum to :meth:`total_posts` when both are read from one snapshot
        (``db.gather(..., consistent=True)``).
        """
        stmt = select(Post.author_id, func.count()).group_by(Post.author_id)
        with wrap_errors():
            rows = (await self.session.execute(stmt)).all()
        return {author_id: count for author_id, count in rows}  # noqa: C416 (typed rows)
