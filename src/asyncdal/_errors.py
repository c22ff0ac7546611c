"""The exception tree of asyncdal.

Every error the layer raises derives from :class:`AsyncDALError`, so a caller can catch one class::

    AsyncDALError
    ├── NotFoundError
    ├── ConflictError
    │   ├── DuplicateError            (SQLSTATE 23505, unique violation)
    │   ├── ForeignKeyError           (SQLSTATE 23503, foreign key violation)
    │   ├── CheckViolationError       (SQLSTATE 23514 / 23502, check or not-null violation)
    │   └── StaleWriteError           (the row changed since it was read: its version moved)
    ├── InvalidQueryError             (also a ValueError: a bad argument: unknown field, operator,
    │   │                              sort key, a value that does not fit its column, ...)
    │   └── InvalidTypeError          (also a TypeError: an argument of the wrong Python type)
    ├── QueryError                    (any other statement the database refused; .sqlstate)
    │   └── ReadOnlyTransactionError  (SQLSTATE 25006: a write inside db.gather's reads)
    ├── StaleStatementError           (a cached statement went stale after DDL: retry)
    ├── ConcurrencyError              (serialization failure or deadlock, retries exhausted)
    ├── QueryTimeoutError             (SQLSTATE 57014, or a client-side timeout)
    ├── DatabaseUnavailableError      (cannot connect, connection lost, pool exhausted, no
    │   │                              such database: SQLSTATE 3D000)
    │   └── AuthenticationError       (SQLSTATE 28P01 / 28000: wrong password, unknown role,
    │                                  or pg_hba.conf refuses the connection)
    ├── ConcurrentSessionUseError     (one AsyncSession used by two tasks at once)
    ├── SessionClosedError            (a session used after its block ended)
    ├── TransactionUsageError         (db.transaction misused: nested, or fn committing; a
    │                                  stream, which needs a transaction, in a read session)
    ├── ConfigurationError            (also a ValueError: bad URL or option)
    └── MigrationError                (the schema could not be migrated or checked)

Errors of the sample domain and of the test helpers live with them and derive from this tree:
``asyncdal.commerce.InsufficientStockError`` (a ``ConflictError``) and
``asyncdal.testing.EmbeddedPostgresError``. A service's own domain errors can do the same:
subclass ``ConflictError``, set ``code`` and ``public_fields``, and the FastAPI handlers
answer them like the layer's own.

The driver's exception is always chained (``raise ... from exc``), and no message ever contains a
password: URLs are rendered with the password masked.
"""

from __future__ import annotations

__all__ = [
    "AsyncDALError",
    "AuthenticationError",
    "CheckViolationError",
    "ConcurrencyError",
    "ConcurrentSessionUseError",
    "ConfigurationError",
    "ConflictError",
    "DatabaseUnavailableError",
    "DuplicateError",
    "ForeignKeyError",
    "InvalidQueryError",
    "InvalidTypeError",
    "MigrationError",
    "NotFoundError",
    "QueryError",
    "QueryTimeoutError",
    "ReadOnlyTransactionError",
    "SessionClosedError",
    "StaleStatementError",
    "StaleWriteError",
    "TransactionUsageError",
]


class AsyncDALError(Exception):
    """Base class of every error raised by asyncdal.

    A message says *what* went wrong (the constraint, the table, the columns, the SQLSTATE),
    never *whose* data: PostgreSQL's DETAIL ("Key (email)=(ada@example.org) already exists",
    "Failing row contains (...)") and its primary message (which may quote a value) are kept
    on the exception for code that wants them, and out of ``str()``, ``repr()``, logs and HTTP
    bodies built from the message.

    Attributes:
        detail: PostgreSQL's DETAIL of the error that was mapped, if any. May hold row data.
        server_message: the server's (or driver's) own primary message, if any. May quote a
            value.
        row_index: for an error about one row of ``Repository.add_many``: that row's index in
            the list given (0-based; the message says ``rows[k]``), when known.
        field: the field (the model's attribute) such an error is about, when known.
    """

    detail: str | None = None
    server_message: str | None = None
    row_index: int | None = None
    field: str | None = None


class NotFoundError(AsyncDALError):
    """A row looked up by its identity does not exist.

    Attributes:
        model: the name of the model that was looked up.
        key: the identity that was not found.
    """

    def __init__(self, model: str, key: object) -> None:
        self.model = model
        self.key = key
        super().__init__(f"{model} {key!r} not found")


class ConflictError(AsyncDALError):
    """A write conflicts with a database constraint or with the current data.

    Attributes:
        constraint: the name of the violated constraint, when the database reported one.
        table: the table the constraint is on, when the database reported it.
        columns: the constraint's columns, when known (never their values).
        code: a short machine-readable name of the conflict (``"duplicate"``...), the
            ``error`` of an HTTP body (``asyncdal.fastapi``).
    """

    code: str = "conflict"
    #: The table the conflict is on, and the constraint's columns, when known.
    table: str | None = None
    columns: tuple[str, ...] = ()

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        self.constraint = constraint
        super().__init__(message)

    @property
    def public_fields(self) -> dict[str, object]:
        """Fields a client may see to act on the conflict (never row data): the constraint.

        A subclass with other facts to tell (the short product of an order) overrides it.
        """
        return {"constraint": self.constraint}


class DuplicateError(ConflictError):
    """A unique constraint was violated (SQLSTATE 23505)."""

    code = "duplicate"


class ForeignKeyError(ConflictError):
    """A foreign key was violated (SQLSTATE 23503): a referenced row is missing or still used.

    Attributes:
        referred_table: the table the foreign key points to (``"users"``), when the constraint
            is one of the models' (asyncdal's or a service's on ``asyncdal.Base``): map "no such
            user" to 404 without knowing constraint names.
        referred_columns: the columns it points to (``("id",)``).
    """

    code = "foreign_key"
    referred_table: str | None = None
    referred_columns: tuple[str, ...] = ()


