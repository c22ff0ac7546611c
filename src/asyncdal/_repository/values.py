"""Values a repository writes or looks up, checked against their column before any SQL runs.

The database refuses most bad values too, but late and in its own words: a raw driver error
("invalid byte sequence", "value too long", "numeric field overflow"), asyncpg's own exceptions
on the COPY path, or a bind-parameter error for a wrong Python type. Here every value is checked
against the model's column type (length of ``String(n)``, precision of ``Numeric(p, s)``, range
of each integer type, NUL bytes, UTF-8, booleans, time zones) and a bad one raises
:class:`InvalidQueryError` (a ``ValueError``) or, for a wrong Python type,
:class:`InvalidTypeError` (also a ``TypeError``), naming the field. Nothing is sent, so nothing
is written.

Values are checked, not converted: what passes is sent exactly as given.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    Enum,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Table,
    any_,
    bindparam,
)
from sqlalchemy.dialects.postgresql import ARRAY

from asyncdal._errors import InvalidQueryError, InvalidTypeError

__all__ = [
    "MAX_KEYS",
    "Check",
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
    """``repr(value)`` cut short: error messages must not echo megabytes of input."""
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _wrong_type(name: str, value: object, expected: str) -> InvalidTypeError:
    return InvalidTypeError(
        f"{name}: expected {expected}, got {type(value).__name__} {describe(value)}"
    )


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


def _numeric(name: str, precision: int | None, scale: int | None) -> Check:
    digits = None if precision is None else precision - (scale or 0)
    shape = f"at most {digits} digits before the point and {scale} after" if digits else ""

    def check(value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            # Floats are refused on purpose: money in binary floating point is not exact.
            raise _wrong_type(name, value, "a Decimal or an int (not a float)")
        number = value if isinstance(value, Decimal) else Decimal(value)
        if not number.is_finite():
            raise _bad_value(name, value, "a finite number")
        if digits is None:
            return
        # adjusted() is the exponent of the leading digit: 123.4 -> 2, so 3 digits before.
        if number and number.adjusted() >= digits:
            raise _bad_value(name, value, f"a number with {shape}")
        exponent = number.as_tuple().exponent
        if scale is not None and isinstance(exponent, int) and -exponent > scale:
            # PostgreSQL would round it silently: refuse rather than lose the digits.
            raise _bad_value(name, value, f"a number with {shape}")

    return check


def _timestamp(name: str) -> Check:
    def check(value: object) -> None:
        if not isinstance(value, datetime):
            raise _wrong_type(name, value, "a datetime")
        if value.tzinfo is not None:
            try:
                value.astimezone(UTC)  # the driver sends UTC: it must exist
            except OverflowError:
                raise _bad_value(name, value, "a datetime within years 1..9999 in UTC") from None

    return check


def _boolean(name: str) -> Check:
    def check(value: object) -> None:
        if not isinstance(value, bool):
            raise _wrong_type(name, value, "True or False")

    return check


def _enumerated(name: str, enum_class: type[enum.Enum]) -> Check:
    members = {member.value for member in enum_class}

    def check(value: object) -> None:
        if isinstance(value, enum_class):
            return
        if isinstance(value, str) and value in members:
            return
        raise _bad_value(name, value, f"one of {sorted(map(str, members))}")

    return check


def _type_check(name: str, column: Column[Any]) -> Check:
    type_ = column.type
    if isinstance(type_, Boolean):
        return _boolean(name)
    if isinstance(type_, Enum) and type_.enum_class is not None:
        return _enumerated(name, type_.enum_class)
    if isinstance(type_, Integer):
        return _integer(name, integer_bound(type_))
    if isinstance(type_, Numeric):
        return _numeric(name, type_.precision, type_.scale)
    if isinstance(type_, DateTime):
        return _timestamp(name)
    if isinstance(type_, String):
        return _text(name, type_.length)
    raise TypeError(f"no value check for column {column.name} of type {type_!r}")


def checker_for(column: Column[Any], name: str | None = None) -> Check:
    """The check of one value for ``column``; ``None`` passes only where NULL may be stored."""
    label = name or column.name
    check = _type_check(label, column)
    if column.nullable:

        def nullable(value: object) -> None:
            if value is not None:
                check(value)

        return nullable

    def required(value: object) -> None:
        if value is None:
            raise _bad_value(label, value, "a value (the column is NOT NULL)")
        check(value)

    return required


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
