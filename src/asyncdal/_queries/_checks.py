"""Argument checks shared by the read models: bad limits fail before any query is sent."""

from __future__ import annotations

from asyncdal._errors import InvalidQueryError

__all__ = ["MAX_DAYS", "MAX_LIMIT", "check_days", "check_limit", "check_offset"]

#: The largest page a read model returns in one call.
MAX_LIMIT = 1000
#: The longest window, in days, of the time-based reads (ten years).
MAX_DAYS = 3650


def _int_in(value: object, low: int, high: int | None) -> int | None:
    # bool is an int subclass, but limit=True is a mistake, not 1.
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return value if value >= low and (high is None or value <= high) else None


def check_limit(limit: object, name: str = "limit") -> int:
    """``limit`` if it is an int in ``1..MAX_LIMIT``, else :class:`InvalidQueryError`."""
    checked = _int_in(limit, 1, MAX_LIMIT)
    if checked is None:
        raise InvalidQueryError(f"{name} must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    return checked


def check_offset(offset: object) -> int:
    """``offset`` if it is an int >= 0, else :class:`InvalidQueryError`."""
    checked = _int_in(offset, 0, None)
    if checked is None:
        raise InvalidQueryError(f"offset must be an integer >= 0, got {offset!r}")
    return checked


def check_days(days: object) -> int:
    """``days`` if it is an int in ``1..MAX_DAYS``, else :class:`InvalidQueryError`."""
    checked = _int_in(days, 1, MAX_DAYS)
    if checked is None:
        raise InvalidQueryError(f"days must be an integer from 1 to {MAX_DAYS}, got {days!r}")
    return checked
