"""asyncdal: an async data-access layer for PostgreSQL.

Built on SQLAlchemy 2.0's asyncio ORM, asyncpg and Alembic. Every concurrent read runs in its
own ``AsyncSession``: ``await db.gather(...)`` is the obvious way to fan out queries.

This module is the layer: the database, sessions, repositories, errors and migrations. The
domain lives in public subpackages (:mod:`asyncdal.accounts`, :mod:`asyncdal.social`,
:mod:`asyncdal.commerce`); test helpers in :mod:`asyncdal.testing`; the command line, an extra,
in :mod:`asyncdal.cli`.
"""

from asyncdal._base import Base
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
    EmbeddedPostgresError,
    ForeignKeyError,
    InsufficientStockError,
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
from asyncdal._migrate import check_schema, current_revision, downgrade, head_revision, upgrade
from asyncdal._repository import Filter, Page, Repository
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
    "DALSession",
    "Database",
    "DatabaseStats",
    "DatabaseUnavailableError",
    "DuplicateError",
    "EmbeddedPostgresError",
    "Filter",
    "ForeignKeyError",
    "InsufficientStockError",
    "InvalidQueryError",
    "InvalidTypeError",
    "MigrationError",
    "NotFoundError",
    "Page",
    "PoolStats",
    "QueryError",
    "QueryTimeoutError",
    "ReadOnlyTransactionError",
    "Repository",
    "SessionClosedError",
    "Settings",
    "StaleStatementError",
    "StaleWriteError",
    "TransactionUsageError",
    "__version__",
    "check_schema",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
]
