"""asyncdal: an async data-access layer for PostgreSQL.

Built on SQLAlchemy 2.0's asyncio ORM, asyncpg and Alembic. Every concurrent read runs in its
own ``AsyncSession``: ``await db.gather(...)`` is the obvious way to fan out queries.
"""

from asyncdal._config import Settings
from asyncdal._database import Database
from asyncdal._embedded import EmbeddedPostgres
from asyncdal._errors import (
    AsyncDALError,
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
    MigrationError,
    NotFoundError,
    QueryTimeoutError,
)
from asyncdal._migrate import check_schema, current_revision, downgrade, head_revision, upgrade
from asyncdal._models import (
    Base,
    Follow,
    Hashtag,
    Like,
    Order,
    OrderItem,
    OrderStatus,
    Post,
    PostHashtag,
    Product,
    User,
)
from asyncdal._session import DALSession

__version__ = "0.1.0"

__all__ = [
    "AsyncDALError",
    "Base",
    "CheckViolationError",
    "ConcurrencyError",
    "ConcurrentSessionUseError",
    "ConfigurationError",
    "ConflictError",
    "DALSession",
    "Database",
    "DatabaseUnavailableError",
    "DuplicateError",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "Follow",
    "ForeignKeyError",
    "Hashtag",
    "InsufficientStockError",
    "InvalidQueryError",
    "Like",
    "MigrationError",
    "NotFoundError",
    "Order",
    "OrderItem",
    "OrderStatus",
    "Post",
    "PostHashtag",
    "Product",
    "QueryTimeoutError",
    "Settings",
    "User",
    "__version__",
    "check_schema",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
]
