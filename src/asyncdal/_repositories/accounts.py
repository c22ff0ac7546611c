"""Accounts: users, and following (which keeps ``follower_count`` exact)."""

from __future__ import annotations

from sqlalchemy import select

from asyncdal._error_mapping import wrap_errors
from asyncdal._errors import CheckViolationError, DuplicateError, NotFoundError
from asyncdal._models import Follow, User
from asyncdal._repositories.base import Repository
from asyncdal._repositories.counters import link, unlink

__all__ = ["UserRepository"]


class UserRepository(Repository[User]):
    """Users: create, look up by username, follow and unfollow.

    ``follow``/``unfollow`` change the follow row and the followee's ``follower_count`` in one
    statement, so the counter always equals the number of follow rows, whatever runs
    concurrently. Objects already loaded in the session keep their old ``follower_count``:
    ``await session.refresh(user)`` to see the new one.
    """

    model = User
    filter_fields = frozenset(
        {"id", "username", "email", "display_name", "verified", "follower_count", "created_at"}
    )
    sort_fields = frozenset({"id", "username", "follower_count", "created_at"})
    upsert_keys = (("username",), ("email",))
    readonly_fields = frozenset({"follower_count"})

    async def create(self, *, username: str, email: str, display_name: str = "") -> User:
        """Insert a user; :class:`DuplicateError` if the username or e-mail is taken."""
        return await self.add(User(username=username, email=email, display_name=display_name))

    async def by_username(self, username: str) -> User:
        """The user called ``username``; :class:`NotFoundError` if there is none."""
        with wrap_errors():
            user = await self.session.scalar(select(User).where(User.username == username))
        if user is None:
            raise NotFoundError("User", username)
        return user

    async def follow(self, follower_id: int, followee_id: int, *, exist_ok: bool = False) -> bool:
        """Make ``follower_id`` follow ``followee_id``; ``True`` when a follow was created.

        Following oneself is a :class:`CheckViolationError`; an unknown user a
        :class:`ForeignKeyError`. Following again is a :class:`DuplicateError`, unless
        ``exist_ok`` is true: then it returns ``False`` and changes nothing.
        """
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
        return await unlink(
            self.session,
            Follow,
            [Follow.follower_id == follower_id, Follow.followee_id == followee_id],
            target=Follow.followee_id,
            counter=User.follower_count,
        )
