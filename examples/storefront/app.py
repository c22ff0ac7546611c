"""The application factory and its lifespan: one :class:`Database` per app.

Run it (``DATABASE_URL`` and the ``ASYNCDAL_*`` pool settings from the environment)::

    uvicorn --factory examples.storefront:create_app

or ``python -m examples.storefront``, which starts an embedded PostgreSQL when
``DATABASE_URL`` is unset. ``ASYNCDAL_MIGRATE_ON_START=1`` migrates the schema to head before
the first request.
"""

from __future__ import annotations

from fastapi import FastAPI

from asyncdal import ConfigurationError, Database, Settings
from asyncdal.fastapi import (
    MIGRATE_ON_START_ENV,
    install_error_handlers,
    lifespan,
    migrate_on_start,
)
from examples.storefront import fanout, routes

__all__ = ["MIGRATE_ON_START_ENV", "create_app", "migrate_on_start"]


def create_app(
    db: Database | None = None,
    *,
    settings: Settings | None = None,
    migrate: bool | None = None,
) -> FastAPI:
    """Build the storefront app on ``asyncdal.fastapi``.

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
    app = FastAPI(
        title="asyncdal storefront",
        summary="The seed 000 API on asyncdal: users, orders, products, /all/ and a dashboard.",
        lifespan=lifespan(db, settings=settings, migrate=migrate),
    )
    app.state.db = db  # an injected database serves requests even without the lifespan
    install_error_handlers(app)
    app.include_router(routes.router)
    app.include_router(fanout.router)
    return app
