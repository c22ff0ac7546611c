"""The kitchen-sink models: every column type the layer must handle, and one it does not know."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Double,
    Enum,
    Float,
    ForeignKey,
    Identity,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    SmallInteger,
    String,
    Text,
    Time,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column

from asyncdal import Base, Repository

__all__ = ["Color", "Gadget", "GadgetRepository", "Pairing", "PairingRepository", "Slug"]


class Color(enum.Enum):
    """A native PostgreSQL enum (``ks_color``)."""

    red = "red"
    green = "green"
    blue = "blue"


class Slug(TypeDecorator[str]):
    """A user type: stored lower-case. The layer cannot know what it accepts."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return value.lower() if isinstance(value, str) else value


class Gadget(Base):
    """One column of every type; the primary key is a UUID named ``ref``."""

    __tablename__ = "ks_gadgets"
    __table_args__ = (UniqueConstraint("code"),)

    ref: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    serial: Mapped[int] = mapped_column(BigInteger, Identity())
    small: Mapped[int] = mapped_column(SmallInteger)
    count: Mapped[int] = mapped_column(Integer)
    big: Mapped[int] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    ratio: Mapped[float] = mapped_column(Float)
    weight: Mapped[float] = mapped_column(Double)
    active: Mapped[bool] = mapped_column(Boolean)
    code: Mapped[str] = mapped_column(String(12))
    notes: Mapped[str | None] = mapped_column(Text, nullable=True)
    day: Mapped[date] = mapped_column(Date)
    opens: Mapped[time] = mapped_column(Time)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    local_at: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    span: Mapped[timedelta] = mapped_column(Interval)
    doc: Mapped[Any] = mapped_column(JSON, nullable=True)
    docb: Mapped[Any] = mapped_column(JSONB, nullable=True)
    tags: Mapped[list[str] | None] = mapped_column(ARRAY(String(20)), nullable=True)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    color: Mapped[Color] = mapped_column(Enum(Color, name="ks_color"))
    size: Mapped[str] = mapped_column(
        Enum("s", "m", "l", name="ks_size", native_enum=False, create_constraint=True)
    )
    address: Mapped[str | None] = mapped_column(INET, nullable=True)
    slug: Mapped[str | None] = mapped_column(Slug, nullable=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


#: Every column a filter may name, and every NOT NULL one a page may sort by.
GADGET_FIELDS = frozenset(c for c in Gadget.__table__.columns.keys())  # noqa: SIM118
SORTABLE = frozenset(c.key for c in Gadget.__table__.columns if not c.nullable) - {
    "doc",
    "docb",
}


class GadgetRepository(Repository[Gadget]):
    """Every verb over every type."""

    model = Gadget
    filter_fields = GADGET_FIELDS
    sort_fields = SORTABLE
    upsert_keys = (("code",),)


class Pairing(Base):
    """A composite primary key of two types."""

    __tablename__ = "ks_pairings"

    left: Mapped[int] = mapped_column(Integer, primary_key=True)
    right: Mapped[str] = mapped_column(String(10), primary_key=True)
    score: Mapped[float] = mapped_column(Double)


class PairingRepository(Repository[Pairing]):
    """A repository over a composite key."""

    model = Pairing
    filter_fields = frozenset({"left", "right", "score"})
    sort_fields = frozenset({"left", "right", "score"})
    upsert_keys = (("left", "right"),)
