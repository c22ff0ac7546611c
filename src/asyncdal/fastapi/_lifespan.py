"""The app's one :class:`Database`: created (or adopted), migrated and disposed with the app."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from asyncdal._config import Settings
from asyncdal._database import Database
from asyncdal._errors import ConfigurationError
from asyncdal._migrate import upgrade

__all__ = ["MIGRATE_ON_START_ENV", "lifespan", "migrate_on_start"]

#: The environment variable :func:`lifespan` reads when ``migrate`` is not given.
MIGRATE_ON_START_ENV = "ASYNCDAL_MIGRATE_ON_START"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def migrate_on_start(environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``ASYNCDAL_MIGRATE_ON_START`` asks to migrate at start-up (default: no)."""
    raw = (os.environ if environ is None else environ).get(MIGRATE_ON_START_ENV, "")
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise ConfigurationError(f"{MIGRATE_ON_START_ENV}={raw!r} is not a boolean")
    return value in _TRUE


def lifespan(
    db: Database | None = None,
    *,
    settings: Settings | None = None,
    migrate: bool | None = None,
    instrument: bool = False,
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """A FastAPI ``lifespan`` that puts one :class:`Database` in ``app.state.db``.

    Example::

        app = FastAPI(lifespan=asyncdal.fastapi.lifespan(migrate=True))

    Args:
        db: a database the caller owns: used as is and never disposed by the app.
        settings: settings for a database created at start-up and disposed at shutdown.
            Neither ``db`` nor ``settings``: :meth:`Settings.from_env` at start-up.
        migrate: ``upgrade(db, "head")`` before the first request; ``None`` reads
            ``ASYNCDAL_MIGRATE_ON_START``.
        instrument: :func:`asyncdal.otel.instrument` the database at start-up, with the global
            OpenTelemetry providers (needs the ``[otel]`` extra; checked here, not at the first
            request), and undo it at shutdown. For other providers, instrument a database you
            own and pass it as ``db``.
    """
    if db is not None and settings is not None:
        raise ConfigurationError("give lifespan() a Database or Settings, not both")
    if instrument:
        from asyncdal.otel import instrument as instrument_db  # ImportError names the extra

    @asynccontextmanager
    async def run(app: FastAPI) -> AsyncIterator[None]:
        owned = db is None
        database = db if db is not None else Database(settings or Settings.from_env())
        instrumentation = None
        try:
            if migrate if migrate is not None else migrate_on_start():
                await upgrade(database, "head")
            if instrument:
                instrumentation = instrument_db(database)
            app.state.db = database
            yield
        finally:
            # Requests after shutdown get 503 (get_db), not a disposed pool.
            app.state.db = db
            if instrumentation is not None:
                instrumentation.uninstrument()
            if owned:
                await database.dispose()

    return run
