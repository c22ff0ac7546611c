"""Turn SQLAlchemy and asyncpg exceptions into the layer's own, by SQLSTATE.

One mechanism serves every caller: :func:`translate_error` maps one exception, and
:func:`wrap_errors` applies it around a block of code. Only errors of the driver and of
SQLAlchemy are mapped: an exception the caller's own code raises (a ``FileNotFoundError``, a
``TimeoutError`` of its own ``asyncio.timeout``) is never turned into a database error. Bare
``OSError``/``TimeoutError`` are the driver's only where the layer itself just called the
database (``from_driver=True``: the session's guarded methods, the connect hook). Message
text is never parsed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from asyncpg import exceptions as pg_exc
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg
from sqlalchemy.orm.exc import StaleDataError

from asyncdal._constraints import describe_constraint
from asyncdal._errors import (
    AsyncDALError,
    AuthenticationError,
    CheckViolationError,
    ConcurrencyError,
    ConcurrentSessionUseError,
    ConflictError,
    DatabaseUnavailableError,
    DuplicateError,
    ForeignKeyError,
    InvalidQueryError,
    QueryError,
    QueryTimeoutError,
    ReadOnlyTransactionError,
    StaleStatementError,
)
from asyncdal._versioning import stale_write_error

__all__ = [
    "RETRYABLE_SQLSTATES",
    "is_driver_error",
    "is_stale_statement",
    "sqlstate_of",
    "translate_error",
    "wrap_errors",
]

_DRIVER_ERRORS = (
    sa_exc.SQLAlchemyError,
    # The DB-API errors of SQLAlchemy's asyncpg adapter (an error's ``.orig``): PEP 249's
    # ``Error`` of the module the dialect imports, the same public path on 2.0 and 2.1.
    PGDialect_asyncpg.import_dbapi().Error,  # type: ignore[no-untyped-call]
    pg_exc.PostgresError,
    pg_exc.InterfaceError,
    pg_exc.InternalClientError,
)

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
# 26000 invalid statement name, 42P05 duplicate prepared statement: PgBouncer in transaction
# mode hands one server connection's prepared statements to another client connection.
_PREPARED_STATEMENT_GONE = frozenset({"26000", "42P05"})
# 28P01 invalid password, 28000 invalid authorization (unknown role, no pg_hba.conf entry).
_AUTHENTICATION = frozenset({"28P01", "28000"})


def is_driver_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an error of SQLAlchemy or asyncpg (not the caller's own)."""
    return isinstance(exc, _DRIVER_ERRORS)


def _driver_errors(exc: BaseException) -> Iterator[BaseException]:
    """The driver error itself and what it wraps: SQLAlchemy's ``orig``, the asyncpg cause.

    Only driver errors are followed: an application exception raised ``from`` a database
    error does not carry that error's SQLSTATE (it is the application's decision now).
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen or not is_driver_error(current):
            continue
        seen.add(id(current))
        yield current
        todo.extend([getattr(current, "orig", None), current.__cause__])


def is_stale_statement(exc: BaseException) -> bool:
    """Whether ``exc`` is asyncpg's stale cached statement (after DDL elsewhere)."""
    return any(isinstance(err, pg_exc.InvalidCachedStatementError) for err in _driver_errors(exc))


