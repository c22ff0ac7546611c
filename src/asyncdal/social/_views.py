"""Views that fan out: seed 002's dashboard and a user's profile, each read via ``db.gather``.

A view is a frozen result type with two class-level entry points: ``reads(...)`` builds its
reads (checked arguments, one callable per read), ``load(db, ...)`` runs them concurrently, each
in its own session. Code that already holds a session can run the same reads one by one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from asyncdal._checks import check_days, check_limit
from asyncdal._database import Database
from asyncdal._gather import Read
from asyncdal.accounts import UserSummary
from asyncdal.commerce import OrderSummary
from asyncdal.social._profile import ProfileQueries
from asyncdal.social._queries import SocialQueries
from asyncdal.social._results import PlatformStats, PostSummary, TopUser, TrendingHashtag

__all__ = ["SocialDashboard", "UserProfile"]


@dataclass(frozen=True, slots=True)
class SocialDashboard:
    """Seed 002's dashboard: top users, trending hashtags and platform stats."""

    top_users: list[TopUser]
    trending_hashtags: list[TrendingHashtag]
    stats: PlatformStats

    @staticmethod
    def reads(
        *, top: int = 5, days: int = 7, trending: int = 10
    ) -> tuple[Read[list[TopUser]], Read[list[TrendingHashtag]], Read[PlatformStats]]:
        """The dashboard's three reads; arguments are checked here, before any session opens."""
        check_limit(top, name="top")
        check_days(days)
        check_limit(trending, name="trending")
        return (
            lambda s: SocialQueries(s).top_users(limit=top),
            lambda s: SocialQueries(s).trending_hashtags(days=days, limit=trending),
            lambda s: SocialQueries(s).platform_stats(days=days),
        )

    @classmethod
    async def load(
        cls,
        db: Database,
        *,
        top: int = 5,
        days: int = 7,
        trending: int = 10,
        consistent: bool = False,
    ) -> Self:
        """The dashboard, its three reads run concurrently, each in its own session.

        Args:
            db: the database.
            top: how many top users.
            days: the window of trending hashtags and stats, back from the server's ``now()``.
            trending: how many trending hashtags.
            consistent: read all three from one snapshot (see :meth:`Database.gather`), so the
                numbers agree with each other even while posts are being written.
        """
        reads = cls.reads(top=top, days=days, trending=trending)
        users, tags, stats = await db.gather(*reads, consistent=consistent)
        return cls(users, tags, stats)


@dataclass(frozen=True, slots=True)
class UserProfile:
    """A user (with follower count), their recent posts and their recent orders."""

    user: UserSummary
    recent_posts: list[PostSummary]
    recent_orders: list[OrderSummary]

    @staticmethod
    def reads(
        user_id: int, *, posts: int = 10, orders: int = 10
    ) -> tuple[Read[UserSummary], Read[list[PostSummary]], Read[list[OrderSummary]]]:
        """The profile's three reads; arguments are checked before any session opens."""
        check_limit(posts, name="posts")
        check_limit(orders, name="orders")
        return (
            lambda s: ProfileQueries(s).user(user_id),
            lambda s: ProfileQueries(s).recent_posts(user_id, limit=posts),
            lambda s: ProfileQueries(s).recent_orders(user_id, limit=orders),
        )

    @classmethod
    async def load(cls, db: Database, user_id: int, *, posts: int = 10, orders: int = 10) -> Self:
        """A user's profile, its three reads run concurrently.

        Raises :class:`NotFoundError` when the user does not exist (the other reads are
        cancelled).
        """
        user, recent_posts, recent_orders = await db.gather(
            *cls.reads(user_id, posts=posts, orders=orders)
        )
        return cls(user, recent_posts, recent_orders)
