"""asyncdal: an async data-access layer for PostgreSQL.

Built on SQLAlchemy 2.0's asyncio ORM, asyncpg and Alembic. Every concurrent read runs in its
own ``AsyncSession``: ``await db.gather(...)`` is the obvious way to fan out queries.

This module is the layer: the database, sessions, repositories, errors and migrations. The
domain lives in public subpackages (:mod:`asyncdal.accounts`, :mod:`asyncdal.social`,
:mod:`asyncdal.commerce`); test helpers in :mod:`asyncdal.testing`; the command line, an extra,
in :mod:`asyncdal.cli`.
"""

import importlib as _importlib
import warnings as _warnings

from asyncdal._base import Base, CreatedAtMixin, IdMixin, VersionedMixin
from asyncdal._config import Settings
from asyncdal._database import Database
from asyncdal._errors import (
    AsyncDALError,
    AuthenticationError,
    CheckViolationError,
    ConcurrencyError,
    ConcurrentSessionUseError,
    ConfigurationError,
    ConflictError,
    DatabaseUnavailableError,
    DuplicateError,
    ForeignKeyError,
    InvalidQueryError,
    InvalidTypeError,
    MigrationError,
    NotFoundError,
    QueryError,
    QueryTimeoutError,
    ReadOnlyTransactionError,
    SessionClosedError,
    StaleStatementError,
    StaleWriteError,
    TransactionUsageError,
)
from asyncdal._gather import Read
from asyncdal._migrate import check_schema, current_revision, downgrade, head_revision, upgrade
from asyncdal._repository import Filter, Page, ReadRepository, Repository, WhereSpec
from asyncdal._session import DALSession
from asyncdal._stats import DatabaseStats, PoolStats

__version__ = "0.1.0"

__all__ = [
    "AsyncDALError",
    "AuthenticationError",
    "Base",
    "CheckViolationError",
    "ConcurrencyError",
    "ConcurrentSessionUseError",
    "ConfigurationError",
    "ConflictError",
    "CreatedAtMixin",
    "DALSession",
    "Database",
    "DatabaseStats",
    "DatabaseUnavailableError",
    "DuplicateError",
    "Filter",
    "ForeignKeyError",
    "IdMixin",
    "InvalidQueryError",
    "InvalidTypeError",
    "MigrationError",
    "NotFoundError",
    "Page",
    "PoolStats",
    "QueryError",
    "QueryTimeoutError",
    "Read",
    "ReadOnlyTransactionError",
    "ReadRepository",
    "Repository",
    "SessionClosedError",
    "Settings",
    "StaleStatementError",
    "StaleWriteError",
    "TransactionUsageError",
    "VersionedMixin",
    "WhereSpec",
    "__version__",
    "check_schema",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
]

# Errors that moved to the package they belong to; the old names still work, with a warning.
_MOVED = {
    "EmbeddedPostgresError": "asyncdal.testing",
    "InsufficientStockError": "asyncdal.commerce",
}


def __getattr__(name: str) -> object:
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module 'asyncdal' has no attribute {name!r}")
    _warnings.warn(
        f"asyncdal.{name} moved to {home}.{name}; import it from there",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(_importlib.import_module(home), name)
