"""The storefront app's life and its failure modes, over HTTP.

- The lifespan creates the :class:`Database` (from settings or the environment), migrates when
  asked, and disposes it; an injected database is used as is and left to its owner.
- A database that is down, slow or broken becomes 503, 504 or a generic 500, and no response
  body carries a stack trace, SQL text or a password.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from decimal import Decimal
from pathlib import Path
from typing import cast

import asyncpg
import httpx
import pytest
from examples.storefront import create_app
from examples.storefront.app import migrate_on_start
from sqlalchemy.engine import make_url
from sqlalchemy.pool import QueuePool

from asyncdal import (
    CheckViolationError,
    ConcurrencyError,
    ConcurrentSessionUseError,
    ConfigurationError,
    Database,
    DatabaseUnavailableError,
    DuplicateError,
    ForeignKeyError,
    InvalidQueryError,
    MigrationError,
    NotFoundError,
    QueryTimeoutError,
    Settings,
    current_revision,
    head_revision,
)
from asyncdal.commerce import InsufficientStockError, Product
from asyncdal.fastapi import INTERNAL_ERROR_MESSAGE
from tests.conftest import TEST_APPLICATION_NAME, _dsn

pytestmark = pytest.mark.committed


def client_for(app: object, *, raise_app_exceptions: bool = True) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://storefront")


def assert_no_internals(text: str) -> None:
    for leak in ("Traceback", "SELECT", "select ", "sqlalchemy", "asyncpg", 'File "'):
        assert leak not in text, f"{leak!r} leaked into a response: {text}"


# -- lifespan ----------------------------------------------------------------------------------


async def test_lifespan_creates_migrates_and_disposes(empty_database_url: str) -> None:
    settings = Settings(url=make_url(empty_database_url), pool_size=2, max_overflow=0)
    app = create_app(settings=settings, migrate=True)
    assert app.state.db is None
    async with app.router.lifespan_context(app), client_for(app) as client:
        # The lifespan set it (mypy still narrows app.state.db to the None asserted above).
        db = cast("Database | None", app.state.db)
        assert isinstance(db, Database)
        assert db.settings.pool_size == 2
        assert await current_revision(db) == head_revision()
        created = await client.post("/users/", json={"username": "ada", "email": "a@example.org"})
        assert created.status_code == 201
        assert (await client.get("/all/")).json()["users"][0]["username"] == "ada"
        assert cast(QueuePool, db.engine.pool).checkedin() >= 1
    # Shut down: the pool is closed and the app no longer has a database.
    assert cast(QueuePool, db.engine.pool).checkedin() == 0
    assert app.state.db is None
    async with client_for(app) as client:
        after = await client.get("/users/")
    assert after.status_code == 503
    assert after.json()["error"] == "unavailable"


async def test_lifespan_reads_the_environment(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", migrated_url)
    monkeypatch.setenv("ASYNCDAL_POOL_SIZE", "3")
    monkeypatch.setenv("ASYNCDAL_APPLICATION_NAME", "storefront-env")
    monkeypatch.setenv("ASYNCDAL_MIGRATE_ON_START", "no")
    app = create_app()
    async with app.router.lifespan_context(app), client_for(app) as client:
        db: Database = app.state.db
        assert (db.settings.pool_size, db.settings.application_name) == (3, "storefront-env")
        assert db.url.database == make_url(migrated_url).database
        assert (await client.get("/users/", params={"username": "nobody"})).json()["items"] == []


async def test_migrate_on_start_from_the_environment(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", empty_database_url)
    monkeypatch.setenv("ASYNCDAL_MIGRATE_ON_START", "1")
    app = create_app()
    async with app.router.lifespan_context(app):
        assert await current_revision(app.state.db) == head_revision()


def test_migrate_on_start_parsing() -> None:
    assert migrate_on_start({}) is False
    assert migrate_on_start({"ASYNCDAL_MIGRATE_ON_START": "TRUE"}) is True
    assert migrate_on_start({"ASYNCDAL_MIGRATE_ON_START": "off"}) is False
    with pytest.raises(ConfigurationError, match="ASYNCDAL_MIGRATE_ON_START"):
        migrate_on_start({"ASYNCDAL_MIGRATE_ON_START": "perhaps"})


async def test_startup_without_database_url_fails_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = create_app()
    with pytest.raises(ConfigurationError, match="DATABASE_URL is not set"):
        async with app.router.lifespan_context(app):
            pass


async def test_injected_database_is_left_to_its_owner(committed_db: Database) -> None:
    app = create_app(committed_db, migrate=False)
    # Usable at once: ASGITransport does not run the lifespan.
    async with client_for(app) as client:
        assert (await client.get("/products/")).status_code == 200
    async with app.router.lifespan_context(app):
        assert app.state.db is committed_db
    assert app.state.db is committed_db
    async with committed_db.session() as session:  # not disposed: still works
        assert await session.scalar(__import__("sqlalchemy").text("SELECT 1")) == 1


def test_database_and_settings_together_is_an_error(db: Database) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        create_app(db, settings=db.settings)


# -- failures ----------------------------------------------------------------------------------


async def test_unexpected_database_error_is_a_generic_500(empty_database_url: str) -> None:
    # No schema: the driver raises "relation users does not exist", whose text holds the SQL.
    broken = Database.from_url(empty_database_url, pool_size=1, max_overflow=0)
    try:
        app = create_app(broken)
        async with client_for(app, raise_app_exceptions=False) as client:
            for path in ("/users/", "/all/", "/dashboard"):
                response = await client.get(path)
                assert response.status_code == 500, path
                assert response.json() == {
                    "error": "internal_error",
                    "detail": INTERNAL_ERROR_MESSAGE,
                }
                assert_no_internals(response.text)
        assert cast(QueuePool, broken.engine.pool).checkedout() == 0
    finally:
        await broken.dispose()


async def test_unreachable_database_is_503_without_the_password() -> None:
    # A port nothing listens on (1 is privileged and unused), and a password to look for.
    down = Database.from_url(
        "postgresql+asyncpg://shop:hunter2-secret@127.0.0.1:1/shop",
        pool_timeout=2,
        connect_timeout=2,
        pool_pre_ping=False,
    )
    try:
        app = create_app(down)
        async with client_for(app) as client:
            for method, path, body in [
                ("GET", "/users/", None),
                ("GET", "/all/", None),
                ("GET", "/users/1", None),
                ("POST", "/orders/", {"user_id": 1, "items": [{"product_id": 1, "quantity": 1}]}),
            ]:
                response = await client.request(method, path, json=body)
                assert response.status_code == 503, path
                assert response.headers["retry-after"] == "1"
                assert response.json()["error"] == "unavailable"
                assert "hunter2" not in response.text
                assert_no_internals(response.text)
    finally:
        await down.dispose()


async def test_statement_timeout_is_504(committed_db: Database, migrated_url: str) -> None:
    slow = Database.from_url(
        migrated_url,
        statement_timeout=0.2,
        pool_size=2,
        max_overflow=0,
        application_name=TEST_APPLICATION_NAME,
    )
    locker = await asyncpg.connect(_dsn(migrated_url))
    try:
        # Another transaction holds the table: the read waits on the lock past its timeout.
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE products IN ACCESS EXCLUSIVE MODE")
        app = create_app(slow)
        async with client_for(app) as client:
            response = await asyncio.wait_for(client.get("/products/"), timeout=30)
        await lock.rollback()
        assert response.status_code == 504
        assert response.json() == {
            "error": "timeout",
            "detail": "the database did not answer in time",
        }
        assert cast(QueuePool, slow.engine.pool).checkedout() == 0
    finally:
        await locker.close()
        await slow.dispose()


@pytest.mark.parametrize(
    ("exc", "status", "error"),
    [
        (NotFoundError("Order", 7), 404, "not_found"),
        (DuplicateError("dup", constraint="uq_users_email"), 409, "duplicate"),
        (ForeignKeyError("fk", constraint="fk_orders_user_id_users"), 409, "foreign_key"),
        (CheckViolationError("check", constraint="ck_products_stock"), 409, "check_violation"),
        (InsufficientStockError(3, requested=2, available=1), 409, "insufficient_stock"),
        (InvalidQueryError("unknown sort key 'x'"), 422, "invalid_query"),
        (ConcurrencyError("SELECT 1 kept failing", attempts=3), 503, "unavailable"),
        (DatabaseUnavailableError("connect to SELECT-host failed"), 503, "unavailable"),
        (QueryTimeoutError("SELECT took too long"), 504, "timeout"),
        (ConcurrentSessionUseError("SELECT on a shared session"), 500, "internal_error"),
        (MigrationError("SELECT version_num failed"), 500, "internal_error"),
        (RuntimeError("SELECT * FROM users; Traceback"), 500, "internal_error"),
    ],
)
async def test_every_error_maps_to_its_status(
    db: Database, exc: Exception, status: int, error: str
) -> None:
    app = create_app(db)

    async def fail() -> None:
        raise exc

    app.add_api_route("/fail", fail)
    async with client_for(app, raise_app_exceptions=False) as client:
        response = await client.get("/fail")
    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    if status >= 500:
        # Server-side failures are described generically: their messages are not for clients.
        assert_no_internals(response.text)
    if isinstance(exc, InsufficientStockError):
        assert (body["product_id"], body["requested"], body["available"]) == (3, 2, 1)
    if error in {"duplicate", "foreign_key", "check_violation"}:
        assert body["constraint"] == getattr(exc, "constraint", None)
    assert (response.headers.get("retry-after") == "1") is (status == 503)


# -- the real server ---------------------------------------------------------------------------


REPO_ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_python_m_serves_over_tcp_and_shuts_down_cleanly(
    committed_db: Database, migrated_url: str
) -> None:
    pytest.importorskip("uvicorn", reason="uvicorn comes with the 'examples' extra")
    async with committed_db.session() as session:
        session.add(Product(sku="TCP-1", name="socket", price=Decimal("1.25"), stock=3))
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": migrated_url, "ASYNCDAL_POOL_SIZE": "2"}
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "examples.storefront",
        "--port",
        str(port),
        "--no-migrate",
        env=env,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(300):
                try:
                    response = await client.get("/products/", params={"sku": "TCP-1"})
                    break
                except httpx.TransportError:
                    assert server.returncode is None, "the server exited"
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the server did not answer within 30 s")
            assert response.status_code == 200
            assert [(p["sku"], p["price"]) for p in response.json()["items"]] == [("TCP-1", "1.25")]
            bad = await client.get("/products/", params={"limit": "0"})
            assert bad.status_code == 422
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGINT)
        _, stderr = await asyncio.wait_for(server.communicate(), timeout=30)
    assert server.returncode == 0, stderr.decode()
    assert b"Application shutdown complete" in stderr
