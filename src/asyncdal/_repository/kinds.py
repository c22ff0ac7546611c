"""What kind of value a column holds: the one place that reads a column's SQLAlchemy type.

The value checks (``values``), the filters' operators and coercions (``filters``) and the
cursors of keyset pages (``pagination``) all ask :func:`kind_of`, so a type is known to all of
them or to none. A type the layer knows nothing about (a user ``TypeDecorator``, ``INET``, a
PostGIS geometry) is ``"opaque"``: its values go to the server unchecked and unconverted,
and the server's error, if any, is mapped like any other.

Order matters below: SQLAlchemy's ``Interval`` is a ``TypeDecorator``, ``Enum`` is a
``String``, 2.0's ``Float`` is a ``Numeric`` (2.1's is not), ``Text``/``Unicode`` are ``String``.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Enum,
    Float,
    Integer,
    Interval,
    LargeBinary,
    Numeric,
    String,
    Time,
    TypeDecorator,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import ARRAY, TypeEngine

__all__ = ["Kind", "kind_of"]

Kind = Literal[
    "array",
    "bool",
    "bytes",
    "date",
    "datetime",
    "decimal",
    "enum",
    "float",
    "int",
    "interval",
    "json",
    "jsonb",
    "opaque",
    "text",
    "time",
    "uuid",
]

_ORDER: tuple[tuple[type[TypeEngine[Any]], Kind], ...] = (
    # SQLAlchemy's own Interval is a TypeDecorator (over PostgreSQL's INTERVAL): known.
    (Interval, "interval"),
    # Any other TypeDecorator converts the caller's values itself: its business, not ours.
    (TypeDecorator, "opaque"),
    (Boolean, "bool"),
    (Enum, "enum"),
    (Integer, "int"),
    (Float, "float"),
    (Numeric, "decimal"),
    (DateTime, "datetime"),
    (Date, "date"),
    (Time, "time"),
    (Uuid, "uuid"),
    (String, "text"),
    (LargeBinary, "bytes"),
    (JSONB, "jsonb"),
    (JSON, "json"),
    (ARRAY, "array"),
)


def kind_of(type_: TypeEngine[Any]) -> Kind:
    """The kind of values a column of ``type_`` holds; ``"opaque"`` when unknown."""
    for cls, kind in _ORDER:
        if isinstance(type_, cls):
            return kind
    return "opaque"
