"""Version tables (ours, the legacy one) and the include_object filters: see asyncdal.alembic."""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from typing import Any

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect, select
from sqlalchemy.engine import Connection

__all__ = [
    "BRANCH_LABEL",
    "LEGACY_VERSION_TABLE",
    "VERSION_TABLE",
    "adopt_legacy_version",
    "asyncdal_tables",
    "exclude_asyncdal",
    "include_asyncdal",
    "read_version",
]

#: The table asyncdal's revisions are recorded in (a service's stay in its own).
VERSION_TABLE = "asyncdal_alembic_version"
#: The branch label of asyncdal's history: ``alembic upgrade asyncdal@head``.
BRANCH_LABEL = "asyncdal"
#: Where asyncdal < 0.2 recorded its revision (Alembic's default table).
LEGACY_VERSION_TABLE = "alembic_version"


@cache
def asyncdal_tables() -> frozenset[str]:
    """The names of asyncdal's own tables (a service's models on the same ``Base`` excluded)."""
    # Importing the schema registers the domain models; a model is ours when asyncdal defines it.
    from asyncdal._schema import Base

    return frozenset(
        mapper.local_table.name  # type: ignore[attr-defined]
        for mapper in Base.registry.mappers
        if mapper.class_.__module__.partition(".")[0] == "asyncdal"
    )


def include_asyncdal(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """``include_object`` hook keeping asyncdal's tables only (used by asyncdal's ``env.py``)."""
    del obj, reflected, compare_to
    return type_ != "table" or name in asyncdal_tables()


def exclude_asyncdal(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """``include_object`` hook for a service's ``env.py``: everything but asyncdal's tables.

    asyncdal's version table is left out too, so autogenerate never proposes to drop it.
    """
    del obj, reflected, compare_to
    return type_ != "table" or (name not in asyncdal_tables() and name != VERSION_TABLE)


def _version_table(name: str) -> Table:
    # The same shape Alembic gives its version table.
    return Table(
        name,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{name}_pkc"),
    )


def read_version(connection: Connection, revisions: Collection[str]) -> str | None:
    """The revision of asyncdal's schema, reading the legacy table if the new one is absent.

    ``revisions`` are asyncdal's revision ids: a legacy ``alembic_version`` row counts only
    when it is one of them (a service may keep its own rows there).
    """
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables:
        table = _version_table(VERSION_TABLE)
        return connection.execute(select(table.c.version_num)).scalars().first()
    if LEGACY_VERSION_TABLE in tables:
        legacy = _version_table(LEGACY_VERSION_TABLE)
        rows = connection.execute(select(legacy.c.version_num)).scalars()
        return next((row for row in rows if row in revisions), None)
    return None


def adopt_legacy_version(connection: Connection, revisions: Collection[str]) -> str | None:
    """Move asyncdal's revision from ``alembic_version`` to :data:`VERSION_TABLE`.

    For databases migrated before asyncdal had its own version table. A no-op when the new
    table exists or the legacy one holds none of ``revisions``; the legacy table is dropped
    only when nothing else is left in it. Returns the revision moved, if any.
    """
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE in tables or LEGACY_VERSION_TABLE not in tables:
        return None
    legacy = _version_table(LEGACY_VERSION_TABLE)
    rows = list(connection.execute(select(legacy.c.version_num)).scalars())
    ours = [row for row in rows if row in revisions]
    if not ours:
        return None
    table = _version_table(VERSION_TABLE)
    table.create(connection)
    connection.execute(table.insert(), [{"version_num": row} for row in ours])
    connection.execute(legacy.delete().where(legacy.c.version_num.in_(ours)))
    if len(ours) == len(rows):
        legacy.drop(connection)
    return str(ours[0])
