"""Migrations: one head, a clean round trip, and models that match the migrated schema."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from alembic.script import ScriptDirectory

from asyncdal import Base, DatabaseUnavailableError
from asyncdal._migrate import (
    alembic_config,
    check_schema,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from asyncdal.alembic import asyncdal_tables
from tests.conftest import _dsn

ROOT = Path(__file__).resolve().parents[1]
DOMAIN_TABLES = {
    "users",
    "follows",
    "posts",
    "hashtags",
    "post_hashtags",
    "likes",
    "products",
    "orders",
    "order_items",
}


async def _catalog(url: str) -> dict[str, set[str]]:
    """Tables, types, sequences and indexes in the public schema."""
    conn = await asyncpg.connect(_dsn(url))
    try:
        tables = {
            r[0]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
        types = {
            r[0]
            for r in await conn.fetch(
                "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
                "WHERE n.nspname = 'public' AND t.typtype = 'e'"
            )
        }
        sequences = {
            r[0]
            for r in await conn.fetch(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'"
            )
        }
        indexes = {
            r[0]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            )
        }
        constraints = {
            r[0]
            for r in await conn.fetch(
                "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                "WHERE n.nspname = 'public'"
            )
        }
    finally:
        await conn.close()
    return {
        "tables": tables,
        "types": types,
        "sequences": sequences,
        "indexes": indexes,
        "constraints": constraints,
    }


def test_there_is_exactly_one_head() -> None:
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    assert len(heads) == 1
    assert heads[0] == head_revision()


def test_models_cover_the_whole_domain() -> None:
    # A service's tables on the same Base (the kitchen-sink suite's) are not ours.
    assert asyncdal_tables() == DOMAIN_TABLES
    assert set(Base.metadata.tables) >= DOMAIN_TABLES


async def test_upgrade_downgrade_upgrade_round_trip(empty_database_url: str) -> None:
    assert await current_revision(empty_database_url) is None

    await upgrade(empty_database_url)
    up = await _catalog(empty_database_url)
    assert await current_revision(empty_database_url) == head_revision()
    assert up["tables"] >= DOMAIN_TABLES
    assert "order_status" in up["types"]
    assert {"users_id_seq", "posts_id_seq", "orders_id_seq"} <= up["sequences"]
    # The indexes the seed queries need.
    assert {
        "ix_users_follower_count",
        "ix_posts_created_at",
        "ix_posts_author_id_created_at",
        "ix_post_hashtags_hashtag_id",
        "ix_orders_user_id_created_at",
    } <= up["indexes"]
    # Every constraint is named by the convention.
    assert {
        "uq_users_username",
        "uq_users_email",
        "ck_products_stock_not_negative",
        "ck_order_items_quantity_positive",
        "fk_order_items_product_id_products",
        "ck_follows_not_self",
        "pk_follows",
    } <= up["constraints"]
    assert await check_schema(empty_database_url) == []

    await downgrade(empty_database_url, "base")
    down = await _catalog(empty_database_url)
    assert down["tables"] <= {"asyncdal_alembic_version"}
    assert down["types"] == set()
    assert down["sequences"] == set()
    assert await current_revision(empty_database_url) is None

    await upgrade(empty_database_url)
    again = await _catalog(empty_database_url)
    assert again == up


async def test_check_schema_reports_drift(empty_database_url: str) -> None:
    await upgrade(empty_database_url)
    conn = await asyncpg.connect(_dsn(empty_database_url))
    try:
        await conn.execute("DROP INDEX ix_posts_created_at")
    finally:
        await conn.close()
    diffs = await check_schema(empty_database_url)
    assert any("ix_posts_created_at" in repr(d) for d in diffs)


def test_alembic_cli_upgrade_and_check(empty_database_url: str) -> None:
    """What a service runs: `alembic upgrade head` then `alembic check`, URL from the env."""
    env = {**os.environ, "DATABASE_URL": empty_database_url}
    alembic = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]
    up = subprocess.run(
        [*alembic, "upgrade", "head"], env=env, capture_output=True, text=True, check=False
    )
    assert up.returncode == 0, up.stderr
    check = subprocess.run(
        [*alembic, "check"], env=env, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr


def test_alembic_cli_accepts_libpq_url_parameters(empty_database_url: str) -> None:
    """The URL a managed PostgreSQL hands out carries sslmode=...: the CLI translates it."""
    url = f"{empty_database_url}?sslmode=disable&application_name=migrator&connect_timeout=5"
    env = {**os.environ, "DATABASE_URL": url}
    alembic = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]
    up = subprocess.run(
        [*alembic, "upgrade", "head"], env=env, capture_output=True, text=True, check=False
    )
    assert up.returncode == 0, up.stderr


def test_alembic_cli_without_url_fails_clearly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    alembic = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]
    result = subprocess.run(
        [*alembic, "upgrade", "head"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr


async def test_migrating_an_unreachable_server_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+asyncpg://app:hunter2-secret@127.0.0.1:{port}/app"
    with pytest.raises(DatabaseUnavailableError) as info:
        await upgrade(url)
    assert "hunter2-secret" not in str(info.value)
