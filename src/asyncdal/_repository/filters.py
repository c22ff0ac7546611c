"""Filtering and ordering by name, only through a repository's allowlists.

Callers name fields, operators and sort keys as strings (they often come from an HTTP query
string). Every name is checked against the repository's allowlist and every value is converted
to the column's Python type *before* a statement is built, so a bad request becomes an
:class:`InvalidQueryError` that says what was wrong and what is allowed, never a database error.
Values always travel as bound parameters; names only select columns that already exist.

Two ways to say the same filter::

    await users.list({"username__startswith": "ad", "follower_count__gte": 10})
    await users.list([Filter("username", "startswith", "ad"), Filter("follower_count", "gte", 10)])
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Column, ColumnElement

from asyncdal._errors import InvalidQueryError
from asyncdal._repository.kinds import Kind, kind_of
from asyncdal._repository.values import describe, integer_bound

__all__ = [
    "Filter",
    "SortKey",
    "WhereSpec",
    "coercer_for",
    "operators_for",
    "parse_order",
    "parse_where",
]

#: Longest text value accepted in a filter; longer ones cannot match any column anyway.
MAX_TEXT = 4096
#: Most values accepted by ``in`` / ``not_in``.
MAX_IN = 1000

_NULL = ("is_null",)
_EQUALITY = ("eq", "ne", "in", "not_in", "is_null")
_ORDERED = (*_EQUALITY, "lt", "lte", "gt", "gte")
_TEXT = (*_ORDERED, "contains", "icontains", "startswith", "istartswith")
ALL_OPERATORS = frozenset(_TEXT)
# By kind (see kinds.kind_of). JSON has no equality operator in PostgreSQL (jsonb has);
# arrays compare element by element; an unknown type gets equality, judged by the server.
_OPERATORS: dict[Kind, tuple[str, ...]] = {
    "text": _TEXT,
    "int": _ORDERED,
    "float": _ORDERED,
    "decimal": _ORDERED,
    "datetime": _ORDERED,
    "date": _ORDERED,
    "time": _ORDERED,
    "interval": _ORDERED,
    "bool": _EQUALITY,
    "enum": _EQUALITY,
    "uuid": _EQUALITY,
    "bytes": _EQUALITY,
    "jsonb": ("eq", "ne", "is_null"),
    "array": ("eq", "ne", "is_null"),
    "json": _NULL,
    "opaque": _EQUALITY,
}

_INT_TEXT = re.compile(r"[+-]?[0-9]{1,20}")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})

Coercer = Callable[[object], Any]


@dataclass(frozen=True)
class Filter:
    """One condition: ``field`` compared with ``value`` by ``op``.

    Operators: ``is_null`` (value ``True``/``False``) on every field; ``eq``, ``ne`` on every
    field but ``JSON`` (``JSONB`` and arrays have them); ``in``, ``not_in`` on scalars; ``lt``,
    ``lte``, ``gt``, ``gte`` on numbers, dates, times, intervals and text; ``contains``,
    ``icontains``, ``startswith``, ``istartswith`` on text (``%``, ``_`` and the escape
    character in the value match themselves). Values are converted to the column's type (an
    ISO 8601 string for a date, a UUID string...); a column of a type the layer does not know
    takes ``eq``/``ne``/``in``/``not_in`` with the value as given, for the server to judge.
    """

    field: str
    op: str = "eq"
    value: object = None


#: What ``where=`` accepts: ``{"field": v, "field__op": v}`` or an iterable of :class:`Filter`.
WhereSpec = Mapping[str, object] | Iterable[Filter] | None


@dataclass(frozen=True)
class SortKey:
    """One key of an ordering: a column, descending or not."""

    name: str
    column: Column[Any]
    descending: bool

    @property
    def token(self) -> str:
        """The key as written by callers: ``name`` or ``-name``."""
        return f"-{self.name}" if self.descending else self.name


def operators_for(column: Column[Any]) -> tuple[str, ...]:
    """The operators allowed on ``column``, by its kind."""
    return _OPERATORS[kind_of(column.type)]


def _bad(column: Column[Any], value: object, expected: str) -> InvalidQueryError:
    return InvalidQueryError(
        f"invalid value {describe(value)} for field {column.name!r}: expected {expected}"
    )


def _text(column: Column[Any], value: object) -> str:
    if not isinstance(value, str):
        raise _bad(column, value, "a string")
    if len(value) > MAX_TEXT or "\x00" in value:
        raise _bad(column, value, f"a string of at most {MAX_TEXT} characters without NUL")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(column, value, "a string encodable as UTF-8") from None
    return value


def _int(column: Column[Any], value: object) -> int:
    bound = integer_bound(column.type)  # type: ignore[arg-type]
    if isinstance(value, str) and _INT_TEXT.fullmatch(value.strip()):
        value = int(value.strip())
    if not isinstance(value, int) or isinstance(value, bool) or not -bound <= value < bound:
        raise _bad(column, value, f"an integer in [{-bound}, {bound - 1}]")
    return value


def _decimal(column: Column[Any], value: object) -> Decimal:
    if isinstance(value, (int, str, Decimal)) and not isinstance(value, bool):
        try:
            number = Decimal(value.strip() if isinstance(value, str) else value)
        except (InvalidOperation, ValueError):
            number = Decimal("NaN")
        # The value is bound with the column's type, numeric(p, s): a number with more digits
        # before the point than the column holds would overflow in the driver.
        precision, scale = column.type.precision, column.type.scale  # type: ignore[attr-defined]
        digits = 1000 if precision is None else precision - (scale or 0)
        if number.is_finite() and -1000 < number.adjusted() < digits:
            return number
        if number.is_finite() and precision is not None:
            raise _bad(column, value, f"a number with at most {digits} digits before the point")
    raise _bad(column, value, "a finite decimal number")


def _datetime(column: Column[Any], value: object) -> datetime:
    if isinstance(value, str) and len(value) <= 64:
        with contextlib.suppress(ValueError):
            value = datetime.fromisoformat(value.strip())
    if not isinstance(value, datetime):
        raise _bad(column, value, "a datetime or an ISO 8601 string")
    # Naive times are taken as UTC, never as the server's or the machine's local time; the
    # driver sends UTC, so the moment must exist there (datetime.max at -14:00 does not).
    try:
        moment = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    except OverflowError:
        raise _bad(column, value, "a datetime within years 1..9999 in UTC") from None
    # A timestamp without time zone holds UTC wall-clock times here; the driver wants them naive.
    return moment if column.type.timezone else moment.replace(tzinfo=None)  # type: ignore[attr-defined]


def _date(column: Column[Any], value: object) -> date:
    if isinstance(value, str) and len(value) <= 32:
        with contextlib.suppress(ValueError):
            value = date.fromisoformat(value.strip())
    if not isinstance(value, date) or isinstance(value, datetime):
        raise _bad(column, value, "a date or an ISO 8601 date string")
    return value


def _time(column: Column[Any], value: object) -> time:
    if isinstance(value, str) and len(value) <= 32:
        with contextlib.suppress(ValueError):
            value = time.fromisoformat(value.strip())
    if not isinstance(value, time):
        raise _bad(column, value, "a time or an ISO 8601 time string")
    return value


def _interval(column: Column[Any], value: object) -> timedelta:
    if isinstance(value, str) and len(value) <= 32:
        with contextlib.suppress(ValueError):
            value = float(value.strip())
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        with contextlib.suppress(OverflowError):
            value = timedelta(seconds=value)
    if not isinstance(value, timedelta):
        raise _bad(column, value, "a timedelta or a number of seconds")
    return value


def _float(column: Column[Any], value: object) -> float:
    if isinstance(value, str) and len(value) <= 64:
        with contextlib.suppress(ValueError):
            value = float(value.strip())
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _bad(column, value, "a number")
    return float(value)


def _uuid(column: Column[Any], value: object) -> uuid.UUID | str:
    if isinstance(value, str) and len(value) <= 64:
        with contextlib.suppress(ValueError):
            value = uuid.UUID(value.strip())
    if not isinstance(value, uuid.UUID):
        raise _bad(column, value, "a UUID")
    return value if column.type.as_uuid else str(value)  # type: ignore[attr-defined]


def _bytes(column: Column[Any], value: object) -> bytes:
    if isinstance(value, str) and len(value) <= 4 * MAX_TEXT:
        # Text (a query string) carries bytes as URL-safe base64.
        with contextlib.suppress(binascii.Error, ValueError):
            value = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    if not isinstance(value, bytes | bytearray | memoryview):
        raise _bad(column, value, "bytes or URL-safe base64 text")
    return bytes(value)


def _array(column: Column[Any], value: object) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise _bad(column, value, "a list")
    return list(value)


def _as_given(column: Column[Any], value: object) -> object:
    # JSON documents and types the layer does not know: bound as given, judged by the server.
    return value


def _bool(column: Column[Any], value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _bad(column, value, "true or false")


def _enum(column: Column[Any], value: object) -> enum.Enum | str:
    enum_class: type[enum.Enum] | None = column.type.enum_class  # type: ignore[attr-defined]
    if enum_class is None:  # an Enum of plain strings
        labels: list[str] = list(column.type.enums)  # type: ignore[attr-defined]
        if isinstance(value, str) and value in labels:
            return value
        raise _bad(column, value, f"one of {sorted(labels)}")
    if isinstance(value, enum_class):
        return value
    members: dict[str, enum.Enum] = {str(member.value): member for member in enum_class}
    if isinstance(value, str) and value in members:
        return members[value]
    raise _bad(column, value, f"one of {sorted(members)}")


_COERCERS: dict[Kind, Callable[[Column[Any], object], Any]] = {
    "text": _text,
    "int": _int,
    "float": _float,
    "decimal": _decimal,
    "datetime": _datetime,
    "date": _date,
    "time": _time,
    "interval": _interval,
    "bool": _bool,
    "enum": _enum,
    "uuid": _uuid,
    "bytes": _bytes,
    "array": _array,
    "json": _as_given,
    "jsonb": _as_given,
    "opaque": _as_given,
}


def coercer_for(column: Column[Any]) -> Coercer:
    """A function converting a caller's value to ``column``'s Python type, or raising."""
    convert = _COERCERS[kind_of(column.type)]
    return lambda value: convert(column, value)


def _items(where: WhereSpec) -> list[Filter]:
    if where is None:
        return []
    if isinstance(where, Mapping):
        filters = []
        for key, value in where.items():
            if not isinstance(key, str):
                raise InvalidQueryError(f"filter names must be strings, got {key!r}")
            field, sep, op = key.rpartition("__")
            filters.append(Filter(field, op, value) if sep else Filter(key, "eq", value))
        return filters
    if isinstance(where, (str, bytes)):  # type: ignore[unreachable]
        raise InvalidQueryError("where= takes a mapping or Filter objects, not a string")
    filters = list(where)
    for item in filters:
        if not isinstance(item, Filter):
            raise InvalidQueryError(f"where= items must be Filter objects, got {item!r}")
    return filters


def _condition(column: Column[Any], op: str, value: object) -> ColumnElement[bool]:
    if op == "is_null":
        return column.is_(None) if _bool(column, value) else column.is_not(None)
    convert = coercer_for(column)
    if op in {"in", "not_in"}:
        if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, set, frozenset)):
            raise _bad(column, value, f"a list of values for {op!r}")
        if len(value) > MAX_IN:
            raise _bad(column, value, f"at most {MAX_IN} values for {op!r}")
        values = [convert(v) for v in value]
        return column.in_(values) if op == "in" else column.not_in(values)
    converted = convert(value)
    # autoescape=True makes %, _ and the escape character in the value match literally.
    builders: dict[str, Callable[[], ColumnElement[bool]]] = {
        "eq": lambda: column == converted,
        "ne": lambda: column != converted,
        "lt": lambda: column < converted,
        "lte": lambda: column <= converted,
        "gt": lambda: column > converted,
        "gte": lambda: column >= converted,
        "contains": lambda: column.contains(converted, autoescape=True),
        "icontains": lambda: column.icontains(converted, autoescape=True),
        "startswith": lambda: column.startswith(converted, autoescape=True),
        "istartswith": lambda: column.istartswith(converted, autoescape=True),
    }
    return builders[op]()


def parse_where(
    where: WhereSpec, columns: Mapping[str, Column[Any]], allowed: frozenset[str]
) -> list[ColumnElement[bool]]:
    """Validate ``where`` against the ``allowed`` field names and build its conditions."""
    conditions = []
    for item in _items(where):
        if not isinstance(item.field, str) or item.field not in allowed:
            raise InvalidQueryError(
                f"unknown filter field {item.field!r}; allowed fields: {sorted(allowed)}"
            )
        column = columns[item.field]
        allowed_ops = operators_for(column)
        if item.op not in allowed_ops:
            raise InvalidQueryError(
                f"unknown operator {item.op!r} for field {item.field!r}; "
                f"allowed operators: {list(allowed_ops)}"
            )
        conditions.append(_condition(column, item.op, item.value))
    return conditions


def parse_order(
    order_by: str | Sequence[str] | None,
    columns: Mapping[str, Column[Any]],
    allowed: frozenset[str],
    tiebreakers: Sequence[str],
) -> list[SortKey]:
    """Validate sort keys (``name`` or ``-name`` for descending) against ``allowed``.

    The ``tiebreakers`` (the primary key columns) are appended when missing, in the direction
    of the first key, so the order is total: keyset pagination needs that.
    """
    tokens = [order_by] if isinstance(order_by, str) else list(order_by or [])
    keys: list[SortKey] = []
    for token in tokens:
        if not isinstance(token, str):
            raise InvalidQueryError(f"sort keys must be strings, got {token!r}")
        descending = token.startswith("-")
        name = token[1:] if token[:1] in {"-", "+"} else token
        if name not in allowed:
            raise InvalidQueryError(
                f"unknown sort key {token!r}; allowed sort keys: {sorted(allowed)} "
                "(prefix '-' for descending)"
            )
        if any(key.name == name for key in keys):
            raise InvalidQueryError(f"sort key {name!r} given twice")
        keys.append(SortKey(name, columns[name], descending))
    first_desc = keys[0].descending if keys else False
    for name in tiebreakers:
        if not any(key.name == name for key in keys):
            keys.append(SortKey(name, columns[name], first_desc))
    return keys
