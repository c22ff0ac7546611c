"""Many buyers, few items: what ``db.transaction(place, isolation=...)`` gives under contention.

300 concurrent buyers each order 1 unit: of one product with 20 in stock, or of one of 20
products with 1 each (buyer i wants product i mod 20), through
``db.transaction(lambda s: OrderRepository(s).place(...))``, at the server's default isolation
(READ COMMITTED) and at SERIALIZABLE, with several retry budgets. Counted per run: orders
placed, ``InsufficientStockError``, ``ConcurrencyError`` (retries exhausted), anything else,
the stock left, and the wall time. A correct outcome is 20 orders, 280 refusals, 0 stock left.

With ``--processes N``, the 300 buyers of the 20-unit product come from N processes instead
(``tests/_buyers.py``, started together), at SERIALIZABLE with ``db.transaction``'s defaults
(the ``retry_for`` time budget): contention between processes, as services see it. Each run
also gives the load average before and after it (the machine is shared).

    python benchmarks/contention.py            # an embedded server unless DATABASE_URL is set
    python benchmarks/contention.py --processes 4 --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

# `python benchmarks/contention.py` puts benchmarks/ on sys.path: the buyer loop comes from
# the checkout's root (tests/_buyers.py, which the multi-process runs and the test run too).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests._buyers import buy_all, run_processes

from asyncdal import Database, upgrade
from asyncdal.accounts import User
from asyncdal.commerce import Product
from asyncdal.testing import EmbeddedPostgres

BUYERS = 300
STOCK = 20


async def _reset(db: Database, kinds: int) -> tuple[list[int], list[int]]:
    async with db.session() as s:
        await s.execute(
            text("TRUNCATE order_items, orders, products, users RESTART IDENTITY CASCADE")
        )
    async with db.session() as s:
        products = [
            Product(sku=f"HOT-{k}", name="hot", price=Decimal("9.99"), stock=STOCK // kinds)
            for k in range(kinds)
        ]
        users = [User(username=f"b{i}", email=f"b{i}@x.org") for i in range(BUYERS)]
        s.add_all(products)
        s.add_all(users)
        await s.flush()
        return [p.id for p in products], [u.id for u in users]


async def _run(db: Database, isolation: str | None, retries: int, kinds: int) -> dict[str, object]:
    product_ids, buyers = await _reset(db, kinds)
    wanted = [(user_id, product_ids[user_id % kinds]) for user_id in buyers]
    outcomes, elapsed = await buy_all(db, wanted, isolation=isolation, retries=retries)
    async with db.session() as s:
        left = await s.scalar(text("SELECT sum(stock) FROM products"))
        orders = await s.scalar(text("SELECT count(*) FROM orders"))
    return {
        "products": f"{kinds} x {STOCK // kinds}",
        "isolation": isolation or "default (READ COMMITTED)",
        "retries": retries,
        **dict(outcomes),
        "orders in db": orders,
        "stock left": left,
        "wall s": round(elapsed, 2),
    }


async def _run_processes(db: Database, url: str, processes: int) -> dict[str, object]:
    """BUYERS buyers of one STOCK-unit product, split over ``processes`` processes."""
    (product_id,), buyers = await _reset(db, 1)
    each = BUYERS // processes
    load: list[float] = []
    firsts = [buyers[p * each] for p in range(processes)]
    # No count limit and the default time budget: db.transaction's defaults.
    outcomes, walls = await run_processes(
        url, product_id, firsts, each, on_ready=lambda: load.append(os.getloadavg()[0])
    )
    async with db.session() as s:
        left = await s.scalar(text("SELECT sum(stock) FROM products"))
        orders = await s.scalar(text("SELECT count(*) FROM orders"))
    return {
        "processes": f"{processes} x {each}",
        "isolation": "SERIALIZABLE",
        "retry budget": "default",
        **dict(outcomes),
        "orders in db": orders,
        "stock left": left,
        "slowest process s": max(walls),
        "load before": round(load[0], 2),
        "load after": round(os.getloadavg()[0], 2),
    }


async def main(url: str, processes: int, runs: int) -> None:
    await upgrade(url)
    async with Database.from_url(url) as db:
        if processes > 1:
            for _ in range(runs):
                print(await _run_processes(db, url, processes), flush=True)
            return
        for kinds in (1, 20):
            for isolation, retries in [(None, 3), ("SERIALIZABLE", 3), ("SERIALIZABLE", 10)]:
                for _ in range(runs):
                    print(await _run(db, isolation, retries, kinds), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=1, help="buyer processes (1: this one)")
    parser.add_argument("--runs", type=int, default=2, help="runs of each configuration")
    args = parser.parse_args()
    if BUYERS % args.processes:
        parser.error(f"--processes must divide {BUYERS}")
    given = os.environ.get("DATABASE_URL")
    if given:
        asyncio.run(main(given, args.processes, args.runs))
    else:
        with EmbeddedPostgres() as pg:
            asyncio.run(main(pg.url, args.processes, args.runs))
