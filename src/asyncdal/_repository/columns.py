"""``add_many``'s rows, checked and made ready for the driver a chunk of columns at a time.

Calling one Python check per value costs about as much as the COPY itself on 100k rows, so the
rows go in chunks, each turned into columns (``map(itemgetter(key), chunk)``), and a column is
accepted whole by builtins that loop in C: its set of types, ``min``/``max``, one ``str.join``
searched for NUL and checked for UTF-8. Such a test is *sound*, never *complete*: when it
accepts, every per-value check would pass; when it cannot tell (an unusual type, a failure),
the per-value checks run on that column of the chunk and raise the exact error they always
raise, naming the row (``rows[k]``: its index in the caller's list). Arrays are always
checked value by value; JSON and types the layer does not know are not checked at all.

Two depths (``server_judges``, see ``values``): the INSERT path checks all the layer knows,
because an INSERT's error would not say which row; the COPY path leaves length, digits and
NOT NULL to the server, whose error names the line and column (``bulk``).

The plan of each column is built once per repository class and depth; the dialect's bind
processors (an Enum member to its label, JSON to text) are added once per call, and applied
to a whole column with ``map``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from itertools import chain
from operator import attrgetter, is_not, itemgetter
from typing import Any
from uuid import UUID

from sqlalchemy import Column
from sqlalchemy.engine import Dialect

from asyncdal._errors import AsyncDALError, InvalidQueryError, InvalidTypeError
from asyncdal._repository.kinds import kind_of
from asyncdal._repository.values import (
    Check,
    accepts_anything,
    checker_for,
    describe,
    integer_bound,
)

__all__ = [
    "CHUNK",
    "CheckedRows",
    "ColumnCheck",
    "ColumnPlan",
    "Converter",
    "at_row",
    "converter_for",
    "plan_for",
    "with_converters",
]

#: Rows per chunk: large enough for the C loops to dominate, small enough that COPY starts
#: sending (and the server inserting) almost at once.
CHUNK = 4096

#: Accepts a whole column (True), or cannot tell (False: check value by value).
ColumnCheck = Callable[[list[Any]], bool]
#: A dialect's bind processor: the value the driver is given for one the caller gave.
Converter = Callable[[Any], Any]

_NONE = type(None)
_present = partial(filter, partial(is_not, None))
_years = attrgetter("year")
_zones = attrgetter("tzinfo")
_exponent = attrgetter("exponent")


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """How one column of the input is checked (and converted) on its way to the database."""

    key: str
    #: The column's name in the database (what COPY and its errors use).
    column: str
    label: str
    #: The per-value check; ``None`` when every value goes to the server as it is.
    each: Check | None
    #: The whole-column test, when the column's kind has one.
    whole: ColumnCheck | None
    #: The dialect's bind processor, COPY only (an INSERT runs them through SQLAlchemy).
    convert: Converter | None = None


def plan_for(column: Column[Any], key: str, label: str, *, server_judges: bool) -> ColumnPlan:
    """The plan of ``column`` (the model's attribute ``key``, named ``label`` in errors)."""
    each = checker_for(column, label, server_judges=server_judges)
    if accepts_anything(each):
        return ColumnPlan(key, column.name, label, None, None)
    allowed_none = column.nullable or server_judges
    whole = _whole_for(column, allowed_none, server_judges)
    return ColumnPlan(key, column.name, label, each, whole)


def converter_for(column: Column[Any], dialect: Dialect) -> Converter | None:
    """The bind processor of ``dialect`` for ``column``'s values, where COPY needs one.

    Booleans get none: SQLAlchemy's only refuses what the check refused already, and asyncpg
    refuses anything but a bool itself (it cost as much as the rest of add_many together).
    """
    if kind_of(column.type) == "bool":
        return None
    return column.type.dialect_impl(dialect).bind_processor(dialect)


def with_converters(
    plans: Sequence[ColumnPlan], columns: Sequence[Column[Any]], dialect: Dialect
) -> list[ColumnPlan]:
    """``plans`` with the converters of ``columns`` (one per plan) for ``dialect``."""
    return [
        replace(plan, convert=converter_for(column, dialect))
        for plan, column in zip(plans, columns, strict=True)
    ]


def _whole_for(column: Column[Any], allowed_none: bool, server_judges: bool) -> ColumnCheck | None:
    type_ = column.type
    none = {_NONE} if allowed_none else set()

    def only(*types: type) -> frozenset[type]:
        return frozenset({*types, *none})

    match kind_of(type_):
        case "bool":
            return _types_within(only(bool))
        case "int":
            return _integers(only(int), integer_bound(type_))  # type: ignore[arg-type]
        case "float":
            # NaN and infinities are valid float8 values.
            return _types_within(only(float, int))
        case "decimal":
            precision, scale = type_.precision, type_.scale  # type: ignore[attr-defined]
            digits = None if precision is None or server_judges else precision - (scale or 0)
            return _decimals(only(Decimal, int), digits, None if precision is None else scale)
        case "text":
            length = None if server_judges else type_.length  # type: ignore[attr-defined]
            return _strings(only(str), length)
        case "enum":
            enum_class = type_.enum_class  # type: ignore[attr-defined]
            if enum_class is None:
                return _members(only(str), frozenset(type_.enums))  # type: ignore[attr-defined]
            labels = frozenset(member.value for member in enum_class)
            return _members(only(str, enum_class), labels | frozenset(enum_class))
        case "datetime":
            return _timestamps(only(datetime), bool(type_.timezone))  # type: ignore[attr-defined]
        case "date":
            return _types_within(only(date))  # a datetime is not a date here: type() is exact
        case "time":
            return _types_within(only(time))
        case "interval":
            return _types_within(only(timedelta))
        case "uuid":
            return _types_within(only(UUID)) if type_.as_uuid else None  # type: ignore[attr-defined]
        case "bytes":
            return _types_within(only(bytes, bytearray, memoryview))
        case _:
            return None  # arrays: value by value


def _types_within(allowed: frozenset[type]) -> ColumnCheck:
    def check(values: list[Any]) -> bool:
        return set(map(type, values)) <= allowed

    return check


def _integers(allowed: frozenset[type], bound: int) -> ColumnCheck:
    def check(values: list[Any]) -> bool:
        types = set(map(type, values))
        if not types <= allowed:
            return False
        present = list(_present(values)) if _NONE in types else values
        return not present or (min(present) >= -bound and max(present) < bound)

    return check


def _decimals(allowed: frozenset[type], digits: int | None, scale: int | None) -> ColumnCheck:
    def check(values: list[Any]) -> bool:
        types = set(map(type, values))
        if not types <= allowed:
            return False
        if int in types and digits is not None:
            return False  # rare: the per-value check counts an int's digits
        numbers = values if types == {Decimal} else [v for v in values if type(v) is Decimal]
        if not numbers:
            return True
        if not all(map(Decimal.is_finite, numbers)):
            return False
        if scale is not None and min(map(_exponent, map(Decimal.as_tuple, numbers))) < -scale:
            return False
        # adjusted(): the exponent of the leading digit (0 counts as 0: decided per value).
        return digits is None or max(map(Decimal.adjusted, numbers)) < digits

    return check


def _strings(allowed: frozenset[type], length: int | None) -> ColumnCheck:
    def check(values: list[Any]) -> bool:
        present = values
        try:
            # join() takes nothing but strings (str subclasses too, as the check does): it
            # stands for the set of types, at a third of the cost.
            joined = "".join(values)
        except TypeError:  # a NULL, or a value of another type
            if not set(map(type, values)) <= allowed:
                return False
            present = list(_present(values))
            joined = "".join(present)
        if length is not None and present and max(map(len, present)) > length:
            return False
        if "\x00" in joined:
            return False
        if not joined.isascii():
            try:
                joined.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate
                return False
        return True

    return check


def _members(allowed: frozenset[type], members: frozenset[Any]) -> ColumnCheck:
    def check(values: list[Any]) -> bool:
        types = set(map(type, values))
        if not types <= allowed:
            return False
        return set(_present(values)) <= members

    return check


def _timestamps(allowed: frozenset[type], timezone: bool) -> ColumnCheck:
    def check(values: list[Any]) -> bool:
        types = set(map(type, values))
        if not types <= allowed:
            return False
        present = list(_present(values)) if _NONE in types else values
        zones = set(map(_zones, present))
        if zones <= {None}:
            return True  # all naive
        if not timezone or None in zones:
            return False  # aware values for a naive column, or a mix: decided per value
        # An aware value moves to UTC (the driver sends UTC) within a day: only years 1 and
        # 9999 can fall off the calendar.
        years: list[int] = list(map(_years, present))
        return min(years) > 1 and max(years) < 9999

    return check


def at_row(error: AsyncDALError, what: str, row: int | None, field: str | None) -> AsyncDALError:
    """``error`` about row ``row`` (its index in the caller's list) and ``field``, in place.

    The message gets the prefix ``what: rows[k]: `` (``rows[k]`` only when the row is known);
    the row and field are also kept as ``error.row_index`` and ``error.field``.
    """
    where = f"{what}: " if row is None else f"{what}: rows[{row}]: "
    error.args = (f"{where}{error}", *error.args[1:])
    error.row_index = row
    error.field = field
    return error


class CheckedRows:
    """The rows of ``add_many`` as tuples in the order of the plans, checked as they go.

    Every row must have exactly the plans' keys; ``on_bad_row(row)`` makes the error for one
    that does not. Iterating checks (and converts) a chunk, then hands out its rows; the first
    chunk can be checked ahead (:meth:`check_first`), so that a bad row in a small batch is
    refused before any SQL. After the consumer failed on a row (the driver could not encode
    a value), :meth:`row_in_hand` tells which.
    """

    def __init__(
        self,
        rows: Sequence[Any],  # mappings, unless the caller got it wrong
        plans: Sequence[ColumnPlan],
        what: str,
        on_bad_row: Callable[[Mapping[str, Any]], Exception],
    ) -> None:
        self._rows = rows
        self._plans = plans
        self._what = what
        self._on_bad_row = on_bad_row
        self._first: Iterator[tuple[Any, ...]] | None = None
        self._start = 0
        self._size = 0
        self._pending: Iterator[tuple[Any, ...]] | None = None

    @property
    def plans(self) -> Sequence[ColumnPlan]:
        """The columns, in the order of the tuples."""
        return self._plans

    @property
    def what(self) -> str:
        """The operation, as errors name it (``add_many``)."""
        return self._what

    def __len__(self) -> int:
        return len(self._rows)

    def check_first(self) -> None:
        """Check (and convert) the first chunk now."""
        if self._first is None:
            self._first = self._chunk(0)

    def check_all(self) -> None:
        """Check every row, converting nothing (the INSERT path: an INSERT cannot stop half-way)."""
        for start in range(0, len(self._rows), CHUNK):
            self._columns(start, convert=False)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        self.check_first()
        assert self._first is not None
        rest = map(self._chunk, range(CHUNK, len(self._rows), CHUNK))
        # Chained in C: no Python frame per row; a chunk is checked when the consumer reaches it.
        return chain.from_iterable(chain([self._first], rest))

    def row_in_hand(self) -> int | None:
        """The row the consumer took last, when it stopped in the middle of the rows."""
        if self._pending is None:
            return None
        left = sum(1 for _ in self._pending)  # only after a failure: the rest is not sent
        self._pending = None
        return self._start + self._size - left - 1

    def _chunk(self, start: int) -> Iterator[tuple[Any, ...]]:
        records = zip(*self._columns(start, convert=True), strict=True)
        self._start, self._size = start, min(CHUNK, len(self._rows) - start)
        self._pending = records
        return records

    def _columns(self, start: int, *, convert: bool) -> list[list[Any]]:
        chunk = self._rows[start : start + CHUNK]
        width = len(self._plans)
        try:
            if set(map(len, chunk)) != {width}:
                raise KeyError
            columns = [list(map(itemgetter(plan.key), chunk)) for plan in self._plans]
        except (KeyError, TypeError):
            # Same length and every key present means the same keys; find the row that is not.
            keys = {plan.key for plan in self._plans}
            for offset, row in enumerate(chunk):
                if not isinstance(row, Mapping):
                    error: AsyncDALError = InvalidTypeError(
                        f"expected a mapping of column names to values, got {describe(row)}"
                    )
                elif len(row) != width or not row.keys() >= keys:
                    error = self._bad_row(row)
                else:
                    continue
                raise at_row(error, self._what, start + offset, None) from None
            raise  # a mapping that failed in its own way
        for index, plan in enumerate(self._plans):
            values = columns[index]
            if plan.each is not None:
                self._check(values, plan, plan.each, start)
            if convert and plan.convert is not None:
                columns[index] = self._convert(values, plan, plan.convert, start)
        return columns

    def _bad_row(self, row: Mapping[str, Any]) -> AsyncDALError:
        error = self._on_bad_row(row)
        assert isinstance(error, AsyncDALError)
        return error

    def _check(self, values: list[Any], plan: ColumnPlan, each: Check, start: int) -> None:
        try:
            if plan.whole is not None and plan.whole(values):
                return
        except Exception:  # noqa: S110
            pass  # a hostile __eq__ or __hash__: decided value by value below
        for offset, value in enumerate(values):
            try:
                each(value)
            except InvalidQueryError as error:
                raise at_row(error, self._what, start + offset, plan.key) from None

    def _convert(
        self, values: list[Any], plan: ColumnPlan, convert: Converter, start: int
    ) -> list[Any]:
        try:
            return list(map(convert, values))
        except (ValueError, TypeError, LookupError, OverflowError):
            # A processor refused a value (a user TypeDecorator's): find it, for the message.
            for offset, value in enumerate(values):
                try:
                    convert(value)
                except (ValueError, TypeError, LookupError, OverflowError) as exc:
                    error = InvalidQueryError(
                        f"{plan.label}: the value could not be converted for the database "
                        f"({type(exc).__name__})"
                    )
                    raise at_row(error, self._what, start + offset, plan.key) from exc
            raise
