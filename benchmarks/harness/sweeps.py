"""How cost grows: point lookups over concurrency, fan-out wall time over width.

Each point runs every contender in interleaved rounds (as the benchmarks B1..B4 do) on the
clients of :func:`harness.context.open_context`: the same data, the same pool size.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from asyncdal import DALSession
from asyncdal.accounts import User, UserRepository
from harness.context import BenchContext
from harness.lookups import RAW_GET_USER

__all__ = ["CONCURRENCY", "WIDTHS", "Sweep", "concurrency_sweep", "fanout_sweep"]

CONCURRENCY = (1, 8, 64, 256)
WIDTHS = (1, 2, 4, 8, 16, 32, 64)


@dataclass
class Sweep:
    """One sweep: x values, and per contender the median (and min, max) at each x."""

    title: str
    x_label: str
    y_label: str
    xs: list[int]
    medians: dict[str, list[float]] = field(default_factory=dict)
    lows: dict[str, list[float]] = field(default_factory=dict)
    highs: dict[str, list[float]] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The sweep for the JSON results."""
        return {
            "title": self.title,
            "x": self.x_label,
            "y": self.y_label,
            "xs": self.xs,
            "median": self.medians,
            "min": self.lows,
            "max": self.highs,
        }


async def _interleaved(
    contenders: dict[str, Callable[[], Awaitable[float]]], rounds: int
) -> dict[str, list[float]]:
    """Each contender once to warm up, then ``rounds`` rotated rounds; its values."""
    names = list(contenders)
    for name in names:
        await contenders[name]()
    values: dict[str, list[float]] = {name: [] for name in names}
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            values[name].append(await contenders[name]())
    return values


def _record(sweep: Sweep, values: dict[str, list[float]]) -> None:
    for name, got in values.items():
        sweep.medians.setdefault(name, []).append(statistics.median(got))
        sweep.lows.setdefault(name, []).append(min(got))
        sweep.highs.setdefault(name, []).append(max(got))


async def concurrency_sweep(
    ctx: BenchContext, total: int, rounds: int, on_point: Callable[[str], None]
) -> Sweep:
    """Lookups/s of ``total`` lookups by id, split over 1..256 concurrent tasks."""
    sweep = Sweep(
        f"{total} point lookups by primary key, split over N tasks (pool of 10 each)",
        "concurrent tasks",
        "lookups/s",
        list(CONCURRENCY),
    )
    rng = random.Random(7)
    for tasks in CONCURRENCY:
        per_task = max(1, total // tasks)
        work = [rng.choices(ctx.user_ids, k=per_task) for _ in range(tasks)]

        def rate(lookup: Callable[[int], Awaitable[Any]]) -> Callable[[], Awaitable[float]]:
            async def sample() -> float:
                async def task(ids: list[int]) -> None:
                    for user_id in ids:
                        await lookup(user_id)

                started = time.perf_counter()
                await asyncio.gather(*(task(ids) for ids in work))  # noqa: B023
                return tasks * per_task / (time.perf_counter() - started)  # noqa: B023

            return sample

        async def unit_of_work(user_id: int) -> None:
            async with ctx.db.session() as session:
                await UserRepository(session).get(user_id)

        async def read_path(user_id: int) -> None:
            async with ctx.db.read() as session:
                await UserRepository(session).get(user_id)

        async def plain(user_id: int) -> None:
            async with ctx.plain() as session:
                await session.get(User, user_id)

        async def raw(user_id: int) -> None:
            async with ctx.pool.acquire() as conn:
                await conn.fetchrow(RAW_GET_USER, user_id)

        contenders = {
            "layer: db.get (coalesced)": rate(lambda i: ctx.db.get(User, i)),
            "layer: db.read() + repository.get": rate(read_path),
            "layer: db.session() + repository.get": rate(unit_of_work),
            "plain SQLAlchemy: session.get": rate(plain),
            "raw asyncpg: fetchrow": rate(raw),
        }
        _record(sweep, await _interleaved(contenders, rounds))
        on_point(f"{tasks} tasks")
    return sweep


async def fanout_sweep(
    ctx: BenchContext, pause: float, rounds: int, on_point: Callable[[str], None]
) -> Sweep:
    """Wall time of a fan-out of 1..64 ``pg_sleep(pause)`` reads, in milliseconds."""
    sweep = Sweep(
        f"fan-out of N reads of pg_sleep({pause}) (pool of 10 each)",
        "reads per fan-out",
        "wall time (ms)",
        list(WIDTHS),
    )
    statement = select(func.pg_sleep(pause))

    async def sleep_read(session: DALSession) -> None:
        await session.execute(statement)

    for width in WIDTHS:

        def wall(fan_out: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[float]]:
            async def sample() -> float:
                started = time.perf_counter()
                await fan_out()
                return (time.perf_counter() - started) * 1e3

            return sample

        async def plain_one() -> None:
            async with ctx.plain() as session:
                await session.execute(statement)

        async def raw_one() -> None:
            async with ctx.pool.acquire() as conn:
                await conn.execute("SELECT pg_sleep($1)", pause)

        contenders = {
            "layer: db.gather": wall(lambda: ctx.db.gather(*[sleep_read] * width)),  # noqa: B023
            "plain SQLAlchemy: session per read": wall(
                lambda: asyncio.gather(*(plain_one() for _ in range(width)))  # noqa: B023
            ),
            "raw asyncpg: pool + gather": wall(
                lambda: asyncio.gather(*(raw_one() for _ in range(width)))  # noqa: B023
            ),
        }
        _record(sweep, await _interleaved(contenders, rounds))
        on_point(f"width {width}")
    return sweep
