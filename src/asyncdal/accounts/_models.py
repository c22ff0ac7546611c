"""Accounts: the users of the social network and the shop.

Users know nothing of posts or orders: those packages point at ``users``, never the reverse, so
accounts imports neither (``Post.author`` and ``Order.user`` are the relationships).
"""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, false, text
from sqlalchemy.orm import Mapped, mapped_column

from asyncdal._base import Base, CreatedAtMixin, IdMixin, VersionedMixin


class User(IdMixin, CreatedAtMixin, VersionedMixin, Base):
    """A user: unique username and e-mail, and a follower count kept exact by the repository."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("follower_count >= 0", name="follower_count_not_negative"),
        CheckConstraint("char_length(username) > 0", name="username_not_empty"),
        Index(None, "follower_count"),
    )

    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(128), server_default=text("''"))
    verified: Mapped[bool] = mapped_column(Boolean, server_default=false())
    follower_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