def sqlstate_of(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE carried by the driver error ``exc`` or what it wraps, if any."""
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


def translate_error(exc: BaseException, *, from_driver: bool = False) -> AsyncDALError | None:
    """Map a driver or SQLAlchemy exception to the layer's exception, or ``None`` to keep it.

    ``from_driver``: ``exc`` came straight out of a database call, so a bare ``OSError`` or
    ``TimeoutError`` is the driver's (a lost connection, asyncpg's ``command_timeout``).
    The returned exception is not raised here; callers raise it ``from exc``.
    """
    if isinstance(exc, AsyncDALError):
        return None
    if isinstance(exc, StaleDataError):  # an optimistic-locking UPDATE/DELETE matched no row
        return stale_write_error(exc)
    if not is_driver_error(exc):
        if from_driver and isinstance(exc, TimeoutError):
            return QueryTimeoutError(
                "no answer from the database within command_timeout; the connection was "
                "discarded (the server or the network may be gone)"
            )
        if from_driver and isinstance(exc, OSError):
            return DatabaseUnavailableError(f"the connection failed: {type(exc).__name__}")
        return None
    mapped = _translate_driver_error(exc)
    # What the server said stays on the exception, out of its message (it may quote values).
    mapped.detail = _attribute(exc, "detail")
    mapped.server_message = _primary(exc)
    return mapped


def _translate_driver_error(exc: BaseException) -> AsyncDALError:
    code = sqlstate_of(exc)
    if code in _CONFLICTS:
        return _conflict(exc, code)
    if code in RETRYABLE_SQLSTATES:
        return ConcurrencyError(
            f"the transaction conflicted with another (SQLSTATE {code}: "
            f"{'deadlock' if code == '40P01' else 'serialization failure'}); run it again "
            "(db.transaction does, up to its retries)",
            attempts=1,
            sqlstate=code,
        )
    if code in _PREPARED_STATEMENT_GONE:
        return QueryError(
            f"a prepared statement was not found on the server connection (SQLSTATE {code}): "
            "behind PgBouncer in transaction or statement mode, set pgbouncer=True (a URL "
            "query parameter or the setting) so that statements are not cached",
            sqlstate=code,
        )
    if is_stale_statement(exc):
        return StaleStatementError(
            "a cached prepared statement went stale after a schema change (DDL); the caches "
            "are cleared and the transaction was rolled back: retry the unit of work"
        )
    if code == "25006":
        return ReadOnlyTransactionError(
            "cannot write in a read-only transaction (db.gather, db.read() and db.get read on "
            "connections that cannot write; write in db.session() or db.transaction())",
            sqlstate=code,
        )
    if code == "57014":
        return QueryTimeoutError("the query was cancelled: statement timeout or cancel request")
    if code in _AUTHENTICATION:
        return AuthenticationError(
            f"authentication failed: the server refused the user name or password, or has no "
            f"pg_hba.conf entry for this connection (SQLSTATE {code})"
        )
    if code == "3D000":
        return DatabaseUnavailableError("the database does not exist (SQLSTATE 3D000)")
    if code is not None and (code.startswith(_UNAVAILABLE_PREFIXES) or code in _UNAVAILABLE):
        return DatabaseUnavailableError(f"database unavailable (SQLSTATE {code})")
    if isinstance(exc, sa_exc.TimeoutError):
        return DatabaseUnavailableError(
            "no connection available: the pool is exhausted and the pool timeout passed"
        )
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return DatabaseUnavailableError("the connection to the database was lost")
    if isinstance(exc, sa_exc.InterfaceError | sa_exc.OperationalError) or any(
        isinstance(err, pg_exc.InterfaceError | pg_exc.InternalClientError)
        for err in _driver_errors(exc)
    ):
        # asyncpg's "connection is closed", or a protocol state the connection cannot leave
        # ("cannot switch to state ..."): this connection is not usable any more.
        return DatabaseUnavailableError(f"database connection unusable: {_driver_name(exc)}")
    if isinstance(exc, sa_exc.IllegalStateChangeError):
        return ConcurrentSessionUseError(
            "the session was used by two tasks at once; give each task its own session "
            "(db.gather, or db.session() inside each task)"
        )
    if any(type(err) is pg_exc.DataError for err in _driver_errors(exc)):
        # asyncpg's own check of a bind value against the parameter's type (client side).
        return InvalidQueryError(
            "a value could not be sent to the database: it does not fit its parameter's type "
            "(out of range, or the wrong type); see .server_message"
        )
    if isinstance(exc, sa_exc.StatementError) and not isinstance(exc, sa_exc.DBAPIError):
        return InvalidQueryError(
            f"a value could not be sent to the database: {_driver_name(exc)} ({type(exc).__name__})"
        )
    if code is not None or isinstance(exc, sa_exc.DBAPIError | pg_exc.PostgresError):
        return QueryError(
            f"the database refused the statement (SQLSTATE {code}: {_condition(exc)})",
            sqlstate=code,
        )
    first_line = str(exc).split("\n", 1)[0][:200]
    return QueryError(f"the statement could not be run: {type(exc).__name__}: {first_line}")


def _conflict(exc: BaseException, code: str) -> ConflictError:
    """A constraint violation: named by constraint, table and columns, never by values."""
    cls, what = _CONFLICTS[code]
    constraint = _attribute(exc, "constraint_name")
    table = _attribute(exc, "table_name")
    column = _attribute(exc, "column_name")  # NOT NULL reports its column
    known = describe_constraint(constraint) if constraint else None
    columns = known.columns if known else ((column,) if column else ())
    message = what + (f" {constraint!r}" if constraint else "")
    if table:
        message += f" on table {table!r}"
    if columns:
        message += f" (columns: {', '.join(columns)})"
    error = cls(message, constraint=constraint)
    error.table = table
    error.columns = columns
    if isinstance(error, ForeignKeyError) and known is not None:
        error.referred_table = known.referred_table
        error.referred_columns = known.referred_columns
    return error


def _condition(exc: BaseException) -> str:
    """The server's condition as asyncpg names it (``InvalidTextRepresentationError``)."""
    for err in _driver_errors(exc):
        if isinstance(err, pg_exc.PostgresError):
            return type(err).__name__
    return _driver_name(exc)


def _driver_name(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None)
    return type(inner if inner is not None else exc).__name__


def _primary(exc: BaseException) -> str | None:
    """The server's (or asyncpg's) primary message, never the statement or its parameters."""
    for err in _driver_errors(exc):
        if isinstance(err, pg_exc.PostgresError | pg_exc.InterfaceError):
            text = getattr(err, "message", None) or str(err).split("\n", 1)[0]
            return str(text) if text else None
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
