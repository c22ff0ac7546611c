"""What a service built on asyncdal needs beyond the layer itself, from public names only.

The two-line Alembic ini, the URL and metadata helpers of ``asyncdal.alembic`` for its own
``env.py``, the plugin's ``app_client`` and committed factories for its tests,
``DatabaseStats.as_dict()`` for a status endpoint, ``lifespan(instrument=True)``, and the
``ImportError`` that names the ``[fastapi]`` extra.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from asyncdal import ConfigurationError, Database, DuplicateError, NotFoundError
from asyncdal.accounts import User, UserRepository
from asyncdal.alembic import async_url
from asyncdal.fastapi import SessionDep, install_error_handlers, lifespan
from asyncdal.testing.factories import UserFactory, create, create_one


def _run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        argv, capture_output=True, text=True, timeout=300, check=False, **kwargs
    )


# --- the two-line ini -----------------------------------------------------------------------


async def test_the_two_line_ini_migrates_and_says_what_it_did(
    empty_database_url: str, tmp_path: Path
) -> None:
    # This suite runs on the editable install: the scripts are found through the package
    # (src/asyncdal/migrations), exactly as in the wheel (CI's walk-through runs the wheel).
    (tmp_path / "asyncdal.ini").write_text("[alembic]\nscript_location = asyncdal:migrations\n")
    libpq = make_url(empty_database_url).set(drivername="postgresql")
    env = {**os.environ, "DATABASE_URL": libpq.render_as_string(hide_password=False)}
    alembic = [sys.executable, "-m", "alembic", "-c", "asyncdal.ini"]
    done = await asyncio.to_thread(_run, [*alembic, "upgrade", "head"], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert "Running upgrade  -> 0001" in done.stderr
    assert "Running upgrade 0001 -> 0002" in done.stderr
    again = await asyncio.to_thread(_run, [*alembic, "current"], cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stderr
    assert "0002 (head)" in again.stdout


# --- asyncdal.alembic.async_url and target_metadata -----------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://app:pw@db:5432/app", "postgresql+asyncpg://app:pw@db:5432/app"),
        (
            "postgres://app@db/app?sslmode=require",
            "postgresql+asyncpg://app@db/app?sslmode=require",
        ),
        ("postgresql+asyncpg://app@db/app", "postgresql+asyncpg://app@db/app"),
        (
            "postgresql://app@db1:5432,db2:5433/app",
            "postgresql+asyncpg://app@/app?host=db1%3A5432&host=db2%3A5433",
        ),
    ],
)
def test_async_url_takes_the_libpq_and_asyncpg_forms(given: str, expected: str) -> None:
    assert async_url(given).render_as_string(hide_password=False) == expected


def test_async_url_masks_the_password_and_refuses_other_drivers() -> None:
    url = async_url("postgresql://app:s3cr3t@db/app")
    assert "s3cr3t" not in str(url)
    assert "s3cr3t" not in repr(url)
    for bad in ("postgresql+psycopg://app@db/app", "mysql://app@db/app", "not a url\0"):
        with pytest.raises(ConfigurationError) as caught:
            async_url(bad)
        assert "s3cr3t" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="wat"):
        async_url("postgresql://app@db/app?wat=1")


async def test_an_engine_on_async_url_of_a_libpq_url_connects(migrated_url: str) -> None:
    libpq = make_url(migrated_url).set(drivername="postgresql")
    engine = create_async_engine(async_url(libpq.render_as_string(hide_password=False)))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar() is not None
    finally:
        await engine.dispose()


def test_target_metadata_resolves_a_service_foreign_key_to_users() -> None:
    # In a fresh interpreter that imported nothing of asyncdal's domain: a service's env.py.
    code = (
        "from sqlalchemy import Column, ForeignKey, Integer, Table\n"
        "from asyncdal.alembic import target_metadata\n"
        "md = target_metadata()\n"
        "t = Table('invoices', md, Column('id', Integer, primary_key=True),\n"
        "          Column('user_id', ForeignKey('users.id')))\n"
        "(fk,) = t.foreign_keys\n"
        "print(fk.column.table.name, sorted(md.tables))\n"
    )
    done = _run([sys.executable, "-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("users ")
    for table in ("users", "orders", "products", "posts"):
        assert f"'{table}'" in done.stdout


# --- the pytest plugin: app_client and committed factories ----------------------------------


@pytest.fixture
def app() -> FastAPI:
    """A service's app, built the usual way: its Database comes from DATABASE_URL."""
    service = FastAPI(lifespan=lifespan())
    install_error_handlers(service)

    @service.post("/users/", status_code=201)
    async def register(name: str, session: SessionDep) -> dict[str, int]:
        user = await UserRepository(session).create(username=name, email=f"{name}@example.org")
        return {"id": user.id}

    return service


