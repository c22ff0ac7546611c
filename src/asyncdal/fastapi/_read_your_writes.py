"""Read-your-writes across requests, in one line: ``app.add_middleware(ReadYourWrites)``.

With read replicas, a client that just wrote (``POST`` then a redirect to ``GET``) may read
from a replica that has not replayed its write yet. The middleware closes that gap the way
GitLab's "sticking" does, by WAL position and per client: a response to a request that wrote
carries the write's token (:meth:`Database.write_token`) in a cookie; the next request that
brings the cookie back makes its replica reads wait for that position (bounded by the
``replica_wait`` setting, then the primary serves). Clients that did not write never wait.

It is a plain ASGI middleware, so the endpoint runs in the middleware's own task and context:
the token set before the endpoint is seen by its reads, and the endpoint's write is seen when
the response starts. Add it last (outermost), and do not put a ``BaseHTTPMiddleware`` inside
it: that runs the endpoint in another task, whose context changes the middleware never sees.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asyncdal import Database, InvalidQueryError

__all__ = ["ReadYourWrites"]


class ReadYourWrites:
    """ASGI middleware: a write's token goes out in a cookie and comes back as ``after=``.

    Args:
        app: the ASGI app (FastAPI passes it).
        cookie: the cookie's name.
        max_age: seconds the cookie lives: a little longer than replicas may lag.

    Example::

        app = FastAPI(lifespan=lifespan())
        app.add_middleware(ReadYourWrites)
    """

    def __init__(self, app: ASGIApp, *, cookie: str = "asyncdal_written", max_age: int = 60):
        """Wrap ``app``; the database is the one :func:`lifespan` keeps in ``app.state.db``."""
        self.app = app
        self.cookie = cookie
        self.max_age = max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Adopt the request's token, run the app, and send the new token if it wrote."""
        db: Any = getattr(getattr(scope.get("app"), "state", None), "db", None)
        if scope["type"] != "http" or not isinstance(db, Database):
            await self.app(scope, receive, send)
            return
        incoming = self._token(scope)
        if incoming is not None:
            try:
                db.read_after(incoming)
            except InvalidQueryError:
                incoming = None  # a cookie from elsewhere or an old format: just ignore it

        async def send_with_token(message: Message) -> None:
            if message["type"] == "http.response.start":
                token = db.write_token()
                if token is not None and token != incoming:
                    value = (
                        f"{self.cookie}={token}; Max-Age={self.max_age}; Path=/; "
                        "HttpOnly; SameSite=Lax"
                    )
                    headers = [*message.get("headers", []), (b"set-cookie", value.encode())]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_token)

    def _token(self, scope: Scope) -> str | None:
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                try:
                    jar = SimpleCookie(value.decode("latin-1"))
                except CookieError:
                    return None
                morsel = jar.get(self.cookie)
                return None if morsel is None else morsel.value
        return None
