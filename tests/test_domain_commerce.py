"""Orders: placed without overselling, at database prices; cancelled with stock restored once."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from asyncdal import (
    ConflictError,
    DALSession,
    Database,
    InvalidQueryError,
    NotFoundError,
)
from asyncdal.accounts import UserRepository
from asyncdal.commerce import (
    InsufficientStockError,
    Order,
    OrderItem,
    OrderRepository,
    OrderStatus,
    Product,
    ProductRepository,
)
from asyncdal.testing.factories import ProductFactory, UserFactory, create


async def _stock(session: DALSession, *ids: int) -> list[int]:
    rows = await session.execute(select(Product.id, Product.stock).where(Product.id.in_(ids)))
    by_id = dict(rows.all())
    return [by_id[i] for i in ids]


async def test_place_takes_prices_from_the_database_and_decrements_stock(
    session: DALSession,
) -> None:
    (user,) = await create(UserFactory, 1)
    a, b = await create(ProductFactory, 2, stock=10)
    a.price, b.price = Decimal("2.50"), Decimal("10.00")
    await session.flush()
    order = await OrderRepository(session).place(user.id, [(b.id, 1), (a.id, 3), (a.id, 1)])
    assert order.status is OrderStatus.PENDING
    assert order.total == Decimal("20.00")
    assert [(i.product_id, i.quantity, i.unit_price) for i in order.items] == sorted(
        [(a.id, 4, Decimal("2.50")), (b.id, 1, Decimal("10.00"))]
    )
    assert await _stock(session, a.id, b.id) == [6, 9]
    stored = (await session.scalars(select(OrderItem).where(OrderItem.order_id == order.id))).all()
    assert len(stored) == 2


async def test_place_accepts_a_mapping(session: DALSession) -> None:
    (user,) = await create(UserFactory, 1)
    (p,) = await create(ProductFactory, 1, stock=5)
    order = await OrderRepository(session).place(user.id, {p.id: 5})
    assert [i.quantity for i in order.items] == [5]
    assert await _stock(session, p.id) == [0]


async def test_insufficient_stock_names_the_product_and_writes_nothing(
    session: DALSession,
) -> None:
    (user,) = await create(UserFactory, 1)
    plenty, short = await create(ProductFactory, 2, stock=3)
    repo = OrderRepository(session)
    before = await session.scalar(select(func.count()).select_from(Order))
    with pytest.raises(InsufficientStockError, match=f"product {short.id}") as info:
        await repo.place(user.id, {plenty.id: 1, short.id: 4})
    assert (info.value.product_id, info.value.requested, info.value.available) == (short.id, 4, 3)
    assert await _stock(session, plenty.id, short.id) == [3, 3]
    assert await session.scalar(select(func.count()).select_from(Order)) == before


async def test_place_rejects_bad_items(session: DALSession) -> None:
    (user,) = await create(UserFactory, 1)
    (p,) = await create(ProductFactory, 1)
    repo = OrderRepository(session)
    for items, message in [
        ({}, "at least one item"),
        ({p.id: 0}, "quantity must be a positive integer"),
        ({p.id: -2}, "quantity must be a positive integer"),
        ([(p.id,)], r"\(product_id, quantity\) pairs"),
        ({"x": 1}, "product_id must be a positive integer"),
    ]:
        with pytest.raises(InvalidQueryError, match=message):
            await repo.place(user.id, items)
    with pytest.raises(NotFoundError, match="Product 999999"):
        await repo.place(user.id, {999_999: 1})


async def test_cancel_restores_stock_once_and_is_idempotent(session: DALSession) -> None:
    (user,) = await create(UserFactory, 1)
    a, b = await create(ProductFactory, 2, stock=10)
    repo = OrderRepository(session)
    order = await repo.place(user.id, {a.id: 2, b.id: 7})
    assert await _stock(session, a.id, b.id) == [8, 3]
    cancelled = await repo.cancel(order.id)
    assert cancelled.status is OrderStatus.CANCELLED
    assert [i.quantity for i in cancelled.items] == [2, 7]
    assert await _stock(session, a.id, b.id) == [10, 10]
    again = await repo.cancel(order.id)
    assert again.status is OrderStatus.CANCELLED
    assert await _stock(session, a.id, b.id) == [10, 10]


async def test_cancel_shipped_or_missing_order(session: DALSession) -> None:
    (user,) = await create(UserFactory, 1)
    (p,) = await create(ProductFactory, 1, stock=2)
    repo = OrderRepository(session)
    order = await repo.place(user.id, {p.id: 1})
    await repo.update(order.id, status=OrderStatus.SHIPPED)
    with pytest.raises(ConflictError, match="is shipped and cannot be cancelled"):
        await repo.cancel(order.id)
    assert await _stock(session, p.id) == [1]
    with pytest.raises(NotFoundError):
        await repo.cancel(999_999)


async def test_200_concurrent_orders_against_stock_50(committed_db: Database) -> None:
    async with committed_db.session() as s:
        user = await UserRepository(s).create(username="buyer", email="buyer@x.org")
        product = await ProductRepository(s).add(
            Product(sku="HOT-1", name="hot", price=Decimal("9.99"), stock=50)
        )

    async def buy() -> str:
        try:
            async with committed_db.session() as s:
                await OrderRepository(s).place(user.id, {product.id: 1})
        except InsufficientStockError as exc:
            return f"short {exc.product_id}"
        return "ok"

    results = await asyncio.gather(*(buy() for _ in range(200)))
    assert results.count("ok") == 50
    assert results.count(f"short {product.id}") == 150
    async with committed_db.session() as s:
        assert await _stock(s, product.id) == [0]
        assert await s.scalar(select(func.count()).select_from(Order)) == 50
        assert await s.scalar(select(func.sum(OrderItem.quantity))) == 50
        assert await s.scalar(select(func.min(Product.stock))) == 0


async def test_concurrent_multi_product_orders_in_any_item_order_do_not_deadlock(
    committed_db: Database,
) -> None:
    async with committed_db.session() as s:
        user = await UserRepository(s).create(username="multi", email="multi@x.org")
        products = [
            await ProductRepository(s).add(
                Product(sku=f"M-{i}", name="m", price=Decimal("1.00"), stock=1000)
            )
            for i in range(4)
        ]
    ids = [p.id for p in products]

    async def buy(i: int) -> None:
        # Items listed in a different order by each task: place() locks in id order anyway.
        items = [(pid, 1) for pid in (ids if i % 2 else list(reversed(ids)))]
        async with committed_db.session() as s:
            await OrderRepository(s).place(user.id, items)

    await asyncio.gather(*(buy(i) for i in range(60)))
    async with committed_db.session() as s:
        assert await _stock(s, *ids) == [940] * 4


async def test_concurrent_cancels_restore_stock_exactly_once(committed_db: Database) -> None:
    async with committed_db.session() as s:
        user = await UserRepository(s).create(username="canceller", email="c@x.org")
        product = await ProductRepository(s).add(
            Product(sku="CAN-1", name="c", price=Decimal("1.00"), stock=10)
        )
        order = await OrderRepository(s).place(user.id, {product.id: 4})

    async def cancel() -> OrderStatus:
        async with committed_db.session() as s:
            return (await OrderRepository(s).cancel(order.id)).status

    statuses = await asyncio.gather(*(cancel() for _ in range(30)))
    assert set(statuses) == {OrderStatus.CANCELLED}
    async with committed_db.session() as s:
        assert await _stock(s, product.id) == [10]
