"""asyncdal's history beside a service's: own version table, filters, legacy databases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from asyncdal import MigrationError, check_schema, current_revision, head_revision, upgrade
from asyncdal.alembic import (
    VERSION_TABLE,
    asyncdal_tables,
    exclude_asyncdal,
    include_asyncdal,
)
from tests.conftest import _dsn
from tests.test_migrations import DOMAIN_TABLES

ROOT = Path(__file__).resolve().parents[1]
WALKTHROUGH = ROOT / "examples" / "invoicing" / "walkthrough.py"
ALEMBIC_INI = ROOT / "alembic.ini"


async def _sql(url: str, *statements: str) -> list[list[tuple[object, ...]]]:
    conn = await asyncpg.connect(_dsn(url))
    try:
        return [[tuple(r) for r in await conn.fetch(statement)] for statement in statements]
    finally:
        await conn.close()


async def _tables(url: str) -> set[str]:
    (rows,) = await _sql(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {str(r[0]) for r in rows}


def test_our_tables_and_the_filters() -> None:
    assert asyncdal_tables() == DOMAIN_TABLES
    assert include_asyncdal(None, "orders", "table", True, None)
    assert not include_asyncdal(None, "invoices", "table", True, None)
    assert not include_asyncdal(None, "alembic_version", "table", True, None)
    assert not exclude_asyncdal(None, "orders", "table", False, None)
    assert not exclude_asyncdal(None, VERSION_TABLE, "table", True, None)
    assert exclude_asyncdal(None, "invoices", "table", False, None)
    # Columns, indexes and constraints follow their table's fate.
    assert include_asyncdal(None, "anything", "column", True, None)
    assert exclude_asyncdal(None, "anything", "index", True, None)


async def test_our_revisions_live_in_our_version_table(empty_database_url: str) -> None:
    await upgrade(empty_database_url)
    tables = await _tables(empty_database_url)
    assert VERSION_TABLE in tables
    assert "alembic_version" not in tables
    (rows,) = await _sql(empty_database_url, f"SELECT version_num FROM {VERSION_TABLE}")
    assert rows == [(head_revision(),)]


async def test_check_schema_ignores_a_services_tables(empty_database_url: str) -> None:
    await upgrade(empty_database_url)
    await _sql(
        empty_database_url,
        "CREATE TABLE invoices (id bigint PRIMARY KEY, order_id bigint REFERENCES orders (id))",
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
        "INSERT INTO alembic_version VALUES ('inv1')",
    )
    assert await check_schema(empty_database_url) == []
    # ...while drift in our own tables is still reported.
    await _sql(empty_database_url, "ALTER TABLE orders ADD COLUMN note text")
    differences = await check_schema(empty_database_url)
    assert any("note" in repr(d) for d in differences), differences
    assert not any("invoices" in repr(d) for d in differences)


async def test_a_database_at_0001_under_alembic_version_is_adopted(
    empty_database_url: str,
) -> None:
    """Migrated before asyncdal had its own version table: the revision moves over."""
    await upgrade(empty_database_url, "0001")
    await _sql(
        empty_database_url,
        f"ALTER TABLE {VERSION_TABLE} RENAME TO alembic_version",
        f"ALTER TABLE alembic_version RENAME CONSTRAINT {VERSION_TABLE}_pkc TO alembic_version_pkc",
    )
    assert await current_revision(empty_database_url) == "0001"  # read from the legacy table
    await upgrade(empty_database_url)
    tables = await _tables(empty_database_url)
    assert "alembic_version" not in tables  # nothing else was in it
    assert await current_revision(empty_database_url) == head_revision()
    assert await check_schema(empty_database_url) == []


async def test_adoption_leaves_a_services_rows_alone(empty_database_url: str) -> None:
    await upgrade(empty_database_url, "0001")
    await _sql(
        empty_database_url,
        f"DROP TABLE {VERSION_TABLE}",
        "CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)",
        "INSERT INTO alembic_version VALUES ('0001'), ('svc1')",
    )
    await upgrade(empty_database_url)
    (legacy, ours) = await _sql(
        empty_database_url,
        "SELECT version_num FROM alembic_version",
        f"SELECT version_num FROM {VERSION_TABLE}",
    )
    assert legacy == [("svc1",)]
    assert ours == [(head_revision(),)]


async def test_an_unknown_revision_is_a_migration_error(empty_database_url: str) -> None:
    with pytest.raises(MigrationError, match="no_such_rev"):
        await upgrade(empty_database_url, "no_such_rev")
    assert await current_revision(empty_database_url) is None


def test_consumer_walkthrough(empty_database_url: str, tmp_path: Path) -> None:
    """The walk-through CI runs from a wheel, here on the installed checkout."""
    result = subprocess.run(
        [sys.executable, str(WALKTHROUGH), "--database-url", empty_database_url],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "consumer walk-through passed" in result.stdout


async def test_the_alembic_command_adopts_a_legacy_database(empty_database_url: str) -> None:
    """The same move through `alembic upgrade head` (its own connection, committed first)."""
    await upgrade(empty_database_url, "0001")
    await _sql(
        empty_database_url,
        f"ALTER TABLE {VERSION_TABLE} RENAME TO alembic_version",
        f"ALTER TABLE alembic_version RENAME CONSTRAINT {VERSION_TABLE}_pkc TO alembic_version_pkc",
    )
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), "upgrade", "head"],
        env={**os.environ, "DATABASE_URL": empty_database_url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "alembic_version" not in await _tables(empty_database_url)
    (rows,) = await _sql(empty_database_url, f"SELECT version_num FROM {VERSION_TABLE}")
    assert rows == [(head_revision(),)]
