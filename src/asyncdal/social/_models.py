"""Social: follows, posts, hashtags and likes (the tables of seed 002)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from asyncdal._base import Base, CreatedAtMixin, IdMixin

if TYPE_CHECKING:
    from asyncdal.accounts import User


class Follow(Base):
    """``follower`` follows ``followee``; each pair at most once, never oneself."""

    __tablename__ = "follows"
    __table_args__ = (
        CheckConstraint("follower_id <> followee_id", name="not_self"),
        Index(None, "followee_id"),
    )

    follower_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    followee_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    follower: Mapped[User] = relationship(foreign_keys=[follower_id], lazy="raise")
    followee: Mapped[User] = relationship(foreign_keys=[followee_id], lazy="raise")


class Post(IdMixin, CreatedAtMixin, Base):
    """A post by a user, with a like count kept exact by the repository."""

    __tablename__ = "posts"
    __table_args__ = (
        CheckConstraint("like_count >= 0", name="like_count_not_negative"),
        CheckConstraint("char_length(body) > 0", name="body_not_empty"),
        Index(None, "created_at"),
        Index(None, "author_id", "created_at"),
    )

    author_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    like_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))

    author: Mapped[User] = relationship(lazy="raise")
    hashtags: Mapped[list[Hashtag]] = relationship(
        secondary="post_hashtags", lazy="raise", viewonly=True, order_by="Hashtag.tag"
    )


class Hashtag(IdMixin, Base):
    """A hashtag, stored lower-case and without the ``#``."""

    __tablename__ = "hashtags"
    __table_args__ = (
        CheckConstraint("tag = lower(tag) AND char_length(tag) > 0", name="tag_lower_not_empty"),
    )

    tag: Mapped[str] = mapped_column(String(100), unique=True)


class PostHashtag(Base):
    """Links a post to a hashtag it carries."""

    __tablename__ = "post_hashtags"
    __table_args__ = (Index(None, "hashtag_id"),)

    post_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    hashtag_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("hashtags.id", ondelete="CASCADE"), primary_key=True
    )

    post: Mapped[Post] = relationship(lazy="raise")
    hashtag: Mapped[Hashtag] = relationship(lazy="raise")


class Like(Base):
    """``user`` likes ``post``; each pair at most once."""

    __tablename__ = "likes"
    __table_args__ = (Index(None, "post_id"),)

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    post_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    user: Mapped[User] = relationship(lazy="raise")
    post: Mapped[Post] = relationship(lazy="raise")
