"""The storefront under concurrent load, over HTTP.

- 200 concurrent ``/all/`` (each a fan-out of three reads) on a pool of 5 connections: the
  requests queue for connections, none times out, every body is right, and every connection is
  back in the pool afterwards.
- 100 concurrent orders for a product with 10 in stock: exactly 10 succeed, the 90 others are
  409 naming the product, and the stock ends at 0 (never negative, never oversold).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import cast

import httpx
import pytest
from examples.storefront import create_app
from sqlalchemy import func, select
from sqlalchemy.pool import QueuePool

from asyncdal import Database
from asyncdal.commerce import Order, OrderItem, Product
from asyncdal.testing.factories import (
    OrderFactory,
    ProductFactory,
    UserFactory,
    create,
    current_session,
)
from tests.conftest import TEST_APPLICATION_NAME

pytestmark = pytest.mark.committed


async def seed(db: Database) -> tuple[list[int], int]:
    """Committed users, products and orders; returns the user ids and one product id."""
    async with db.session() as session:
        token = current_session.set(session)
        try:
            users = await create(UserFactory, n=20)
            products = await create(ProductFactory, n=15, stock=10, price=Decimal("2.50"))
            await create(OrderFactory, n=12, user=users[0], total=Decimal("2.50"))
        finally:
            current_session.reset(token)
        return [u.id for u in users], products[0].id


@pytest.fixture
async def small_pool(committed_db: Database, migrated_url: str) -> AsyncIterator[Database]:
    """A second Database on the test database with a pool of exactly 5 connections."""
    small = Database.from_url(
        migrated_url,
        pool_size=5,
        max_overflow=0,
        pool_timeout=30,
        application_name=TEST_APPLICATION_NAME,
    )
    yield small
    await small.dispose()


async def test_200_concurrent_all_requests_on_a_pool_of_5(
    committed_db: Database, small_pool: Database
) -> None:
    await seed(committed_db)
    app = create_app(small_pool)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://storefront") as client:
        expected = (await client.get("/all/", params={"limit": 10})).json()
        assert [len(expected[k]) for k in ("users", "orders", "products")] == [10, 10, 10]

        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                # /all/ is a db.gather: its reads run on the read pool (also 5 connections).
                peak = max(peak, cast(QueuePool, small_pool.read_engine.pool).checkedout())
                await asyncio.sleep(0.001)

        watcher = asyncio.create_task(watch())
        try:
            responses = await asyncio.gather(
                *(client.get("/all/", params={"limit": 10}) for _ in range(200))
            )
        finally:
            watcher.cancel()

    assert Counter(r.status_code for r in responses) == {200: 200}
    assert all(r.json() == expected for r in responses)
    # The requests really ran concurrently and shared, without exceeding, the 5 connections.
    assert 2 <= peak <= 5
    assert cast(QueuePool, small_pool.engine.pool).checkedout() == 0
    assert cast(QueuePool, small_pool.read_engine.pool).checkedout() == 0


async def test_100_concurrent_orders_for_10_in_stock(committed_db: Database) -> None:
    user_ids, product_id = await seed(committed_db)
    app = create_app(committed_db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://storefront") as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    "/orders/",
                    json={
                        "user_id": user_ids[i % len(user_ids)],
                        "items": [{"product_id": product_id, "quantity": 1}],
                    },
                )
                for i in range(100)
            )
        )
        stock = (await client.get(f"/products/{product_id}")).json()["stock"]

    assert Counter(r.status_code for r in responses) == {201: 10, 409: 90}
    for rejected in (r.json() for r in responses if r.status_code == 409):
        assert rejected["error"] == "insufficient_stock"
        assert (rejected["product_id"], rejected["requested"], rejected["available"]) == (
            product_id,
            1,
            0,
        )
    placed = [r.json() for r in responses if r.status_code == 201]
    assert len({order["id"] for order in placed}) == 10
    assert all(order["total"] == "2.50" for order in placed)
    assert stock == 0
    async with committed_db.session() as session:
        sold = await session.scalar(
            select(func.sum(OrderItem.quantity)).where(OrderItem.product_id == product_id)
        )
        orders = await session.scalar(
            select(func.count()).select_from(Order).where(Order.id.in_([o["id"] for o in placed]))
        )
        left = await session.scalar(select(Product.stock).where(Product.id == product_id))
    assert (sold, orders, left) == (10, 10, 0)
    assert cast(QueuePool, committed_db.engine.pool).checkedout() == 0
