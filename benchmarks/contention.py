"""Many buyers, few items: what ``db.transaction(place, isolation=...)`` gives under contention.

300 concurrent buyers each order 1 unit: of one product with 20 in stock, or of one of 20
products with 1 each (buyer i wants product i mod 20), through
``db.transaction(lambda s: OrderRepository(s).place(...))``, at the server's default isolation
(READ COMMITTED) and at SERIALIZABLE, with several retry budgets. Counted per run: orders
placed, ``InsufficientStockError``, ``ConcurrencyError`` (retries exhausted), anything else,
the stock left, and the wall time. A correct outcome is 20 orders, 280 refusals, 0 stock left.

    python benchmarks/contention.py            # an embedded server unless DATABASE_URL is set
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from decimal import Decimal

from sqlalchemy import text

from asyncdal import ConcurrencyError, Database, upgrade
from asyncdal.accounts import User
from asyncdal.commerce import InsufficientStockError, OrderRepository, Product
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
    outcomes: Counter[str] = Counter()

    async def buy(user_id: int) -> None:
        product_id = product_ids[user_id % kinds]
        try:
            await db.transaction(
                lambda s: OrderRepository(s).place(user_id, {product_id: 1}),
                isolation=isolation,
                retries=retries,
            )
            outcomes["placed"] += 1
        except InsufficientStockError:
            outcomes["sold out"] += 1
        except ConcurrencyError:
            outcomes["ConcurrencyError"] += 1
        except Exception as exc:
            outcomes[type(exc).__name__] += 1

    start = time.perf_counter()
    await asyncio.gather(*(buy(u) for u in buyers))
    elapsed = time.perf_counter() - start
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


async def main(url: str) -> None:
    await upgrade(url)
    async with Database.from_url(url) as db:
        for kinds in (1, 20):
            for isolation, retries in [(None, 3), ("SERIALIZABLE", 3), ("SERIALIZABLE", 10)]:
                for _ in range(2):
                    print(await _run(db, isolation, retries, kinds), flush=True)


if __name__ == "__main__":
    given = os.environ.get("DATABASE_URL")
    if given:
        asyncio.run(main(given))
    else:
        with EmbeddedPostgres() as pg:
            asyncio.run(main(pg.url))
