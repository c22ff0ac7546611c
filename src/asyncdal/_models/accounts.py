"""Accounts: the users of the social network and the shop."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, Index, Integer, String, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from asyncdal._models.base import Base, CreatedAtMixin, IdMixin

if TYPE_CHECKING:
    from asyncdal._models.commerce import Order
    from asyncdal._models.social import Post


class User(IdMixin, CreatedAtMixin, Base):
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

    posts: Mapped[list[Post]] = relationship(back_populates="author", lazy="raise")
    orders: Mapped[list[Order]] = relationship(back_populates="user", lazy="raise")
