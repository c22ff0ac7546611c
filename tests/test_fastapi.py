"""asyncdal.fastapi on a minimal app of its own (the storefront tests cover it more widely)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from asyncdal import ConfigurationError, Database
from asyncdal.accounts import User, UserRepository
from asyncdal.fastapi import (
    INTERNAL_ERROR_MESSAGE,
    DatabaseDep,
    SessionDep,
    install_error_handlers,
    lifespan,
)

pytestmark = pytest.mark.committed


class Boom(Exception):
    """The endpoint's own failure, after it wrote."""


def make_app(db: Database) -> FastAPI:
    app = FastAPI(lifespan=lifespan(db))
    install_error_handlers(app)

    @app.post("/users/{name}", status_code=201)
    async def add(name: str, session: SessionDep) -> dict[str, str]:
        # No flush: a duplicate only shows at the commit, after the endpoint returned.
        session.add(User(username=name, email=f"{name}@example.org"))
        return {"created": name}

    @app.post("/fail/{name}")
    async def fail(name: str, session: SessionDep) -> None:
        await UserRepository(session).create(username=name, email=f"{name}@example.org")
        raise Boom("the password is hunter2 and the SQL is SELECT 1")

    @app.get("/count")
    async def count(db: DatabaseDep) -> dict[str, int]:
        (n,) = await db.gather(lambda s: s.scalar(select(func.count()).select_from(User)))
        return {"users": int(n or 0)}

    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://service")


async def test_commit_happens_before_the_response(committed_db: Database) -> None:
    app = make_app(committed_db)
    async with app.router.lifespan_context(app), client_for(app) as client:
        assert (await client.post("/users/ada")).status_code == 201
        # The second insert fails at COMMIT: the client gets 409, never a false 201.
        duplicate = await client.post("/users/ada")
        assert duplicate.status_code == 409
        assert duplicate.json()["error"] == "duplicate"
        assert duplicate.json()["constraint"] in {"uq_users_username", "uq_users_email"}
        assert (await client.get("/count")).json() == {"users": 1}


async def test_an_endpoint_error_rolls_back_and_reveals_nothing(committed_db: Database) -> None:
    app = make_app(committed_db)
    async with app.router.lifespan_context(app), client_for(app) as client:
        response = await client.post("/fail/bob")
        assert response.status_code == 500
        assert response.json() == {"error": "internal_error", "detail": INTERNAL_ERROR_MESSAGE}
        assert "hunter2" not in response.text
        assert (await client.get("/count")).json() == {"users": 0}


async def test_the_lifespan_leaves_an_injected_database_open(committed_db: Database) -> None:
    app = make_app(committed_db)
    async with app.router.lifespan_context(app):
        assert app.state.db is committed_db
    assert app.state.db is committed_db
    async with committed_db.session() as session:
        assert await session.scalar(select(1)) == 1


async def test_no_database_is_503(committed_db: Database) -> None:
    app = FastAPI()  # no lifespan ran: no app.state.db
    install_error_handlers(app)

    @app.get("/count")
    async def count(db: DatabaseDep) -> dict[str, int]:
        return {"users": 0}

    async with client_for(app) as client:
        response = await client.get("/count")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def test_database_and_settings_together_is_an_error(db: Database) -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        lifespan(db, settings=db.settings)


async def test_the_readme_example_runs(
    committed_db: Database, migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_readme import _python_block_after

    monkeypatch.setenv("DATABASE_URL", migrated_url)
    namespace: dict[str, object] = {}
    exec(compile(_python_block_after("## FastAPI"), "README.md", "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, FastAPI)
    async with app.router.lifespan_context(app), client_for(app) as client:
        created = await client.post("/users/", params={"name": "ada"})
        assert created.status_code == 201, created.text
        again = await client.post("/users/", params={"name": "ada"})
        assert again.status_code == 409
        dashboard = await client.get("/dashboard")
        assert dashboard.status_code == 200, dashboard.text
        assert [u["username"] for u in dashboard.json()["top_users"]] == ["ada"]
