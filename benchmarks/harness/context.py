"""The contenders' shared set-up: the same database, the same pool size, three clients.

- the layer: one :class:`Database` (its defaults, except the pool size: so no pre-ping), and
  one with ``pool_pre_ping=True`` (opt-in) to show what the ping costs;
- plain SQLAlchemy: ``create_async_engine`` + ``async_sessionmaker(AsyncSession)``, as the
  SQLAlchemy docs write it (defaults, same pool size);
- raw asyncpg: ``asyncpg.create_pool`` (the seed 000 way), same size.
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

__all__ = ["POOL_SIZE", "PROFILES", "BenchContext", "Profile", "open_context"]

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


PROFILES = {
    "full": Profile("full", 1.0, 9, 0.05, 8, 5, 64, 40, 100_000),
    "quick": Profile("quick", 0.2, 5, 0.05, 8, 3, 64, 8, 10_000),
    "smoke": Profile("smoke", 0.01, 1, 0.01, 8, 1, 64, 2, 2_000),
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
    #: The layer with ``pool_pre_ping=True`` (opt-in; off by default): shows what the ping costs.
    db_pre_ping: Database


def raw_dsn(url: str) -> str:
    """The asyncpg DSN for an SQLAlchemy URL."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


@asynccontextmanager
async def open_context(url: str, profile: Profile) -> AsyncIterator[BenchContext]:
    """Open the three clients on ``url`` (already migrated and seeded) and close them after."""
    db = Database.from_url(
        url, pool_size=POOL_SIZE, max_overflow=0, application_name="asyncdal-bench"
    )
    db_pre_ping = Database.from_url(
        url,
        pool_size=POOL_SIZE,
        max_overflow=0,
        pool_pre_ping=True,
        application_name="asyncdal-bench",
    )
    engine = create_async_engine(
        make_url(url).set(drivername="postgresql+asyncpg"),
        pool_size=POOL_SIZE,
        max_overflow=0,
        connect_args={"server_settings": {"application_name": "asyncdal-bench-plain"}},
    )
    pool = await asyncpg.create_pool(
        raw_dsn(url),
        min_size=POOL_SIZE,
        max_size=POOL_SIZE,
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
            db_pre_ping,
        )
    finally:
        await pool.close()
        await engine.dispose()
        await db_pre_ping.dispose()
        await db.dispose()
