"""Buyers of one unit each, all at once: the contention test's processes and the benchmark.

:func:`buy_all` is the one buyer loop: ``benchmarks/contention.py`` runs it in its own process,
and this module runs it as one process of the multi-process contention test (and its
measurement):

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
from collections.abc import Sequence

from asyncdal import ConcurrencyError, Database
from asyncdal.commerce import InsufficientStockError, OrderRepository


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
