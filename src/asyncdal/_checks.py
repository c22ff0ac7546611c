"""Argument checks shared by repositories and read models: bad input fails before any query."""

from __future__ import annotations

from asyncdal._errors import InvalidQueryError

__all__ = ["MAX_DAYS", "MAX_LIMIT", "MAX_OFFSET", "check_days", "check_limit", "check_offset"]

#: The largest page returned in one call, unless a caller sets its own maximum.
MAX_LIMIT = 1000
#: PostgreSQL's OFFSET is a bigint: anything larger would fail in the driver, not here.
MAX_OFFSET = 2**63 - 1
#: The longest window, in days, of the time-based reads (ten years).
MAX_DAYS = 3650


def _int_in(value: object, low: int, high: int | None) -> int | None:
    # bool is an int subclass, but limit=True is a mistake, not 1.
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return value if value >= low and (high is None or value <= high) else None


def check_limit(limit: object, maximum: int = MAX_LIMIT, *, name: str = "limit") -> int:
    """``limit`` if it is an int in ``1..maximum``, else :class:`InvalidQueryError`."""
    checked = _int_in(limit, 1, maximum)
    if checked is None:
        raise InvalidQueryError(f"{name} must be an integer from 1 to {maximum}, got {limit!r}")
    return checked


def check_offset(offset: object) -> int:
    """``offset`` if it is an int in ``0..MAX_OFFSET``, else :class:`InvalidQueryError`."""
    checked = _int_in(offset, 0, MAX_OFFSET)
    if checked is None:
        raise InvalidQueryError(f"offset must be an integer from 0 to {MAX_OFFSET}, got {offset!r}")
    return checked


def check_days(days: object) -> int:
    """``days`` if it is an int in ``1..MAX_DAYS``, else :class:`InvalidQueryError`."""
    checked = _int_in(days, 1, MAX_DAYS)
    if checked is None:
        raise InvalidQueryError(f"days must be an integer from 1 to {MAX_DAYS}, got {days!r}")
    return checked
