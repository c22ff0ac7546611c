"""Accounts: users by id, username or e-mail."""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, select

from asyncdal._error_mapping import wrap_errors
from asyncdal._errors import NotFoundError
from asyncdal._repository.base import Repository
from asyncdal._repository.values import checker_for
from asyncdal.accounts._models import User

__all__ = ["UserRepository"]

_USERNAME = checker_for(cast(Table, User.__table__).c.username, "username")


class UserRepository(Repository[User]):
    """Users: create and look up by username.

    ``follower_count`` is kept by :class:`asyncdal.social.FollowRepository`, never written here.
    """

    model = User
    filter_fields = frozenset(
        {"id", "username", "email", "display_name", "verified", "follower_count", "created_at"}
    )
    sort_fields = frozenset({"id", "username", "follower_count", "created_at"})
    upsert_keys = (("username",), ("email",))
    readonly_fields = frozenset({"follower_count"})

    async def by_username(self, username: str) -> User:
        """The user called ``username``; :class:`NotFoundError` if there is none."""
        _USERNAME(username)
        with wrap_errors():
            user = await self.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError("User", username)
        return user
