"""The exception tree of asyncdal.

Every error the layer raises derives from :class:`AsyncDALError`, so a caller can catch one class::

    AsyncDALError
    ├── NotFoundError
    ├── ConflictError
    │   ├── DuplicateError            (SQLSTATE 23505, unique violation)
    │   ├── ForeignKeyError           (SQLSTATE 23503, foreign key violation)
    │   ├── CheckViolationError       (SQLSTATE 23514 / 23502, check or not-null violation)
    │   ├── InsufficientStockError    (an order asked for more than is in stock)
    │   └── StaleWriteError           (the row changed since it was read: its version moved)
    ├── InvalidQueryError             (also a ValueError: a bad argument: unknown field, operator,
    │   │                              sort key, a value that does not fit its column, ...)
    │   └── InvalidTypeError          (also a TypeError: an argument of the wrong Python type)
    ├── ConcurrencyError              (serialization failure or deadlock, retries exhausted)
    ├── QueryTimeoutError             (SQLSTATE 57014, or a client-side timeout)
    ├── DatabaseUnavailableError      (cannot connect, connection lost, pool exhausted)
    ├── ConcurrentSessionUseError     (one AsyncSession used by two tasks at once)
    ├── ConfigurationError            (also a ValueError: bad URL or option)
    ├── MigrationError                (the schema could not be migrated or checked)
    └── EmbeddedPostgresError         (the throwaway local server could not start)

The driver's exception is always chained (``raise ... from exc``), and no message ever contains a
password: URLs are rendered with the password masked.
"""

from __future__ import annotations

__all__ = [
    "AsyncDALError",
    "CheckViolationError",
    "ConcurrencyError",
    "ConcurrentSessionUseError",
    "ConfigurationError",
    "ConflictError",
    "DatabaseUnavailableError",
    "DuplicateError",
    "EmbeddedPostgresError",
    "ForeignKeyError",
    "InsufficientStockError",
    "InvalidQueryError",
    "InvalidTypeError",
    "MigrationError",
    "NotFoundError",
    "QueryTimeoutError",
    "StaleWriteError",
]


class AsyncDALError(Exception):
    """Base class of every error raised by asyncdal."""


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
    """

    def __init__(self, message: str, *, constraint: str | None = None) -> None:
        self.constraint = constraint
        super().__init__(message)


class DuplicateError(ConflictError):
    """A unique constraint was violated (SQLSTATE 23505)."""


class ForeignKeyError(ConflictError):
    """A foreign key was violated (SQLSTATE 23503): a referenced row is missing or still used."""


class CheckViolationError(ConflictError):
    """A check or not-null constraint was violated (SQLSTATE 23514, 23502)."""


class InsufficientStockError(ConflictError):
    """An order asked for more units of a product than are in stock.

    Nothing of the order is written when this is raised.

    Attributes:
        product_id: the product that is short.
        requested: the quantity the order asked for.
        available: the stock when the order was checked.
    """

    def __init__(self, product_id: int, *, requested: int, available: int) -> None:
        self.product_id = product_id
        self.requested = requested
        self.available = available
        super().__init__(
            f"insufficient stock for product {product_id}: "
            f"requested {requested}, available {available}",
            constraint=None,
        )


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
    and values that do not fit their column (too long, out of range, NUL bytes...), always
    before anything is sent: nothing is written. The message names the field and what is
    allowed, never the whole value.
    """


class InvalidTypeError(InvalidQueryError, TypeError):
    """An argument has the wrong Python type for its field (``get("1")``, ``username=123``).

    Also a ``TypeError``; raised before anything is sent, so nothing is written.
    """


class ConcurrencyError(AsyncDALError):
    """A transaction kept failing with serialization failures or deadlocks.

    Attributes:
        attempts: how many times the transaction was run.
    """

    def __init__(self, message: str, *, attempts: int) -> None:
        self.attempts = attempts
        super().__init__(message)


class QueryTimeoutError(AsyncDALError):
    """A query or a group of reads ran past its timeout and was cancelled."""


class DatabaseUnavailableError(AsyncDALError):
    """The database cannot be reached: connection refused or lost, auth failed, pool exhausted."""


class ConcurrentSessionUseError(AsyncDALError):
    """One ``AsyncSession`` was used by two tasks at the same time.

    An ``AsyncSession`` (like the asyncpg connection beneath it) runs one statement at a time.
    Give every concurrent task its own session: ``await db.gather(...)`` does that for you.
    """


class ConfigurationError(AsyncDALError, ValueError):
    """A setting is invalid: an unsupported URL, a negative pool size, an unparsable variable."""


class MigrationError(AsyncDALError):
    """The schema could not be migrated, or does not match the models."""


class EmbeddedPostgresError(AsyncDALError, RuntimeError):
    """The throwaway local PostgreSQL server could not be found, started or stopped."""
