"""Buyers of one unit each, all at once: the contention test's processes and the benchmark.

:func:`buy_all` is the one buyer loop: ``benchmarks/contention.py`` runs it in its own process,
and this module runs it as one process of the multi-process contention test and measurement
(:func:`run_processes` starts them):

    python -m tests._buyers URL PRODUCT_ID FIRST_USER_ID COUNT ISOLATION RETRIES RETRY_FOR

Connects, prints ``ready``, waits for a line on stdin (so every process starts buying at
once), runs COUNT concurrent ``db.transaction(place)`` of one unit each with the default
retry budget (RETRY_FOR seconds, or at most RETRIES retries as before the budget;
-1: the default), and prints one JSON object: outcome -> count, and the wall time.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from asyncdal import ConcurrencyError, Database
from asyncdal.commerce import InsufficientStockError, OrderRepository

#: The checkout's root, where ``python -m tests._buyers`` runs.
ROOT = Path(__file__).resolve().parents[1]


async def buy_all(
    db: Database,
    orders: Sequence[tuple[int, int]],
    *,
    isolation: str | None = None,
    retries: int | None = None,
    retry_for: float | None = None,
) -> tuple[Counter[str], float]:
    """Each ``(user_id, product_id)`` orders one unit in its own ``db.transaction``, all at
    once; the outcomes ("placed", "sold out", "ConcurrencyError" when retries ran out, or any
    other exception's class name) and the wall time in seconds. ``retry_for``: the default
    time budget when ``None``."""
    outcomes: Counter[str] = Counter()
    budget = {} if retry_for is None else {"retry_for": retry_for}

    async def buy(user_id: int, product_id: int) -> None:
        try:
            await db.transaction(
                lambda s: OrderRepository(s).place(user_id, {product_id: 1}),
                isolation=isolation,
                retries=retries,
                **budget,
            )
            outcomes["placed"] += 1
        except InsufficientStockError:
            outcomes["sold out"] += 1
        except ConcurrencyError:
            outcomes["ConcurrencyError"] += 1
        except Exception as exc:  # counted: the test fails on any of these
            outcomes[type(exc).__name__] += 1

    start = time.perf_counter()
    await asyncio.gather(*(buy(user_id, product_id) for user_id, product_id in orders))
    return outcomes, time.perf_counter() - start


async def run_processes(
    url: str,
    product_id: int,
    firsts: Sequence[int],
    count: int,
    *,
    isolation: str = "SERIALIZABLE",
    retries: int | None = None,
    retry_for: float | None = None,
    on_ready: Callable[[], object] | None = None,
    finish_within: float = 600,
) -> tuple[Counter[str], list[float]]:
    """One buyer process (this module) per user id in ``firsts``, each with ``count`` buyers
    from that id on, all told to start at once (``on_ready`` runs just before); their summed
    outcomes and each process's wall time. Every process is killed if anything fails."""
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests._buyers",
            url,
            str(product_id),
            str(first),
            str(count),
            isolation,
            str(-1 if retries is None else retries),
            str(-1 if retry_for is None else retry_for),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        for first in firsts
    ]
    outcomes: Counter[str] = Counter()
    walls: list[float] = []
    try:
        for proc in procs:  # every process connected before any buys
            assert proc.stdout is not None
            async with asyncio.timeout(60):
                assert (await proc.stdout.readline()).strip() == b"ready"
        if on_ready is not None:
            on_ready()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        for proc in procs:
            async with asyncio.timeout(finish_within):
                out, _ = await proc.communicate()
            assert proc.returncode == 0
            counts = json.loads(out.decode().strip().splitlines()[-1])
            walls.append(counts.pop("wall"))
            outcomes.update(counts)
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    return outcomes, walls


async def main(
    url: str,
    product_id: int,
    first: int,
    count: int,
    isolation: str,
    retries: int | None,
    retry_for: float | None,
) -> None:
    async with Database.from_url(url, pool_size=10, max_overflow=5) as db:
        async with db.session() as s:
            await s.connection()
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        orders = [(first + i, product_id) for i in range(count)]
        outcomes, wall = await buy_all(
            db, orders, isolation=isolation, retries=retries, retry_for=retry_for
        )
        print(json.dumps({**outcomes, "wall": round(wall, 3)}), flush=True)


if __name__ == "__main__":
    url, product, first, count, isolation = sys.argv[1:6]
    retries, retry_for = int(sys.argv[6]), float(sys.argv[7])
    asyncio.run(
        main(
            url,
            int(product),
            int(first),
            int(count),
            isolation,
            None if retries < 0 else retries,
            None if retry_for < 0 else retry_for,
        )
    )
