"""Values a repository writes or looks up, checked against their column before any SQL runs.

The database refuses most bad values too, but late and in its own words: a raw driver error
("invalid byte sequence", "value too long", "numeric field overflow"), asyncpg's own exceptions
on the COPY path, or a bind-parameter error for a wrong Python type. Here every value is checked
against the model's column type (length of ``String(n)``, precision of ``Numeric(p, s)``, range
of each integer type, NUL bytes, UTF-8, booleans, time zones, dates that are not datetimes...)
and a bad one raises :class:`InvalidQueryError` (a ``ValueError``) or, for a wrong Python type,
:class:`InvalidTypeError` (also a ``TypeError``), naming the field. Nothing is sent, so nothing
is written.

On ``add_many``'s COPY path (``server_judges``) the checks the server makes anyway (length,
digits before the point, NOT NULL) are left to it: its error names the row and the column
(see ``bulk``). Everything it would accept silently (a float for money, NaN, digits past the
scale) or the driver could not encode (a wrong type, NUL, a lone surrogate, an integer out of
range) is still checked here.

Only what is certainly wrong is refused: a column of a type the layer does not know (see
``kinds``), and the contents of JSON, are left to the server, whose error is mapped like any
other. Values are checked, not converted: what passes is sent exactly as given.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Integer,
    SmallInteger,
    Table,
    any_,
    bindparam,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeEngine

from asyncdal._errors import InvalidQueryError, InvalidTypeError
from asyncdal._repository.kinds import kind_of

__all__ = [
    "MAX_KEYS",
    "Check",
    "accepts_anything",
    "any_of",
    "check_keys",
    "checker_for",
    "describe",
    "integer_bound",
    "key_column",
]

#: Check one value: returns nothing, raises when the value cannot go to the column.
Check = Callable[[object], None]

#: The most keys one ``get_many``/lookup accepts: bigger lists are a client error, not a query.
MAX_KEYS = 100_000

_INT_BOUNDS = ((SmallInteger, 2**15), (BigInteger, 2**63), (Integer, 2**31))


def integer_bound(type_: Integer) -> int:
    """``2**(bits - 1)`` of an integer column type: its values lie in ``[-bound, bound)``."""
    return next(b for t, b in _INT_BOUNDS if isinstance(type_, t))


def describe(value: object) -> str:
    """What ``value`` is (its type, and its length if it has one), never what it holds.

    Error messages tell what was wrong, not whose data it was: they reach logs and HTTP
    bodies, where an echoed e-mail address (or a megabyte of input) does not belong.
    """
    kind = type(value).__name__
    if value is None or isinstance(value, bool | int | float):
        return "None" if value is None else kind
    try:
        size = len(value)  # type: ignore[arg-type]
    except Exception:  # no length, or a hostile __len__
        return kind
    return f"{kind} of length {size}"


def _wrong_type(name: str, value: object, expected: str) -> InvalidTypeError:
    return InvalidTypeError(f"{name}: expected {expected}, got {describe(value)}")


def _bad_value(name: str, value: object, expected: str) -> InvalidQueryError:
    return InvalidQueryError(f"{name}: expected {expected}, got {describe(value)}")


def _text(name: str, length: int | None) -> Check:
    limit = f"at most {length} characters, " if length else ""

    def check(value: object) -> None:
        if type(value) is not str and not isinstance(value, str):
            raise _wrong_type(name, value, "a string")
        if length is not None and len(value) > length:
            raise _bad_value(name, value, f"a string of {limit}got {len(value)}")
        if "\x00" in value:
            raise _bad_value(name, value, "a string without NUL characters")
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates
                raise _bad_value(name, value, "a string encodable as UTF-8") from None

    return check


def _integer(name: str, bound: int) -> Check:
    low, high = -bound, bound - 1

    def check(value: object) -> None:
        # bool is an int subclass, but True is a mistake here, not 1.
        if type(value) is not int and (not isinstance(value, int) or isinstance(value, bool)):
            raise _wrong_type(name, value, "an integer")
        if not low <= value <= high:
            raise _bad_value(name, value, f"an integer from {low} to {high}")

    return check


def _numeric(name: str, digits: int | None, scale: int | None) -> Check:
    """Decimals (or ints) with at most ``digits`` before the point and ``scale`` after."""
    if digits is None:
        shape = f"at most {scale} digits after the point"
    else:
        shape = f"at most {digits} digits before the point" + (
            "" if scale is None else f" and {scale} after"
        )

    def check(value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            # Floats are refused on purpose: money in binary floating point is not exact.
            raise _wrong_type(name, value, "a Decimal or an int (not a float)")
        number = value if isinstance(value, Decimal) else Decimal(value)
        if not number.is_finite():
            # numeric(p, s) stores NaN without a word, and money is never NaN.
            raise _bad_value(name, value, "a finite number")
        # adjusted() is the exponent of the leading digit: 123.4 -> 2, so 3 digits before.
        if digits is not None and number and number.adjusted() >= digits:
            raise _bad_value(name, value, f"a number with {shape}")
        exponent = number.as_tuple().exponent
        if scale is not None and isinstance(exponent, int) and -exponent > scale:
            # PostgreSQL would round it silently: refuse rather than lose the digits.
            raise _bad_value(name, value, f"a number with {shape}")

    return check


def _timestamp(name: str, timezone: bool) -> Check:
    def check(value: object) -> None:
        if not isinstance(value, datetime):
            raise _wrong_type(name, value, "a datetime")
        if value.tzinfo is None:
            return
        if not timezone:
            # timestamp without time zone: which wall clock an aware value means is a guess.
            raise _bad_value(name, value, "a naive datetime (the column has no time zone)")
        try:
            value.astimezone(UTC)  # the driver sends UTC: it must exist
        except OverflowError:
            raise _bad_value(name, value, "a datetime within years 1..9999 in UTC") from None

    return check


def _date(name: str) -> Check:
    def check(value: object) -> None:
        # A datetime is a date too, and would lose its time silently.
        if not isinstance(value, date) or isinstance(value, datetime):
            raise _wrong_type(name, value, "a date (not a datetime)")

    return check


def _of_type(name: str, types: type | tuple[type, ...], expected: str) -> Check:
    def check(value: object) -> None:
        if not isinstance(value, types) or isinstance(value, bool):
            raise _wrong_type(name, value, expected)

    return check


def _float(name: str) -> Check:
    # NaN and infinities are valid float8 values; Decimal would lose digits silently.
    return _of_type(name, (int, float), "a float or an int")


def _uuid(name: str, as_uuid: bool) -> Check:
    if as_uuid:
        return _of_type(name, uuid.UUID, "a uuid.UUID")

    def check(value: object) -> None:
        if not isinstance(value, str):
            raise _wrong_type(name, value, "a UUID string")
        try:
            uuid.UUID(value)
        except ValueError:
            raise _bad_value(name, value, "a UUID string") from None

    return check


def _boolean(name: str) -> Check:
    def check(value: object) -> None:
        if not isinstance(value, bool):
            raise _wrong_type(name, value, "True or False")

    return check


def _enumerated(name: str, enum_class: type[enum.Enum] | None, labels: Iterable[str]) -> Check:
    members = {member.value for member in enum_class} if enum_class else set(labels)

    def check(value: object) -> None:
        if enum_class is not None and isinstance(value, enum_class):
            return
        if isinstance(value, str) and value in members:
            return
        raise _bad_value(name, value, f"one of {sorted(map(str, members))}")

    return check


def _array(name: str, item: Check | None) -> Check:
    def check(value: object) -> None:
        if not isinstance(value, list | tuple):
            raise _wrong_type(name, value, "a list")
        if item is None:
            return
        stack: list[object] = list(value)
        while stack:
            element = stack.pop()
            if isinstance(element, list | tuple):  # a multi-dimensional array
                stack.extend(element)
            elif element is not None:
                item(element)

    return check


def _type_check(name: str, type_: TypeEngine[Any], server_judges: bool) -> Check | None:
    """The check of a non-NULL value of ``type_``; ``None``: anything goes to the server.

    ``server_judges``: leave to the server what it refuses by itself, naming the row and the
    column (add_many's COPY, see ``bulk``): the length of text and the digits before a
    numeric's point. What it would accept silently or the driver could not encode is still
    checked.
    """
    match kind_of(type_):
        case "bool":
            return _boolean(name)
        case "enum":
            return _enumerated(name, type_.enum_class, type_.enums)  # type: ignore[attr-defined]
        case "int":
            # asyncpg encodes integers itself, and refuses an overflow with a bare error.
            return _integer(name, integer_bound(cast(Integer, type_)))
        case "float":
            return _float(name)
        case "decimal":
            precision, scale = type_.precision, type_.scale  # type: ignore[attr-defined]
            # Without a precision the column is plain NUMERIC: any scale is kept as given.
            digits = None if precision is None else precision - (scale or 0)
            return _numeric(
                name,
                None if server_judges else digits,
                None if precision is None else scale,
            )
        case "datetime":
            return _timestamp(name, bool(type_.timezone))  # type: ignore[attr-defined]
        case "date":
            return _date(name)
        case "time":
            return _of_type(name, time, "a datetime.time")
        case "interval":
            return _of_type(name, timedelta, "a datetime.timedelta")
        case "uuid":
            return _uuid(name, bool(type_.as_uuid))  # type: ignore[attr-defined]
        case "text":
            return _text(name, None if server_judges else type_.length)  # type: ignore[attr-defined]
        case "bytes":
            return _of_type(name, (bytes, bytearray, memoryview), "bytes")
        case "array":
            item = type_.item_type  # type: ignore[attr-defined]
            return _array(name, _type_check(f"{name}[]", item, server_judges))
        case _:
            # JSON documents (the server parses them) and types the layer does not know.
            return None


def checker_for(
    column: Column[Any], name: str | None = None, *, server_judges: bool = False
) -> Check:
    """The check of one value for ``column``; ``None`` passes only where NULL may be stored.

    ``server_judges`` (add_many's COPY): NULL, too long text and too many digits pass, for
    the server to refuse with the row and column named (see ``_type_check``).
    """
    label = name or column.name
    type_check = _type_check(label, column.type, server_judges)
    check: Check = type_check if type_check is not None else _anything
    if column.nullable or server_judges:
        if type_check is None:
            return _anything

        def nullable(value: object) -> None:
            if value is not None:
                check(value)

        return nullable

    def required(value: object) -> None:
        if value is None:
            raise _bad_value(label, value, "a value (the column is NOT NULL)")
        check(value)

    return required


def _anything(value: object) -> None:
    """The check of a value the server judges alone."""


def accepts_anything(check: Check) -> bool:
    """Whether ``check`` lets every value through (JSON, unknown types, NULL where allowed)."""
    return check is _anything


def check_keys(ids: object, what: str) -> list[Any]:
    """``ids`` as a list, if it is a reasonable collection of keys (not a string, not huge)."""
    if isinstance(ids, (str, bytes, Mapping)) or not isinstance(ids, Iterable):
        raise InvalidTypeError(f"{what}: expected a list of keys, got {describe(ids)}")
    keys = list(ids)
    if len(keys) > MAX_KEYS:
        raise InvalidQueryError(f"{what}: at most {MAX_KEYS:,} keys at once, got {len(keys):,}")
    return keys


def any_of(column: Column[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """``column = ANY(:values)``: the list travels as ONE array parameter.

    ``column.in_(values)`` binds one parameter per value, and PostgreSQL's protocol allows at
    most 32,767 of them in a statement; an array has no such limit and one plan serves every
    list length.
    """
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))


def key_column(model: type[Any]) -> Column[Any]:
    """The single-column primary key of ``model``'s table (``id``)."""
    (column,) = cast(Table, model.__table__).primary_key.columns
    return column