async def test_app_client_runs_the_lifespan_on_the_test_database(
    app_client: httpx.AsyncClient, committed_db: Database
) -> None:
    # Without the lifespan every request would be 503 (no database on the app).
    created = await app_client.post("/users/", params={"name": "ada"})
    assert created.status_code == 201, created.text
    user = await committed_db.get(User, created.json()["id"])
    assert user.username == "ada"
    duplicate = await app_client.post("/users/", params={"name": "ada"})
    assert duplicate.status_code == 409


async def test_factories_commit_with_a_database(committed_db: Database) -> None:
    ada = await create_one(UserFactory, db=committed_db, username="ada")
    assert ada.id is not None
    # Another connection (the read pool) sees the committed row.
    assert (await committed_db.get(User, ada.id)).username == "ada"
    users = await create(UserFactory, 3, db=committed_db)
    found = await committed_db.get_many(User, [u.id for u in users])
    assert [u.id for u in found] == [u.id for u in users]


async def test_a_failing_committed_factory_call_commits_nothing(committed_db: Database) -> None:
    await create_one(UserFactory, db=committed_db, username="taken")
    with pytest.raises(DuplicateError):
        await create(UserFactory, 2, db=committed_db, username="taken")
    async with committed_db.read() as s:
        assert await UserRepository(s).count() == 1


async def test_factories_without_a_database_write_into_the_rolled_back_session(
    session: object, db: Database
) -> None:
    (ada,) = await create(UserFactory, username="ada")
    with pytest.raises(NotFoundError):  # not committed: the read pool does not see it
        await db.get(User, ada.id)


# --- DatabaseStats.as_dict, lifespan(instrument=True), the [fastapi] extra -------------------


async def test_stats_as_dict_is_json_encodable(committed_db: Database) -> None:
    await committed_db.gather(lambda s: UserRepository(s).count())
    stats = committed_db.stats()
    encoded = json.loads(json.dumps(stats.as_dict()))
    assert encoded["gathers_total"] == stats.gathers_total
    assert encoded["checked_out"] == stats.checked_out
    assert set(encoded["pools"]) == set(stats.pools)
    assert encoded["pools"]["main"]["pool_size"] == stats.pools["main"].pool_size
    assert encoded["errors"] == dict(stats.errors)


async def test_lifespan_instruments_at_start_up_and_undoes_it_at_shutdown(db: Database) -> None:
    from asyncdal.otel import instrument

    service = FastAPI(lifespan=lifespan(db, instrument=True))
    async with service.router.lifespan_context(service):
        with pytest.raises(RuntimeError, match="already instrumented"):
            instrument(db)
    instrument(db).uninstrument()  # undone at shutdown: it can be instrumented again


def test_asyncdal_fastapi_without_fastapi_names_the_extra() -> None:
    code = "import sys; sys.modules['fastapi'] = None; import asyncdal.fastapi"
    done = _run([sys.executable, "-c", code])
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "ImportError: asyncdal.fastapi needs FastAPI: pip install 'asyncdal[fastapi]'"
    )
