"""Pages of results: by offset, or by keyset with an opaque cursor.

A keyset cursor records the sort keys of the last row of a page. The next page starts strictly
after that position, so rows inserted meanwhile neither repeat nor push rows off the page, which
offset pagination cannot promise. The cursor is URL-safe base64 of a small JSON document; it is
opaque to callers and validated on the way back: a cursor that is not ours, was made for another
ordering, or carries values of the wrong type is an :class:`InvalidQueryError`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, and_, or_, tuple_

from asyncdal._errors import InvalidQueryError
from asyncdal._repository.filters import SortKey, coercer_for

__all__ = ["Page", "decode_cursor", "encode_cursor", "keyset_condition"]

T = TypeVar("T")

#: Longest cursor accepted; a real one for a few keys is far shorter.
MAX_CURSOR = 2048


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results.

    Attributes:
        items: the rows of this page.
        next_cursor: pass as ``cursor=`` to get the next page (keyset pagination); ``None`` on
            the last page.
        next_offset: pass as ``offset=`` to get the next page (offset pagination); ``None``
            on the last page or when paginating by cursor.
        limit: the page size asked for.

    A page is iterable and has a length, so ``for user in await users.list()`` works.
    """

    items: list[T]
    next_cursor: str | None = None
    next_offset: int | None = None
    limit: int = field(default=0)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def has_next(self) -> bool:
        """Whether another page follows this one."""
        return self.next_cursor is not None or self.next_offset is not None


def _plain(value: object) -> object:
    """A sort key's value as JSON; the column's filter coercion reads it back."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return base64.urlsafe_b64encode(value).decode()
    return value


def encode_cursor(keys: Sequence[SortKey], row: object) -> str:
    """The cursor pointing just after ``row`` in the order given by ``keys``."""
    document = {
        "o": [key.token for key in keys],
        "k": [_plain(getattr(row, key.column.key)) for key in keys],
    }
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: object, keys: Sequence[SortKey]) -> list[Any]:
    """The key values stored in ``cursor``, converted to the columns' types."""
    if not isinstance(cursor, str) or not 0 < len(cursor) <= MAX_CURSOR:
        raise InvalidQueryError("malformed cursor: expected a cursor string from a previous page")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InvalidQueryError("malformed cursor: not a cursor from a previous page") from None
    order = [key.token for key in keys]
    if not isinstance(document, dict) or set(document) != {"o", "k"}:
        raise InvalidQueryError("malformed cursor: not a cursor from a previous page")
    if document["o"] != order:
        raise InvalidQueryError(
            f"cursor does not match the ordering: it was made for {document['o']!r}, "
            f"this query orders by {order!r}"
        )
    values = document["k"]
    if not isinstance(values, list) or len(values) != len(keys):
        raise InvalidQueryError("malformed cursor: wrong number of key values")
    try:
        return [coercer_for(key.column)(value) for key, value in zip(keys, values, strict=True)]
    except InvalidQueryError as exc:
        raise InvalidQueryError(f"malformed cursor: {exc}") from None


def keyset_condition(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys``."""
    if all(key.descending == keys[0].descending for key in keys):
        # One direction: a row comparison, which PostgreSQL can serve from a composite index.
        left = tuple_(*(key.column for key in keys))
        # A plain tuple on the right is bound element by element with the columns' types.
        right = tuple(values)
        return left < right if keys[0].descending else left > right
    # Mixed directions: (k1 after v1) OR (k1 = v1 AND k2 after v2) OR ...
    branches = []
    for i, key in enumerate(keys):
        equal = [keys[j].column == values[j] for j in range(i)]
        after = key.column < values[i] if key.descending else key.column > values[i]
        branches.append(and_(*equal, after))
    return or_(*branches)
