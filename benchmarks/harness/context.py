"""The contenders' shared set-up: the same database, the same pool settings, three clients.

- the layer: one :class:`Database` (its defaults, except the pool size: so no pre-ping);
- plain SQLAlchemy: ``create_async_engine`` + ``async_sessionmaker(AsyncSession)``, as the
  SQLAlchemy docs write it, with the layer's pool settings (size, no overflow, pool_timeout,
  pool_recycle, no pre-ping) and its client-side ``command_timeout`` (asyncpg arms a timer per
  call for it: a cost the layer always pays, so the plain side pays it too);
- raw asyncpg: ``asyncpg.create_pool`` (the seed 000 way), same size and ``command_timeout``.

:func:`settings_caption` says all of this in one line for the tables.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from asyncdal import Database
from asyncdal.accounts import User

__all__ = [
    "POOL_SIZE",
    "PROFILES",
    "BenchContext",
    "Profile",
    "open_context",
    "settings_caption",
]

#: Connections every contender may use at once.
POOL_SIZE = 10


@dataclass(frozen=True)
class Profile:
    """Sizes of one benchmark run (``full``, ``quick`` or ``smoke``)."""

    name: str
    scale: float
    repeats: int
    sleep: float  # B1: seconds each pg_sleep read takes
    fanout: int  # B1: reads per fan-out
    dashboards: int  # B2: dashboards per sample
    tasks: int  # B3: concurrent tasks
    lookups: int  # B3: lookups per task
    rows: int  # B4: rows per bulk insert
    net_tasks: int  # B5: concurrent tasks (each reads one row after another)
    net_reads: int  # B5: reads per task
    delays: tuple[float, ...]  # B5: one-way delays the proxy adds, seconds


_DELAYS = (0.0, 0.00025, 0.0005, 0.001)
PROFILES = {
    "full": Profile("full", 1.0, 9, 0.05, 8, 5, 64, 40, 100_000, 4, 40, _DELAYS),
    "quick": Profile("quick", 0.2, 5, 0.05, 8, 3, 64, 8, 10_000, 4, 10, _DELAYS),
    "smoke": Profile("smoke", 0.01, 1, 0.01, 8, 1, 64, 2, 2_000, 2, 2, (0.0, 0.0005)),
}


@dataclass
class BenchContext:
    """Everything a benchmark needs; built once per run by :func:`open_context`."""

    profile: Profile
    db: Database
    engine: AsyncEngine
    plain: async_sessionmaker[AsyncSession]
    pool: asyncpg.Pool
    user_ids: list[int]
    #: The URL every client was opened on (B5: the delaying proxy's).
    url: str


def raw_dsn(url: str) -> str:
    """The asyncpg DSN for an SQLAlchemy URL."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


def settings_caption(db: Database) -> str:
    """The client settings every contender shares, for the tables' captions."""
    settings = db.settings
    return (
        f"Every contender: pool of {settings.pool_size} connections, no overflow, no pre-ping, "
        f"command_timeout {settings.effective_command_timeout:g} s (layer, plain SQLAlchemy and "
        f"raw asyncpg alike), pool_timeout {settings.pool_timeout:g} s and pool_recycle "
        f"{settings.pool_recycle:g} s (layer and plain SQLAlchemy)."
    )


@asynccontextmanager
async def open_context(url: str, profile: Profile) -> AsyncIterator[BenchContext]:
    """Open the three clients on ``url`` (already migrated and seeded) and close them after."""
    db = Database.from_url(
        url, pool_size=POOL_SIZE, max_overflow=0, application_name="asyncdal-bench"
    )
    settings = db.settings
    timeout = settings.effective_command_timeout
    engine = create_async_engine(
        make_url(url).set(drivername="postgresql+asyncpg"),
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        pool_recycle=settings.pool_recycle,
        pool_pre_ping=settings.pool_pre_ping,
        connect_args={
            "command_timeout": timeout,
            "server_settings": {"application_name": "asyncdal-bench-plain"},
        },
    )
    pool = await asyncpg.create_pool(
        raw_dsn(url),
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
        command_timeout=timeout,
        server_settings={"application_name": "asyncdal-bench-raw"},
    )
    try:
        async with db.session() as session:
            ids = list((await session.scalars(select(User.id).order_by(User.id))).all())
        yield BenchContext(
            profile,
            db,
            engine,
            async_sessionmaker(engine, expire_on_commit=False),
            pool,
            ids,
            url,
        )
    finally:
        await pool.close()
        await engine.dispose()
        await db.dispose()