class CheckViolationError(ConflictError):
    """A check or not-null constraint was violated (SQLSTATE 23514, 23502)."""

    code = "check_violation"


class StaleWriteError(ConflictError):
    """A write lost to another one: the row changed (or went) since the writer read it.

    Raised instead of overwriting someone else's change, for rows with a version (products,
    users): by an ORM flush whose ``UPDATE ... WHERE version = ...`` matched nothing, and by
    ``Repository.update(id, ..., expected_version=n)`` when the row is no longer at version
    ``n``. Read the row again, re-apply the change, and write again (HTTP: 412, then the
    client re-fetches). Nothing of the stale write is kept.

    Attributes:
        model: the model of the row, e.g. ``"Product"``. When one flush wrote several
            versioned rows and one of them was stale, the first of them.
        key: its primary key.
        expected_version: the version the writer had read, when known.
        current_version: the row's version now, when known.
    """

    def __init__(
        self,
        model: str,
        key: object,
        *,
        expected_version: int | None = None,
        current_version: int | None = None,
    ) -> None:
        self.model = model
        self.key = key
        self.expected_version = expected_version
        self.current_version = current_version
        versions = ""
        if expected_version is not None:
            now = "" if current_version is None else f", it is now at {current_version}"
            versions = f" (the write expected version {expected_version}{now})"
        super().__init__(
            f"{model} {key!r} was changed or deleted by someone else since it was read"
            f"{versions}; read it again and re-apply the change",
            constraint=None,
        )


class InvalidQueryError(AsyncDALError, ValueError):
    """A query was asked for with a name or value the layer does not allow.

    Raised for unknown filter fields, operators or sort keys, bad limits, malformed cursors,
    and values that do not fit their column (too long, out of range, NUL bytes...), before
    anything is sent, or, for ``add_many``'s COPY, when the server refuses a value, naming the
    row (``row_index``) and the field: either way nothing is written. The message names the
    field and what is allowed, never the value.
    """


class InvalidTypeError(InvalidQueryError, TypeError):
    """An argument has the wrong Python type for its field (``get("1")``, ``username=123``).

    Also a ``TypeError``; raised before anything is sent, so nothing is written.
    """


class QueryError(AsyncDALError):
    """The database refused a statement for a reason not covered by a narrower class.

    For example division by zero (SQLSTATE 22012) or an undefined table (42P01) in the
    caller's own SQL. Running it again will fail again.

    Attributes:
        sqlstate: the PostgreSQL error code, when the database reported one.
    """

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        self.sqlstate = sqlstate
        super().__init__(message)


class ReadOnlyTransactionError(QueryError):
    """A write ran inside a read-only transaction (SQLSTATE 25006).

    ``db.gather`` runs each read in a read-only transaction; write in ``db.session()`` or
    ``db.transaction()`` instead.
    """


class StaleStatementError(AsyncDALError):
    """A prepared statement cached on a connection went stale after a schema change (DDL).

    The layer retries such a statement once by itself where that is safe: as the first
    statement of a unit of work, in ``db.gather`` and anywhere in ``db.transaction``. Raised
    when the transaction had already done work: it is rolled back, and running the unit of
    work again succeeds (the stale caches were cleared).
    """


class SessionClosedError(AsyncDALError):
    """A session was used after its ``async with db.session()`` block (or its read) ended."""


class TransactionUsageError(AsyncDALError):
    """A transaction was misused, or is missing where one is needed.

    ``db.transaction`` owns the transaction: it commits, rolls back and retries. A nested
    call would multiply the retries, and a ``commit()`` inside ``fn`` would make part of the
    work permanent before a retry runs it again. A streamed result (``Repository.stream``,
    ``session.stream()``) is a server-side cursor, which lives in a transaction: in a read
    session (``db.read()``, a ``db.gather()`` read), which has none, it is refused before
    anything is sent; stream inside ``db.session()``.
    """


class ConcurrencyError(AsyncDALError):
    """A serialization failure or deadlock: the transaction may succeed if run again.

    Raised by the call that hit it (``attempts`` 1), and by ``db.transaction`` once its
    retries are exhausted.

    Attributes:
        attempts: how many times the transaction was run.
        sqlstate: ``"40001"`` or ``"40P01"``, when known.
    """

    def __init__(self, message: str, *, attempts: int, sqlstate: str | None = None) -> None:
        self.attempts = attempts
        self.sqlstate = sqlstate
        super().__init__(message)


class QueryTimeoutError(AsyncDALError):
    """A query or a group of reads ran past its timeout and was cancelled."""


class DatabaseUnavailableError(AsyncDALError):
    """The database cannot be reached: connection refused or lost, auth failed, pool exhausted."""


class AuthenticationError(DatabaseUnavailableError):
    """The server refused the credentials: wrong password, unknown role, or no pg_hba entry.

    A :class:`DatabaseUnavailableError` (the database cannot be used), but retrying will not
    help: the user name, password or server configuration must change.
    """


class ConcurrentSessionUseError(AsyncDALError):
    """One ``AsyncSession`` was used by two tasks at the same time.

    An ``AsyncSession`` (like the asyncpg connection beneath it) runs one statement at a time.
    Give every concurrent task its own session: ``await db.gather(...)`` does that for you.
    """


class ConfigurationError(AsyncDALError, ValueError):
    """A setting is invalid: an unsupported URL, a negative pool size, an unparsable variable."""


class MigrationError(AsyncDALError):
    """The schema could not be migrated, or does not match the models."""
