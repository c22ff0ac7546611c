"""Whole-column value checks for bulk inserts: the per-value checks' verdict, at C speed.

``add_many`` checks every value (see ``values``) in the pass that feeds ``COPY``. Calling one
Python check per value costs about as much as the COPY itself on 100k rows, so the rows go in
chunks, each turned into columns (``map(itemgetter(key), chunk)``), and a column is accepted
whole by builtins that loop in C: its set of types, ``min``/``max``, ``max(map(len, ...))``,
one ``str.join`` searched for NUL and checked for UTF-8. Such a test is *sound*, never
*complete*: when it accepts, every per-value check would pass; when it cannot tell (a NULL, an
unusual type, a failure), the per-value checks run on that column of the chunk and raise the
exact error they always raise. Types without a whole-column test (numeric, timestamps, enums)
always use the per-value checks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Boolean, Column, Integer, String

from asyncdal._repository.values import Check, integer_bound

__all__ = ["CHUNK", "ColumnCheck", "checked_records", "column_check_for"]

#: Rows per chunk: large enough for the C loops to dominate, small enough that COPY starts
#: sending (and the server inserting) almost at once.
CHUNK = 4096

#: Accepts a whole column (True), or cannot tell (False: check value by value).
ColumnCheck = Callable[[list[Any]], bool]


def column_check_for(column: Column[Any]) -> ColumnCheck | None:
    """A whole-column test for ``column``, or ``None`` when it has none (see the module)."""
    kind = column.type
    if isinstance(kind, Boolean):
        return lambda values: set(map(type, values)) == {bool}
    if isinstance(kind, Integer):
        bound = integer_bound(kind)

        def integers(values: list[Any]) -> bool:
            return set(map(type, values)) == {int} and min(values) >= -bound and max(values) < bound

        return integers
    if isinstance(kind, String):
        length = kind.length

        def strings(values: list[Any]) -> bool:
            if set(map(type, values)) != {str}:
                return False
            if length is not None and max(map(len, values)) > length:
                return False
            joined = "".join(values)
            if "\x00" in joined:
                return False
            if not joined.isascii():
                try:
                    joined.encode("utf-8")
                except UnicodeEncodeError:
                    return False
            return True

        return strings
    return None


def checked_records(
    rows: Sequence[Mapping[str, Any]],
    keys: Sequence[str],
    checks: Sequence[Check],
    column_checks: Sequence[ColumnCheck | None],
    on_bad_row: Callable[[Mapping[str, Any]], Exception],
) -> Iterator[tuple[Any, ...]]:
    """The rows as tuples in the order of ``keys``, every value checked, chunk by chunk.

    Every row must have exactly ``keys``; ``on_bad_row(row)`` makes the error for one that
    does not. ``checks[i]``/``column_checks[i]`` are the per-value and whole-column checks of
    ``keys[i]``.
    """
    width = len(keys)
    getters = [itemgetter(key) for key in keys]
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        try:
            if set(map(len, chunk)) != {width}:
                raise KeyError
            columns = [list(map(get, chunk)) for get in getters]
        except KeyError:
            # Same length and every key present means the same keys; find the row that is not.
            raise on_bad_row(
                next(row for row in chunk if len(row) != width or not row.keys() >= set(keys))
            ) from None
        for values, check, whole in zip(columns, checks, column_checks, strict=True):
            if whole is None or not whole(values):
                for value in values:
                    check(value)
        yield from zip(*columns, strict=True)
