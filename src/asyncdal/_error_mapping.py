"""Turn SQLAlchemy and asyncpg exceptions into the layer's own, by SQLSTATE.

One mechanism serves every caller: :func:`translate_error` maps one exception, and
:func:`wrap_errors` applies it around a block of code. Message text is never parsed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy.orm.exc import StaleDataError

from asyncdal._errors import (
    AsyncDALError,
    CheckViolationError,
    ConflictError,
    DatabaseUnavailableError,
    DuplicateError,
    ForeignKeyError,
    QueryTimeoutError,
)
from asyncdal._versioning import stale_write_error

__all__ = ["RETRYABLE_SQLSTATES", "sqlstate_of", "translate_error", "wrap_errors"]

#: Serialization failure and deadlock: the transaction may succeed when run again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

_CONFLICTS: dict[str, tuple[type[ConflictError], str]] = {
    "23505": (DuplicateError, "duplicate value violates unique constraint"),
    "23503": (ForeignKeyError, "foreign key violation"),
    "23514": (CheckViolationError, "check constraint violated"),
    "23502": (CheckViolationError, "not-null constraint violated"),
}
# Class 08 (connection exception), 28 (auth), 3D000 (no such database), 53300 (too many
# connections), 57P01-57P03 (server shutting down or starting): the database is not usable.
_UNAVAILABLE_PREFIXES = ("08", "28")
_UNAVAILABLE = frozenset({"3D000", "53300", "57P01", "57P02", "57P03"})


def _driver_errors(exc: BaseException) -> Iterator[BaseException]:
    """The exception itself and what it wraps: SQLAlchemy's ``orig`` and the asyncpg cause."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([getattr(current, "orig", None), current.__cause__])


def sqlstate_of(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE carried by ``exc`` or anything it wraps, if any."""
    for err in _driver_errors(exc):
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if isinstance(code, str):
            return code
    return None


def _attribute(exc: BaseException, name: str) -> str | None:
    for err in _driver_errors(exc):
        value = getattr(err, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def translate_error(exc: BaseException) -> AsyncDALError | None:
    """Map a driver or SQLAlchemy exception to the layer's exception, or ``None`` to keep it.

    The returned exception is not raised here; callers raise it ``from exc``.
    """
    if isinstance(exc, AsyncDALError):
        return None
    if isinstance(exc, StaleDataError):  # an optimistic-locking UPDATE/DELETE matched no row
        return stale_write_error(exc)
    code = sqlstate_of(exc)
    if code in _CONFLICTS:
        cls, what = _CONFLICTS[code]
        constraint = _attribute(exc, "constraint_name")
        detail = _attribute(exc, "detail")
        message = f"{what}" + (f" {constraint!r}" if constraint else "")
        if detail:
            message += f": {detail}"
        return cls(message, constraint=constraint)
    if code == "57014":
        return QueryTimeoutError("the query was cancelled: statement timeout or cancel request")
    if code is not None and (code.startswith(_UNAVAILABLE_PREFIXES) or code in _UNAVAILABLE):
        return DatabaseUnavailableError(f"database unavailable (SQLSTATE {code})")
    if isinstance(exc, sa_exc.TimeoutError):
        return DatabaseUnavailableError(
            "no connection available: the pool is exhausted and the pool timeout passed"
        )
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return DatabaseUnavailableError("the connection to the database was lost")
    if isinstance(exc, (ConnectionError, OSError)) and not isinstance(exc, asyncio.TimeoutError):
        return DatabaseUnavailableError(f"cannot connect to the database: {type(exc).__name__}")
    if isinstance(exc, sa_exc.InterfaceError | sa_exc.OperationalError):
        # Includes asyncpg's "connection is closed" once SQLAlchemy adapts it.
        return DatabaseUnavailableError(f"database unavailable: {type(exc.orig).__name__}")
    return None


@contextmanager
def wrap_errors() -> Iterator[None]:
    """Raise the layer's exception for any mapped driver error inside the block."""
    try:
        yield
    except Exception as exc:
        mapped = translate_error(exc)
        if mapped is None:
            raise
        raise mapped from exc
