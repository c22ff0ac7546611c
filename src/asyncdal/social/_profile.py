"""A user's profile as a read model: the user, their recent posts, their recent orders."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from asyncdal._checks import check_limit
from asyncdal._error_mapping import wrap_errors
from asyncdal._errors import NotFoundError
from asyncdal.accounts import User, UserSummary, user_columns
from asyncdal.commerce import Order, OrderSummary, order_columns
from asyncdal.social._models import Post
from asyncdal.social._results import PostSummary

__all__ = ["ProfileQueries"]


class ProfileQueries:
    """Read-only queries about one user over one session."""

    def __init__(self, session: AsyncSession) -> None:
        """Query through ``session``; the caller owns it (and its transaction)."""
        self.session = session

    async def user(self, user_id: int) -> UserSummary:
        """The user ``user_id`` (with its follower count), or :class:`NotFoundError`."""
        with wrap_errors():
            row = (await self.session.execute(user_columns().where(User.id == user_id))).first()
        if row is None:
            raise NotFoundError("User", user_id)
        return UserSummary(*row)

    async def recent_posts(self, user_id: int, *, limit: int = 10) -> list[PostSummary]:
        """The user's ``limit`` newest posts (index ``posts (author_id, created_at)``)."""
        stmt = (
            select(Post.id, Post.author_id, Post.body, Post.like_count, Post.created_at)
            .where(Post.author_id == user_id)
            .order_by(Post.created_at.desc(), Post.id.desc())
            .limit(check_limit(limit))
        )
        with wrap_errors():
            rows = (await self.session.execute(stmt)).all()
        return [PostSummary(*row) for row in rows]

    async def recent_orders(self, user_id: int, *, limit: int = 10) -> list[OrderSummary]:
        """The user's ``limit`` newest orders (index ``orders (user_id, created_at)``)."""
        stmt = (
            order_columns()
            .where(Order.user_id == user_id)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(check_limit(limit))
        )
        with wrap_errors():
            rows = (await self.session.execute(stmt)).all()
        return [OrderSummary(*row) for row in rows]
