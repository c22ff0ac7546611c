"""``app.add_middleware(ReadYourWrites)``: a client reads its own writes across requests.

A real streaming replica applies WAL 300 ms late. A client that created a user and then asks
for it in its next request (bringing back the cookie the first response set) finds it, every
time, while a client without the cookie reads the lagging replica and does not.
"""

from __future__ import annotations

import itertools

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from asyncdal import Database
from asyncdal.accounts import User, UserRepository
from asyncdal.fastapi import DatabaseDep, ReadYourWrites, SessionDep, lifespan
from tests._cluster import Standby, requires_replication
from tests._replicas import fresh, replay_paused

pytestmark = requires_replication

COOKIE = "asyncdal_written"
_names = itertools.count()


class RequestPerTask(httpx.ASGITransport):
    """Each request in a task with a fresh context, as a server runs them.

    httpx's ASGI transport calls the app in the caller's task, so a write of one request
    would stay in the context of the next: the test would pass without any cookie.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await fresh(super().handle_async_request(request))


def make_app(db: Database) -> FastAPI:
    app = FastAPI(lifespan=lifespan(db, migrate=False))
    app.add_middleware(ReadYourWrites)

    @app.post("/users/{name}", status_code=201)
    async def create_user(name: str, session: SessionDep) -> dict[str, int]:
        user = await UserRepository(session).create(username=name, email=f"{name}@x.org")
        return {"id": user.id}

    @app.get("/users/{name}")
    async def find_user(name: str, db: DatabaseDep) -> dict[str, bool]:
        async with db.read() as s:
            replica = await s.scalar(select(func.pg_is_in_recovery()))
            count = await s.scalar(select(func.count()).where(User.username == name))
        return {"on_replica": bool(replica), "found": count == 1}

    @app.get("/users-in-session/{name}")
    async def find_user_in_a_unit_of_work(name: str, session: SessionDep) -> dict[str, bool]:
        count = await session.scalar(select(func.count()).where(User.username == name))
        return {"found": count == 1}

    return app


async def test_a_client_reads_its_own_write_in_the_next_request(
    replica_db: Database, replica: Standby
) -> None:
    app = make_app(replica_db)
    transport = RequestPerTask(app=app)
    async with app.router.lifespan_context(app):
        for _ in range(5):
            name = f"ryw{next(_names)}"
            writer = httpx.AsyncClient(transport=transport, base_url="http://s")
            stranger = httpx.AsyncClient(transport=transport, base_url="http://s")
            async with writer, stranger:
                # The replica replays nothing until the stranger has looked, however slowly
                # this runs: the stranger's miss is certain, not a race with the apply delay.
                async with replay_paused(replica):
                    created = await writer.post(f"/users/{name}")
                    assert created.status_code == 201
                    token = created.cookies.get(COOKIE)
                    assert token is not None
                    assert token.startswith("w2.")
                    # Another client, no cookie: no waiting, the lagging replica answers,
                    # unaware.
                    seen = (await stranger.get(f"/users/{name}")).json()
                    assert seen == {"on_replica": True, "found": False}
                # The writer's next request brings the cookie back: its write is seen, on the
                # replica, once the replica has replayed it.
                mine = (await writer.get(f"/users/{name}")).json()
                assert mine == {"on_replica": True, "found": True}


async def test_a_read_only_request_sets_no_cookie_and_a_bad_cookie_is_ignored(
    replica_db: Database,
) -> None:
    app = make_app(replica_db)
    transport = RequestPerTask(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://s") as client,
    ):
        response = await client.get("/users/nobody")
        assert response.json() == {"on_replica": True, "found": False}
        assert COOKIE not in response.cookies
        # A unit of work (db.session()) that only read is not a write either.
        in_session = await client.get("/users-in-session/nobody")
        assert in_session.json() == {"found": False}
        assert COOKIE not in in_session.cookies
        client.cookies.set(COOKIE, "'; DROP TABLE users; --")
        again = await client.get("/users/nobody")
        assert again.status_code == 200
        assert again.json()["on_replica"] is True


async def test_misuse_and_garbage_pass_through_untouched() -> None:
    # Misuse: the middleware on an app whose lifespan never set app.state.db.
    bare = FastAPI()
    bare.add_middleware(ReadYourWrites)

    @bare.get("/ping")
    async def ping() -> dict[str, str]:
        return {"ok": "yes"}

    transport = RequestPerTask(app=bare)
    async with httpx.AsyncClient(transport=transport, base_url="http://s") as client:
        response = await client.get("/ping", headers={"cookie": f"{COOKIE}=w1.ff"})
        assert response.json() == {"ok": "yes"}
        assert COOKIE not in response.cookies
        # A cookie header the parser rejects, and an oversize token: ignored, not a 500.
        for header in ('";;=\x7f"', f"{COOKIE}=w1.{'f' * 5000}"):
            assert (await client.get("/ping", headers={"cookie": header})).status_code == 200


async def test_an_oversize_or_foreign_token_never_reaches_the_router(replica_db: Database) -> None:
    app = make_app(replica_db)
    transport = RequestPerTask(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://s") as client,
    ):
        for token in (f"w1.{'f' * 17}", "w2.10", "w1.-1", "w1.ZZ"):
            client.cookies.set(COOKIE, token)
            seen = (await client.get("/users/nobody")).json()
            # Ignored: no wait for an impossible position, the replica answers at once.
            assert seen == {"on_replica": True, "found": False}
