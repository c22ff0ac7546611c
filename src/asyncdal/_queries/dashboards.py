"""The seed dashboards, each a fan-out of read-model reads through :meth:`Database.gather`.

Each dashboard's reads are built in one place and run two ways: concurrently, one session per
read (``social_dashboard``...), or one after another on one session (the ``*_sequential``
twins, for comparisons and for callers that already hold a session).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from asyncdal._checks import check_days, check_limit
from asyncdal._queries.profile import ProfileQueries
from asyncdal._queries.results import (
    OrderSummary,
    PlatformStats,
    PostSummary,
    ProductSummary,
    TopUser,
    TrendingHashtag,
    UserSummary,
)
from asyncdal._queries.social import SocialQueries
from asyncdal._queries.storefront import StorefrontQueries

if TYPE_CHECKING:
    from asyncdal._database import Database

__all__ = [
    "SocialDashboard",
    "StorefrontOverview",
    "UserProfile",
    "social_dashboard",
    "social_dashboard_sequential",
    "storefront_overview",
    "storefront_overview_sequential",
    "user_profile",
    "user_profile_sequential",
]

T = TypeVar("T")
_Read = Callable[[AsyncSession], Awaitable[T]]


@dataclass(frozen=True, slots=True)
class SocialDashboard:
    """Seed 002's dashboard: top users, trending hashtags and platform stats."""

    top_users: list[TopUser]
    trending_hashtags: list[TrendingHashtag]
    stats: PlatformStats


@dataclass(frozen=True, slots=True)
class StorefrontOverview:
    """Seed 000's ``/all/``: the first page of users, orders and products."""

    users: list[UserSummary]
    orders: list[OrderSummary]
    products: list[ProductSummary]


@dataclass(frozen=True, slots=True)
class UserProfile:
    """A user (with follower count), their recent posts and their recent orders."""

    user: UserSummary
    recent_posts: list[PostSummary]
    recent_orders: list[OrderSummary]


def _social_reads(
    top: int, days: int, trending: int
) -> tuple[_Read[list[TopUser]], _Read[list[TrendingHashtag]], _Read[PlatformStats]]:
    # Checked here, before any session is opened, so a bad argument costs no connection.
    check_limit(top, name="top")
    check_days(days)
    check_limit(trending, name="trending")
    return (
        lambda s: SocialQueries(s).top_users(limit=top),
        lambda s: SocialQueries(s).trending_hashtags(days=days, limit=trending),
        lambda s: SocialQueries(s).platform_stats(days=days),
    )


def _storefront_reads(
    limit: int,
) -> tuple[_Read[list[UserSummary]], _Read[list[OrderSummary]], _Read[list[ProductSummary]]]:
    check_limit(limit)
    return (
        lambda s: StorefrontQueries(s).users(limit=limit),
        lambda s: StorefrontQueries(s).orders(limit=limit),
        lambda s: StorefrontQueries(s).products(limit=limit),
    )


def _profile_reads(
    user_id: int, posts: int, orders: int
) -> tuple[_Read[UserSummary], _Read[list[PostSummary]], _Read[list[OrderSummary]]]:
    check_limit(posts, name="posts")
    check_limit(orders, name="orders")
    return (
        lambda s: ProfileQueries(s).user(user_id),
        lambda s: ProfileQueries(s).recent_posts(user_id, limit=posts),
        lambda s: ProfileQueries(s).recent_orders(user_id, limit=orders),
    )


async def social_dashboard(
    db: Database, *, top: int = 5, days: int = 7, trending: int = 10, consistent: bool = False
) -> SocialDashboard:
    """Seed 002's dashboard, its three reads run concurrently, each in its own session.

    Args:
        db: the database.
        top: how many top users.
        days: the window of trending hashtags and stats, back from the server's ``now()``.
        trending: how many trending hashtags.
        consistent: read all three from one snapshot (see :meth:`Database.gather`), so the
            numbers agree with each other even while posts are being written.
    """
    users, tags, stats = await db.gather(*_social_reads(top, days, trending), consistent=consistent)
    return SocialDashboard(users, tags, stats)


async def social_dashboard_sequential(
    session: AsyncSession, *, top: int = 5, days: int = 7, trending: int = 10
) -> SocialDashboard:
    """The dashboard of :func:`social_dashboard`, its reads one after another on ``session``."""
    users, tags, stats = _social_reads(top, days, trending)
    return SocialDashboard(await users(session), await tags(session), await stats(session))


async def storefront_overview(db: Database, *, limit: int = 50) -> StorefrontOverview:
    """Seed 000's ``/all/``: users, orders and products (``limit`` each), read concurrently."""
    users, orders, products = await db.gather(*_storefront_reads(limit))
    return StorefrontOverview(users, orders, products)


async def storefront_overview_sequential(
    session: AsyncSession, *, limit: int = 50
) -> StorefrontOverview:
    """The same overview as :func:`storefront_overview`, read one after another on ``session``."""
    users, orders, products = _storefront_reads(limit)
    return StorefrontOverview(await users(session), await orders(session), await products(session))


async def user_profile(
    db: Database, user_id: int, *, posts: int = 10, orders: int = 10
) -> UserProfile:
    """A user's profile, its three reads run concurrently.

    Raises :class:`NotFoundError` when the user does not exist (the other reads are cancelled).
    """
    user, recent_posts, recent_orders = await db.gather(*_profile_reads(user_id, posts, orders))
    return UserProfile(user, recent_posts, recent_orders)


async def user_profile_sequential(
    session: AsyncSession, user_id: int, *, posts: int = 10, orders: int = 10
) -> UserProfile:
    """The same profile as :func:`user_profile`, read one after another on ``session``."""
    user, recent_posts, recent_orders = _profile_reads(user_id, posts, orders)
    return UserProfile(
        await user(session), await recent_posts(session), await recent_orders(session)
    )
