"""FastAPI integration (the ``asyncdal[fastapi]`` extra): lifespan, dependencies, error handlers.

Five lines make a service::

    from fastapi import FastAPI
    from asyncdal.fastapi import DatabaseDep, SessionDep, install_error_handlers, lifespan

    app = FastAPI(lifespan=lifespan(migrate=True))  # Database from DATABASE_URL, ASYNCDAL_*
    install_error_handlers(app)                     # the error tree -> 404/409/422/503/504/500

- :func:`lifespan` creates the :class:`~asyncdal.Database` at start-up (or adopts yours),
  migrates it if asked and disposes it at shutdown; it lives in ``app.state.db``.
- :data:`SessionDep`: one session per request, committed when the endpoint returns and before
  the response is sent (a failed commit is an error response, never a false 201), rolled back
  when the endpoint raises.
- :data:`DatabaseDep`: the database itself, for ``await db.gather(...)`` (a session per read).
- :class:`ReadYourWrites`: with read replicas, ``app.add_middleware(ReadYourWrites)`` makes a
  client's reads see its own earlier writes across requests (a cookie carries the token).
- :func:`install_error_handlers`: bodies are ``{"error": code, "detail": message}``; 5xx bodies
  are generic: no SQL, stack trace or password reaches a client. ``StaleWriteError`` (a stale
  ``If-Match`` / ``expected_version``) is 412 with the row's current :func:`etag`.

Not imported by ``import asyncdal``. Without FastAPI, importing this module raises an
``ImportError`` that names the extra to install.
"""

try:
    import fastapi
except ModuleNotFoundError as exc:
    raise ImportError("asyncdal.fastapi needs FastAPI: pip install 'asyncdal[fastapi]'") from exc
from asyncdal.fastapi._deps import DatabaseDep, SessionDep, get_db, get_session
from asyncdal.fastapi._errors import INTERNAL_ERROR_MESSAGE, etag, install_error_handlers
from asyncdal.fastapi._lifespan import MIGRATE_ON_START_ENV, lifespan, migrate_on_start
from asyncdal.fastapi._read_your_writes import ReadYourWrites

__all__ = [
    "INTERNAL_ERROR_MESSAGE",
    "MIGRATE_ON_START_ENV",
    "DatabaseDep",
    "ReadYourWrites",
    "SessionDep",
    "etag",
    "get_db",
    "get_session",
    "install_error_handlers",
    "lifespan",
    "migrate_on_start",
]

del fastapi  # imported above only to name the extra when it is missing
