"""Accounts: users, and following (which keeps ``follower_count`` exact)."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from asyncdal._error_mapping import wrap_errors
from asyncdal._errors import CheckViolationError, DuplicateError, NotFoundError
from asyncdal._models import Follow, User
from asyncdal._repositories.base import Repository

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
        # INSERT ... ON CONFLICT DO NOTHING RETURNING yields a row only if this statement
        # inserted it; the counter is bumped for exactly those rows, in the same statement.
        inserted = (
            insert(Follow)
            .values(follower_id=follower_id, followee_id=followee_id)
            .on_conflict_do_nothing()
            .returning(Follow.followee_id)
            .cte("inserted")
        )
        bump = (
            update(User)
            .where(User.id.in_(select(inserted.c.followee_id)))
            .values(follower_count=User.follower_count + 1)
            .returning(User.id)
            .cte("bumped")
        )
        stmt = select(func.count()).select_from(inserted).add_cte(bump)
        with wrap_errors():
            created = bool(await self.session.scalar(stmt))
        if not created and not exist_ok:
            raise DuplicateError(
                f"user {follower_id} already follows user {followee_id}", constraint="pk_follows"
            )
        return created

    async def unfollow(self, follower_id: int, followee_id: int) -> bool:
        """Stop ``follower_id`` following ``followee_id``; ``False`` if it did not follow."""
        removed = (
            delete(Follow)
            .where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
            .returning(Follow.followee_id)
            .cte("removed")
        )
        drop = (
            update(User)
            .where(User.id.in_(select(removed.c.followee_id)))
            .values(follower_count=User.follower_count - 1)
            .returning(User.id)
            .cte("dropped")
        )
        stmt = select(func.count()).select_from(removed).add_cte(drop)
        with wrap_errors():
            return bool(await self.session.scalar(stmt))
