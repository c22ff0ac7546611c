"""No lost updates: row versions kept by the database, stale writes refused and named."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, text, update

from asyncdal import (
    ConflictError,
    DALSession,
    Database,
    InvalidQueryError,
    NotFoundError,
    StaleWriteError,
)
from asyncdal.accounts import User, UserRepository
from asyncdal.commerce import OrderRepository, Product, ProductRepository
from asyncdal.social import FollowRepository


async def _product(db: Database, *, price: str = "10.00", stock: int = 10) -> int:
    async with db.session() as s:
        product = Product(sku="V-1", name="versioned", price=Decimal(price), stock=stock)
        s.add(product)
        await s.flush()
        assert product.version == 1  # fetched with RETURNING: no lazy load
        return product.id


async def _row(db: Database, product_id: int) -> tuple[Decimal, int, int, datetime]:
    async with db.session() as s:
        row = (
            await s.execute(
                select(Product.price, Product.stock, Product.version, Product.updated_at).where(
                    Product.id == product_id
                )
            )
        ).one()
    return row.price, row.stock, row.version, row.updated_at


async def test_two_concurrent_read_modify_writes_one_wins_nothing_is_overwritten(
    committed_db: Database,
) -> None:
    product_id = await _product(committed_db)
    both_read = asyncio.Barrier(2)

    async def raise_price(by: str) -> str:
        async with committed_db.session() as s:
            product = await s.get_one(Product, product_id)
            await both_read.wait()  # both hold version 1 before either writes
            product.price = product.price + Decimal(by)
        return by

    results = await asyncio.gather(raise_price("1.00"), raise_price("2.00"), return_exceptions=True)
    won = [r for r in results if isinstance(r, str)]
    lost = [r for r in results if isinstance(r, BaseException)]
    assert len(won) == 1
    assert len(lost) == 1
    [error] = lost
    assert isinstance(error, StaleWriteError)
    assert isinstance(error, ConflictError)
    assert (error.model, error.key, error.expected_version) == ("Product", product_id, 1)
    assert f"Product {product_id}" in str(error)
    price, _, version, _ = await _row(committed_db, product_id)
    # The winner's change is there, once; the loser's is not, and did not overwrite it.
    assert price == Decimal("10.00") + Decimal(won[0])
    assert version == 2


async def test_the_database_bumps_the_version_for_any_writer(committed_db: Database) -> None:
    product_id = await _product(committed_db)
    _, _, v1, t1 = await _row(committed_db, product_id)
    async with committed_db.session() as s:  # a hand-written UPDATE, not the ORM
        await s.execute(
            text("UPDATE products SET stock = stock - 1 WHERE id = :id"), {"id": product_id}
        )
    _, stock, v2, t2 = await _row(committed_db, product_id)
    assert (stock, v2) == (9, v1 + 1)
    assert t2 >= t1
    async with committed_db.session() as s:  # a no-op write is not an edit
        await s.execute(update(Product).where(Product.id == product_id).values(stock=9))
    _, _, v3, t3 = await _row(committed_db, product_id)
    assert (v3, t3) == (v2, t2)


async def test_an_order_taking_stock_makes_an_edit_based_on_old_stock_stale(
    committed_db: Database,
) -> None:
    product_id = await _product(committed_db, stock=5)
    async with committed_db.session() as s:
        buyer = await UserRepository(s).create(username="buyer", email="buyer@example.org")
    with pytest.raises(StaleWriteError):  # mapped when the unit of work ends
        async with committed_db.session() as admin:
            product = await admin.get_one(Product, product_id)  # the admin reads stock 5
            async with committed_db.session() as shop:
                await OrderRepository(shop).place(buyer.id, {product_id: 2})
            product.stock = 5 + 10  # "restock by 10", computed from what the admin read
    assert (await _row(committed_db, product_id))[1] == 3  # the order's decrement survived


async def test_update_with_expected_version(committed_db: Database) -> None:
    product_id = await _product(committed_db)
    async with committed_db.session() as s:
        updated = await ProductRepository(s).update(
            product_id, price=Decimal("12.00"), expected_version=1
        )
        assert (updated.price, updated.version) == (Decimal("12.00"), 2)
    with pytest.raises(StaleWriteError) as info:
        async with committed_db.session() as s:
            await ProductRepository(s).update(product_id, price=Decimal("1.00"), expected_version=1)
    error = info.value
    assert (error.model, error.key) == ("Product", product_id)
    assert (error.expected_version, error.current_version) == (1, 2)
    assert "version 1" in str(error)
    assert (await _row(committed_db, product_id))[:3] == (Decimal("12.00"), 10, 2)
    with pytest.raises(NotFoundError):
        async with committed_db.session() as s:
            await ProductRepository(s).update(10**9, price=Decimal("1.00"), expected_version=1)


@pytest.mark.parametrize("bad", [0, -1, True, "1", 1.0, 2**31])
async def test_expected_version_must_be_a_positive_integer(
    session: DALSession, bad: object
) -> None:
    with pytest.raises(InvalidQueryError, match="expected_version"):
        await ProductRepository(session).update(1, stock=1, expected_version=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("column", ["version", "updated_at"])
async def test_the_version_and_updated_at_cannot_be_written(
    session: DALSession, column: str
) -> None:
    with pytest.raises(InvalidQueryError, match=column):
        await ProductRepository(session).update(1, **{column: 7})
    with pytest.raises(InvalidQueryError, match=column):
        await ProductRepository(session).upsert(
            {"sku": "X", "name": "x", "price": 1, "stock": 1, column: 7}, on="sku"
        )


async def test_a_delete_of_a_row_changed_since_it_was_read_is_stale(committed_db: Database) -> None:
    product_id = await _product(committed_db)
    with pytest.raises(StaleWriteError):
        async with committed_db.session() as s:
            product = await s.get_one(Product, product_id)
            async with committed_db.session() as other:
                await ProductRepository(other).update(product_id, stock=1)
            await s.delete(product)
    assert (await _row(committed_db, product_id))[1] == 1


async def test_a_new_follower_does_not_make_a_profile_edit_stale(committed_db: Database) -> None:
    async with committed_db.session() as s:
        ada = await UserRepository(s).create(username="ada", email="ada@example.org")
        bob = await UserRepository(s).create(username="bob", email="bob@example.org")
    async with committed_db.session() as s:
        await FollowRepository(s).follow(bob.id, ada.id)  # bumps ada.follower_count only
    async with committed_db.session() as s:
        user = await UserRepository(s).update(ada.id, display_name="Ada L.", expected_version=1)
        assert (user.follower_count, user.version) == (1, 2)
    async with committed_db.session() as s:
        assert await s.scalar(select(User.version).where(User.id == ada.id)) == 2


async def test_migration_downgrade_removes_the_trigger_and_columns(empty_database_url: str) -> None:
    from asyncdal import downgrade, upgrade

    await upgrade(empty_database_url)
    await downgrade(empty_database_url, "0001")
    db = Database.from_url(empty_database_url)
    try:
        async with db.session() as s:
            leftovers = await s.scalar(
                text(
                    "SELECT count(*) FROM information_schema.columns WHERE table_name IN "
                    "('products', 'users') AND column_name IN ('version', 'updated_at')"
                )
            )
            triggers = await s.scalar(
                text("SELECT count(*) FROM pg_trigger WHERE tgname LIKE '%row_written'")
            )
            functions = await s.scalar(
                text("SELECT count(*) FROM pg_proc WHERE proname = 'asyncdal_row_written'")
            )
        assert (leftovers, triggers, functions) == (0, 0, 0)
    finally:
        await db.dispose()
    await upgrade(empty_database_url)
