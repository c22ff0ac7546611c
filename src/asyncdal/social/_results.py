"""The typed results of the social read models: small frozen dataclasses, safe to share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

__all__ = [
    "PlatformStats",
    "PostSummary",
    "TopUser",
    "TrendingHashtag",
]


@dataclass(frozen=True, slots=True)
class TopUser:
    """A user ranked by followers (seed 002's "top users")."""

    id: int
    username: str
    display_name: str
    follower_count: int
    verified: bool


@dataclass(frozen=True, slots=True)
class TrendingHashtag:
    """A hashtag and how many posts of the window carry it (seed 002's "trending hashtags")."""

    tag: str
    post_count: int


@dataclass(frozen=True, slots=True)
class PlatformStats:
    """Activity over the last ``days`` days (seed 002's "platform stats").

    Attributes:
        days: the window, counted back from the server's ``now()``.
        total_posts: posts created in the window.
        active_users: distinct authors of those posts.
        total_likes: the sum of their like counts (0 without posts).
        avg_likes: their average like count, an exact decimal rounded to two places
            (``Decimal("0.00")`` without posts).
    """

    days: int
    total_posts: int
    active_users: int
    total_likes: int
    avg_likes: Decimal


@dataclass(frozen=True, slots=True)
class PostSummary:
    """A post with its like count."""

    id: int
    author_id: int
    body: str
    like_count: int
    created_at: datetime
