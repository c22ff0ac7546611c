"""add_many: the INSERT path, the COPY path, and that COPY stays inside the unit of work."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select

from asyncdal import (
    AsyncDALError,
    CheckViolationError,
    DALSession,
    Database,
    DuplicateError,
    ForeignKeyError,
    InvalidQueryError,
    InvalidTypeError,
)
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
    with pytest.raises(InvalidQueryError, match=r"add_many: rows\[30\]: User\.verified") as caught:
        await repo.add_many(rows)
    assert isinstance(caught.value, TypeError)  # InvalidTypeError: a wrong Python type
    assert (caught.value.row_index, caught.value.field) == (30, "verified")
    # Too long for String(64): the server's refusal, naming the row and the field.
    rows[30] = {"username": "x" * 65, "email": "s30@x", "verified": False}
    with pytest.raises(InvalidQueryError, match=r"rows\[30\]: User\.username: .*too long"):
        await repo.add_many(rows)
    # The COPY stopped at the bad row and rolled back to its savepoint: nothing of the rows
    # before it is there, and the unit of work goes on.
    assert await repo.count({"username__startswith": "s"}) == 0
    rows[30] = {"username": "s30", "email": "s30@x", "verified": False}
    assert await repo.add_many(rows) == 50
    assert await repo.count({"username__startswith": "s"}) == 50


# -- COPY: the server judges what it judges anyway, and its error names the row ----------------

K = 9_990  # near the end of 10,000 rows: three chunks in, long after the COPY started
PLANTED = "planted-7f3e"  # must never reach a message

SERVER_JUDGED: dict[str, tuple[dict[str, object], type[Exception], str, str]] = {
    "too long": (
        {"name": PLANTED + "x" * 200},  # String(200)
        InvalidQueryError,
        "name",
        "Product.name: the database refused the value (too long for the column; SQLSTATE 22001)",
    ),
    "numeric out of range": (
        {"price": Decimal("12345678901.50")},  # Numeric(12, 2): 10 digits before the point
        InvalidQueryError,
        "price",
        "Product.price: the database refused the value (out of the column's numeric range",
    ),
    "NULL in NOT NULL": (
        {"name": None},
        CheckViolationError,
        "name",
        "not-null constraint violated on table 'products' (columns: name)",
    ),
    "CHECK": (
        {"stock": -1},
        CheckViolationError,
        "stock",
        "check constraint violated 'ck_products_stock_not_negative' on table 'products'",
    ),
    "unique": (
        {"sku": "K-000003"},  # the same as rows[3]
        DuplicateError,
        "sku",
        "duplicate value violates unique constraint 'uq_products_sku'",
    ),
}


@pytest.mark.parametrize("case", sorted(SERVER_JUDGED))
async def test_copy_leaves_to_the_server_what_it_checks_and_names_the_row_and_field(
    session: DALSession, case: str
) -> None:
    bad, error, field, message = SERVER_JUDGED[case]
    repo = ProductRepository(session)
    rows = _products(10_000, "K")
    rows[K] = {**rows[K], **bad}
    with pytest.raises(error) as caught:
        await repo.add_many(rows)
    err = caught.value
    assert isinstance(err, AsyncDALError)
    assert str(err).startswith(f"add_many: rows[{K}]: ")
    assert message in str(err)
    assert (err.row_index, err.field) == (K, field)
    assert err.__cause__ is not None  # the server's own error, chained
    for text in (str(err), repr(err)):  # what, not whose: no value quoted
        assert PLANTED not in text
        assert "12345678901" not in text
    # The COPY rolled back to its savepoint: nothing of the 10,000 rows, and the unit of work
    # goes on.
    assert await _count(session, "K-") == 0
    assert await repo.add_many(_products(1_500, "K")) == 1_500
    assert await _count(session, "K-") == 1_500


async def test_a_foreign_key_is_checked_when_the_copy_ends_so_no_row_is_named(
    session: DALSession,
) -> None:
    (user,) = await create(UserFactory, 1)
    repo = OrderRepository(session)
    rows = [{"user_id": user.id, "status": OrderStatus.PAID, "total": Decimal("1")}] * 1_200
    rows[700] = {**rows[700], "user_id": user.id + 10**9}
    with pytest.raises(ForeignKeyError) as caught:
        await repo.add_many(rows)
    assert str(caught.value).startswith("add_many: foreign key violation")
    assert caught.value.row_index is None  # the server checks it after the last line
    assert caught.value.referred_table == "users"
    assert await repo.count({"user_id": user.id}) == 0


# What the server would store silently or the driver cannot encode: still the layer's checks,
# which now name the row too.
CLIENT_JUDGED: dict[str, tuple[dict[str, object], type[Exception], str]] = {
    "NaN": ({"price": Decimal("NaN")}, InvalidQueryError, "Product.price: expected a finite"),
    "float for money": ({"price": 9.99}, InvalidTypeError, "Product.price: expected a Decimal"),
    "digits past the scale": (
        {"price": Decimal("1.005")},  # PostgreSQL would round it silently
        InvalidQueryError,
        "Product.price: expected a number with at most 2 digits after the point",
    ),
    "NUL": ({"name": "a\x00b"}, InvalidQueryError, "Product.name: expected a string without NUL"),
    "lone surrogate": ({"name": "\ud800"}, InvalidQueryError, "Product.name: expected a string"),
    "int overflow": ({"stock": 2**31}, InvalidQueryError, "Product.stock: expected an integer"),
    "wrong type": ({"stock": "7"}, InvalidTypeError, "Product.stock: expected an integer"),
    "not a mapping": ({}, InvalidTypeError, "expected a mapping of column names to values"),
}


@pytest.mark.parametrize("case", sorted(CLIENT_JUDGED))
async def test_copy_still_refuses_what_the_server_cannot_judge_naming_the_row(
    session: DALSession, case: str
) -> None:
    bad, error, message = CLIENT_JUDGED[case]
    repo = ProductRepository(session)
    rows: list[Any] = _products(10_000, "N")
    rows[K] = {**rows[K], **bad} if bad else ["N-x", "n", Decimal(1), 1]
    with pytest.raises(error) as caught:
        await repo.add_many(rows)
    assert isinstance(caught.value, AsyncDALError)
    assert str(caught.value).startswith(f"add_many: rows[{K}]: ")
    assert message in str(caught.value)
    assert caught.value.row_index == K
    assert await _count(session, "N-") == 0


async def test_a_bad_value_in_the_first_chunk_is_refused_before_any_sql(
    session: DALSession,
) -> None:
    repo = ProductRepository(session)
    rows = _products(1_200, "Q")
    rows[1_100] = {**rows[1_100], "price": 0.5}
    sent: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    engine = session.sync_session.get_bind().engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        with pytest.raises(InvalidTypeError, match=r"rows\[1100\]: Product\.price"):
            await repo.add_many(rows)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert sent == []


async def test_a_wrong_enum_label_of_the_right_length_is_refused_on_copy(
    session: DALSession,
) -> None:
    # The whole-column test of text must not stand for an enum's (a label is also a str).
    (user,) = await create(UserFactory, 1)
    repo = OrderRepository(session)
    repo.copy_threshold = 2  # type: ignore[misc]
    rows = [{"user_id": user.id, "status": "paid", "total": Decimal("1")}] * 3
    rows[2] = {**rows[2], "status": "lost"}
    with pytest.raises(InvalidQueryError, match=r"rows\[2\]: Order\.status: expected one of"):
        await repo.add_many(rows)


# -- a failed COPY in a unit of work that commits ---------------------------------------------
# The fixture's session never commits; these go through db.session() and db.transaction().


@pytest.mark.parametrize("bad", [{"name": "x" * 201}, {"name": "a\x00b"}], ids=["server", "client"])
async def test_a_bad_row_in_a_copy_writes_nothing_and_the_block_goes_on_to_commit(
    committed_db: Database, bad: dict[str, object]
) -> None:
    rows = _products(10_000, "K")
    rows[K] = {**rows[K], **bad}
    async with committed_db.session() as s:
        repo = ProductRepository(s)
        with pytest.raises(InvalidQueryError, match=rf"rows\[{K}\]: Product\.name"):
            await repo.add_many(rows)
        assert await _count(s, "K-") == 0
        assert await repo.add_many(_products(1_500, "K")) == 1_500
    async with committed_db.read() as s:
        assert await _count(s, "K-") == 1_500


async def test_a_bad_copy_inside_db_transaction_leaves_fn_able_to_commit(
    committed_db: Database,
) -> None:
    # The session of db.transaction refuses the caller's rollback: the COPY's own undoes it,
    # and the connection stays (a bad row is the caller's input, not a broken connection).
    rows = _products(2_000, "M")
    rows[1_900] = {**rows[1_900], "stock": -1}
    calls = 0
    invalidated: list[object] = []

    def record(*args: Any) -> None:
        invalidated.append(args)

    async def fn(s: DALSession) -> int:
        nonlocal calls
        calls += 1
        repo = ProductRepository(s)
        with pytest.raises(CheckViolationError, match=r"rows\[1900\]"):
            await repo.add_many(rows)
        return await repo.add_many(_products(1_200, "M"))

    pool = committed_db.engine.sync_engine.pool
    event.listen(pool, "invalidate", record)
    try:
        assert await committed_db.transaction(fn) == 1_200
    finally:
        event.remove(pool, "invalidate", record)
    assert (calls, invalidated) == (1, [])
    async with committed_db.read() as s:
        assert await _count(s, "M-") == 1_200


async def test_a_bad_copy_after_pending_objects_rolls_back_only_its_savepoint(
    committed_db: Database,
) -> None:
    rows = _products(2_000, "P")
    rows[1_500] = {**rows[1_500], "sku": "P-000003"}  # a duplicate
    async with committed_db.session() as s:
        s.add(Product(sku="P-pending", name="p", price=Decimal(1), stock=1))
        with pytest.raises(DuplicateError, match=r"rows\[1500\]"):
            await ProductRepository(s).add_many(rows)
        assert s.in_transaction()  # the pending object, flushed before the COPY, is kept
    async with committed_db.read() as s:
        assert await _count(s, "P-") == 1
