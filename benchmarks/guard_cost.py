"""What the DALSession guard costs per call: guarded vs plain ``AsyncSession``, side by side.

    python benchmarks/guard_cost.py            # on a throwaway server, or DATABASE_URL

Identity-map hits (``session.get`` of a loaded row) send no SQL, so the guard's fixed cost is
as large a share of a call as it can ever be; ``SELECT 1`` shows the normal case, a round trip.
Short alternating rounds, best of each: the noise of a shared machine hits both contenders.
This used to be a timed unit test; timings belong here, not in the test suite.
"""

from __future__ import annotations

import asyncio
import os
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import asyncdal
from asyncdal import Database
from asyncdal.accounts import User
from asyncdal.testing import EmbeddedPostgres

SELECT_ONE = text("SELECT 1")
ROUNDS, GETS, SELECTS = 20, 500, 50


async def _time_gets(s: AsyncSession, user_id: int, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await s.get(User, user_id)
    return time.perf_counter() - start


async def _time_selects(s: AsyncSession, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await s.scalar(SELECT_ONE)
    return time.perf_counter() - start


async def measure(url: str) -> None:
    """Print the guard's cost per call, as microseconds and as a ratio to plain SQLAlchemy."""
    async with Database.from_url(url) as db:
        await asyncdal.upgrade(db)
        async with db.session() as s:
            user = User(username="guard-cost", email="guard-cost@example.org")
            s.add(user)
        plain_maker = async_sessionmaker(db.engine, expire_on_commit=False)
        best = dict.fromkeys(["guarded", "plain", "guarded_rt", "plain_rt"], float("inf"))
        try:
            async with db.sessionmaker() as guarded, plain_maker() as plain:
                # Hold the instances: the identity map is weak.
                held = [await guarded.get(User, user.id), await plain.get(User, user.id)]
                assert None not in held
                for _ in range(ROUNDS):
                    best["guarded"] = min(best["guarded"], await _time_gets(guarded, user.id, GETS))
                    best["plain"] = min(best["plain"], await _time_gets(plain, user.id, GETS))
                    best["plain_rt"] = min(best["plain_rt"], await _time_selects(plain, SELECTS))
                    best["guarded_rt"] = min(
                        best["guarded_rt"], await _time_selects(guarded, SELECTS)
                    )
        finally:
            async with db.session() as s:
                await s.execute(text("DELETE FROM users WHERE username = 'guard-cost'"))
    print(
        f"get(), identity-map hit, best of {ROUNDS} x {GETS}: guarded "
        f"{best['guarded'] / GETS * 1e6:.1f} us, plain {best['plain'] / GETS * 1e6:.1f} us, "
        f"ratio {best['guarded'] / best['plain']:.3f}"
    )
    print(
        f"SELECT 1, best of {ROUNDS} x {SELECTS}: guarded "
        f"{best['guarded_rt'] / SELECTS * 1e6:.0f} us, plain "
        f"{best['plain_rt'] / SELECTS * 1e6:.0f} us, "
        f"ratio {best['guarded_rt'] / best['plain_rt']:.3f}"
    )


def main() -> None:
    """Measure on DATABASE_URL, or on a throwaway embedded server."""
    url = os.environ.get("DATABASE_URL")
    if url:
        asyncio.run(measure(url))
        return
    with EmbeddedPostgres() as pg:
        asyncio.run(measure(pg.url))


if __name__ == "__main__":
    main()
