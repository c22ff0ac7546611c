"""The application factory and its lifespan: one :class:`Database` per app.

Run it (``DATABASE_URL`` and the ``ASYNCDAL_*`` pool settings from the environment)::

    uvicorn --factory examples.storefront:create_app

or ``python -m examples.storefront``, which starts an embedded PostgreSQL when
``DATABASE_URL`` is unset. ``ASYNCDAL_MIGRATE_ON_START=1`` migrates the schema to head before
the first request.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI

from asyncdal import ConfigurationError, Database, Settings, upgrade
from examples.storefront import fanout, routes
from examples.storefront.errors import install_error_handlers

__all__ = ["MIGRATE_ON_START_ENV", "create_app", "migrate_on_start"]

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


def create_app(
    db: Database | None = None,
    *,
    settings: Settings | None = None,
    migrate: bool | None = None,
) -> FastAPI:
    """Build the storefront app.

    Args:
        db: a database the caller owns (tests, or a host process): used as is, never disposed
            by the app, and usable at once (even without running the lifespan).
        settings: settings for a database the app creates at start-up and disposes at
            shutdown. Neither ``db`` nor ``settings``: :meth:`Settings.from_env` at start-up.
        migrate: run ``upgrade(db, "head")`` at start-up; ``None`` reads
            ``ASYNCDAL_MIGRATE_ON_START``.
    """
    if db is not None and settings is not None:
        raise ConfigurationError("give create_app() a Database or Settings, not both")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = db is None
        database = db if db is not None else Database(settings or Settings.from_env())
        try:
            if migrate if migrate is not None else migrate_on_start():
                await upgrade(database, "head")
            app.state.db = database
            yield
        finally:
            app.state.db = db
            if owned:
                await database.dispose()

    app = FastAPI(
        title="asyncdal storefront",
        summary="The seed 000 API on asyncdal: users, orders, products, /all/ and a dashboard.",
        lifespan=lifespan,
    )
    app.state.db = db
    install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(fanout.router)
    return app
