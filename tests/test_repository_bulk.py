"""add_many: the INSERT path, the COPY path, and that COPY stays inside the unit of work."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from asyncdal import DALSession, Database, DuplicateError, InvalidQueryError
from asyncdal.accounts import UserRepository
from asyncdal.commerce import Order, OrderRepository, OrderStatus, Product, ProductRepository
from asyncdal.testing.factories import UserFactory, create


def _products(n: int, prefix: str = "B") -> list[dict[str, object]]:
    return [
        {
            "sku": f"{prefix}-{i:06d}",
            "name": f"p{i}",
            "price": Decimal(i % 50) + Decimal("0.25"),
            "stock": i,
        }
        for i in range(n)
    ]


async def _count(session: DALSession, prefix: str) -> int:
    stmt = select(func.count()).select_from(Product).where(Product.sku.startswith(prefix))
    return int(await session.scalar(stmt) or 0)


async def test_add_many_small_batch_inserts_and_counts(session: DALSession) -> None:
    repo = ProductRepository(session)
    assert await repo.add_many(_products(10, "S")) == 10
    assert await _count(session, "S-") == 10
    assert await repo.add_many([]) == 0


async def test_add_many_returning_gives_objects_with_ids_in_order(session: DALSession) -> None:
    rows = _products(5, "R")
    products = await ProductRepository(session).add_many(rows, returning=True)
    assert [p.sku for p in products] == [r["sku"] for r in rows]
    assert all(isinstance(p.id, int) for p in products)
    assert len({p.id for p in products}) == 5


async def test_add_many_large_batch_goes_through_copy_with_converted_values(
    session: DALSession,
) -> None:
    repo = ProductRepository(session)
    rows = _products(repo.copy_threshold + 5, "C")
    assert await repo.add_many(rows) == len(rows)
    got = (
        await session.execute(
            select(Product.sku, Product.price, Product.stock, Product.created_at)
            .where(Product.sku.in_(["C-000007", "C-000999"]))
            .order_by(Product.sku)
        )
    ).all()
    assert [(r.sku, r.price, r.stock) for r in got] == [
        ("C-000007", Decimal("7.25"), 7),
        ("C-000999", Decimal("49.25"), 999),
    ]
    assert all(r.created_at is not None for r in got)  # server default applied


async def test_copy_converts_enums_like_the_orm_does(session: DALSession) -> None:
    (user,) = await create(UserFactory, 1)
    repo = OrderRepository(session)
    repo.copy_threshold = 3  # type: ignore[misc]
    rows = [{"user_id": user.id, "status": OrderStatus.PAID, "total": Decimal("1.5")}] * 4
    assert await repo.add_many(rows) == 4
    statuses = (await session.scalars(select(Order.status).where(Order.user_id == user.id))).all()
    assert statuses == [OrderStatus.PAID] * 4


async def test_copy_errors_are_mapped(session: DALSession) -> None:
    repo = ProductRepository(session)
    repo.copy_threshold = 2  # type: ignore[misc]
    rows = _products(3, "D")
    rows[2]["sku"] = rows[0]["sku"]
    with pytest.raises(DuplicateError) as info:
        await repo.add_many(rows)
    assert info.value.constraint == "uq_products_sku"


async def test_copy_runs_inside_the_unit_of_work_and_rolls_back(committed_db: Database) -> None:
    with pytest.raises(RuntimeError, match="abort"):
        async with committed_db.session() as s:
            repo = ProductRepository(s)
            # COPY as the very first statement: the transaction must already be open.
            assert await repo.add_many(_products(repo.copy_threshold, "T")) == repo.copy_threshold
            assert await _count(s, "T-") == repo.copy_threshold
            raise RuntimeError("abort")
    async with committed_db.session() as s:
        assert await _count(s, "T-") == 0
        repo = ProductRepository(s)
        await repo.add_many(_products(repo.copy_threshold, "T"))
    async with committed_db.session() as s:
        assert await _count(s, "T-") == ProductRepository.copy_threshold


async def test_add_many_validates_keys(session: DALSession) -> None:
    repo = UserRepository(session)
    with pytest.raises(InvalidQueryError, match="unknown columns"):
        await repo.add_many([{"username": "a", "email": "a@x", "password": "p"}])
    with pytest.raises(InvalidQueryError, match="same keys"):
        await repo.add_many([{"username": "a", "email": "a@x"}, {"username": "b"}])
    with pytest.raises(InvalidQueryError, match="same keys"):
        await repo.add_many([{"username": "a", "email": "a@x"}, {"username": "b", "x": 1}])
    # The COPY path checks too, and nothing is written.
    repo.copy_threshold = 2  # type: ignore[misc]
    with pytest.raises(InvalidQueryError, match="same keys"):
        await repo.add_many(
            [{"username": "c", "email": "c@x"}, {"username": "d", "verified": True}]
        )
    assert await repo.count({"username__in": ["a", "b", "c", "d"]}) == 0


async def test_copy_checks_values_as_it_streams_and_writes_nothing_on_a_bad_one(
    session: DALSession,
) -> None:
    repo = UserRepository(session)
    repo.copy_threshold = 2  # type: ignore[misc]
    rows: list[dict[str, object]] = [
        {"username": f"s{i}", "email": f"s{i}@x", "verified": False} for i in range(50)
    ]
    rows[30] = {"username": "s30", "email": "s30@x", "verified": "yes"}  # a str for a bool
    with pytest.raises(InvalidQueryError, match=r"add_many: User\.verified") as caught:
        await repo.add_many(rows)
    assert isinstance(caught.value, TypeError)  # InvalidTypeError: a wrong Python type
    rows[30] = {"username": "x" * 65, "email": "s30@x", "verified": False}  # String(64)
    with pytest.raises(InvalidQueryError, match="at most 64 characters"):
        await repo.add_many(rows)
    # The COPY stopped at the bad row and rolled back to its savepoint: nothing of the rows
    # before it is there, and the unit of work goes on.
    assert await repo.count({"username__startswith": "s"}) == 0
    rows[30] = {"username": "s30", "email": "s30@x", "verified": False}
    assert await repo.add_many(rows) == 50
    assert await repo.count({"username__startswith": "s"}) == 50
