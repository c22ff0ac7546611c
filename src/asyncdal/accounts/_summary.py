"""A user as lists and profiles show it, and the one query shape that reads it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select

from asyncdal.accounts._models import User

__all__ = ["UserSummary", "user_columns"]


@dataclass(frozen=True, slots=True)
class UserSummary:
    """A user as lists and profiles show it (no e-mail address: summaries get displayed)."""

    id: int
    username: str
    display_name: str
    follower_count: int
    verified: bool
    created_at: datetime


def user_columns() -> Select[int, str, str, int, bool, datetime]:
    """The columns of a :class:`UserSummary`, in field order (lists and profiles share it)."""
    return select(
        User.id,
        User.username,
        User.display_name,
        User.follower_count,
        User.verified,
        User.created_at,
    )
