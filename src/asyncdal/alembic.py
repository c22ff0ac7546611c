"""Alembic helpers for asyncdal's migrations and for a service's own migrations beside them.

asyncdal's revisions record their state in their own version table, :data:`VERSION_TABLE`
(``asyncdal_alembic_version``), under the branch label :data:`BRANCH_LABEL`; a service keeps its
own Alembic environment and version table (Alembic's default ``alembic_version``) in the same
database, and neither history touches the other.

A service's ``env.py`` whose models subclass :class:`asyncdal.Base` passes
:func:`exclude_asyncdal` as ``include_object``, so autogenerate and ``alembic check`` see only the
service's tables::

    from asyncdal.alembic import exclude_asyncdal

    context.configure(connection=connection, target_metadata=Base.metadata,
                      include_object=exclude_asyncdal)

:func:`script_location` says where asyncdal's migration scripts are installed (what an ini's
``script_location`` or Alembic's ``Config`` needs to run them).

A service's ``env.py`` gets the rest from here too: :func:`target_metadata` is ``Base.metadata``
with asyncdal's own tables registered (so autogenerate resolves a foreign key to ``users``
instead of failing with ``NoReferencedTableError``), and :func:`async_url` turns the URL a
platform hands out (libpq's ``postgresql://`` or ``postgres://``, or ``postgresql+asyncpg://``)
into the asyncpg URL SQLAlchemy's async engine needs.

asyncdal's own ``env.py`` and :func:`asyncdal.check_schema` use :func:`include_asyncdal`, the
opposite filter: a service's tables and version tables are never reported as drift.
"""

from asyncdal._migrate import script_location
from asyncdal._service_env import async_url, target_metadata
from asyncdal._versions import (
    BRANCH_LABEL,
    LEGACY_VERSION_TABLE,
    VERSION_TABLE,
    adopt_legacy_version,
    asyncdal_tables,
    exclude_asyncdal,
    include_asyncdal,
    read_version,
)

__all__ = [
    "BRANCH_LABEL",
    "LEGACY_VERSION_TABLE",
    "VERSION_TABLE",
    "adopt_legacy_version",
    "async_url",
    "asyncdal_tables",
    "exclude_asyncdal",
    "include_asyncdal",
    "read_version",
    "script_location",
    "target_metadata",
]
